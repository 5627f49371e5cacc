"""Once the run is tested: test_predictions.csv, each test sample's label, prediction and
class probabilities; and under k-fold (dataset.folds), oof.csv, the same for the validation
fold predicted by the tested weights, indexed by each sample's position among those the folds
were cut from, so that a sweep's report joins the folds' files into one that predicts every
training sample once, from a model that never trained on it (what error analysis and
confident learning need)."""

from collections.abc import Sequence

import numpy as np

from multiclass.callbacks import Callback, RunState
from multiclass.engine import Evaluation, Examples, evaluate
from multiclass.records.predictions import OOF, TEST_PREDICTIONS, write_predictions


class Predictions(Callback):
    def on_test_end(self, run: RunState, tested: Evaluation) -> None:
        splits = run.built.splits
        labels = splits.test.y.cpu().numpy()
        write(run, TEST_PREDICTIONS, range(len(labels)), labels, tested)
        if splits.val_rows is not None:
            task = run.built.task
            val = evaluate(task, Examples.of(splits.val, task.head), run.settings.eval_batch_size)
            write(run, OOF, splits.val_rows, splits.val.y.cpu().numpy(), val)


def write(
    run: RunState,
    name: str,
    index: Sequence[int] | np.ndarray,
    labels: np.ndarray,
    evaluation: Evaluation,
) -> None:
    """One predictions file of the run, from an evaluation of the samples `labels` names."""
    write_predictions(
        run.run_dir / name,
        index,
        labels,
        evaluation.predictions.numpy(),
        evaluation.probabilities.numpy(),
        run.built.splits.class_names,
    )
