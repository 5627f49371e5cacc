"""Per-class metrics and `trainer.monitor`: per_class.csv and the macro F1 and balanced accuracy
(equal to scikit-learn's, on the run's own predictions and on hard cases), in metrics.csv,
summary.json, the sweep report and the trackers; and the monitored figure choosing best.pt,
early stopping, a search's direction and what a resume goes on from."""

import csv
import warnings

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from sklearn.metrics import (
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from multiclass.class_metrics import balanced_scores, confusion_counts, per_class
from multiclass.comparing.sweep_jobs import build_report
from multiclass.config import MONITORS, compose_config
from multiclass.engine import EpochMetrics, Progress
from multiclass.errors import UserError
from multiclass.lifecycle.run import execute
from multiclass.records.artifacts import weights_sha256, write_atomic
from multiclass.records.checkpoint import load_classifier
from multiclass.tracking import FINAL_METRICS, epoch_scalars
from multiclass.validation import RULES, check_config
from tests.conftest import QUIET, read_summary

BLOBS = ["dataset=blobs", "trainer.epochs=2"]
# Digits at a high lr: val_loss and val_acc rise and fall; the lowest val_loss is epoch 5's,
# the highest val_acc epoch 4's.
BUMPY = ["dataset.limit=200", "trainer.batch_size=16", "optimizer.lr=0.05", "trainer.epochs=6"]
TIMED = ("train_seconds", "epoch_seconds")


def read_rows(path):
    with open(path) as file:
        return list(csv.DictReader(file))


def test_per_class_csv_and_the_summary_are_scikit_learns_on_the_test_predictions(train, tmp_path):
    run_dir = tmp_path / "run"
    summary = train(*BLOBS, run_dir=run_dir).summary
    model, head, _ = load_classifier(run_dir / "model.pt")
    test = instantiate(compose_config(*BLOBS).dataset).test
    with torch.no_grad():
        predicted = head.predict(model(test.x)).numpy()
    labels = test.y.numpy()
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=range(4), zero_division=0
    )
    rows = read_rows(run_dir / "per_class.csv")
    assert list(rows[0]) == ["class", "precision", "recall", "f1", "support"]
    assert [row["class"] for row in rows] == ["0", "1", "2", "3"]
    assert [float(row["precision"]) for row in rows] == pytest.approx(precision)
    assert [float(row["recall"]) for row in rows] == pytest.approx(recall)
    assert [float(row["f1"]) for row in rows] == pytest.approx(f1)
    assert [int(row["support"]) for row in rows] == support.tolist()
    right = sum(float(row["recall"]) * int(row["support"]) for row in rows)
    assert right / len(labels) == pytest.approx(summary["test_acc"])
    macro = f1_score(labels, predicted, labels=range(4), average="macro", zero_division=0)
    assert summary["test_macro_f1"] == pytest.approx(macro)
    assert summary["test_balanced_acc"] == pytest.approx(balanced_accuracy_score(labels, predicted))
    for key in ("test_macro_f1", "test_balanced_acc", "best_score"):
        assert 0 <= summary[key] <= 1, key
    assert summary["monitor"] == "val_acc" and summary["best_score"] == summary["best_val_acc"]


@pytest.mark.parametrize(
    ("labels", "predictions"),
    [
        ([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0]),  # every class present and predicted
        ([0, 0, 1, 1, 1, 0], [0, 2, 1, 1, 2, 0]),  # class 2 predicted, never present
        ([0, 2, 2, 1, 3, 3], [0, 0, 0, 1, 1, 1]),  # classes 2 and 3 present, never predicted
        ([3, 3, 3, 3], [3, 3, 3, 3]),  # one class of five only
        ([1, 0, 4, 2], [0, 1, 2, 4]),  # every prediction wrong
    ],
)
def test_the_metrics_equal_scikit_learns_with_absent_and_unpredicted_classes(labels, predictions):
    labels, predictions, k = np.array(labels), np.array(predictions), 5
    classes = list(range(k))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=classes, zero_division=0
    )
    rows = per_class(labels, predictions, [str(c) for c in classes])
    assert [r.precision for r in rows] == pytest.approx(precision)
    assert [r.recall for r in rows] == pytest.approx(recall)
    assert [r.f1 for r in rows] == pytest.approx(f1)
    assert [r.support for r in rows] == support.tolist()
    macro_f1, balanced = balanced_scores(labels, predictions, k)
    assert macro_f1 == pytest.approx(
        f1_score(labels, predictions, labels=classes, average="macro", zero_division=0)
    )
    with warnings.catch_warnings():  # sklearn warns of a class predicted but absent
        warnings.simplefilter("ignore", UserWarning)
        assert balanced == pytest.approx(balanced_accuracy_score(labels, predictions))
    counts = confusion_counts(labels, predictions, k)
    assert counts.tolist() == confusion_matrix(labels, predictions, labels=classes).tolist()


