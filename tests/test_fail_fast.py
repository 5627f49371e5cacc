"""sweep.fail_fast on the local launchers (multiclass/sweeps/fail_fast.py): the first job that
fails on its config or data writes the sweep's record, no job starts after it, a running one
ends `interrupted` at its next safe point, and the report says which job failed and why;
without it, a failed job says so in one line as it ends and the sweep goes on. The sweep.*
values and what the launcher can do, refused as the sweep starts (validation.check_sweep).
Slurm's side (cancelling the pending jobs) is tests/test_slurm.py's."""

import csv
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from multiclass.commands.train import main, train
from multiclass.config import CONFIG_DIR
from multiclass.errors import UserError
from multiclass.sweeps.fail_fast import RECORD, RecordWatch, record_failure, stop_record
from multiclass.validation import check_sweep
from tests.conftest import CPU, QUIET, read_summary, run_cli

# 180 training digits: batch 4096 with drop_last leaves no batch, so that job fails as it
# trains (as in tests/test_slurm.py); batch 64 trains.
SMALL = ["dataset.limit=200", "trainer.epochs=1", "callbacks=minimal", *QUIET]
FAILS_SECOND = ["trainer.batch_size=4096", "trainer.drop_last=false,true,false"]


def sweep_in_process(sweep_dir: Path, *overrides: str) -> int:
    """`multiclass-train -m ...` with the basic launcher, in this process: its exit status."""
    argv = ["multiclass-train", "-m", *SMALL, *overrides, f"hydra.sweep.dir={sweep_dir}"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", argv)
        try:
            train()
        except SystemExit as ended:
            return ended.code
    return 0


def statuses(sweep_dir: Path) -> dict[str, tuple[str, str]]:
    """sweep.csv: job -> (status, error)."""
    with (sweep_dir / "sweep.csv").open() as file:
        return {row["job"]: (row["status"], row["error"]) for row in csv.DictReader(file)}


NO_BATCH = "trainer.batch_size=4096 with drop_last leaves no batch of the 180 training samples"
STOPPED = "job 1 failed (sweep.fail_fast)"


def test_the_first_failure_is_recorded_once_and_whole(tmp_path):
    assert stop_record(tmp_path) is None
    assert record_failure(tmp_path, "3", "bad data")
    assert not record_failure(tmp_path, "5", "worse")
    assert stop_record(tmp_path) == {"job": "3", "error": "bad data"}
    assert [path.name for path in tmp_path.iterdir()] == [RECORD]  # no temporary left


def test_without_hard_links_the_record_is_still_written_once(tmp_path, monkeypatch):
    def no_links(source, target):
        raise PermissionError(f"{target}: this file system has no hard links")

    monkeypatch.setattr("os.link", no_links)
    assert record_failure(tmp_path, "3", "bad data")
    assert not record_failure(tmp_path, "5", "worse")
    assert stop_record(tmp_path) == {"job": "3", "error": "bad data"}
    assert [path.name for path in tmp_path.iterdir()] == [RECORD]


def test_a_running_job_looks_for_the_record_at_most_once_a_second(tmp_path):
    watch = RecordWatch(tmp_path, every_s=3600)
    assert watch() is None  # looked: nothing yet
    record_failure(tmp_path, "1", "bad")
    assert watch() is None  # not looked again within the hour
    assert RecordWatch(tmp_path, every_s=0)() == STOPPED


def test_with_the_basic_launcher_no_job_starts_after_the_one_that_failed(tmp_path, capsys):
    """An earlier sweep's record in the same folder stops nothing: job 0 trains."""
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    record_failure(sweep_dir, "7", "an earlier sweep's failure")
    assert sweep_in_process(sweep_dir, "sweep.fail_fast=true", *FAILS_SECOND) == 1
    err = capsys.readouterr().err
    assert stop_record(sweep_dir) == {"job": "1", "error": NO_BATCH}
    assert statuses(sweep_dir) == {
        "0": ("completed", ""),
        "1": ("failed", NO_BATCH),
        "2": ("not started", STOPPED),
    }
    # Job 2 has Hydra's .hydra/ and its one line: no config.yaml, no summary, no weights.
    assert sorted(path.name for path in (sweep_dir / "2").iterdir()) == [".hydra", "train.log"]
    assert (sweep_dir / "2" / "train.log").read_text().endswith(f"not started: {STOPPED}\n")
    assert f"job 1 failed: {NO_BATCH}; sweep.fail_fast stops the sweep" in err
    assert err.rstrip().endswith(
        f"error: sweep.fail_fast stopped the sweep: job 1 failed: {NO_BATCH}; 1 not started (2)"
    )
    assert "sweep.fail_fast" in (sweep_dir / "sweep.md").read_text()


def test_without_fail_fast_a_failed_job_says_so_as_it_ends_and_the_sweep_goes_on(tmp_path, capsys):
    sweep_dir = tmp_path / "sweep"
    assert sweep_in_process(sweep_dir, *FAILS_SECOND) == 1
    err = capsys.readouterr().err
    said = err.index(f"job 1 failed: {NO_BATCH}; the sweep goes on")
    assert said < err.index("#2 : ") < err.index("error: 1 job(s) did not complete")
    ended = [status for status, _ in statuses(sweep_dir).values()]
    assert ended == ["completed", "failed", "completed"]
    assert not (sweep_dir / RECORD).exists()


NO_BEST = "trainer.test_on=best needs best.pt: keep callbacks.checkpoints"


def test_with_joblib_a_running_job_is_interrupted_and_no_new_job_trains(
    tmp_path, capfd, monkeypatch
):
    """Two workers: job 1 trains 200 epochs (seconds), then fails as it tests (no best.pt);
    job 0, started beside it, would train 2000 (a minute more): it stops at its next safe
    point, and jobs 2 and 3, which start only as a worker frees, do not train. Deterministic
    but for a worker that starts seconds after the other: a job starts only once a worker is
    free, and job 1 fails only after its epochs. The command (`python -m multiclass -m ...`,
    in run_cli's environment) runs in this process, its joblib workers in their own; capfd
    holds what both wrote on stderr."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    jobs = ["model.depth=1,2", "trainer.epochs=2000,200"]
    launcher = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "sweep.fail_fast=true"]
    fails = ["trainer.test_on=best", "callbacks.checkpoints=null", "trainer.log_every=1000"]
    config = ["dataset.limit=200", "trainer.batch_size=8", "callbacks=minimal", *fails, *QUIET]
    args = ["-m", *launcher, *jobs, *config, "hydra.sweep.dir=sweep", CPU]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONWARNINGS", "ignore")  # as run_cli's, for the workers
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setattr(sys, "argv", ["multiclass-train", *args])
    with pytest.raises(SystemExit) as ended:
        main()
    done = SimpleNamespace(returncode=ended.value.code, stderr=capfd.readouterr().err)
    sweep_dir = tmp_path / "sweep"
    assert done.returncode == 1, done.stderr[-3000:]
    assert statuses(sweep_dir) == {
        "0": ("interrupted", f"interrupted as {STOPPED}"),
        "1": ("failed", NO_BEST),
        "2": ("not started", STOPPED),
        "3": ("not started", STOPPED),
    }
    assert 0 < read_summary(sweep_dir / "0")["epochs"] < 2000  # where the record stopped it
    assert done.stderr.rstrip().endswith(
        f"error: sweep.fail_fast stopped the sweep: job 1 failed: {NO_BEST};"
        " 2 not started (2, 3), 1 interrupted (0)"
    )
    assert "Traceback" not in done.stderr


def sweep_config(*overrides: str):
    """The config a sweep's callbacks see as it starts: Hydra's part too, with the command
    line's overrides as typed (the sweeps among them)."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        config = compose("train", overrides=[o for o in overrides if "," not in o],
                         return_hydra_config=True)  # fmt: skip
    with open_dict(config):
        config.hydra.overrides.task = list(overrides)
    return config


