"""multiclass-analyze: the confused pairs and top losses of predictions files, a run's test
split and a k-fold sweep's out-of-fold predictions rebuilt into images and rows, labels
flipped on purpose found first by confident learning, and bad input as one line."""

import csv
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from multiclass.analysis.confusion import confused_pairs
from multiclass.analysis.label_issues import recall_at
from multiclass.analysis.losses import sample_losses, top_losses
from multiclass.commands import analyze
from multiclass.config import compose_config
from multiclass.lifecycle.run import execute
from multiclass.records.predictions import (
    OOF,
    TEST_PREDICTIONS,
    Predictions,
    read_predictions,
    write_predictions,
)
from tests.conftest import QUIET

FLIPPED = 12  # of 300 training rows: 4%
FOLDS = 3


def predictions(labels: list[int], probabilities: list[list[float]]) -> Predictions:
    p = np.array(probabilities)
    n, k = p.shape
    return Predictions(np.arange(n), np.array(labels), p.argmax(1), p, [f"c{i}" for i in range(k)])


def run_analyze(directory: Path, capsys) -> tuple[str, str]:
    analyze.main([str(directory)])
    captured = capsys.readouterr()
    return captured.out, captured.err


def refused(directory: Path, capsys) -> str:
    with pytest.raises(SystemExit) as exit_status:
        analyze.main([str(directory)])
    error = capsys.readouterr().err
    assert exit_status.value.code == 1 and error.startswith("error: ") and error.count("\n") == 1
    return error


@pytest.fixture
def no_cleanlab(monkeypatch):
    """cleanlab as if not installed: its import fails."""
    for name in ("cleanlab", "cleanlab.filter"):
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    """A tiny model of the 8x8 digits (images), one epoch: many mistakes to analyse."""
    run_dir = tmp_path_factory.mktemp("digits")
    cfg = compose_config(*QUIET, "dataset.limit=300", "trainer.epochs=1")
    assert execute(cfg, run_dir).status == "completed"
    return run_dir


