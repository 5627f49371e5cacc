"""Tracking: a run's progress sent to the tools users already run (TensorBoard, MLflow), on
top of the run directory, which is always written.

The `logger` config group instantiates a Tracker. The run calls it when it starts, after every
epoch (and the layer statistics), and when it ends, however it ends. A tracker that fails (a
locked or unwritable store) is reported in one warning line and then left out: tracking never
costs a run what it computed.
"""

import logging
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from multiclass.errors import UserError, one_line

if TYPE_CHECKING:  # the interface imports without torch: a tracker's process may not need it
    from multiclass.engine import EpochMetrics

log = logging.getLogger("multiclass")

# A run's status as trackers record it.
FINAL_STATUS = {"completed": "FINISHED", "interrupted": "KILLED"}  # anything else: FAILED
FINAL_METRICS = (
    "test_acc",
    "test_loss",
    "test_macro_f1",
    "test_balanced_acc",
    "test_ece",
    "temperature",  # trainer.calibrate's, when it fitted one
    "best_val_acc",
    "best_epoch",
    "best_score",  # of trainer.monitor, at best_epoch
    "train_time_s",
)


class Tracker:
    """Where a run reports besides its directory; this one (`logger=none`) reports nowhere."""

    def start(self, cfg: DictConfig, run_dir: Path, resumed_epoch: int) -> None:
        """`resumed_epoch`: the epochs already done when a run is resumed, else 0."""

    def log_epoch(self, row: "EpochMetrics") -> None:
        pass

    def log_layers(self, epoch: int, rows: list) -> None:
        """The layer statistics of `epoch` (reporting.layers.LayerRow)."""

    def finish(self, summary: dict[str, Any], run_dir: Path) -> None:
        """The run ended with `summary` (its `status` says how) and wrote `run_dir`."""


class Guarded(Tracker):
    """`tracker`, with any failure turned into one warning line, after which it is left out."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker: Tracker | None = tracker

    def start(self, cfg: DictConfig, run_dir: Path, resumed_epoch: int) -> None:
        self.call("start", cfg, run_dir, resumed_epoch)

    def log_epoch(self, row: "EpochMetrics") -> None:
        self.call("log_epoch", row)

    def log_layers(self, epoch: int, rows: list) -> None:
        self.call("log_layers", epoch, rows)

    def finish(self, summary: dict[str, Any], run_dir: Path) -> None:
        self.call("finish", summary, run_dir)

    def call(self, method: str, *args: Any) -> None:
        if self.tracker is None:
            return
        try:
            getattr(self.tracker, method)(*args)
        except Exception as failure:
            name = type(self.tracker).__name__
            log.warning("warning: %s stopped tracking this run: %s", name, one_line(failure))
            self.tracker = None


def open_tracker(cfg: DictConfig) -> Tracker:
    """The tracker `cfg.logger` names, guarded; no logger config at all means none."""
    if cfg.get("logger") is None:
        return Tracker()
    from hydra.utils import instantiate

    return Guarded(instantiate(cfg.logger))


def flat_params(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as `{"model.depth": 2, ...}`: lists and nulls as text, Hydra's own
    node and the run's bookkeeping (`reproduces`, `resume`) left out."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    params: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            value = node if isinstance(node, bool | int | float | str) else str(node)
            params[prefix.rstrip(".")] = value

    for key, value in plain.items():
        if key not in ("hydra", "reproduces", "resume"):
            walk(value, f"{key}.")
    return params


def epoch_scalars(row: "EpochMetrics") -> dict[str, float]:
    """An epoch's figures under the names both trackers use."""
    scalars = {
        "train_loss": row.train_loss,
        "train_acc": row.train_acc,
        "lr": row.lr,
        "epoch_seconds": row.epoch_seconds,
    }
    if row.val_acc is not None:
        scalars.update(val_loss=row.val_loss, val_acc=row.val_acc)
        scalars.update(val_macro_f1=row.val_macro_f1, val_balanced_acc=row.val_balanced_acc)
    return scalars


def final_metrics(summary: dict[str, Any]) -> dict[str, float]:
    return {key: summary[key] for key in FINAL_METRICS if summary.get(key) is not None}


def require(module: str, extra: str) -> None:
    """A one-line error up front when a logger's library is not installed: better than
    training for an hour untracked."""
    if find_spec(module) is None:
        raise UserError(f"logger={extra} needs {module}: pip install 'multiclass[{extra}]'")
