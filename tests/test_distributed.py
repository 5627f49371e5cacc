"""Data parallel training on the CPU (gloo): two processes started by torchrun as two nodes of
one process each, or by `device.processes=2`, train the weights one process trains with the
same global batch, write one run directory, and resume; SIGTERM to the launcher ends the run as
interrupted, a launcher killed outright takes its ranks with it, and a rank that fails is the
run's one error. The runs are started once for the module, side by side where they can: each
process start costs seconds of imports (the digits, read without scikit-learn, save each rank
a second of them)."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest
import torch

from multiclass.lifecycle import distributed
from multiclass.lifecycle.run import Outcome
from multiclass.records.artifacts import processes_that_trained
from tests.conftest import QUIET, family, read_summary

if TYPE_CHECKING:
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

# 72 training samples in global batches of 71: each splits 36/35 over the two processes, and
# the last batch, of 1 sample, leaves rank 1 an empty share. SGD steps by the gradient itself,
# so a wrongly weighted share would show in the weights (Adam would mostly normalise it away).
ARGS = (
    "dataset=digits",
    "dataset.limit=80",
    "optimizer=sgd",
    "optimizer.lr=0.1",
    "trainer.epochs=3",
    "trainer.batch_size=71",
    "trainer.drop_last=false",
    "callbacks=minimal",
    *QUIET,
)
# The runs of `runs` stop early, as every rank must, at the same epoch: no epoch after the
# first gains 1.0 of val_acc, so a patience of 2 ends them after epoch 3 of 5. They step once
# per two batches of 35 (each split 18/17), and once on the last batch, of 2 samples (1/1).
STOPS_EARLY = (
    *ARGS,
    "trainer.epochs=5",
    "trainer.early_stopping.patience=2",
    "trainer.early_stopping.min_delta=1",
    "trainer.batch_size=35",
    "trainer.accumulate_grad_batches=2",
)
TIMEOUT = 120


def environment() -> dict[str, str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def python(*args: str, cwd: Path, stderr: Any = subprocess.PIPE, **env: str) -> subprocess.Popen:
    """Start `python <args>` in `cwd`; its stderr piped (or to `stderr`), one thread a process."""
    return subprocess.Popen(
        [sys.executable, *args], cwd=cwd, env={**environment(), **env},
        stdout=subprocess.DEVNULL, stderr=stderr, text=True,
    )  # fmt: skip


def torchrun(*args: str, cwd: Path, node_rank: int, port: int) -> subprocess.Popen:
    """Start `torchrun -m multiclass <args>` in `cwd` as node node_rank of two, of one process
    each, which meet at 127.0.0.1:port as two machines would at their --master_addr. (Our code
    reads only the environment torchrun gives each rank: --standalone gives the same.)"""
    options = ["--nnodes=2", f"--node_rank={node_rank}", "--nproc_per_node=1"]
    options += ["--master_addr=127.0.0.1", f"--master_port={port}"]
    return python("-m", "torch.distributed.run", *options, "-m", "multiclass", *args, cwd=cwd)


def succeeds(process: subprocess.Popen) -> None:
    _, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folders of runs of one config: one of two torchrun nodes in Hydra's default run directory
    (node0 and node1, each node's process started in a folder of its own, as on a machine of
    its own), and one of `device.processes=2` in `hydra.run.dir=run`. (A Slurm job's tasks,
    hydra/launcher=slurm_ddp, are tested on a real cluster: tests/test_slurm.py.)"""
    made = {name: tmp_path_factory.mktemp(name) for name in ("node0", "node1", "processes")}
    port = free_port()
    nodes = [torchrun(*STOPS_EARLY, cwd=made[f"node{n}"], node_rank=n, port=port) for n in (0, 1)]
    launched = ["-m", "multiclass", "device.processes=2", *STOPS_EARLY, "hydra.run.dir=run"]
    for process in [*nodes, python(*launched, cwd=made["processes"])]:  # side by side
        succeeds(process)
    return made


def run_dirs(folder: Path) -> list[Path]:
    """The run directories written under `folder`: those with a summary.json."""
    return sorted(path.parent for path in folder.rglob("summary.json"))


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "model.pt", weights_only=True)["state_dict"]


def metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def test_two_processes_train_the_weights_of_one(
    runs: dict[str, Path], train: Callable[..., Outcome], tmp_path: Path
) -> None:
    one = tmp_path / "one"
    assert train(*STOPS_EARLY, run_dir=one).status == "completed"
    (ddp,) = run_dirs(runs["node0"])
    mine, theirs = weights(ddp), weights(one)
    assert mine.keys() == theirs.keys()
    for name, tensor in mine.items():
        assert torch.allclose(tensor, theirs[name], rtol=0, atol=1e-5), name
    # The epoch's figures are the whole split's: the processes' sums, added up.
    for row, alone in zip(metrics(ddp), metrics(one), strict=True):
        for column in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert float(row[column]) == pytest.approx(float(alone[column]), abs=1e-6)


def test_two_data_parallel_runs_of_one_config_are_the_same(runs: dict[str, Path]) -> None:
    # Started two ways, torchrun and device.processes=2: the same processes, the same digest.
    (first,) = run_dirs(runs["node0"])
    (second,) = run_dirs(runs["processes"])
    assert read_summary(first)["weights_sha256"] == read_summary(second)["weights_sha256"]


def test_rank_0_alone_writes_one_run_directory_which_every_rank_names(
    runs: dict[str, Path],
) -> None:
    # Each process ran Hydra, whose default directory holds the time to the microsecond:
    # rank 0 chose it for both.
    (run_dir,) = run_dirs(runs["node0"])
    assert [path.name for path in (runs["node0"] / "outputs").glob("*/*")] == [run_dir.name]
    assert [row["epoch"] for row in metrics(run_dir)] == ["1", "2", "3"]
    summary = read_summary(run_dir)
    assert (summary["status"], summary["processes"], summary["epochs"]) == ("completed", 2, 3)
    assert summary["stopped_early"]  # every rank at epoch 3 (one that went on would hang)
    log = (run_dir / "train.log").read_text()
    assert log.count("epoch 3/5") == 1 and "stopped early after epoch 3" in log
    assert sorted(path.name for path in run_dir.glob(".hydra/*")) == [
        "config.yaml",
        "hydra.yaml",
        "overrides.yaml",
    ]
    # Node 1's process, rank 1, made the same directory on its machine (Hydra makes it in
    # every process, before the job runs) and wrote nothing, anywhere.
    made = run_dir.relative_to(runs["node0"])
    assert (runs["node1"] / made).is_dir()
    assert [path for path in runs["node1"].rglob("*") if not path.is_dir()] == []


def test_device_processes_trains_as_torchrun(runs: dict[str, Path]) -> None:
    (launched,) = run_dirs(runs["processes"])
    assert launched == runs["processes"] / "run"
    (started,) = run_dirs(runs["node0"])
    mine, theirs = weights(launched), weights(started)
    assert all(torch.equal(tensor, theirs[name]) for name, tensor in mine.items())
    assert read_summary(launched)["processes"] == 2
    assert (launched / "train.log").read_text().count("epoch 3/5") == 1


# Never reached: a run stopped by a signal, whose resumes set how long it trains.
LONG = "trainer.epochs=100000"


