"""best.pt whenever an epoch has the best `trainer.monitor` figure so far (val_acc by default),
then last.pt, which a resume needs (in that order: a kill between them loses nothing a resume
needs); and last.pt when a signal stops training (Ctrl-C, SIGTERM, a cluster's warning before
a time limit or preemption): mid-epoch, at the step where it stopped, with the epoch as far as
it went, or after an epoch's record that `trainer.checkpoint_every_s` had not saved."""

import logging
import time

from multiclass.callbacks import Callback, RunState
from multiclass.engine import EpochMetrics, batches_per_epoch
from multiclass.records.artifacts import shown_path
from multiclass.records.last_checkpoint import LAST, save_last

log = logging.getLogger("multiclass")


class Checkpoints(Callback):
    order = 100  # last.pt last: every other record of the epoch is written before it

    def on_fit_start(self, run: RunState) -> None:
        self.last_saved = time.monotonic()
        self.saved_epoch = run.progress.epoch  # restored from last.pt, or 0: nothing to lose

    def on_epoch_end(self, run: RunState, row: EpochMetrics, improved: bool) -> None:
        built = run.built
        if improved:
            built.save_model(run.run_dir / "best.pt")
        if self.due(run, row.epoch):
            self.save(run)

    def on_train_interrupted(self, run: RunState) -> None:
        """last.pt as the stop left training, unless it holds that already."""
        progress = run.progress
        if progress.partial is None and self.saved_epoch == progress.epoch:
            return
        started = time.perf_counter()
        self.save(run)
        partial = progress.partial
        where = f"after epoch {progress.epoch}"
        if partial is not None:
            batches = batches_per_epoch(len(partial.permutation), run.settings)
            where = f"at batch {partial.batches}/{batches} of epoch {partial.epoch}"
        seconds = time.perf_counter() - started
        log.info("saved %s %s (%.2f s)", shown_path(run.run_dir / LAST), where, seconds)

    def save(self, run: RunState) -> None:
        built = run.built
        save_last(run.run_dir / LAST, built.model, built.task, run.progress)
        self.last_saved, self.saved_epoch = time.monotonic(), run.progress.epoch

    def due(self, run: RunState, epoch: int) -> bool:
        """Every epoch by default; with `trainer.checkpoint_every_s`, once that long has
        passed, and always after the last (or an early-stopping) epoch."""
        final = epoch == run.settings.epochs or run.progress.stopped_early
        return final or time.monotonic() - self.last_saved >= run.settings.checkpoint_every_s
