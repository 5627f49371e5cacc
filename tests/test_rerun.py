"""multiclass-rerun: the same config into a new directory, and an honest verdict."""

import json

import pytest
from omegaconf import OmegaConf

from multiclass.commands.rerun import main
from multiclass.config import compose_config
from multiclass.records.compare import NO_METRICS, compare_runs
from tests.conftest import read_summary

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


def edit_summary(run_dir, **changes):
    path = run_dir / "summary.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_provenance_differences_are_said_without_failing(train, tmp_path):
    original = tmp_path / "original"
    train(*TINY, run_dir=original)
    edit_summary(original, git_commit="0" * 40, num_threads=64)
    # device.num_threads on the command line wins over the count the run recorded
    assert rerun(original, "device.num_threads=1", "--out", tmp_path / "again") == 0
    notes = compare_runs(original, tmp_path / "again").provenance
    assert [note.split(":")[0] for note in notes] == ["git_commit", "num_threads"]


def test_a_rerun_trains_on_the_thread_count_the_run_recorded(train, tmp_path):
    # A Slurm job of cpus_per_task=1 trained on 1 thread where this machine's cores would
    # choose more (device.num_threads=null): its summary's count is the one to rerun with.
    original = tmp_path / "original"
    train(*TINY, run_dir=original)
    assert read_summary(original)["num_threads"] == 1  # a small step: one thread here
    edit_summary(original, num_threads=2)
    rerun(original, "--out", tmp_path / "again")
    assert read_summary(tmp_path / "again")["num_threads"] == 2
    assert "num_threads: 2" in (tmp_path / "again" / "config.yaml").read_text()
    assert compare_runs(original, tmp_path / "again").provenance == []


@pytest.mark.parametrize("metrics", ["kept", "null"])
def test_weights_that_differ_are_not_reproduced_even_where_the_metrics_agree(
    train, tmp_path, capsys, metrics
):
    # The metrics agree epoch by epoch; the original's digest says other weights (as a
    # nondeterministic step would leave them): the verdict rests on the weights too.
    original = tmp_path / "original"
    train(*TINY, *(["callbacks.metrics=null"] if metrics == "null" else []), run_dir=original)
    edit_summary(original, weights_sha256="0" * 64)
    assert rerun(original, "--out", tmp_path / "again") == 1
    verdict = capsys.readouterr().out.strip()
    if metrics == "kept":
        assert verdict == "not reproduced: identical metrics; different weights"
    else:
        assert verdict == f"not reproduced: different weights; {NO_METRICS}"


def test_a_rerun_without_metrics_says_it_compared_the_weights_alone(train, tmp_path, capsys):
    original = tmp_path / "original"
    train(*TINY, "callbacks.metrics=null", run_dir=original)
    assert rerun(original, "--out", tmp_path / "again") == 0
    assert capsys.readouterr().out.strip() == f"reproduced: identical weights; {NO_METRICS}"
    assert not (tmp_path / "again" / "metrics.csv").exists()


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


@pytest.mark.parametrize(
    "saved", ["multiclass.runtime.prepare", "multiclass.lifecycle.runtime.prepare"]
)
def test_a_config_saved_before_the_device_runtime_moved_builds_its_device(tmp_path, saved):
    from hydra.utils import instantiate

    from multiclass.records.artifacts import read_config

    cfg = compose_config("device=cpu")
    cfg.device._target_ = saved
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    device = read_config(tmp_path / "config.yaml").device
    assert device._target_ == "multiclass.device.runtime.prepare"
    assert str(instantiate(device).device) == "cpu"