def running(pid: int) -> bool:
    """Whether process `pid` still runs: a zombie has ended, and only waits to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def ended(pids: list[int], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while any(running(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class Stopped(NamedTuple):
    """How a launcher ended on a signal, and its ranks with it."""

    returncode: int
    ranks_ended: bool  # both of them, within 10 s of the launcher
    summary: dict
    saved_epoch: int  # last.pt's epoch, after it
    stderr: str


# Models that end rank 1 in its third training step (rank 0 and one process train on): by
# its own bug, or by SIGKILL, as the out-of-memory killer ends a process.
ENDS_RANK_1 = """
    import math
    import os
    import signal

    from torch import nn


    class FailsOnRank1(nn.Module):
        def __init__(self, input_shape, num_outputs):
            super().__init__()
            self.layer = nn.Linear(math.prod(input_shape), num_outputs)
            self.steps = 0

        def forward(self, x):
            if self.training and os.environ.get("RANK") == "1":
                self.steps += 1
                if self.steps == 3:
                    self.end()
            return self.layer(x.flatten(1))

        def end(self):
            raise ValueError("rank 1's own bug")


    class KilledOnRank1(FailsOnRank1):
        def end(self):
            os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Stopped | Path | tuple]:
    """One run of `device.processes=2` ("run"), stopped twice: SIGTERM to its launcher once it
    saved an epoch; resumed by multiclass-resume, whose launcher is killed (-9) once it saved
    one more; then resumed again, for two epochs past the last it saved ("resumed.err" holds
    its stderr); then multiclass-rerun of it, which trains its config without a stop, in its
    processes, and compares ("rerun"). Beside the first, two other runs: one whose rank 1
    fails in the model's code ("lost"), one whose rank 1 is killed by SIGKILL ("killed")."""
    folder = tmp_path_factory.mktemp("stopped")
    run_dir = folder / "run"
    started: list[int] = []  # the launchers and their ranks
    names: dict[int, tuple[str, Path]] = {}  # a launcher's name and run directory, by pid

    def start(name: str, *args: str, run: Path = run_dir, **env: str) -> subprocess.Popen:
        """`python <args>` in `folder`, its stderr into `name`.err, training `run`."""
        with open(folder / f"{name}.err", "w") as stderr:
            process = python(*args, cwd=folder, stderr=stderr, **env)
        started.append(process.pid)
        names[process.pid] = (name, run)
        return process

    def stop(launcher: subprocess.Popen, signum: int) -> Stopped:
        """Send `signum` to `launcher` once its run saved an epoch (one more than when this was
        called, for a resume)."""
        name, run = names[launcher.pid]
        last = run / "last.pt"
        before = last.stat().st_mtime_ns if last.exists() else None
        deadline = time.monotonic() + TIMEOUT
        while not last.exists() or last.stat().st_mtime_ns == before:
            alive = launcher.poll() is None and time.monotonic() < deadline
            assert alive, f"it ended before it was stopped:\n{(folder / f'{name}.err').read_text()}"
            time.sleep(0.01)
        ranks = family(launcher.pid)
        started.extend(ranks)
        assert len(ranks) == 2
        launcher.send_signal(signum)
        return finished(launcher, ranks)

    def finished(launcher: subprocess.Popen, ranks: list[int]) -> Stopped:
        """How `launcher` ended, and `ranks` (its processes) with it."""
        name, run = names[launcher.pid]
        returncode = launcher.wait(timeout=TIMEOUT)
        gone = ended(ranks)
        saved = torch.load(run / "last.pt", weights_only=True)["epoch"]
        text = (folder / f"{name}.err").read_text()
        return Stopped(returncode, gone, read_summary(run), saved, text)

    resume = ["-m", "multiclass.commands.resume", str(run_dir)]  # multiclass-resume
    train = ["-m", "multiclass", "device.processes=2", *ARGS]

    def ends_rank_1(name: str, model: str) -> subprocess.Popen:
        """A run whose rank 1 ends in `model`'s code (ENDS_RANK_1), into `name`."""
        user = ["~model", f"+model._target_=user_models.{model}", f"hydra.run.dir={name}"]
        return start(name, *train, *user, run=folder / name, PYTHONPATH=str(folder))

    try:
        first = start("sigterm", *train, LONG, "hydra.run.dir=run")
        (folder / "user_models.py").write_text(textwrap.dedent(ENDS_RANK_1))
        beside = [ends_rank_1("lost", "FailsOnRank1"), ends_rank_1("killed", "KilledOnRank1")]
        sigterm = stop(first, signal.SIGTERM)
        lost, killed = (finished(process, []) for process in beside)  # each ends by itself
        sigkill = stop(start("sigkill", *resume), signal.SIGKILL)
        resumed = start("resumed", *resume, f"trainer.epochs={sigkill.saved_epoch + 2}")
        assert resumed.wait(timeout=TIMEOUT) == 0, (folder / "resumed.err").read_text()
        again = ["-m", "multiclass.commands.rerun", str(run_dir), "--out", "rerun"]
        rerun = start("rerun", *again, run=folder / "rerun")
        reran = (rerun.wait(timeout=TIMEOUT), (folder / "rerun.err").read_text())
    finally:  # whatever failed, no process of these runs is left training
        for pid in started:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
    return {
        "sigterm": sigterm,
        "lost": lost,
        "killed": killed,
        "sigkill": sigkill,
        "rerun": reran,
        "run": run_dir,
        "folder": folder,
    }


