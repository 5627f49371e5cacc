"""metrics.csv: a row per epoch, appended as the epoch ends."""

from multiclass.callbacks import Callback, RunState
from multiclass.engine import EpochMetrics
from multiclass.lifecycle.artifacts import MetricsLog


class MetricsCSV(Callback):
    def on_fit_start(self, run: RunState) -> None:
        self.metrics = MetricsLog(run.run_dir / "metrics.csv")
        self.metrics.rewrite(run.progress.history)  # a resumed run's rows as last.pt saved them

    def on_epoch_end(self, run: RunState, row: EpochMetrics, improved: bool) -> None:
        self.metrics.append(row)
