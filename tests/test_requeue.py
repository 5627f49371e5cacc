"""A Slurm job's time limit or preemption, without Slurm: SIGUSR2, where a handler awaits it
(submitit's, which requeues the job), stops the run at a safe point like SIGTERM, and that
handler runs once the run's record is whole; each start of a run counted in its summary
(tries, requeues). The real thing, on slurm-local: tests/test_slurm.py."""

import signal
from collections.abc import Iterator

import pytest

from multiclass.comparing.sweep_jobs import build_report
from multiclass.lifecycle.stopping import StopSignals, watched
from multiclass.records.artifacts import read_json
from multiclass.records.tries import started
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