def test_a_rank_that_fails_is_the_runs_error_and_the_others_say_so_in_one_line(
    stopped: dict[str, Stopped | Path],
) -> None:
    lost = stopped["lost"]
    assert lost.returncode == 1, lost.stderr[-3000:]
    summary = lost.summary
    assert (summary["status"], summary["error"]) == ("failed", distributed.PEER_FAILED)
    # Rank 1's own error, then rank 0's word for it: not gloo's ("Connection closed by peer",
    # with a path into its sources), nor a traceback as its launcher sent it SIGTERM.
    errors = [line for line in lost.stderr.splitlines() if "[ERROR]" in line]
    assert [line.split("[ERROR] ")[1] for line in errors] == [
        "error: ValueError: rank 1's own bug",
        f"error: {distributed.PEER_FAILED}",
    ]
    assert "Connection" not in lost.stderr and "Traceback" not in lost.stderr


def test_a_rank_killed_by_a_signal_is_named_by_the_launcher_and_the_run_is_killed(
    stopped: dict[str, Stopped | Path],
) -> None:
    killed = stopped["killed"]
    assert killed.returncode == 128 + signal.SIGKILL  # as a one-process run's kill -9
    summary = killed.summary
    assert summary["status"] == "killed"
    assert summary["error"].startswith(
        "rank 1 was killed by SIGKILL (the out-of-memory killer sends it; `dmesg` says"
    )
    assert summary["epochs"] == 1 and killed.saved_epoch == 1  # its record, as it stopped
    # The launcher's line is the last of train.log and of the console; rank 0, which failed on
    # rank 1's end (or had the launcher's SIGTERM first), is named by no one.
    log = (stopped["folder"] / "killed" / "train.log").read_text().splitlines()
    assert log[-1].split("[ERROR] ")[1] == f"error: {summary['error']}"
    errors = [line for line in killed.stderr.splitlines() if "error: " in line]
    assert errors[-1].split("[ERROR] ")[1] == f"error: {summary['error']}"
    assert "rank 0" not in killed.stderr and "local_rank: 0" not in killed.stderr
    assert "Traceback" not in killed.stderr


def failure(rank: int, exitcode: int) -> "ProcessFailure":
    """How torch's launcher saw a process end, in the same second as any other here."""
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

    seen = ProcessFailure(local_rank=rank, pid=1000 + rank, exitcode=exitcode, error_file="")
    seen.timestamp = 1_700_000_000
    return seen


@pytest.mark.parametrize("survivor", [1, 128 + signal.SIGTERM, -signal.SIGTERM])
def test_the_launcher_blames_the_rank_a_signal_ended_in_whatever_order_torch_saw_them(
    survivor: int,
) -> None:
    # Rank 0 ended on rank 1's end (PEER_FAILED: 1), on the launcher's SIGTERM (interrupted:
    # 143), or before it handled that (-15); torch may see it first, in the same second.
    for order in ((0, 1), (1, 0)):
        ends = {0: failure(0, survivor), 1: failure(1, -signal.SIGKILL)}
        assert distributed.first_to_fail({rank: ends[rank] for rank in order})[0] == 1
    both_failed = {1: failure(1, 1), 0: failure(0, 1)}  # each logged its own error
    assert distributed.first_to_fail(both_failed)[0] == 1  # torch's first
    # Rank 1 failed in its own code (1); rank 0, exiting after it recorded PEER_FAILED, was
    # stopped by the launcher's SIGTERM before it ended: rank 1 ended the run.
    for order in ((0, 1), (1, 0)):
        ends = {0: failure(0, -signal.SIGTERM), 1: failure(1, 1)}
        assert distributed.first_to_fail({rank: ends[rank] for rank in order})[0] == 1


