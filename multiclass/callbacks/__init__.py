"""Callbacks: what a run records as it trains, each a class the run calls at named events
(fastai's and Lightning's model). The `callbacks` config group lists them by `_target_`:
`callbacks=default` writes every file of a run, `callbacks=minimal` leaves out the pictures
and layer statistics, and a user's own class joins the list from their `--config-dir`.

Events, in the order a run fires them (each gets the run's `RunState` first):
- `on_run_start`: config.yaml written, nothing built yet;
- `on_fit_start`: data, model and optimizer built, `progress` restored on a resume;
- `on_epoch_start(epoch)`: in an epoch a resume goes on with, `run.progress.partial` says how
  far it had gone (its `batches`);
- `on_train_batch_start(batch)`: `batch`, the indices of the batch's samples;
- `on_before_backward(loss)`, `on_after_backward`: around a batch's backward pass;
- `on_before_optimizer_step`: the step's gradients are final (unscaled under fp16): where
  trainer.gradient_clip_norm clips them; `on_after_optimizer_step`: the new weights, where
  trainer.ema averages them (with trainer.accumulate_grad_batches=k, once per k batches);
- `on_train_batch_end(batch, loss)`;
- `on_validation_start`, `on_validation_end(evaluation)`;
- `on_epoch_end(row, improved)`: after each epoch, `improved` when its `trainer.monitor` figure
  (val_acc by default) is the best yet;
  setting `run.progress.stopped_early` ends training after this epoch;
- `on_layer_stats(epoch, rows)`: the layer statistics of an epoch were measured;
- `on_train_interrupted`: a signal stops training at a safe point (after an optimizer step,
  the epoch as far as it went in `run.progress.partial`; or after an epoch's record), before
  the run records how it ended: where the checkpoints write last.pt;
- `on_fit_end`: training ended (not on a failure or an interruption);
- `on_test_start`, `on_test_end(tested)`: the test figures are in the summary and model.pt is
  saved;
- `on_run_end`: always, however the run ended, after summary.json is written.

At each event, callbacks are called by their `order` (lowest first), and in their config's
order where two have the same: early stopping (-10) decides before anything records the
epoch, and checkpoints (100) write last.pt after every other record of it, whatever order
a user's callbacks list gives them. A batch's events cost nothing for a callback that does
not override them.

A callback that raises fails the run with one line that names it and the event
(`callback EpochCounter failed in on_epoch_end: ValueError: boom`), once the others have had
the event too: an epoch's record (metrics.csv, last.pt, the summary, the log line) stays whole.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from multiclass.config import CONFIG_DIR, TrainerSettings
from multiclass.errors import UserError, building, failures_named, import_target, one_line

if TYPE_CHECKING:
    import torch

    from multiclass.engine import EpochMetrics, Evaluation, Progress
    from multiclass.lifecycle.build import Built

log = logging.getLogger("multiclass")


@dataclass
class RunState:
    """What callbacks see of a run: filled in as the run gets that far."""

    cfg: DictConfig
    run_dir: Path
    settings: TrainerSettings
    summary: dict[str, Any]
    callbacks: "Callbacks"
    built: "Built | None" = None
    progress: "Progress | None" = None
    undrawn: list[str] = field(default_factory=list)  # pictures that failed, one line each


class Callback:
    """Does nothing at every event: a callback overrides the events it needs. Under data
    parallel training only rank 0 calls it, unless it sets `every_rank` (one that decides how
    training goes, such as early stopping, must run on every rank). `order` places it among
    the others at each event (lowest first)."""

    every_rank = False
    order = 0

    def on_run_start(self, run: RunState) -> None:
        pass

    def on_fit_start(self, run: RunState) -> None:
        pass

    def on_epoch_start(self, run: RunState, epoch: int) -> None:
        pass

    def on_train_batch_start(self, run: RunState, batch: "torch.Tensor") -> None:
        pass

    def on_before_backward(self, run: RunState, loss: "torch.Tensor") -> None:
        pass

    def on_after_backward(self, run: RunState) -> None:
        pass

    def on_before_optimizer_step(self, run: RunState) -> None:
        pass

    def on_after_optimizer_step(self, run: RunState) -> None:
        pass

    def on_train_batch_end(
        self, run: RunState, batch: "torch.Tensor", loss: "torch.Tensor"
    ) -> None:
        pass

    def on_validation_start(self, run: RunState) -> None:
        pass

    def on_validation_end(self, run: RunState, evaluation: "Evaluation") -> None:
        pass

    def on_epoch_end(self, run: RunState, row: "EpochMetrics", improved: bool) -> None:
        pass

    def on_layer_stats(self, run: RunState, epoch: int, rows: list) -> None:
        pass

    def on_train_interrupted(self, run: RunState) -> None:
        pass

    def on_fit_end(self, run: RunState) -> None:
        pass

    def on_test_start(self, run: RunState) -> None:
        pass

    def on_test_end(self, run: RunState, tested: "Evaluation") -> None:
        pass

    def on_run_end(self, run: RunState) -> None:
        pass


EVENTS = tuple(name for name in vars(Callback) if name.startswith("on_"))


class Callbacks:
    """The run's callbacks, called at each event by their `order`, then their config's."""

    def __init__(self, callbacks: list[Callback]) -> None:
        self.callbacks = sorted(callbacks, key=lambda callback: callback.order)
        # Per event, the callbacks that override it: a step's events cost a lookup.
        self.listening = {
            event: [
                c for c in self.callbacks if getattr(type(c), event) is not getattr(Callback, event)
            ]
            for event in EVENTS
        }

    def fire(self, event: str, run: RunState, *args: Any) -> None:
        """`event` for each; the first failure is raised once every callback has had it, named
        with the callback and the event, so that one callback's error costs no other its part
        of the run's record."""
        failed = None
        for callback in self.listening[event]:
            try:
                with failures_named(f"callback {type(callback).__name__} failed in {event}"):
                    getattr(callback, event)(run, *args)
            except Exception as failure:
                failed = failed or failure
        if failed is not None:
            raise failed

    def every_rank(self) -> "Callbacks":
        """Those a data parallel rank other than 0 calls."""
        return Callbacks([callback for callback in self.callbacks if callback.every_rank])

    def end(self, run: RunState) -> None:
        """`on_run_end` for each, even when one fails: a warning line, and the rest still run
        (summary.json is written by then; nothing here may cost the run its record)."""
        for callback in self.callbacks:
            try:
                callback.on_run_end(run)
            except Exception as failure:
                name = type(callback).__name__
                log.warning("warning: callback %s failed at the end: %s", name, one_line(failure))


DEFAULT_CALLBACKS = CONFIG_DIR / "callbacks" / "default.yaml"


def build_callbacks(cfg: DictConfig) -> list[Callback]:
    """The callbacks `cfg.callbacks` lists (a name each, null to leave one out); a config
    saved before callbacks existed gets `callbacks=default`."""
    from hydra.utils import instantiate

    listed = cfg.callbacks if "callbacks" in cfg else None
    if listed is None:
        listed = OmegaConf.load(DEFAULT_CALLBACKS)
        listed.pop("defaults", None)
    built = []
    for name, node in listed.items():
        if node is None:
            continue
        target = node.get("_target_") if OmegaConf.is_dict(node) else None
        import_target(f"callbacks.{name}._target_", target)
        with building(f"callbacks.{name}", node):
            callback = instantiate(node)
        if not isinstance(callback, Callback):
            kind = type(callback).__name__
            raise UserError(f"callbacks.{name} is a {kind}, not a multiclass.callbacks.Callback")
        built.append(callback)
    return built
