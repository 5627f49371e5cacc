"""best.pt whenever an epoch has the best `trainer.monitor` figure so far (val_acc by default),
then last.pt, which a resume needs (in that order: a kill between them loses nothing a resume
needs)."""

import time

from multiclass.callbacks import Callback, RunState
from multiclass.engine import EpochMetrics
from multiclass.records.last_checkpoint import LAST, save_last


class Checkpoints(Callback):
    order = 100  # last.pt last: every other record of the epoch is written before it

    def on_fit_start(self, run: RunState) -> None:
        self.last_saved = time.monotonic()

    def on_epoch_end(self, run: RunState, row: EpochMetrics, improved: bool) -> None:
        built = run.built
        if improved:
            built.save_model(run.run_dir / "best.pt")
        if self.due(run, row.epoch):
            save_last(run.run_dir / LAST, built.model, built.task, run.progress)
            self.last_saved = time.monotonic()

    def due(self, run: RunState, epoch: int) -> bool:
        """Every epoch by default; with `trainer.checkpoint_every_s`, once that long has
        passed, and always after the last (or an early-stopping) epoch."""
        final = epoch == run.settings.epochs or run.progress.stopped_early
        return final or time.monotonic() - self.last_saved >= run.settings.checkpoint_every_s