def test_the_launcher_records_a_killed_rank_only_in_a_summary_of_its_launch(
    tmp_path: Path,
) -> None:
    # A resume killed before it restored last.pt wrote no summary: the run's own stays.
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"status": "interrupted", "epochs": 3}))
    distributed.record_killed(tmp_path, 1, signal.SIGKILL, since=time.time() + 60)
    assert json.loads(path.read_text()) == {"status": "interrupted", "epochs": 3}
    distributed.record_killed(tmp_path, 1, signal.SIGSEGV, since=0)
    summary = json.loads(path.read_text())
    assert (summary["status"], summary["epochs"]) == ("killed", 3)
    assert summary["error"].startswith("rank 1 was killed by SIGSEGV (a crash, or a signal")
    assert f"`multiclass-resume {tmp_path}` continues it" in summary["error"]


def test_sigterm_to_the_launcher_ends_every_rank_as_one_interrupted_run(
    stopped: dict[str, Stopped | Path],
) -> None:
    sigterm = stopped["sigterm"]
    assert sigterm.returncode == 128 + signal.SIGTERM and sigterm.ranks_ended
    summary = sigterm.summary
    assert (summary["status"], summary["error"]) == ("interrupted", "interrupted by SIGTERM")
    assert sigterm.saved_epoch >= 1  # last.pt kept
    # One run's one line: rank 1 says nothing of it, and no rank failed on the other's end.
    assert sigterm.stderr.count("error:") == 1
    errors = [line for line in sigterm.stderr.splitlines() if "[ERROR]" in line]
    assert [line.split("[ERROR] ")[1] for line in errors] == ["error: interrupted by SIGTERM"]
    assert "Traceback" not in sigterm.stderr
    # multiclass-resume continued it, in two processes again (then it was killed: below), where
    # the stop left it: after the epoch last.pt holds, or part-way into the next.
    resumed, saved = stopped["sigkill"].stderr, sigterm.saved_epoch
    assert f"resuming after epoch {saved} from" in resumed or (
        f"of epoch {saved + 1} from" in resumed and "resuming after batch " in resumed
    )


def test_a_launcher_killed_outright_takes_its_ranks_with_it(
    stopped: dict[str, Stopped | Path],
) -> None:
    sigkill = stopped["sigkill"]
    assert sigkill.returncode == -signal.SIGKILL
    # Nothing passed the kill on: each rank ended itself, and none trained on or wrote the
    # run as failed (a rank that lost the other) or completed after it.
    assert sigkill.ranks_ended
    assert sigkill.summary["status"] == "running"
    for rank in (0, 1):
        assert f"error: rank {rank}: its launcher (pid " in sigkill.stderr
    assert sigkill.saved_epoch > stopped["sigterm"].saved_epoch

    resumed = (stopped["folder"] / "resumed.err").read_text()
    assert "it was killed without warning: SIGKILL" in resumed


def test_a_data_parallel_run_resumes_in_its_processes_to_the_uninterrupted_weights(
    stopped: dict[str, Stopped | Path | tuple],
) -> None:
    # multiclass-resume without device.processes: the run's 2 start the processes.
    run_dir, saved = stopped["run"], stopped["sigkill"].saved_epoch
    summary = read_summary(run_dir)
    assert (summary["status"], summary["processes"]) == ("completed", 2)
    assert summary["resumed_at"] == [saved]
    epochs = saved + 2
    assert [row["epoch"] for row in metrics(run_dir)] == [str(e) for e in range(1, epochs + 1)]
    # multiclass-rerun trained its config without a stop, in 2 processes again (one would
    # train other weights, by about 1e-7 in the first epoch's loss here), and found the same
    # weights, to the bit, and the same metrics.
    code, stderr = stopped["rerun"]
    assert code == 0, stderr  # 0: reproduced
    rerun = read_summary(stopped["folder"] / "rerun")
    assert (rerun["status"], rerun["processes"], rerun["epochs"]) == ("completed", 2, epochs)
    assert rerun["weights_sha256"] == summary["weights_sha256"]
    assert not rerun.get("resumed_at")  # trained straight through