@pytest.fixture(scope="module")
def flipped_sweep(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A 3-fold sweep of a table of three well-separated 2-D blobs whose training file has 12
    of its 300 labels flipped to another class (the test file is clean), its folds' oof.csv
    joined at the sweep root; and the flipped rows, which are oof.csv's indices since the
    training file is all the folds are cut from."""
    root = tmp_path_factory.mktemp("sweep")
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])

    def table(path: Path, n: int) -> np.ndarray:
        labels = np.arange(n) % 3
        points = centres[labels] + rng.normal(size=(n, 2))
        write_table(path, points, labels)
        return labels

    labels = table(root / "train.csv", 300)
    table(root / "test.csv", 60)
    flipped = np.sort(rng.choice(300, FLIPPED, replace=False))
    labels[flipped] = (labels[flipped] + rng.integers(1, 3, FLIPPED)) % 3
    points = np.loadtxt(root / "train.csv", delimiter=",", skiprows=1, usecols=(0, 1))
    write_table(root / "train.csv", points, labels)
    data = [
        f"dataset.{k}={root / v}" for k, v in (("path", "train.csv"), ("test_path", "test.csv"))
    ]
    for fold in range(FOLDS):
        cfg = compose_config(
            *QUIET,
            "dataset=table",
            *data,
            "dataset.target=label",
            f"dataset.folds={FOLDS}",
            f"dataset.fold={fold}",
            "trainer.epochs=15",
        )
        assert execute(cfg, root / str(fold)).status == "completed"
    join_folds(root)
    return root, flipped


def write_table(path: Path, points: np.ndarray, labels: np.ndarray) -> None:
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["x0", "x1", "label"])
        writer.writerows(
            [f"{a:.5f}", f"{b:.5f}", f"k{y}"] for (a, b), y in zip(points, labels, strict=True)
        )


def join_folds(root: Path) -> None:
    """oof.csv at the sweep root, as the sweep's report joins the folds' (every row once)."""
    parts = [read_predictions(root / str(fold) / OOF) for fold in range(FOLDS)]
    order = np.argsort(np.concatenate([p.index for p in parts]))
    joined = [np.concatenate([getattr(p, f) for p in parts])[order] for f in ("index", "labels")]
    predicted = np.concatenate([p.predicted for p in parts])[order]
    probabilities = np.concatenate([p.probabilities for p in parts])[order]
    write_predictions(root / OOF, *joined, predicted, probabilities, parts[0].class_names)


def test_confused_pairs_count_and_rate_of_the_true_class():
    p = predictions(
        [0, 0, 0, 0, 1, 1, 2],
        [[0, 1, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 1, 0]],
    )
    lines = [pair.line() for pair in confused_pairs(p)]
    assert lines == [
        "c0 -> c1: 2 of 4 (50.0%)",
        "c2 -> c1: 1 of 1 (100.0%)",
        "c1 -> c0: 1 of 2 (50.0%)",
        "c0 -> c2: 1 of 4 (25.0%)",
    ]


def test_top_losses_are_the_least_probable_true_classes():
    p = predictions([0, 1, 1, 0], [[0.9, 0.1], [0.8, 0.2], [0.0, 1.0], [0.6, 0.4]])
    assert top_losses(p).tolist() == [1, 3, 0, 2]
    assert sample_losses(p)[1] == pytest.approx(-np.log(0.2))
    assert np.isfinite(sample_losses(p)).all()  # p = 0 of the true class: a large, finite loss
    assert recall_at(np.array([5, 1, 7, 2]), np.array([1, 2]), total=100) == 0.5  # top 2 rows


def test_a_run_of_images_gives_pairs_a_grid_and_a_page(digits_run, capsys):
    pytest.importorskip("cleanlab")
    out, _ = run_analyze(digits_run, capsys)
    folder = digits_run / "analysis"
    lines = out.splitlines()
    assert lines[0].endswith("the test split's 360 held-out predictions (test_predictions.csv)")
    assert lines[1] == "Most confused (true -> predicted: count of the true class):"
    assert "not out-of-fold" in out and "checks the test labels only" in out
    with open(folder / "confused_pairs.csv") as file:
        pairs = list(csv.DictReader(file))
    assert lines[2] == f"  {pairs[0]['true']} -> {pairs[0]['predicted']}: {pairs[0]['count']}" + (
        f" of {pairs[0]['of_true']} ({float(pairs[0]['rate']):.1%})"
    )
    with Image.open(folder / "top_losses.png") as grid:
        assert grid.width > 600 and grid.height > 400
    for name in ("label_issues.csv", "label_issues.png", "confusion_matrix.png"):
        assert (folder / name).is_file()
    page = (folder / "analysis.md").read_text()
    assert "![top_losses](top_losses.png)" in page and "not out-of-fold" in page
    html = (folder / "analysis.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and 'class="sortable pairs"' in html


def test_without_cleanlab_one_line_says_so_and_the_rest_is_written(
    digits_run, tmp_path, capsys, no_cleanlab
):
    run_dir = tmp_path / "run"
    shutil.copytree(digits_run, run_dir)
    (run_dir / "analysis").mkdir(exist_ok=True)
    (run_dir / "analysis" / "label_issues.csv").write_text("an earlier analysis's\n")
    out, _ = run_analyze(run_dir, capsys)
    line = "No label issues: cleanlab is not installed: pip install 'multiclass[analysis]'"
    assert line in out.splitlines()
    written = sorted(path.name for path in (run_dir / "analysis").iterdir())
    assert written == [
        "analysis.html",
        "analysis.md",
        "confused_pairs.csv",
        "confusion_matrix.png",
        "top_losses.csv",
        "top_losses.png",
    ]


def test_flipped_labels_rank_first_from_out_of_fold_predictions(flipped_sweep, capsys):
    pytest.importorskip("cleanlab")
    root, flipped = flipped_sweep
    out, _ = run_analyze(root, capsys)
    assert "300 out-of-fold predictions" in out and "out-of-fold: each of the 300" in out
    with open(root / "analysis" / "label_issues.csv") as file:
        ranked = np.array([int(row["index"]) for row in csv.DictReader(file)])
    # The top 2% (6 rows) can hold half of the 12 flipped: all six are flipped ones.
    assert recall_at(ranked, flipped, total=300) == 0.5
    assert len(np.intersect1d(ranked, flipped)) >= FLIPPED - 2  # and nearly all are flagged
    with open(root / "analysis" / "top_losses.csv") as file:
        first = next(csv.DictReader(file))
    assert int(first["index"]) in flipped
    row = np.loadtxt(root / "train.csv", delimiter=",", skiprows=1, usecols=(0, 1))[
        int(first["index"])
    ]
    assert [float(first["x0"]), float(first["x1"])] == pytest.approx(row.tolist(), abs=1e-5)
    assert not (root / "analysis" / "top_losses.png").exists()  # a table's rows: no picture


def test_a_sweep_without_oof_csv_is_analysed_but_ranks_no_labels(flipped_sweep, tmp_path, capsys):
    root = tmp_path / "sweep"
    shutil.copytree(flipped_sweep[0], root, ignore=shutil.ignore_patterns(OOF, "analysis"))
    out, _ = run_analyze(root, capsys)
    assert "the best job's" in out.splitlines()[0] and "60 test predictions" in out
    assert "No label issues: " in out and "oof.csv is missing" in out
    assert (root / "analysis" / "top_losses.csv").is_file()
    assert not (root / "analysis" / "label_issues.csv").exists()


def test_bad_input_is_one_line_and_writes_nothing(digits_run, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "not a run directory (no config.yaml) nor a sweep" in refused(empty, capsys)
    assert "no such directory" in refused(tmp_path / "none", capsys)
    old = tmp_path / "old"
    shutil.copytree(digits_run, old, ignore=shutil.ignore_patterns(TEST_PREDICTIONS, "analysis"))
    assert f"no {TEST_PREDICTIONS} to analyse" in refused(old, capsys)
    changed = tmp_path / "changed"
    shutil.copytree(digits_run, changed, ignore=shutil.ignore_patterns("analysis"))
    p = read_predictions(changed / TEST_PREDICTIONS)
    labels = (p.labels + 1) % len(p.class_names)
    write_predictions(
        changed / TEST_PREDICTIONS, p.index, labels, p.predicted, p.probabilities, p.class_names
    )
    assert "does not match the test samples rebuilt from" in refused(changed, capsys)
    unbuildable = tmp_path / "unbuildable"
    shutil.copytree(digits_run, unbuildable, ignore=shutil.ignore_patterns("analysis"))
    config = (unbuildable / "config.yaml").read_text()
    (unbuildable / "config.yaml").write_text(
        config.replace("test_fraction: 0.2", "test_fraction: 2")
    )
    assert "cannot rebuild the test samples from" in refused(unbuildable, capsys)
    for folder in (empty, old, changed, unbuildable):
        assert not (folder / "analysis").exists()


def test_a_data_set_tested_on_its_training_samples_says_the_ranking_is_in_sample(
    train, tmp_path, capsys
):
    pytest.importorskip("cleanlab")
    run_dir = tmp_path / "xor"
    assert train("dataset=xor", "trainer.epochs=1", run_dir=run_dir).status == "completed"
    out, _ = run_analyze(run_dir, capsys)
    assert "the 4 test predictions (this data set tests on its training samples)" in out
    assert "in-sample: ranked from the run's predictions of its 4 training samples" in out
    with open(run_dir / "analysis" / "top_losses.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 4 and {"x0", "x1"} <= set(rows[0])  # no transform: the features
