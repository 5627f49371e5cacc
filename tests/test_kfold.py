"""k-fold cross-validation as a sweep: dataset.folds=K dataset.fold=i validates on fold i of
a seeded stratified k-fold, the test split held out; each run writes test_predictions.csv and
oof.csv; the report groups the folds as it groups seeds and joins their oof.csv into one that
predicts every sample once; bad input is one line."""

import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from multiclass.commands.report import report_sweep
from multiclass.config import compose_config
from multiclass.datasets.splits import Source, make_splits
from multiclass.datasets.synthetic import write_idx_dataset
from multiclass.errors import UserError
from multiclass.lifecycle.run import execute
from multiclass.records.predictions import (
    OOF,
    TEST_PREDICTIONS,
    read_predictions,
    write_predictions,
)
from tests.conftest import QUIET, read_summary, run_cli
from tests.test_image_folder import draw_folder
from tests.test_table_dataset import animals

FOLDS = 3
BLOBS = ["dataset=blobs", "trainer.epochs=2", "callbacks=minimal"]


def kfold(folds: int, fold: int) -> list[str]:
    return [f"dataset.folds={folds}", f"dataset.fold={fold}"]


def run_folds(root: Path, overrides: list[str], folds: int = FOLDS) -> list[Path]:
    """Every fold of `overrides` into root/0, root/1, ... (as a sweep's jobs are numbered)."""
    for fold in range(folds):
        cfg = compose_config(*QUIET, *overrides, *kfold(folds, fold))
        assert execute(cfg, root / str(fold)).status == "completed"
    return [root / str(fold) for fold in range(folds)]


@pytest.fixture(scope="module")
def blobs_sweep(tmp_path_factory) -> Path:
    """Three folds of blobs, trained once for the tests that read them (copy before changing)."""
    root = tmp_path_factory.mktemp("blobs_sweep")
    run_folds(root, BLOBS)
    return root


def pool_source(official_test: bool) -> Source:
    """60 samples of 3 classes (x[i] = i), with or without an official test set."""
    y = torch.arange(60) % 3
    test = (torch.arange(60, 75), torch.arange(15) % 3) if official_test else (None, None)
    return Source("made", torch.arange(60), y, ["a", "b", "c"], *test)


