"""Sweeps and data parallel jobs on a real Slurm cluster, through sbatch and srun: the one-node
cluster of ../shared/tools/slurm-local (Debian's slurm-wlm), started for this module where it
can be (as root) and stopped after if this module started it; a cluster SLURM_CONF already
names is used as it is. It keeps no accounting, so `sacct` fails, as on some real clusters.
Skipped, in one line, where there is no cluster to use. The jobs start side by side: each is a
Python process that loads torch, and the cluster runs two at once (one CPU each, 2 CPUs)."""

import contextlib
import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from importlib.util import find_spec
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from multiclass.records.artifacts import read_csv_rows
from tests.conftest import QUIET, read_summary

REPO = Path(__file__).resolve().parents[1]
SLURM_LOCAL = REPO.parent / "shared" / "tools" / "slurm-local"
DEFAULT_CONF = Path(os.environ.get("TMPDIR", "/tmp")) / "slurm-local" / "slurm.conf"
TIMEOUT = 240
# One CPU and 1 GB a job; 180 training digits in batches of 8: 23 steps an epoch.
JOB = ["hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1", "dataset.limit=200", *QUIET]
JOB += ["trainer.batch_size=8", "callbacks=minimal"]
# The data parallel job's config, as tests/test_distributed.py trains it.
DDP = ["dataset=digits", "dataset.limit=80", "optimizer=sgd", "optimizer.lr=0.1"]
DDP += ["trainer.epochs=3", "trainer.batch_size=71", "callbacks=minimal", *QUIET]

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        find_spec("hydra_plugins.hydra_submitit_launcher") is None,
        reason="needs the [cluster] extra (hydra-submitit-launcher)",
    ),
]


def answers(conf: Path | None) -> bool:
    """Whether a Slurm controller answers, with its node idle, in use or finishing a job
    (`comp`: a cluster that has just run a job, which a start would restart and a stop end)."""
    if shutil.which("sinfo") is None:
        return False
    env = {**os.environ, "SLURM_CONF": str(conf)} if conf else dict(os.environ)
    try:
        done = subprocess.run(
            ["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0 and re.search(r"idle|mix|alloc|comp", done.stdout) is not None


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, str]]:
    """The environment of a command that submits to the cluster."""
    named = os.environ.get("SLURM_CONF")
    if named and answers(Path(named)):
        yield dict(os.environ)
        return
    if answers(DEFAULT_CONF):  # slurm-local runs already: not ours to stop
        yield {**os.environ, "SLURM_CONF": str(DEFAULT_CONF)}
        return
    if not SLURM_LOCAL.is_file():
        pytest.skip(f"no Slurm cluster: none answers, and there is no {SLURM_LOCAL} to start one")
    if os.geteuid() != 0:
        pytest.skip(f"no Slurm cluster: none answers, and {SLURM_LOCAL} needs root to start one")
    started = subprocess.run(
        [SLURM_LOCAL, "start"], capture_output=True, text=True, timeout=600, check=False
    )
    conf = re.search(r"export SLURM_CONF=(\S+)", started.stdout)
    if started.returncode != 0 or conf is None:
        pytest.skip(f"no Slurm cluster: slurm-local start failed: {started.stderr.strip()[-200:]}")
    env = {**os.environ, "SLURM_CONF": conf.group(1)}
    try:
        yield env
    finally:
        drained(env)  # a job whose result is in may still be ending: its step would outlive
        subprocess.run([SLURM_LOCAL, "stop"], capture_output=True, timeout=60, check=False)


