"""The top losses, as fastai's `plot_top_losses` shows them: the samples whose true class the
model gave the least probability. The loss is that probability's negative log (cross entropy
of the head's class probabilities), the same for every head, so runs of any loss compare."""

from dataclasses import dataclass

import numpy as np

from multiclass.records.predictions import Predictions

TOP = 32  # samples shown: a grid of 4 rows of 8, or 32 rows of a table
LOSS_NAME = "-log p(true class)"
FLOOR = 1e-12  # a probability of 0 would give an infinite loss


def sample_losses(predictions: Predictions) -> np.ndarray:
    """-log p(true class) of each row."""
    rows = np.arange(len(predictions))
    return -np.log(np.maximum(predictions.probabilities[rows, predictions.labels], FLOOR))


def top_losses(predictions: Predictions, top: int = TOP) -> np.ndarray:
    """The rows of the `top` highest losses, highest first (ties by row: a stable order)."""
    return np.argsort(-sample_losses(predictions), kind="stable")[:top]


@dataclass(frozen=True)
class Shown:
    """Rows of a predictions file as a table or a grid shows them: the given class, the
    model's, and the probabilities of both."""

    predictions: Predictions
    rows: np.ndarray

    def records(self, rank_name: str = "rank") -> list[dict[str, object]]:
        p = self.predictions
        names, losses = p.class_names, sample_losses(p)
        return [
            {
                rank_name: rank,
                "index": int(p.index[row]),
                "label": names[p.labels[row]],
                "predicted": names[p.predicted[row]],
                "p_label": f"{p.probabilities[row, p.labels[row]]:.4f}",
                "p_predicted": f"{p.probabilities[row, p.predicted[row]]:.4f}",
                "loss": f"{losses[row]:.4f}",
            }
            for rank, row in enumerate(self.rows.tolist(), 1)
        ]

    def captions(self, given: str = "true") -> list[str]:
        """Two short lines a tile: the given class, then the predicted one, each with the
        probability the model gave it."""
        p = self.predictions
        names, probabilities = p.class_names, p.probabilities
        return [
            f"{given} {names[p.labels[row]]} {probabilities[row, p.labels[row]]:.2f}\n"
            f"pred {names[p.predicted[row]]} {probabilities[row, p.predicted[row]]:.2f}"
            for row in self.rows.tolist()
        ]
