"""A Slurm job's time limit or preemption, without Slurm: SIGUSR2, where a handler awaits it
(submitit's, which requeues the job), stops the run at a safe point like SIGTERM, and that
handler runs once the run's record is whole; each start of a run counted in its summary
(tries, requeues). The real thing, on slurm-local: tests/test_slurm.py."""

import json
import logging
import signal
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from multiclass.comparing.sweep_jobs import build_report
from multiclass.lifecycle.stopping import StopSignals, watched
from multiclass.records.artifacts import read_json
from multiclass.records.tries import started
from multiclass.sweeps.fail_fast import record_failure
from multiclass.sweeps.slurm_jobs import SweepWatch, resumed
from tests.test_launchers import fake_commands, finished
from tests.test_resume import SignalAtEpoch, resume


@pytest.fixture
def requeue_handler() -> Iterator[list[str]]:
    """A SIGUSR2 handler installed before the run, as submitit's is: each call's summary.json
    status, as it was when the handler ran."""
    calls: list[str] = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append("called"))
    try:
        yield calls
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_sigusr2_is_left_alone_without_a_handler_awaiting_it() -> None:
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL
    assert signal.SIGUSR2 not in watched()


def test_sigusr2_stops_the_run_and_the_handler_it_replaced_runs_once_the_record_is_whole(
    train, tmp_path, monkeypatch
) -> None:
    run_dir = tmp_path / "run"
    seen: list[object] = []
    monkeypatch.setenv("SLURM_JOB_ID", "41")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    at_2 = [f"+callbacks.signal._target_={SignalAtEpoch.__module__}.SignalAtEpoch"]
    at_2 += ["+callbacks.signal.epoch=2", f"+callbacks.signal.signum={int(signal.SIGUSR2)}"]
    previous = signal.signal(
        signal.SIGUSR2, lambda signum, frame: seen.append(read_json(run_dir / "summary.json"))
    )
    try:
        stopped = train("dataset=blobs", "trainer.epochs=4", *at_2, run_dir=run_dir)
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert stopped.status == "interrupted" and stopped.summary["epochs"] == 2
    assert stopped.summary["error"] == (
        "interrupted by SIGUSR2 (Slurm's time limit is near, or the job was preempted)"
    )
    (summary,) = seen  # once, after the run wrote its record
    assert (summary["status"], summary["tries"], summary["requeues"]) == ("interrupted", 1, 0)
    # The requeued job: the same Slurm job, restarted once. It resumes and completes.
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    resumed = resume(run_dir).summary
    assert (resumed["status"], resumed["resumed_at"]) == ("completed", [2])
    assert (resumed["tries"], resumed["requeues"]) == (2, 1)
    assert resumed["slurm_job"] == {"id": "41", "restarts": 1}
    report = build_report([tmp_path])
    assert report.figures[-2:] == ("tries", "requeues")


def test_a_new_slurm_job_is_a_try_and_no_requeue() -> None:
    first = started(None)
    assert (first["tries"], first["requeues"]) == (1, 0)
    job = {"tries": 2, "requeues": 1, "slurm_job": {"id": "7_0", "restarts": 1}}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLURM_JOB_ID", "9")  # a retry: another job, not restarted
        patch.delenv("SLURM_RESTART_COUNT", raising=False)
        assert started(job) == {"tries": 3, "requeues": 1, "slurm_job": {"id": "9", "restarts": 0}}
        patch.setenv("SLURM_JOB_ID", "7_0")  # the same job, restarted again
        patch.setenv("SLURM_RESTART_COUNT", "2")
        assert started(job)["requeues"] == 2
        patch.delenv("SLURM_JOB_ID")  # off Slurm: multiclass-resume on this machine
        assert started({})["tries"] == 2 and started({})["slurm_job"] is None


def test_a_run_started_once_shows_no_tries_column(train, tmp_path) -> None:
    train("dataset=blobs", "trainer.epochs=1", run_dir=tmp_path / "run")
    assert "tries" not in build_report([tmp_path]).figures


def test_stop_signals_take_sigusr2_only_under_a_handler(requeue_handler) -> None:
    stop = StopSignals()
    with stop.installed():
        signal.raise_signal(signal.SIGUSR2)
        assert requeue_handler == []  # noted, not passed on while the run trains
        assert stop.agreed() == signal.SIGUSR2
    assert requeue_handler == ["called"]


def test_sigusr2_after_training_ended_is_not_passed_on(requeue_handler) -> None:
    """No safe point took it: the run ends on its own, and its job needs no requeue."""
    with StopSignals().installed():
        signal.raise_signal(signal.SIGUSR2)
    assert requeue_handler == []


