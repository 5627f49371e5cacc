"""Sweeps through Hydra's launcher plugins, each switched on by one option: joblib on this
machine, submitit (its local executor here, and the Slurm script it would submit), Ray.
A test skips when its plugin (an extra of pyproject.toml) is not installed."""

import csv
import json
import os
import re
import stat
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


def test_slurm_yaml_gives_the_sbatch_script_a_user_asked_for(tmp_path, monkeypatch):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    slurm = pytest.importorskip("submitit.slurm.slurm")
    # No cluster: an `srun` to be found and an `sbatch` that only answers with a job id; the
    # launcher then waits for nothing (results patched) but has written the real script.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for name, body in {"srun": "exit 1", "sbatch": 'echo "Submitted batch job 4242"'}.items():
        (fake_bin / name).write_text(f"#!/bin/sh\n{body}\n")
        (fake_bin / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(slurm.SlurmJob, "results", lambda job: [job.job_id])
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
    assert launcher.launch([["model.depth=1"], ["model.depth=2"]], initial_job_idx=0) == [
        "4242_0",
        "4242_1",
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


def test_without_accounting_jobs_are_followed_through_squeue_said_once(
    tmp_path, monkeypatch, caplog, capfd
):
    """hydra/launcher=slurm's watcher, on commands of the test's own: a `sacct` that fails as
    on a cluster without accounting, and a `squeue` that lists one of two jobs."""
    slurm_queue = pytest.importorskip("multiclass.sweeps.slurm_queue")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    scripts = {
        "sacct": "echo 'Slurm accounting storage is disabled' >&2; exit 1",
        "squeue": "echo '77_0|RUNNING|vm'; echo '78_0|PENDING|'",
    }
    for name, body in scripts.items():
        (fake_bin / name).write_text(f"#!/bin/sh\n{body}\n")
        (fake_bin / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    watcher = slurm_queue.QueueWatcher(delay_s=600)
    for job in ("77_0", "77_1"):
        watcher.register_job(job)
    assert watcher.get_state("77_0") == "RUNNING" and not watcher.is_done("77_0", mode="cache")
    # 77_1 is no longer in the queue: it ended, without a state to say how
    assert watcher.get_state("77_1", mode="force") == "NOT_LISTED"
    assert watcher.is_done("77_1", mode="cache")
    assert watcher.get_state("78_0") == "PENDING" and not watcher.is_done("78_0", mode="cache")
    said = [r.getMessage() for r in caplog.records if "sacct" in r.getMessage()]
    assert len(said) == 1 and "the jobs' states come from squeue" in said[0]
    assert "accounting storage" not in capfd.readouterr().err  # sacct's own line, kept
