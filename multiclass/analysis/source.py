"""What an analysis is of: a run's test predictions (test_predictions.csv), or a k-fold sweep's
out-of-fold predictions (the oof.csv its report joined at the sweep root), with what they are:
held out or not, out-of-fold or not, which examples they cover. Everything is read and
checked here, before anything is written."""

from dataclasses import dataclass
from pathlib import Path

from multiclass.comparing.runs import RunRecord, find_runs
from multiclass.comparing.sweep_jobs import build_report
from multiclass.errors import UserError
from multiclass.inference.trained import CHECKPOINT, CONFIG, ended
from multiclass.records.artifacts import read_config, shown_path
from multiclass.records.predictions import OOF, TEST_PREDICTIONS, Predictions, read_predictions

TEST = "test"  # the examples are rows of the test split
NON_TEST = "non-test"  # positions among the samples the folds were cut from (all but the test)
FOLDS = "dataset.folds"


@dataclass(frozen=True)
class Subject:
    """The predictions one analysis reads, and what a reader of it must be told about them."""

    directory: Path  # the run or sweep analysed: analysis/ goes in it
    predictions: Predictions
    file: Path  # the predictions file read
    split: str  # TEST or NON_TEST: which samples `predictions.index` counts
    run_dir: Path  # the run whose config rebuilds the samples (their images or rows)
    what: str  # which predictions, in a phrase: "the test split's 360 held-out predictions"
    # How the label-issue ranking stands, in a sentence (which labels it checks, and whether
    # a model that trained on them predicted them); None: no ranking, `no_ranking` says why.
    ranking: str | None
    no_ranking: str | None = None

    @property
    def name(self) -> str:
        return shown_path(self.directory)


def subject_of(directory: Path) -> Subject:
    """The run or sweep at `directory`, or one line saying why it is neither, or has nothing
    to analyse."""
    if not directory.is_dir():
        raise UserError(f"{directory}: no such directory")
    if (directory / CONFIG).is_file():
        return of_run(directory)
    jobs = find_runs([directory])
    if not jobs:
        raise UserError(
            f"{directory}: not a run directory (no {CONFIG}) nor a sweep (no run directories"
            " under it)"
        )
    return of_sweep(directory, jobs)


def of_run(run_dir: Path) -> Subject:
    """A run's test predictions; their label-issue ranking checks the test labels alone, from
    predictions the model did not train on, unless the data set tests on its training samples
    (dataset.eval_on_train), where it is in-sample."""
    predictions = run_predictions(run_dir)
    n = len(predictions)
    in_sample = bool(read_config(run_dir / CONFIG).dataset.get("eval_on_train", False))
    if in_sample:
        what = f"the {n} test predictions (this data set tests on its training samples)"
        ranking = (
            f"in-sample: ranked from the run's predictions of its {n} training samples, which"
            " the model trained on, labels and all (a wrong label it learnt looks right); not"
            " out-of-fold"
        )
    else:
        what = f"the test split's {n} held-out predictions"
        ranking = (
            f"not out-of-fold: ranked from the test split's {n} held-out predictions, so it"
            " checks the test labels only, none of the training labels; for those, analyze a"
            " k-fold sweep (-m dataset.folds=K 'dataset.fold=range(K)')"
        )
    return Subject(run_dir, predictions, run_dir / TEST_PREDICTIONS, TEST, run_dir, what, ranking)


def run_predictions(run_dir: Path) -> Predictions:
    path = run_dir / TEST_PREDICTIONS
    if not path.is_file():
        raise UserError(
            f"{shown_path(run_dir)}: no {TEST_PREDICTIONS} to analyse (a run from before runs"
            f" wrote it, or one that did not finish){ended(run_dir)}"
        )
    return read_predictions(path)


def of_sweep(root: Path, jobs: list[RunRecord]) -> Subject:
    """A k-fold sweep's joined out-of-fold predictions (oof.csv at its root); a sweep without
    them: its best job's test predictions (by the sweep report's objective), and no ranking."""
    oof = root / OOF
    if oof.is_file():
        predictions = read_predictions(oof)
        n = len(predictions)
        folded = [
            record.path
            for record in jobs
            if record.value(FOLDS) is not None and (record.path / CHECKPOINT).is_file()
        ]
        if not folded:
            raise UserError(f"{shown_path(root)}: no k-fold job of the sweep saved its model.pt")
        what = f"the {n} out-of-fold predictions its folds joined, each training sample once"
        ranking = (
            f"out-of-fold: each of the {n} training labels checked against a model that never"
            " trained on it"
        )
        return Subject(root, predictions, oof, NON_TEST, folded[0], what, ranking)
    best = build_report([root]).best
    if best is None:
        raise UserError(f"{shown_path(root)}: no job of the sweep completed")
    predictions = run_predictions(best.path)
    why = f"no label issues: {shown_path(oof)} is missing; they are ranked from out-of-fold"
    several = sorted(path.name for path in root.glob("oof-*.csv"))
    if several:
        why += (
            f" predictions, and this sweep holds several cross-validations ({', '.join(several)}):"
            " sweep one config's folds into a sweep directory of its own to rank its labels"
        )
    else:
        why += (
            " predictions, which a k-fold sweep's report joins there"
            " (-m dataset.folds=K 'dataset.fold=range(K)')"
        )
    what = f"the best job's ({shown_path(best.path)}) {len(predictions)} test predictions"
    return Subject(
        root,
        predictions,
        best.path / TEST_PREDICTIONS,
        TEST,
        best.path,
        what,
        None,
        why,
    )