def test_metrics_csv_has_the_val_figures_each_epoch_and_empty_ones_without_val(train, tmp_path):
    train(*BLOBS, run_dir=tmp_path / "val")
    rows = read_rows(tmp_path / "val" / "metrics.csv")
    assert list(rows[0])[3:7] == ["val_loss", "val_acc", "val_macro_f1", "val_balanced_acc"]
    assert all(0 <= float(row[key]) <= 1 for row in rows for key in ("val_macro_f1",))
    outcome = train(*BLOBS, "dataset.val_fraction=0", run_dir=tmp_path / "none")
    rows = read_rows(tmp_path / "none" / "metrics.csv")
    assert {row["val_macro_f1"] + row["val_balanced_acc"] for row in rows} == {""}
    assert outcome.summary["best_score"] is None and 0 <= outcome.summary["test_macro_f1"] <= 1


def test_monitor_val_loss_keeps_and_tests_the_epoch_with_the_lowest_val_loss(train, tmp_path):
    run_dir = tmp_path / "run"
    monitored = ["trainer.monitor=val_loss", "trainer.test_on=best"]
    summary = train(*BUMPY, *monitored, run_dir=run_dir).summary
    rows = read_rows(run_dir / "metrics.csv")
    lowest = min(rows, key=lambda row: (float(row["val_loss"]), int(row["epoch"])))
    assert summary["monitor"] == "val_loss" and summary["best_score"] == float(lowest["val_loss"])
    assert summary["best_epoch"] == summary["tested_epoch"] == int(lowest["epoch"]) < 6
    assert summary["best_val_acc"] == float(lowest["val_acc"])
    highest = max(rows, key=lambda row: (float(row["val_acc"]), -int(row["epoch"])))
    assert int(highest["epoch"]) != summary["best_epoch"]  # val_acc would have kept another
    # The same run stopped after its best epoch ends with that epoch's weights: a record of
    # them made apart from best.pt, whose digest the full run's tested weights share anyway.
    epochs = f"trainer.epochs={summary['best_epoch']}"
    stopped = train(*BUMPY, epochs, run_dir=tmp_path / "stopped").summary
    best, _, _ = load_classifier(run_dir / "best.pt")
    assert weights_sha256(best) == stopped["weights_sha256"] == summary["weights_sha256"]
    best.load_state_dict(torch.load(run_dir / "last.pt", weights_only=True)["model"])
    assert weights_sha256(best) != stopped["weights_sha256"]  # the last epoch's weights differ


def test_progress_minimises_val_loss_and_maximises_the_rest_with_min_delta():
    def row(epoch, loss, f1):
        return EpochMetrics(epoch, 0.0, 0.0, loss, 0.5, f1, 0.5, 0.1, 0.0, 0.0)

    losses, f1s = [0.9, 0.7, 0.69, 0.5, 0.6], [0.3, 0.5, 0.52, 0.6, 0.4]
    by_loss = Progress(torch.Generator(), monitor="val_loss")
    by_f1 = Progress(torch.Generator(), monitor="val_macro_f1")
    kept = [
        (by_loss.record(row(e, loss, f1), 0.05), by_f1.record(row(e, loss, f1), 0.05))
        for e, (loss, f1) in enumerate(zip(losses, f1s, strict=True), 1)
    ]
    assert kept == [(True, True), (True, True), (False, False), (True, True), (False, False)]
    assert (by_loss.best_epoch, by_loss.best_score, by_f1.best_score) == (4, 0.5, 0.6)
    assert by_loss.patience_spent(1) and not by_loss.patience_spent(2)


def test_a_bad_monitor_is_one_line_naming_the_choices():
    assert set(RULES["trainer.monitor"].choices) == set(MONITORS)
    with pytest.raises(UserError) as refused:
        check_config(compose_config("trainer.monitor=val_f1"))
    assert str(refused.value) == (
        "trainer.monitor must be one of val_acc, val_loss, val_macro_f1, val_balanced_acc,"
        " got 'val_f1'"
    )


def resume(run_dir, *overrides):
    cfg = compose_config(*QUIET, f"resume={run_dir}", *overrides)
    return execute(cfg, run_dir, [f"resume={run_dir}", *overrides])


