"""The run's tracker (the `logger` group: TensorBoard, MLflow), told of every epoch and the
layer statistics, and of the end however the run ends."""

from multiclass.callbacks import Callback, RunState
from multiclass.engine import EpochMetrics
from multiclass.tracking import Tracker, open_tracker


class Tracking(Callback):
    def __init__(self) -> None:
        self.tracker = Tracker()

    def on_run_start(self, run: RunState) -> None:
        self.tracker = open_tracker(run.cfg)  # a library not installed: one line, before training

    def on_fit_start(self, run: RunState) -> None:
        self.tracker.start(run.cfg, run.run_dir, run.progress.epoch)

    def on_epoch_end(self, run: RunState, row: EpochMetrics, improved: bool) -> None:
        self.tracker.log_epoch(row)

    def on_layer_stats(self, run: RunState, epoch: int, rows: list) -> None:
        self.tracker.log_layers(epoch, rows)

    def on_run_end(self, run: RunState) -> None:
        self.tracker.finish(run.summary, run.run_dir)