STOP = "sweep.fail_fast=true needs a launcher that can stop a sweep's jobs: hydra/launcher="
RETRY = "needs a launcher that starts a job again: hydra/launcher="


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        (["sweep.retries=-1"], "sweep.retries must be an integer >= 0, got -1"),
        (["sweep.retries=0,-2"], "sweep.retries must be an integer >= 0, got -2"),
        (["sweep.fail_fast=true", "hydra/launcher=submitit_local"], f"{STOP}submitit_local"),
        (["sweep.fail_fast=false,true", "hydra/launcher=submitit_slurm"], f"{STOP}submitit_slurm"),
        (["sweep.retries=1"], f"sweep.retries=1 {RETRY}basic does not"),
        (["sweep.retries=0,2", "hydra/launcher=joblib"], f"sweep.retries=2 {RETRY}joblib does not"),
    ],
)
def test_bad_sweep_values_and_launchers_that_cannot_are_refused(overrides, error):
    with pytest.raises(UserError, match=f"^{re.escape(error)}"):
        check_sweep(sweep_config(*overrides))


@pytest.mark.parametrize("launcher", ["basic", "joblib", "ray_local", "slurm", "slurm_ddp"])
def test_the_launchers_that_stop_their_jobs_take_fail_fast(launcher):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    check_sweep(sweep_config("sweep.fail_fast=true", f"hydra/launcher={launcher}"))
    if launcher.startswith("slurm"):
        check_sweep(sweep_config("sweep.retries=2", f"hydra/launcher={launcher}"))


def test_a_bad_sweep_value_is_one_line_before_anything_is_written(tmp_path):
    done = run_cli("-m", "sweep.retries=-1", "model.depth=1,2", "hydra.sweep.dir=s", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (
        1,
        "error: sweep.retries must be an integer >= 0, got -1\n",
    )
    assert list(tmp_path.iterdir()) == []


def test_a_search_asks_for_no_more_trials_once_a_trial_failed_with_fail_fast(tmp_path):
    """Its loop (sweeps/search.py) stops at the record: trial 0 failed, trial 1 is not asked."""
    pytest.importorskip("optuna")
    from hydra.core.utils import JobReturn, JobStatus
    from omegaconf import OmegaConf

    from multiclass.sweeps.search import OptunaSearch

    launched = []

    class FailingLauncher:
        def launch(self, batch, initial_job_idx):
            launched.append(initial_job_idx)
            record_failure(tmp_path, str(initial_job_idx), "bad data")  # as the job would
            return [JobReturn(status=JobStatus.COMPLETED, _return_value=None) for _ in batch]

    search = OptunaSearch("maximize", "s", None, n_trials=4, n_jobs=1, sampler=None, params=None)
    hydra = {"sweep": {"dir": str(tmp_path)}, "hydra_logging": None, "verbose": False}
    search.config = OmegaConf.create({"hydra": hydra})
    search.hydra_context, search.launcher = SimpleNamespace(config_loader=None), FailingLauncher()
    search.validate_batch_is_legal = lambda batch: None
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("multiclass.sweeps.search.configure_log", lambda *args: None)
        search.sweep(["x=interval(0, 1)"])
    assert launched == [0]
