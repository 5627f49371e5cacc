"""A callback of your own: the test set's predictions as a CSV file in the run directory."""

import csv

from multiclass.callbacks import Callback, RunState
from multiclass.engine import Evaluation


class TestPredictions(Callback):
    """test_predictions.csv: each test sample's true and predicted class, by name."""

    def on_test_end(self, run: RunState, tested: Evaluation) -> None:
        names = run.built.splits.class_names
        labels = run.built.splits.test.y.tolist()
        with open(run.run_dir / "test_predictions.csv", "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["index", "label", "predicted"])
            predictions = tested.predictions.tolist()
            for index, (label, predicted) in enumerate(zip(labels, predictions, strict=True)):
                writer.writerow([index, names[label], names[predicted]])