def without_times(run_dir):
    rows = read_rows(run_dir / "metrics.csv")
    return [{k: v for k, v in row.items() if k not in TIMED} for row in rows]


def test_a_resume_goes_on_with_the_runs_monitor_and_may_not_change_it(train, tmp_path):
    monitored = [*BUMPY, "trainer.monitor=val_macro_f1"]
    straight = train(*monitored, run_dir=tmp_path / "straight").summary
    short = tmp_path / "short"
    train(*monitored, "trainer.epochs=3", run_dir=short)
    refused = resume(short, "trainer.monitor=val_acc")
    assert "trainer.monitor was val_macro_f1, not val_acc" in refused.summary["error"]
    resumed = resume(short, "trainer.epochs=6").summary
    for key in ("weights_sha256", "monitor", "best_score", "best_epoch", "test_macro_f1"):
        assert resumed[key] == straight[key], key
    assert without_times(short) == without_times(tmp_path / "straight")


def test_a_run_from_before_the_monitor_resumes_as_one_that_monitors_val_acc(train, tmp_path):
    """Its last.pt has no monitor (a resume reads the best epoch's figures from metrics.csv), its
    config.yaml no trainer.monitor and its metrics.csv no val_macro_f1: it goes on to the
    weights of a run trained straight through."""
    straight = train(*BLOBS[:1], "trainer.epochs=4", run_dir=tmp_path / "straight").summary
    old = tmp_path / "old"
    train(*BLOBS, run_dir=old)
    last = torch.load(old / "last.pt", weights_only=True)
    del last["monitor"]
    torch.save(last, old / "last.pt")
    config = (old / "config.yaml").read_text()
    assert "  monitor: val_acc\n" in config
    write_atomic(old / "config.yaml", config.replace("  monitor: val_acc\n", ""))
    rows = read_rows(old / "metrics.csv")
    kept = [k for k in rows[0] if k not in ("val_macro_f1", "val_balanced_acc")]
    lines = [",".join(kept)] + [",".join(row[k] for k in kept) for row in rows]
    write_atomic(old / "metrics.csv", "\n".join(lines) + "\n")

    resumed = resume(old, "trainer.epochs=4").summary
    assert resumed["status"] == "completed"
    assert resumed["weights_sha256"] == straight["weights_sha256"]
    assert resumed["best_epoch"] == straight["best_epoch"]
    assert resumed["best_score"] == straight["best_score"]
    rows = read_rows(old / "metrics.csv")
    assert [bool(row["val_macro_f1"]) for row in rows] == [False, False, True, True]


def test_the_sweep_report_ranks_by_the_monitor_and_shows_the_new_figures(train, tmp_path):
    for lr in ("0.05", "0.001"):
        train(*BLOBS, "trainer.monitor=val_loss", f"optimizer.lr={lr}", run_dir=tmp_path / lr)
    report = build_report([tmp_path])
    assert (report.objective, report.objective_name) == ("best_score", "best_score (val_loss)")
    scores = [read_summary(record.path)["best_score"] for record in report.ranked()]
    assert report.minimize and scores == sorted(scores)
    row = report.row(report.records[0])
    assert {"test_macro_f1", "test_balanced_acc", "monitor", "best_score"} <= set(row)
    train(*BLOBS, run_dir=tmp_path / "default")
    with pytest.raises(UserError, match="these monitor val_acc, val_loss"):
        build_report([tmp_path], "best_score")
    assert build_report([tmp_path]).objective == "best_val_acc"


def test_the_trackers_get_the_new_figures():
    row = EpochMetrics(1, 0.5, 0.8, 0.4, 0.9, 0.85, 0.88, 0.1, 0.0, 0.0)
    assert epoch_scalars(row)["val_macro_f1"] == 0.85
    assert epoch_scalars(row)["val_balanced_acc"] == 0.88
    assert {"test_macro_f1", "test_balanced_acc", "best_score"} <= set(FINAL_METRICS)


def test_a_search_must_go_the_monitors_way():
    pytest.importorskip("optuna")
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from multiclass.sweeps.search import SearchError, check_direction, parse_search_space

    space = parse_search_space(["optimizer.lr=interval(0.001,0.1)"], OverridesParser.create())
    by_loss = compose_config("trainer.monitor=val_loss")
    check_direction("minimize", by_loss, space)
    check_direction("maximize", compose_config(), space)
    with pytest.raises(SearchError, match=r"set hydra\.sweeper\.direction=minimize"):
        check_direction("maximize", by_loss, space)
