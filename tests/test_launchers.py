"""Sweeps through Hydra's launcher plugins, each switched on by one option: joblib on this
machine, submitit (its local executor here, and the Slurm script it would submit), Ray.
A test skips when its plugin (an extra of pyproject.toml) is not installed."""

import csv
import json
import logging
import os
import pickle
import re
import stat
from functools import partial
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from multiclass.config import CONFIG_DIR
from tests.conftest import run_cli

SWEEP = (
    "model.depth=1,2",
    "dataset.limit=200",
    "trainer.epochs=1",
    "plots=false",
    "trainer.progress=false",
)
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@pytest.fixture(autouse=True)
def no_inherited_thread_limits(monkeypatch):
    """The jobs' thread counts come from their launcher, not from the shell running the tests."""
    for name in ("OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK", "RAY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)


def sweep_of_two(tmp_path: Path, *overrides: str):
    """Run the two-job sweep with `overrides`; check both jobs and the report at the sweep root.
    Returns the CLI's result, the sweep directory and the two run directories."""
    result = run_cli("-m", *SWEEP, *overrides, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    (sweep_dir,) = (tmp_path / "outputs").glob("*/*")  # outputs/<day>/<time>: one sweep
    run_dirs = sorted(path.parent for path in sweep_dir.rglob("summary.json"))
    assert run_dirs == [sweep_dir / "0", sweep_dir / "1"]
    depths = [yaml.safe_load((d / "config.yaml").read_text())["model"]["depth"] for d in run_dirs]
    assert depths == [1, 2]
    for run_dir in run_dirs:
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    with (sweep_dir / "sweep.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert sorted((row["job"], row["status"]) for row in rows) == [
        ("0", "completed"),
        ("1", "completed"),
    ]
    return result, sweep_dir, run_dirs


def threads(run_dirs: list[Path]) -> list[int]:
    return [json.loads((d / "summary.json").read_text())["num_threads"] for d in run_dirs]


def test_joblib_runs_the_jobs_in_worker_processes_that_share_the_cores(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    from joblib import cpu_count

    result, _, run_dirs = sweep_of_two(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert "Joblib.Parallel(n_jobs=2," in result.stderr
    # loky gives each of its 2 workers OMP_NUM_THREADS = cores // 2; each job sets that many.
    assert threads(run_dirs) == [max(cpu_count() // 2, 1)] * 2


def test_submitit_local_runs_each_job_in_its_own_process(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    # submitit's local executor starts every job at once and grants no cores (it ignores
    # cpus_per_task): each job would take every core, so the sweep sets num_threads itself.
    per_job = max(CORES // 2, 1)
    _, sweep_dir, run_dirs = sweep_of_two(
        tmp_path, "hydra/launcher=submitit_local", f"device.num_threads={per_job}"
    )
    assert threads(run_dirs) == [per_job] * 2
    # hydra.job.id is submitit's job id: here the pid of the process that ran the job, whose
    # own log sits in the sweep's .submitit/<id>/.
    job_ids = [
        yaml.safe_load((d / ".hydra/hydra.yaml").read_text())["hydra"]["job"]["id"]
        for d in run_dirs
    ]
    assert len(set(job_ids)) == 2 and all(job_id.isdigit() for job_id in job_ids)
    for job_id, run_dir in zip(job_ids, run_dirs, strict=True):
        assert (sweep_dir / ".submitit" / job_id / f"{job_id}_0_result.pkl").is_file()
        # Submitit's lines as the job's function returns are its log's, not the run's record
        # (they said "Job completed successfully" after a run that scancel interrupted too).
        own_log = (sweep_dir / ".submitit" / job_id / f"{job_id}_0_log.out").read_text()
        assert "Job completed successfully" in own_log
        assert "Job completed" not in (run_dir / "train.log").read_text()


@pytest.mark.cluster  # it starts a Ray cluster (head, raylet, workers): make test-cluster
def test_ray_local_starts_a_ray_and_runs_each_job_in_a_ray_worker(tmp_path, monkeypatch):
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    result, _, run_dirs = sweep_of_two(
        tmp_path,
        "hydra/launcher=ray_local",
        "hydra.launcher.ray.init.address=local",  # a Ray of its own, whatever else runs here
    )
    assert "'object_store_memory': None" in result.stderr  # not the plugin's forced 75 MiB
    # Ray tags each line a worker logs with its pid: one worker process per job.
    pid_of = dict(
        (Path(run_dir).name, pid)
        for pid, run_dir in re.findall(r"\(_run_job pid=(\d+)\).*test_acc.*-> (\S+)", result.stderr)
    )
    assert sorted(pid_of) == ["0", "1"] and len(set(pid_of.values())) == 2
    # A job asks Ray for 1 CPU; Ray runs cores // 1 jobs at once, each with OMP_NUM_THREADS=1.
    assert threads(run_dirs) == [1, 1]


def fake_commands(folder: Path, monkeypatch, **scripts: str) -> None:
    """Shell scripts named as Slurm's commands, found first on PATH."""
    folder.mkdir(exist_ok=True)
    for name, body in scripts.items():
        (folder / name).write_text(f"#!/bin/sh\n{body}\n")
        (folder / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def test_slurm_yaml_gives_the_sbatch_script_a_user_asked_for(tmp_path, monkeypatch, caplog):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    slurm_queue = pytest.importorskip("multiclass.sweeps.slurm_queue")
    # No cluster: an `srun` to be found, an `sbatch` that only answers with a job id, no
    # accounting and a queue that lists nothing: the jobs ended without a result at once.
    fake_commands(
        tmp_path / "bin",
        monkeypatch,
        srun="exit 1",
        sbatch='echo "Submitted batch job 4242"',
        sacct="exit 1",
        squeue="exit 0",
    )
    monkeypatch.setattr(slurm_queue, "results", partial(slurm_queue.results, grace_s=0))
    monkeypatch.chdir(tmp_path)

    overrides = [
        "hydra/launcher=slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.gpus_per_node=1",
        "hydra.launcher.cpus_per_task=6",
        "+hydra.launcher.use_srun=false",  # not in the plugin's schema: needs the +
    ]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    assert cfg.hydra.launcher.partition == "gpu" and cfg.hydra.launcher.gpus_per_node == 1
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    returned = launcher.launch([["model.depth=1"], ["model.depth=2"]], initial_job_idx=0)
    # Each as a run that did not complete returns, for the sweep's report to tell.
    assert [(r.overrides, r.status.name) for r in returned] == [
        (["model.depth=1"], "COMPLETED"),
        (["model.depth=2"], "COMPLETED"),
    ]
    gone = [r.getMessage() for r in caplog.records if "without a result" in r.getMessage()]
    assert [line.split(" ended")[0] for line in gone] == [
        "error: Slurm job 4242_0",
        "error: Slurm job 4242_1",
    ]

    (script,) = (tmp_path / "outputs").rglob("4242_submission.sh")
    assert script.parent.parent.name == ".submitit"  # under the sweep directory
    text = script.read_text()
    for flag in (
        "array=0-1%2",
        "partition=gpu",
        "gpus-per-node=1",
        "cpus-per-task=6",
        "mem=8GB",
        "time=60",
        "job-name=train",
    ):
        assert f"#SBATCH --{flag}\n" in text, flag
    assert "-m submitit.core._submit" in text and "srun" not in text


def finished(job, result: object) -> None:
    """Writes the result file a job's process writes as it returns (submitit's format)."""
    job.paths.result_pickle.parent.mkdir(parents=True, exist_ok=True)
    job.paths.result_pickle.write_bytes(pickle.dumps(("success", result)))


def test_without_accounting_jobs_are_followed_through_squeue_said_once(
    tmp_path, monkeypatch, caplog, capfd
):
    """hydra/launcher=slurm's wait, on commands of the test's own: a `sacct` that fails as on
    a cluster without accounting, and a `squeue` that lists 77_1 as running the first time it
    is asked and no longer after, and 78_0 as failed."""
    slurm_queue = pytest.importorskip("multiclass.sweeps.slurm_queue")
    from submitit import SlurmJob

    asked = tmp_path / "asked"
    fake_commands(
        tmp_path / "bin",
        monkeypatch,
        sacct="echo 'Slurm accounting storage is disabled' >&2; exit 1",
        squeue=f"""echo x >> {asked}
            [ "$(wc -l < {asked})" = 1 ] && echo '77_1|RUNNING|vm'
            echo '78_0|FAILED|vm'; echo '79_[0-3%2]|PENDING|'""",
    )
    folder = tmp_path / ".submitit" / "%j"
    jobs = [SlurmJob(folder=folder, job_id=job_id) for job_id in ("77_0", "77_1", "78_0")]
    finished(jobs[0], "trained")
    assert slurm_queue.results(jobs, grace_s=0) == ["trained", None, None]
    assert len(asked.read_text().splitlines()) == 2  # at 0 s, and 2 s after
    gone = [r.getMessage() for r in caplog.records if "without a result" in r.getMessage()]
    assert [line.split(" without")[0] for line in gone] == [
        "error: Slurm job 77_1 ended (NOT_LISTED)",  # no longer in the queue: it ended
        "error: Slurm job 78_0 ended (FAILED)",
    ]
    said = [r.getMessage() for r in caplog.records if "sacct" in r.getMessage()]
    assert len(said) == 1 and "the jobs' states come from squeue" in said[0]
    assert "accounting storage" not in capfd.readouterr().err  # sacct's own line, kept


def test_with_accounting_submitit_follows_the_jobs_and_squeue_is_not_asked(
    tmp_path, monkeypatch, caplog
):
    slurm_queue = pytest.importorskip("multiclass.sweeps.slurm_queue")
    from submitit import SlurmJob

    fake_commands(tmp_path / "bin", monkeypatch, sacct="echo 'JobID|State'", squeue="exit 1")
    jobs = [SlurmJob(folder=tmp_path / "%j", job_id=job_id) for job_id in ("80_0", "80_1")]
    for job, result in zip(jobs, ("a", "b"), strict=True):
        finished(job, result)
    assert slurm_queue.results(jobs) == ["a", "b"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
