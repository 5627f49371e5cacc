"""logger=tensorboard: TensorBoard event files in the run directory, so that `tensorboard
--logdir outputs` shows every run and every sweep job by its folder."""

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from multiclass.engine import EpochMetrics
from multiclass.tracking import (
    Tracker,
    epoch_scalars,
    final_metrics,
    flat_params,
    require,
)

LAYER_STATISTICS = ("grad_norm", "weight_norm", "act_std", "saturated", "dead")


class TensorBoardTracker(Tracker):
    """Scalars per epoch (`train/loss`, `val/acc`, `lr`, ...), the layer statistics per layer
    (`layers/grad_norm/1 Linear 784-256`), and the hyperparameters with the final metrics."""

    def __init__(self, subdir: str = "tensorboard") -> None:
        require("tensorboard", "tensorboard")
        self.subdir = subdir
        self.writer: Any = None
        self.params: dict[str, Any] = {}

    def start(self, cfg: DictConfig, run_dir: Path, resumed_epoch: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # A resumed run drops the events of epochs after the one it resumes from.
        purge = resumed_epoch + 1 if resumed_epoch else None
        self.writer = SummaryWriter(str(run_dir / self.subdir), purge_step=purge)
        self.params = flat_params(cfg)

    def log_epoch(self, row: EpochMetrics) -> None:
        for name, value in epoch_scalars(row).items():
            self.writer.add_scalar(tag(name), value, row.epoch)
        self.writer.flush()

    def log_layers(self, epoch: int, rows: list) -> None:
        for row in rows:
            for statistic in LAYER_STATISTICS:
                value = getattr(row, statistic)
                if value is not None:
                    self.writer.add_scalar(f"layers/{statistic}/{row.layer}", value, epoch)

    def finish(self, summary: dict[str, Any], run_dir: Path) -> None:
        if self.writer is None:
            return
        metrics = {f"hparams/{k}": v for k, v in final_metrics(summary).items()}
        if summary.get("status") == "completed" and metrics:
            self.writer.add_hparams(self.params, metrics, run_name=".")
        self.writer.close()


def tag(name: str) -> str:
    """`train_loss` -> `train/loss`: TensorBoard groups scalars by what comes before a slash."""
    split, _, figure = name.partition("_")
    return f"{split}/{figure}" if split in ("train", "val") else name
