"""metrics.csv: a row per epoch, appended as the epoch ends; and once the run is tested,
per_class.csv: each class's precision, recall, F1 and support on the test split."""

from multiclass.callbacks import Callback, RunState
from multiclass.class_metrics import PER_CLASS_CSV, per_class
from multiclass.engine import EpochMetrics, Evaluation
from multiclass.records.artifacts import MetricsLog, write_csv


class MetricsCSV(Callback):
    def on_fit_start(self, run: RunState) -> None:
        self.metrics = MetricsLog(run.run_dir / "metrics.csv")
        self.metrics.rewrite(run.progress.history)  # a resumed run's rows as last.pt saved them

    def on_epoch_end(self, run: RunState, row: EpochMetrics, improved: bool) -> None:
        self.metrics.append(row)

    def on_test_end(self, run: RunState, tested: Evaluation) -> None:
        splits = run.built.splits
        labels = splits.test.y.cpu().numpy()
        rows = per_class(labels, tested.predictions.numpy(), splits.class_names)
        table = [
            {
                "class": row.name,
                "precision": row.precision,
                "recall": row.recall,
                "f1": row.f1,
                "support": row.support,
            }
            for row in rows
        ]
        write_csv(run.run_dir / PER_CLASS_CSV, table)