@pytest.mark.parametrize("official_test", [False, True])
def test_the_folds_partition_the_pool_and_leave_the_test_split_as_it_was(official_test):
    source = pool_source(official_test)
    unfolded = make_splits(source, seed=3, limit=40)
    pool_x = sorted(torch.cat([unfolded.train.x, unfolded.val.x]).tolist())
    per_class = np.bincount(torch.cat([unfolded.train.y, unfolded.val.y]).numpy())
    pool = np.full(len(pool_x), -1)  # the pool's samples by position, as the folds place them
    folds = [make_splits(source, seed=3, limit=40, folds=5, fold=fold) for fold in range(5)]
    for splits in folds:
        assert torch.equal(splits.test.x, unfolded.test.x)  # the test split: held out as it was
        assert (pool[splits.val_rows] == -1).all()  # no sample validates twice
        pool[splits.val_rows] = splits.val.x.numpy()
        counts = np.bincount(splits.val.y.numpy(), minlength=3)
        assert ((counts == per_class // 5) | (counts == -(-per_class // 5))).all()  # stratified
    assert sorted(pool.tolist()) == pool_x  # every sample of the pool validates once
    # val_rows index the pool as the same data set without folds or validation split orders
    # it (its training split): how error analysis finds an out-of-fold row's sample
    assert pool.tolist() == make_splits(source, seed=3, limit=40, val_fraction=0).train.x.tolist()
    for splits in folds:  # and trains in every other fold
        rest = np.setdiff1d(np.arange(len(pool)), splits.val_rows)
        assert sorted(splits.train.x.tolist()) == sorted(pool[rest].tolist())
    again = make_splits(source, seed=3, limit=40, folds=5, fold=2)
    assert again.val_rows.tolist() == folds[2].val_rows.tolist()
    other_seed = make_splits(source, seed=4, limit=40, folds=5, fold=2)
    assert other_seed.val_rows.tolist() != again.val_rows.tolist()  # seeded


def test_predictions_files_read_back_exactly_and_ten_thousand_rows_cost_little(tmp_path):
    rng = np.random.default_rng(0)
    probabilities = rng.random((10_000, 10)).astype(np.float32)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    names = [f"class {i}" for i in range(9)] + ['a "quoted", name']
    labels = rng.integers(0, 10, 10_000)
    path = tmp_path / "p.csv"
    start = time.perf_counter()
    write_predictions(
        path, np.arange(10_000), labels, probabilities.argmax(1), probabilities, names
    )
    assert time.perf_counter() - start < 0.5
    read = read_predictions(path)
    assert read.class_names == names
    assert np.array_equal(read.index, np.arange(10_000)) and np.array_equal(read.labels, labels)
    assert np.array_equal(read.probabilities.astype(np.float32), probabilities)  # round-trips
    assert np.array_equal(read.predicted, probabilities.argmax(1))


def test_a_tested_run_writes_its_test_predictions_and_under_kfold_its_out_of_fold_ones(
    blobs_sweep, tmp_path
):
    run_dir = blobs_sweep / "1"
    summary = read_summary(run_dir)
    tested = read_predictions(run_dir / TEST_PREDICTIONS)
    assert len(tested) == summary["split_sizes"]["test"]
    assert tested.index.tolist() == list(range(len(tested)))
    assert np.mean(tested.labels == tested.predicted) == pytest.approx(summary["test_acc"])
    assert np.allclose(tested.probabilities.sum(axis=1), 1, atol=1e-5)
    oof = read_predictions(run_dir / OOF)
    cfg = compose_config(*QUIET, *BLOBS, *kfold(FOLDS, 1))
    splits = instantiate(cfg.dataset)  # the splits the run was given
    assert oof.index.tolist() == splits.val_rows.tolist()
    assert oof.labels.tolist() == splits.val.y.tolist()
    execute(compose_config(*QUIET, *BLOBS), tmp_path / "unfolded")
    assert not (tmp_path / "unfolded" / OOF).exists()  # no k-fold, no oof.csv
    assert (tmp_path / "unfolded" / TEST_PREDICTIONS).exists()


def test_the_report_groups_the_folds_and_joins_their_predictions_once_each(
    blobs_sweep, tmp_path, capsys
):
    root = tmp_path / "sweep"
    shutil.copytree(blobs_sweep, root)
    report = report_sweep([root], root, plots=False)
    out = capsys.readouterr().out
    assert report is not None
    assert "Best 1 of 1 groups over seed, dataset.fold by best_val_acc:" in out
    assert "(3 of 3 runs)" in out
    joined = read_predictions(root / OOF)
    pool = sum(read_summary(root / "0")["split_sizes"][s] for s in ("train", "val"))
    assert joined.index.tolist() == list(range(pool))  # every training sample, once
    folds = [read_predictions(root / str(fold) / OOF) for fold in range(FOLDS)]
    for fold in folds:
        assert np.array_equal(joined.probabilities[fold.index], fold.probabilities)
        assert np.array_equal(joined.labels[fold.index], fold.labels)
    joined_lines = (root / OOF).read_text().splitlines()
    fold_lines = [(root / str(f) / OOF).read_text().splitlines() for f in range(FOLDS)]
    assert all(lines[0] == joined_lines[0] for lines in fold_lines)  # the same columns
    assert sorted(joined_lines[1:]) == sorted(line for lines in fold_lines for line in lines[1:])
    assert (
        f"Out-of-fold predictions of 3 folds: {root / OOF} ({pool} rows, each sample once)" in out
    )


def test_several_configs_of_folds_each_get_their_joined_file(blobs_sweep, tmp_path, capsys):
    root = tmp_path / "sweep"
    shutil.copytree(blobs_sweep, root / "a")
    run_folds(root / "b", [*BLOBS, "optimizer.lr=0.1"])
    report_sweep([root], root, plots=False)
    out = capsys.readouterr().out
    assert "Best 2 of 2 groups over seed, dataset.fold" in out
    assert sorted(path.name for path in root.glob("oof*.csv")) == [
        "oof-lr=0.001.csv",
        "oof-lr=0.1.csv",
    ]


@pytest.mark.parametrize("change", ["missing", "twice", "overlapping"])
def test_folds_missing_twice_or_overlapping_are_one_warning_and_no_file(
    blobs_sweep, tmp_path, caplog, change
):
    root = tmp_path / "sweep"
    shutil.copytree(blobs_sweep, root)
    (root / OOF).write_text("an earlier join")
    if change == "missing":
        shutil.rmtree(root / "2")
        expected = f"fold 2 of 3 has no completed job with {OOF}"
    elif change == "twice":
        shutil.copytree(root / "1", root / "7")
        expected = "fold 1 of 3 ran twice"
    else:  # folds cut from other data (a data file changed between the jobs)
        shutil.copy(root / "1" / OOF, root / "2" / OOF)
        expected = "the folds' 81 rows do not cover the samples 0..80 once each"
    with caplog.at_level(logging.WARNING, logger="multiclass"):
        assert report_sweep([root], root, plots=False) is not None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"warning: no {OOF}: {expected}")
    assert warnings[0].endswith(f"(the earlier {OOF} removed)")
    assert not (root / OOF).exists()


def test_a_report_in_a_runs_own_folder_leaves_its_oof_csv_alone(blobs_sweep, tmp_path, caplog):
    run_dir = tmp_path / "run"
    shutil.copytree(blobs_sweep / "1", run_dir)
    before = (run_dir / OOF).read_bytes()
    with caplog.at_level(logging.WARNING, logger="multiclass"):
        assert report_sweep([run_dir], run_dir, plots=False) is not None
    assert (run_dir / OOF).read_bytes() == before
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def dataset_options(tmp_path: Path) -> dict[str, list[str]]:
    """Each data set option that holds out a test split, as a tiny configuration."""
    write_idx_dataset(tmp_path / "data" / "MNIST" / "raw", num_train=60, num_test=20)
    animals(60, seed=0).to_csv(tmp_path / "animals.csv", index=False)
    pictures = draw_folder(tmp_path / "colours", per_class=6)
    return {
        "digits": ["dataset=digits", "dataset.limit=120"],
        "blobs": ["dataset=blobs"],
        "moons": ["dataset=moons"],
        "mnist": ["dataset=mnist", f"dataset.root={tmp_path / 'data'}", "dataset.download=false"],
        "table": [
            "dataset=table",
            f"dataset.path={tmp_path / 'animals.csv'}",
            "dataset.target=label",
        ],
        "image_folder": [
            "dataset=image_folder",
            f"dataset.root={pictures}",
            "dataset.image_size=8",
        ],
    }


@pytest.mark.parametrize("option", ["digits", "blobs", "moons", "mnist", "table", "image_folder"])
def test_every_data_set_option_joins_its_folds_into_every_sample_once(tmp_path, option, capsys):
    overrides = [*dataset_options(tmp_path)[option], "trainer.epochs=1", "callbacks=minimal"]
    run_folds(tmp_path / "sweep", overrides, folds=2)
    report_sweep([tmp_path / "sweep"], tmp_path / "sweep", plots=False)
    joined = read_predictions(tmp_path / "sweep" / OOF)
    sizes = read_summary(tmp_path / "sweep" / "0")["split_sizes"]
    assert joined.index.tolist() == list(range(sizes["train"] + sizes["val"]))


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (kfold(1, 0), "dataset.folds must be an integer >= 2, or null, got 1"),
        (kfold(5, 5), "dataset.fold=5: the folds are numbered 0..4 (dataset.folds=5)"),
        (
            ["dataset.folds=5"],
            "dataset.folds needs dataset.fold too: e.g. dataset.folds=5 dataset.fold=0",
        ),
    ],
)
def test_bad_folds_are_one_line_and_write_nothing(tmp_path, overrides, line):
    outcome = execute(compose_config(*QUIET, *BLOBS, *overrides), tmp_path / "run")
    assert (outcome.status, outcome.summary["error"]) == ("failed", line)
    assert not (tmp_path / "run").exists()