def sweep_job(sweep_dir: Path, name: str, summary: dict | None) -> SimpleNamespace:
    """A job's result as Hydra returns it (its run directory in hydra_cfg), with its
    summary.json written there (None: none)."""
    run_dir = sweep_dir / name
    run_dir.mkdir(parents=True)
    if summary is not None:
        (run_dir / "summary.json").write_text(json.dumps(summary))
    hydra_cfg = OmegaConf.create({"hydra": {"runtime": {"output_dir": str(run_dir)}}})
    return SimpleNamespace(hydra_cfg=hydra_cfg)


def test_fail_fast_cancels_the_jobs_still_waiting_and_retries_none(
    tmp_path, monkeypatch, caplog
) -> None:
    """The launcher's wait, on commands of the test's own: job 0's result says it failed on
    its config; jobs 1 (running) and 2 (pending) are cancelled, listed no more after scancel."""
    slurm_queue = pytest.importorskip("multiclass.sweeps.slurm_queue")
    from submitit import SlurmJob

    cancelled = tmp_path / "cancelled"
    fake_commands(
        tmp_path / "bin",
        monkeypatch,
        scancel=f'echo "$@" > {cancelled}',
        squeue=f"[ -e {cancelled} ] || echo '90_1|RUNNING|vm\n90_2|PENDING|'",
    )
    jobs = [SlurmJob(folder=tmp_path / "%j", job_id=f"90_{task}") for task in range(3)]
    failed = sweep_job(tmp_path / "sweep", "0", {"status": "failed", "error": "no batch"})
    finished(jobs[0], failed)
    watch = SweepWatch(tmp_path / "sweep", fail_fast=True)
    watch.submitted(jobs, [0, 1, 2])
    returned = slurm_queue.results(jobs, grace_s=0, watch=watch, accounted=False)
    assert [type(result) for result in returned] == [SimpleNamespace, type(None), type(None)]
    assert cancelled.read_text().split() == ["90_1", "90_2"]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "error: job 0 failed: no batch (sweep.fail_fast): cancelling job(s) 1, 2 (Slurm 90_1, 90_2)"
    ]  # and no "ended without a result" for the jobs it cancelled
    assert watch.to_retry(returned) == {}


def test_fail_fast_spares_the_job_whose_record_stopped_the_sweep(tmp_path) -> None:
    """Its fail_fast.json comes before its result: it is not cancelled as it writes that."""
    record_failure(tmp_path, "1", "no batch")
    watch = SweepWatch(tmp_path, fail_fast=True)
    watch.submitted([SimpleNamespace(job_id=f"91_{task}") for task in range(3)], [0, 1, 2])
    assert watch.stop() == "job 1 failed (sweep.fail_fast): no batch"
    assert watch.to_cancel(["91_0", "91_1", "91_2"]) == ["91_0", "91_2"]
    assert (watch.cancelled, watch.why_stopped) == ({0, 2}, "job 1 failed (sweep.fail_fast)")


def test_a_job_cancelled_before_it_started_is_in_the_report_as_not_started(tmp_path) -> None:
    """The Slurm launcher writes its record (SlurmQueueLauncher.not_started): Hydra's record
    of its config in the directory its number claims, and the `not started:` line."""
    from hydra import compose, initialize_config_dir

    from multiclass.config import CONFIG_DIR
    from multiclass.sweeps.fail_fast import write_not_started
    from multiclass.sweeps.numbering import job_number

    sweep_dir, overrides = tmp_path / "sweep", ["dataset=blobs", "trainer.batch_size=16"]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        config = compose("train", overrides=overrides, return_hydra_config=True)
    run_dir = sweep_dir / str(job_number(sweep_dir, 2, overrides))
    write_not_started(run_dir, config, "job 1 failed (sweep.fail_fast)")
    assert run_dir == sweep_dir / "2"  # as the job's own start would have claimed it
    [record] = build_report([sweep_dir]).records
    assert (record.status, record.summary["error"]) == (
        "not started",
        "job 1 failed (sweep.fail_fast)",
    )
    assert record.config["trainer.batch_size"] == 16 and record.choices["dataset"] == "blobs"
    assert record.overrides == {"dataset": "blobs", "trainer.batch_size": "16"}


def test_retries_take_the_jobs_that_ended_for_a_reason_not_their_own(tmp_path, caplog) -> None:
    sweep_dir = tmp_path / "sweep"
    statuses = ["completed", "pruned", "failed", "diverged", "interrupted", "running"]
    returned = [sweep_job(sweep_dir, str(i), {"status": s}) for i, s in enumerate(statuses)]
    returned += [None]  # killed outright: no result
    watch = SweepWatch(sweep_dir, fail_fast=False)
    assert list(watch.to_retry(returned)) == [4, 5, 6]
    assert resumed(["model.depth=2", "resume=old"], sweep_dir) == [
        "model.depth=2",
        f"resume={sweep_dir}",
    ]