def test_a_resume_and_a_rerun_take_the_processes_the_summary_records(tmp_path: Path) -> None:
    # torchrun's runs and a Slurm job's tasks have device.processes=1 in their config.
    (tmp_path / "config.yaml").write_text("dataset: {}\ndevice:\n  processes: 1\n")
    assert processes_that_trained(tmp_path) == 1  # no summary yet: the config's
    (tmp_path / "summary.json").write_text(json.dumps({"status": "completed"}))
    assert processes_that_trained(tmp_path) == 1  # an older run's summary
    (tmp_path / "summary.json").write_text(json.dumps({"processes": 2}))
    assert processes_that_trained(tmp_path) == 2


def test_data_parallel_runs_are_reported_as_any_run(runs: dict[str, Path], tmp_path: Path) -> None:
    from multiclass.commands.report import report_sweep

    dirs = [*run_dirs(runs["node0"]), *run_dirs(runs["processes"])]
    report = report_sweep([runs["node0"], runs["processes"]], tmp_path, plots=False)
    assert report is not None
    assert sorted(record.path for record in report.records) == sorted(dirs)
    assert {record.status for record in report.records} == {"completed"}
    with open(tmp_path / "sweep.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["best_val_acc"] for row in rows] == [
        str(read_summary(Path(row["run_dir"]))["best_val_acc"]) for row in rows
    ]


# A callback that sends its own process SIGTERM after batch 1 of epoch 2 (rank 0's alone: a
# callback runs there), counted from the epoch's start, a resumed epoch's too.
SIGNAL_AT_BATCH = """
    import os
    import signal

    from multiclass.callbacks import Callback


    class SignalAtBatch(Callback):
        def on_epoch_start(self, run, epoch):
            partial = run.progress.partial
            self.epoch, self.batch = epoch, 0 if partial is None else partial.batches

        def on_train_batch_end(self, run, batch, loss):
            self.batch += 1
            if (self.epoch, self.batch) == (2, 1):
                os.kill(os.getpid(), signal.SIGTERM)
"""


def test_a_data_parallel_run_stopped_mid_epoch_resumes_at_that_step_to_the_same_weights(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    """Both processes stop at the step after the signal (batch 2 of 3: a group of two), rank 0
    saves both processes' sums, and the resume in two processes ends as `runs`' run of the
    same config, which never stopped."""
    (tmp_path / "signal_at.py").write_text(textwrap.dedent(SIGNAL_AT_BATCH))
    signal_at = "+callbacks.signal._target_=signal_at.SignalAtBatch"
    launched = ["-m", "multiclass", "device.processes=2", *STOPS_EARLY, "hydra.run.dir=run"]
    first = python(*launched, signal_at, cwd=tmp_path, PYTHONPATH=str(tmp_path))
    _, stderr = first.communicate(timeout=TIMEOUT)
    run_dir = tmp_path / "run"
    assert first.returncode == 128 + signal.SIGTERM, stderr
    assert read_summary(run_dir)["status"] == "interrupted"
    partial = torch.load(run_dir / "last.pt", weights_only=True)["in_progress"]
    assert (partial["epoch"], partial["batches"], len(partial["loss_sum"])) == (2, 2, 2)
    resume = ["-m", "multiclass.commands.resume", str(run_dir)]
    succeeds(python(*resume, cwd=tmp_path, PYTHONPATH=str(tmp_path)))
    straight = runs["processes"] / "run"
    summary = read_summary(run_dir)
    assert (summary["status"], summary["processes"]) == ("completed", 2)
    assert summary["weights_sha256"] == read_summary(straight)["weights_sha256"]
    timed = ("train_seconds", "epoch_seconds")
    untimed = [
        [{k: v for k, v in r.items() if k not in timed} for r in metrics(d)]
        for d in (run_dir, straight)
    ]
    assert untimed[0] == untimed[1]