def test_folds_of_a_data_set_tested_on_its_training_samples_write_nothing(tmp_path):
    outcome = execute(compose_config(*QUIET, "dataset=xor", *kfold(2, 0)), tmp_path / "run")
    assert outcome.summary["error"] == (
        "dataset.folds: this data set evaluates on its training samples"
        " (dataset.eval_on_train=true), which leaves nothing to fold"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (
            ["dataset=blobs", *kfold(25, 0)],
            "dataset.folds=25: class(es) '0', '1', '2', '3' have fewer than 25 training samples"
            " (20 the fewest); lower dataset.folds",
        ),
    ],
)
def test_folds_the_data_cannot_give_are_one_line_and_the_run_records_it(tmp_path, overrides, line):
    """Found once the data is built, after the run's config.yaml and summary.json are written:
    the summary says the run failed and why, as a sweep's report counts it."""
    outcome = execute(compose_config(*QUIET, *overrides), tmp_path / "run")
    assert (outcome.status, outcome.summary["error"]) == ("failed", line)
    assert read_summary(tmp_path / "run")["error"] == line


def test_a_class_too_small_to_fold_is_named():
    y = torch.tensor([0] * 10 + [1] * 10 + [2] * 2)
    source = Source("made", torch.arange(22), y, ["cat", "dog", "emu"], torch.arange(3), y[:3])
    with pytest.raises(UserError) as refused:
        make_splits(source, folds=3, fold=0)
    assert str(refused.value) == (
        "dataset.folds=3: class(es) 'emu' have fewer than 3 training samples (2 the fewest);"
        " lower dataset.folds"
    )


def test_a_kfold_sweep_from_the_command_line_reports_its_folds_and_joins_them(tmp_path):
    sweep = tmp_path / "sweep"
    done = run_cli(
        "-m",
        *QUIET,
        *BLOBS,
        "dataset.folds=3",
        "dataset.fold=range(3)",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "groups over seed, dataset.fold" in done.stdout
    assert (
        f"Out-of-fold predictions of 3 folds: {sweep / OOF} (80 rows, each sample once)"
        in done.stdout
    )
    assert len(read_predictions(sweep / OOF)) == 80
