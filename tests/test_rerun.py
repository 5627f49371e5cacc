"""multiclass-rerun: the same config into a new directory, and an honest verdict."""

import json

import pytest

from multiclass.commands.rerun import main
from multiclass.lifecycle.compare import compare_runs

TINY = ["dataset.limit=300", "trainer.epochs=2"]


def rerun(*args):
    with pytest.raises(SystemExit) as ended:
        main([str(arg) for arg in args])
    return ended.value.code


def test_a_rerun_reproduces_weights_and_metrics_and_records_its_provenance(train, tmp_path, capsys):
    original = tmp_path / "original"
    train(*TINY, "model.dropout=0.3", run_dir=original)
    assert rerun(original, "--out", tmp_path / "again") == 0
    assert capsys.readouterr().out.strip() == "reproduced: identical weights and metrics"
    summary = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert summary["status"] == "completed" and isinstance(summary["git_dirty"], bool | None)
    assert summary["command"]


def test_a_changed_value_is_reported_with_the_first_epoch_and_metric_that_differ(
    train, tmp_path, capsys
):
    original = tmp_path / "original"
    train(*TINY, run_dir=original)
    assert rerun(original, "optimizer.lr=0.01", "--out", tmp_path / "changed") == 1
    verdict = capsys.readouterr().out.strip()
    assert verdict.startswith("not reproduced: epoch 1 train_loss: ")
    assert verdict.endswith("; different weights")
    comparison = compare_runs(original, tmp_path / "changed")
    assert not comparison.reproduced and comparison.provenance == []


def test_provenance_differences_are_said_without_failing(train, tmp_path):
    original = tmp_path / "original"
    train(*TINY, run_dir=original)
    summary_path = original / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary.update(git_commit="0" * 40, num_threads=64)
    summary_path.write_text(json.dumps(summary))
    assert rerun(original, "--out", tmp_path / "again") == 0
    notes = compare_runs(original, tmp_path / "again").provenance
    assert [note.split(":")[0] for note in notes] == ["git_commit", "num_threads"]


@pytest.mark.parametrize(
    ("target", "override", "message"),
    [
        ("missing", None, "is not a run directory"),
        ("run", "model=cnn", "a rerun changes values of the run's config"),
        ("run", "trainer.epoch=3", "a rerun changes values of the run's config"),
    ],
)
def test_bad_reruns_are_one_line_and_write_nothing(
    train, tmp_path, capsys, target, override, message
):
    train(*TINY, run_dir=tmp_path / "run")
    capsys.readouterr()
    args = [tmp_path / target, *([override] if override else []), "--out", tmp_path / "new"]
    assert rerun(*args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not (tmp_path / "new").exists()