def drained(env: dict[str, str], seconds: float = 60) -> None:
    """Wait until the cluster's queue is empty (or `seconds` passed)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        queue = subprocess.run(["squeue", "-h"], env=env, capture_output=True, text=True)
        if queue.returncode != 0 or not queue.stdout.strip():
            return
        time.sleep(0.2)


def submit(cwd: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    """`python -m multiclass <args>` in `cwd`, its output kept in files there."""
    cwd.mkdir(parents=True, exist_ok=True)
    with open(cwd / "out.txt", "w") as out, open(cwd / "err.txt", "w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "multiclass", *args], cwd=cwd, stdout=out, stderr=err,
            env={**env, "PYTHONWARNINGS": "ignore"},
        )  # fmt: skip


def stop_all(processes: list[subprocess.Popen], root: Path, env: dict[str, str]) -> None:
    """Kill the processes still running and cancel every Slurm job submitted from under
    `root` that is still queued (submitit names its folders by the job id, an array's first):
    a fixture that failed half-way leaves no job running on a cluster it did not start (a
    requeued one would go on for many minutes)."""
    for process in processes:
        if process.poll() is None:
            process.kill()
    jobs = {path.name.split("_")[0] for path in root.glob("**/.submitit/*") if path.is_dir()}
    queued = subprocess.run(["squeue", "-h", "-o", "%F"], env=env, capture_output=True, text=True)
    mine = sorted(jobs & set(queued.stdout.split()))
    if mine:
        subprocess.run(["scancel", *mine], env=env, capture_output=True, check=False)


def ended(process: subprocess.Popen, cwd: Path, timeout: float = TIMEOUT) -> SimpleNamespace:
    code = process.wait(timeout=timeout)
    out, err = ((cwd / name).read_text() for name in ("out.txt", "err.txt"))
    return SimpleNamespace(code=code, out=out, err=err)


def as_each_saved(actions: dict[Path, tuple[Callable[[], object], subprocess.Popen]]) -> None:
    """Each action as soon as its last.pt exists, whatever the order the jobs start in (two
    jobs run at a time on this machine's two cores: a job waiting for another to be handled
    first could end before its turn). Each last.pt comes with the sweep that writes it: one
    whose sweep ended without it (or not within TIMEOUT) fails; another sweep's end does not."""
    deadline = time.monotonic() + TIMEOUT
    while actions:
        for last in [last for last in actions if last.exists()]:
            action, _ = actions.pop(last)
            action()
        ended = [last for last, (_, sweep) in actions.items() if sweep.poll() is not None]
        never = [last for last in ended if not last.exists()]
        assert not never and time.monotonic() < deadline, f"never saved: {never or list(actions)}"
        time.sleep(0.05)


def once_saved(last: Path, sweep: subprocess.Popen) -> Path:
    """The .submitit folder of the sweep job that writes `last` (its last.pt), once it did."""
    as_each_saved({last: (lambda: None, sweep)})
    job_dir = last.parent  # submitit keeps each array task's files in .submitit/<array>_<task>
    (task,) = (job_dir.parent / ".submitit").glob(f"*_{job_dir.name}")
    return task


def holder(lock: Path) -> int:
    """The process that holds `lock` open: a run's, on this machine. (`scancel --signal=KILL`
    would not do: Slurm cancels the job, with SIGTERM first.)"""
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        with contextlib.suppress(OSError):
            if os.readlink(fd) == str(lock):
                return int(fd.parts[2])
    raise AssertionError(f"no process holds {lock}")


@pytest.fixture(scope="module")
def jobs(cluster: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Side by side on the cluster: a sweep whose job 1 fails ("failing"); a sweep whose job 1
    is cancelled with scancel once it saved an epoch, then continued by multiclass-resume
    ("cancelled", "resumed"); a data parallel job of 2 tasks (hydra/launcher=slurm_ddp) and,
    beside it on this machine, torchrun's run of the same config ("ddp", "torchrun")."""
    root = tmp_path_factory.mktemp("slurm")
    launcher = ["-m", "hydra/launcher=slurm", *JOB, "hydra.sweep.dir=sweep"]
    # batch 4096 with drop_last leaves no batch of 180 samples: job 1 fails as it trains.
    fails = ["trainer.epochs=1", "trainer.batch_size=4096", "trainer.drop_last=false,true"]
    failing = submit(root / "failing", cluster, *launcher, *fails)
    cancelled = submit(root / "cancelled", cluster, *launcher, "trainer.epochs=1,300,301")
    ddp = ["-m", "hydra/launcher=slurm_ddp", "hydra.launcher.mem_gb=1", *DDP]
    slurm_ddp = submit(root / "ddp", cluster, *ddp, "hydra.sweep.dir=sweep")
    options = ["--standalone", "--nproc_per_node=2"]
    torchrun = ["-m", "torch.distributed.run", *options, "-m", "multiclass", *DDP]
    (root / "torchrun").mkdir()
    local = subprocess.Popen(
        [sys.executable, *torchrun, "hydra.run.dir=run"], cwd=root / "torchrun",
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        sweep_dir = root / "cancelled" / "sweep"
        # job 1 gets scancel's SIGTERM; job 2 SIGKILL, which ends it without a word
        term = once_saved(sweep_dir / "1" / "last.pt", cancelled)
        subprocess.run(["scancel", term.name], env=cluster, check=True)
        once_saved(sweep_dir / "2" / "last.pt", cancelled)
        os.kill(holder(sweep_dir / "2" / ".lock"), signal.SIGKILL)  # as the OOM killer would
        started = {"failing": failing, "cancelled": cancelled, "ddp": slurm_ddp}
        results = {name: ended(process, root / name) for name, process in started.items()}
        cut_short = {job: read_summary(sweep_dir / job) for job in ("1", "2")}
        killed_at = torch.load(sweep_dir / "2" / "last.pt", weights_only=True)["epoch"]
        script = Path(sys.executable).parent / "multiclass-resume"
        resume = subprocess.run(
            [script, "sweep"], cwd=root / "cancelled", env={**cluster, "PYTHONWARNINGS": "ignore"},
            capture_output=True, text=True, timeout=TIMEOUT,
        )  # fmt: skip
        _, torchrun_err = local.communicate(timeout=TIMEOUT)
        assert local.returncode == 0, torchrun_err
    finally:
        stop_all([failing, cancelled, slurm_ddp, local], root, cluster)
    resumed = SimpleNamespace(code=resume.returncode, out=resume.stdout, err=resume.stderr)
    return SimpleNamespace(
        root=root, resumed=resumed, cut_short=cut_short, killed_at=killed_at, **results
    )


def statuses(sweep_dir: Path) -> list[str]:
    with open(sweep_dir / "sweep.csv", newline="") as file:
        return [row["status"] for row in sorted(csv.DictReader(file), key=lambda r: r["job"])]


def test_a_sweep_with_a_failed_job_reports_every_job_and_exits_1(jobs: SimpleNamespace) -> None:
    failing = jobs.failing
    assert failing.code == 1, failing.err
    sweep_dir = jobs.root / "failing" / "sweep"
    assert statuses(sweep_dir) == ["completed", "failed"]
    assert "error: " in (sweep_dir / "1" / "train.log").read_text()
    assert "error: 1 job(s) did not complete: 1 (failed)" in failing.err
    assert "Traceback" not in failing.err
    assert "Best: job 0" in failing.out


def test_a_cancelled_job_and_a_killed_one_are_reported_and_multiclass_resume_finishes_them(
    jobs: SimpleNamespace,
) -> None:
    cancelled, sweep_dir = jobs.cancelled, jobs.root / "cancelled" / "sweep"
    # scancel's SIGTERM ended job 1 as interrupted; SIGKILL ended job 2 without a result,
    # which squeue told (no sacct here). The sweep went on, reported both, exited 1.
    assert cancelled.code == 1, cancelled.err
    assert "error: 2 job(s) did not complete: 1 (interrupted), 2 (killed)" in cancelled.err
    gone = [line for line in cancelled.err.splitlines() if "without a result" in line]
    assert len(gone) == 1 and "_2 ended (" in gone[0], cancelled.err
    assert "Traceback" not in cancelled.err
    term = jobs.cut_short["1"]
    assert (term["status"], term["error"]) == ("interrupted", "interrupted by SIGTERM")
    # Its train.log says how the run ended (then the resume's lines): submitit's own, which it
    # logs as the job's function returns ("Job completed successfully"), stay in .submitit/.
    log = (sweep_dir / "1" / "train.log").read_text()
    assert "error: interrupted by SIGTERM\n" in log and "successful" not in log
    assert jobs.cut_short["2"]["status"] == "running"  # SIGKILL: no chance to say more
    saved = {"1": term["epochs"], "2": jobs.killed_at}
    # multiclass-resume sent both to Slurm again, from their last.pt; job 0 was left alone.
    assert jobs.resumed.code == 0, jobs.resumed.err
    assert statuses(sweep_dir) == ["completed"] * 3
    for job, epochs in (("1", 300), ("2", 301)):
        summary = read_summary(sweep_dir / job)
        assert 1 <= saved[job] < epochs
        assert (summary["status"], summary["epochs"], summary["resumed_at"]) == (
            "completed",
            epochs,
            [saved[job]],
        )
    assert read_summary(sweep_dir / "0").get("resumed_at") is None


def test_each_line_once_and_one_about_accounting(jobs: SimpleNamespace) -> None:
    for result in (jobs.failing, jobs.cancelled, jobs.resumed):
        lines = result.err.splitlines()
        # Hydra's lines and submitit's, each once (submitit had two handlers of its own).
        assert not [line for line in lines if line.startswith("submitit ")], result.err
        launched = [line for line in lines if re.search(r"\[HYDRA\] \t#\d+ :", line)]
        assert len(launched) == len(set(launched)) >= 2
        # sacct fails here, said once: not at each poll, by submitit or by sacct itself.
        accounting = [line for line in lines if re.search("sacct|accounting", line)]
        assert len(accounting) == 1 and "sacct failed" in accounting[0], result.err


def test_a_data_parallel_job_of_two_slurm_tasks_trains_torchruns_weights(
    jobs: SimpleNamespace,
) -> None:
    ddp = jobs.ddp
    assert ddp.code == 0, ddp.err
    job = jobs.root / "ddp" / "sweep" / "0"
    summary = read_summary(job)
    assert (summary["status"], summary["processes"]) == ("completed", 2)
    theirs = read_summary(jobs.root / "torchrun" / "run")
    assert summary["weights_sha256"] == theirs["weights_sha256"]
    # srun started the two tasks, each a rank; rank 0 alone logged into the job's train.log.
    logs = sorted((job.parent / ".submitit").glob("*/*_log.out"))
    assert len(logs) == 2
    log = (job / "train.log").read_text()  # Hydra gave each task a handler on it
    assert log.count("epoch 3/3") == 1 and "Job completed" not in log
    # Submitit's lines are its own logs', once: not through Hydra's handlers too.
    for out in logs:
        err = out.with_name(out.name.replace("_log.out", "_log.err")).read_text()
        assert out.read_text().count("Job completed successfully") == 1
        assert "Job completed" not in err


def test_a_search_on_slurm_prunes_a_trial_through_its_sqlite_study(
    cluster: dict[str, str], tmp_path: Path
) -> None:
    """hydra.sweeper.pruner=median with hydra/launcher=slurm: each job reports its epochs to
    the study in SQLite (a file system the job and the search share), and the bad learning
    rate's trial, second after a good one (the median needs one complete), ends pruned."""
    optuna = pytest.importorskip("optuna")
    storage = f"sqlite:///{tmp_path}/study.db"
    search = ["-m", "hydra/launcher=slurm", "hydra/sweeper=optuna_search", *JOB]
    search += ["hydra.sweeper.pruner=median", "hydra.sweeper.pruner_options={n_startup_trials:1}"]
    search += [f"hydra.sweeper.storage={storage}", "hydra.sweeper.n_trials=2"]
    search += ["+hydra.sweeper.sampler={_target_:optuna.samplers.RandomSampler,seed:0}"]
    search += ["optimizer.lr=choice(0.00001,0.01)", "trainer.epochs=3", "hydra.sweep.dir=sweep"]
    result = ended(submit(tmp_path, cluster, *search), tmp_path)
    assert result.code == 0, result.err
    study = optuna.load_study(study_name="search", storage=storage)
    states = [(trial.params["optimizer.lr"], trial.state.name) for trial in study.trials]
    assert states == [(0.01, "COMPLETE"), (1e-5, "PRUNED")], result.err
    summary = read_summary(tmp_path / "sweep" / "1")
    assert (summary["status"], summary["epochs"]) == ("pruned", 1)
    assert "1 complete, 1 pruned" in result.err


# Issue 34: jobs that survive the cluster. The full digits (1293 training samples) in batches of
# 8, the last 5 samples dropped, on one thread: REQUEUED's 1300 epochs train for about 2.5
# minutes on an idle machine (900 took 101 to 118 s), SHORT's 100 for 15 to 25 s; a job
# starts in about 15 s.
DIGITS = ["trainer.drop_last=true", "callbacks=minimal", "device.num_threads=1", *QUIET]
BATCH = "trainer.batch_size=8"
REQUEUED, SHORT = "trainer.epochs=1300", "trainer.epochs=100"
# Slurm sends a job's --signal=USR2@S at the first tick of its 30 s clock with at most S + 30 s
# left: with S = 1, 29 to 59 s into the minute, and the time limit's SIGTERM comes a tick
# later: 15 to 45 s of training a start. It then holds a requeued job 2 minutes (slurm.conf's
# cred_expire, 120 s by default) before it starts it again; the tests release that hold 2 s
# after the requeue (`release_requeued`), as its owner may, so that a requeue costs seconds.
REQUEUE_TIMEOUT = 1800


@contextlib.contextmanager
def release_requeued(env: dict[str, str]) -> Iterator[None]:
    """While the block runs: every job Slurm holds after a requeue (pending, reason BeginTime)
    is released with `scontrol update StartTime=now` once it was requeued 2 s ago. (Slurm
    revokes the credential of a requeued job, to the second: a start within the second of
    the requeue is refused, "Job credential revoked", and the job ends FAILED.)"""
    import threading

    done = threading.Event()

    def release() -> None:
        while not done.wait(1.0):
            queue = subprocess.run(
                ["squeue", "-h", "--states=PENDING", "-o", "%i %V %r"],
                env=env, capture_output=True, text=True,
            )  # fmt: skip
            for line in queue.stdout.splitlines():
                job, requeued, reason = line.split(maxsplit=2)
                if reason == "BeginTime" and seconds_since(requeued) >= 2:
                    command = ["scontrol", "update", f"JobId={job}", "StartTime=now"]
                    subprocess.run(command, env=env, capture_output=True)

    watcher = threading.Thread(target=release, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def seconds_since(timestamp: str) -> float:
    """Seconds since a time as squeue prints it (%V: 2026-12-07T14:43:36, local time)."""
    return time.time() - time.mktime(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%S"))


@contextlib.contextmanager
def order_watch(last: Path, samples: int, epochs: int) -> Iterator[SimpleNamespace]:
    """While the block runs: every last.pt written at `last` is read (its mtime polled); the
    namespace yielded counts them (`read`) and names each whose batch order is not where its
    epochs put it (`misplaced`). A run of DIGITS draws one permutation of its `samples` training
    samples an epoch from a generator seeded with its seed (0), and nothing else from it: a
    last.pt of E whole epochs holds that generator after E draws, one stopped in epoch E + 1
    after E + 1, with that epoch's permutation. (One requeued run in 40 ended with other
    weights, its losses those of another batch order from epoch 1128 on: this says whether a
    last.pt it read held one.)"""
    import threading

    order = torch.Generator().manual_seed(0)
    states, permutations = [order.get_state()], [torch.empty(0)]
    for _ in range(epochs):
        permutations.append(torch.randperm(samples, generator=order))
        states.append(order.get_state())
    seen = SimpleNamespace(read=0, misplaced=[])
    done = threading.Event()

    def check(content: dict) -> str | None:
        partial = content["in_progress"]
        begun = content["epoch"] + (partial is not None)
        where = f"batch {partial['batches']} of epoch {begun}" if partial else f"epoch {begun}"
        if not torch.equal(content["order"], states[begun]):
            return f"{where}: its order generator is not after {begun} draws"
        if partial and not torch.equal(partial["permutation"], permutations[begun]):
            return f"{where}: its permutation is not epoch {begun}'s"
        return None

    def watch() -> None:
        stamp = None
        while not done.wait(0.02):
            try:
                written = last.stat().st_mtime_ns
                if written == stamp:
                    continue
                stamp = written
                problem = check(torch.load(last, weights_only=True))
                seen.read += 1
            except FileNotFoundError:  # not written yet
                continue
            except Exception as error:  # last.pt is replaced whole: always readable
                problem = f"last.pt unreadable: {error!r}"
            seen.misplaced.extend([problem] if problem else [])

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        done.set()
        watcher.join()


ONE_CPU = ["hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1", "hydra.sweep.dir=sweep"]


def single_job(sweep_dir: Path) -> str:
    """The Slurm job id of a sweep of one job (not an array)."""
    (job,) = (folder for folder in (sweep_dir / ".submitit").iterdir() if folder.is_dir())
    return job.name


@pytest.fixture(scope="module")
def survivors(cluster: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Side by side on the cluster: "requeue", one job that trains longer than its 1-minute
    time limit (signalled 1 to 31 s ahead); "preempt", one job sent what a preemption sends it
    where PreemptParameters=send_user_signal: `scancel --signal=USR2` to its steps, as
    slurm-local has no preemption configured; "retry", a sweep with sweep.retries=1 whose job
    0 is SIGKILLed once it saved an epoch and whose job 1 fails on its config (a batch of 4096
    with drop_last: no batch);
    "fail_fast", a sweep with sweep.fail_fast=true (and sweep.retries=1) whose job 0 fails on
    its config while jobs 1 and 2 would train for minutes; and on this machine, the
    uninterrupted runs of the first three's configs ("reference": job 0 REQUEUED's, job 1
    SHORT's), one after the other."""
    root = tmp_path_factory.mktemp("survivors")
    launcher = ["-m", "hydra/launcher=slurm", *ONE_CPU]
    start = time.monotonic()
    limit = ["hydra.launcher.timeout_min=1", "hydra.launcher.signal_delay_s=1"]
    limit += ["hydra.launcher.max_num_timeout=30"]  # requeues enough on a busy machine
    requeue = submit(root / "requeue", cluster, *launcher, *limit, *DIGITS, BATCH, REQUEUED)
    preempt = submit(root / "preempt", cluster, *launcher, *DIGITS, BATCH, SHORT)
    batches = "trainer.batch_size=8,4096"  # job 1 fails as it trains
    retry = submit(root / "retry", cluster, *launcher, "sweep.retries=1", *DIGITS, SHORT, batches)
    fails = ["sweep.fail_fast=true", "sweep.retries=1", *DIGITS, "dataset.limit=200"]
    fails += ["trainer.batch_size=4096,8,16", "trainer.epochs=3000"]
    fail_fast = submit(root / "fail_fast", cluster, *launcher, *fails)
    both = ["-m", *DIGITS, BATCH, f"{REQUEUED},100", "hydra.sweep.dir=sweep"]
    reference = submit(root / "reference", cluster, *both)
    started = {"requeue": requeue, "preempt": preempt, "retry": retry, "fail_fast": fail_fast}
    try:
        requeued_last = root / "requeue" / "sweep" / "0" / "last.pt"
        with release_requeued(cluster), order_watch(requeued_last, 1293, 1300) as orders:
            preempted, retried = root / "preempt" / "sweep", root / "retry" / "sweep" / "0"

            def preempt_it() -> None:
                preemption = ["scancel", "--signal=USR2", single_job(preempted)]
                subprocess.run(preemption, env=cluster, check=True)

            def kill_it() -> None:
                os.kill(holder(retried / ".lock"), signal.SIGKILL)  # as the OOM killer would

            as_each_saved(
                {
                    preempted / "0" / "last.pt": (preempt_it, preempt),
                    retried / "last.pt": (kill_it, retry),
                }
            )
            everyone = {**started, "reference": reference}
            results = {
                name: ended(job, root / name, REQUEUE_TIMEOUT) for name, job in everyone.items()
            }
            seconds = time.monotonic() - start  # the requeue job's, the last to end
    finally:
        stop_all([*started.values(), reference], root, cluster)
    return SimpleNamespace(root=root, requeue_s=seconds, orders=orders, **results)


def sweep_rows(sweep_dir: Path) -> dict[str, dict[str, str]]:
    return {row["job"]: row for row in read_csv_rows(sweep_dir / "sweep.csv")}


def divergence(job: Path, reference: Path) -> str:
    """Where a requeued job's record first parts from its reference's: the first metrics.csv
    row whose figures differ, then its stops and resumes (`stops_and_resumes`)."""

    def figures(row: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in row.items() if k not in ("train_seconds", "epoch_seconds")}

    pairs = zip(*(read_csv_rows(run / "metrics.csv") for run in (job, reference)), strict=False)
    first = next((f"{a} != {b}" for a, b in pairs if figures(a) != figures(b)), "no row differs")
    return f"{first}\n{stops_and_resumes(job)}"


def stops_and_resumes(job: Path) -> str:
    """Every stop, resume and warning in a job's logs (ours and submitit's), for the CI's
    output: the test's folders do not outlive it."""
    events = ("saved", "resuming", "SIGUSR2", "SIGTERM", "error", "warning", "submitit", "CANCEL")
    logs = [job / "train.log", *sorted((job.parent / ".submitit").glob("*/*_log.err"))]
    lines = [line for log in logs for line in log.read_text().splitlines()]
    return "\n".join(line for line in lines if any(e in line for e in events))


def test_a_job_past_its_time_limit_is_requeued_and_resumes_to_the_uninterrupted_weights(
    survivors: SimpleNamespace,
) -> None:
    requeue = survivors.requeue
    assert requeue.code == 0, requeue.err
    job = survivors.root / "requeue" / "sweep" / "0"
    summary = read_summary(job)
    reference = read_summary(survivors.root / "reference" / "sweep" / "0")
    assert summary["status"] == "completed" and summary["epochs"] == 1300
    same = summary["weights_sha256"] == reference["weights_sha256"]
    misplaced = "\n".join(survivors.orders.misplaced)
    assert same, f"{divergence(job, survivors.root / 'reference' / 'sweep' / '0')}\n{misplaced}"
    # Every last.pt it wrote (one an epoch, and one at each stop) held the order it should.
    assert survivors.orders.read > 1000 and not misplaced, misplaced
    # Requeued at least once, each start of it the same Slurm job restarted.
    requeues = summary["requeues"]
    assert requeues >= 2 and summary["tries"] == requeues + 1
    assert summary["slurm_job"]["restarts"] == requeues
    log = (job / "train.log").read_text()
    # Each resume found last.pt's batch order the one the seed draws (else it says so and
    # trains on in the seed's: lifecycle.run.keep_seeded_order).
    assert "the batch order in last.pt is not" not in log, stops_and_resumes(job)
    stopped = "error: interrupted by SIGUSR2 (Slurm's time limit is near, or the job was preempted)"
    assert log.count(stopped) == log.count("resuming after") == requeues
    row = sweep_rows(job.parent)["0"]
    assert (row["tries"], row["requeues"]) == (str(requeues + 1), str(requeues))
    print(f"requeue: {survivors.requeue_s:.0f} s, {requeues} requeues, weights as uninterrupted,")
    print(f"{survivors.orders.read} of its last.pt read, each with the batch order it should")


def test_a_preempted_job_is_requeued_and_resumes_to_the_uninterrupted_weights(
    survivors: SimpleNamespace,
) -> None:
    preempt = survivors.preempt
    assert preempt.code == 0, preempt.err
    summary = read_summary(survivors.root / "preempt" / "sweep" / "0")
    reference = read_summary(survivors.root / "reference" / "sweep" / "1")
    assert (summary["status"], summary["tries"], summary["requeues"]) == ("completed", 2, 1)
    assert summary["weights_sha256"] == reference["weights_sha256"]
    assert summary["resumed_at"][0] >= 1


def test_a_killed_job_is_retried_and_one_that_failed_on_its_config_is_not(
    survivors: SimpleNamespace,
) -> None:
    retry = survivors.retry
    assert retry.code == 1, retry.err  # job 1 failed
    sweep_dir = survivors.root / "retry" / "sweep"
    killed, failed = read_summary(sweep_dir / "0"), read_summary(sweep_dir / "1")
    reference = read_summary(survivors.root / "reference" / "sweep" / "1")
    assert (killed["status"], killed["tries"], killed["requeues"]) == ("completed", 2, 0)
    assert killed["weights_sha256"] == reference["weights_sha256"]
    assert (failed["status"], failed["tries"]) == ("failed", 1)
    retries = [line for line in retry.err.splitlines() if "retry " in line]
    assert len(retries) == 1 and "retry 1 of 1: job 0, as it ended without a result" in retries[0]
    # Job 1's failure was said as the launcher saw it, before the retry; and in the report.
    said = [i for i, line in enumerate(retry.err.splitlines()) if "job 1 failed: " in line]
    assert said and said[0] < retry.err.splitlines().index(retries[0]), retry.err
    assert "the sweep goes on" in retry.err.splitlines()[said[0]]
    rows = sweep_rows(sweep_dir)
    assert [(rows[j]["status"], rows[j]["tries"]) for j in "01"] == [
        ("completed", "2"),
        ("failed", "1"),
    ]


def test_fail_fast_cancels_the_sweep_at_its_first_failure_and_retries_nothing(
    survivors: SimpleNamespace,
) -> None:
    fail_fast = survivors.fail_fast
    assert fail_fast.code == 1, fail_fast.err
    sweep_dir = survivors.root / "fail_fast" / "sweep"
    assert read_summary(sweep_dir / "0")["status"] == "failed"
    cancelled = [line for line in fail_fast.err.splitlines() if "cancelling job(s)" in line]
    assert len(cancelled) == 1 and "job 0 failed (sweep.fail_fast): " in cancelled[0]
    # Job 1 may have read job 0's fail_fast.json and stopped on its own before the launcher's
    # look; job 2 waits behind the other sweeps' jobs.
    assert re.search(r"cancelling job\(s\) (1, )?2 \(Slurm (\d+_1, )?\d+_2\)$", cancelled[0])
    assert "retry " not in fail_fast.err
    others = [
        read_summary(job)
        for job in (sweep_dir / "1", sweep_dir / "2")
        if (job / "summary.json").exists()
    ]
    assert all(summary["status"] == "interrupted" for summary in others), others
    # The report has every job: one cancelled before it started as `not started`, which the
    # launcher recorded for it.
    rows = sweep_rows(sweep_dir)
    assert sorted(rows) == ["0", "1", "2"] and rows["0"]["status"] == "failed", rows
    for job in ("1", "2"):
        ran = (sweep_dir / job / "summary.json").exists()
        assert rows[job]["status"] == ("interrupted" if ran else "not started"), rows[job]
