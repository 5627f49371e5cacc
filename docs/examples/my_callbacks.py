"""A callback of your own: the test samples the model got wrong, as a CSV file in the run
directory, the most confident mistakes first."""

import csv

from multiclass.callbacks import Callback, RunState
from multiclass.engine import Evaluation


class Mistakes(Callback):
    """mistakes.csv: each wrongly predicted test sample, its true and predicted class by name
    and the probability the model gave its prediction."""

    def on_test_end(self, run: RunState, tested: Evaluation) -> None:
        names = run.built.splits.class_names
        labels = run.built.splits.test.y.tolist()
        predictions = tested.predictions.tolist()
        confidence = tested.probabilities.max(dim=1).values.tolist()
        wrong = [i for i, (y, p) in enumerate(zip(labels, predictions, strict=True)) if y != p]
        wrong.sort(key=lambda i: -confidence[i])
        with open(run.run_dir / "mistakes.csv", "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["index", "label", "predicted", "confidence"])
            for i in wrong:
                writer.writerow(
                    [i, names[labels[i]], names[predictions[i]], f"{confidence[i]:.4f}"]
                )
