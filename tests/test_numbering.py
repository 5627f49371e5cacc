"""Numbering that never overwrites (multiclass/sweeps/numbering.py): sweeps run in-process
into one folder, then multiclass-resume of it; job numbers claimed in parallel through joblib."""

import csv
import json
import sys
import time
from pathlib import Path

import pytest
import yaml

from multiclass.sweeps.numbering import job_identity, job_number, job_subdir

# The commands and tests.conftest load torch: imported where the sweeps run, so that the joblib
# workers of test_jobs_numbered_in_parallel_never_share_a_number, which import this module for
# claim_many, start without it.
SMALL = ["dataset.limit=200", "trainer.epochs=1"]
FIRST = ["model.depth=1,2"]  # jobs 0 and 1
OTHER = ["model.depth=3,4"]  # the same folder, other values: jobs 2 and 3


def sweep(monkeypatch: pytest.MonkeyPatch, sweep_dir: Path, *overrides: str) -> None:
    """`multiclass-train -m <overrides>` into sweep_dir, in this process."""
    from multiclass.commands import train
    from tests.conftest import QUIET

    argv = ["multiclass-train", "-m", *overrides, *QUIET, *SMALL, f"hydra.sweep.dir={sweep_dir}"]
    monkeypatch.setattr(sys, "argv", argv)
    train.main()


def jobs(sweep_dir: Path) -> dict[int, str]:
    """Each job directory's number and the model.depth it trained."""
    numbered = [p for p in sweep_dir.iterdir() if p.name.isdigit()]
    depth = {p: yaml.safe_load((p / "config.yaml").read_text())["model"]["depth"] for p in numbered}
    return {int(p.name): depth[p] for p in sorted(numbered, key=lambda p: int(p.name))}


def summary(job_dir: Path) -> dict:
    return json.loads((job_dir / "summary.json").read_text())


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One folder through its history: a sweep, the same again, one with other values, then
    multiclass-resume of it with one epoch more; what each step left."""
    from multiclass.commands import resume
    from tests.conftest import files_of

    sweep_dir = tmp_path_factory.mktemp("numbering") / "sweep"
    seen: dict = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        sweep(monkeypatch, sweep_dir, *FIRST)
        seen["first"] = jobs(sweep_dir)
        seen["first_hydra_num"] = [
            yaml.safe_load((sweep_dir / n / ".hydra/hydra.yaml").read_text())["hydra"]["job"]["num"]
            for n in ("0", "1")
        ]
        sweep(monkeypatch, sweep_dir, *FIRST)
        seen["again"] = jobs(sweep_dir)
        seen["earlier_files"] = {n: files_of(sweep_dir / str(n)) for n in (0, 1)}
        sweep(monkeypatch, sweep_dir, *OTHER)
        seen["other"] = jobs(sweep_dir)
        seen["files_after_other"] = {n: files_of(sweep_dir / str(n)) for n in (0, 1)}
        monkeypatch.setattr(sys, "argv", ["multiclass-resume"])
        resume.main([str(sweep_dir), "trainer.epochs=2"])
    seen["resumed"] = jobs(sweep_dir)
    seen["files_after_resume"] = {n: files_of(sweep_dir / str(n)) for n in (0, 1)}
    seen["dir"] = sweep_dir
    return seen


def test_a_first_sweep_numbers_its_jobs_from_0_as_hydra_does(folder):
    assert folder["first"] == {0: 1, 1: 2}
    assert folder["first_hydra_num"] == [0, 1]


def test_the_same_sweep_again_keeps_its_numbers(folder):
    assert folder["again"] == folder["first"]


def test_other_values_get_numbers_after_the_highest_and_leave_earlier_jobs_as_they_were(folder):
    assert folder["other"] == {0: 1, 1: 2, 2: 3, 3: 4}
    assert folder["files_after_other"] == folder["earlier_files"]


def test_multiclass_resume_resumes_each_job_in_its_own_directory(folder):
    sweep_dir = folder["dir"]
    assert folder["resumed"] == folder["other"]  # no directory more
    for number in (2, 3):  # the last sweep's jobs (multirun.yaml's): one epoch more each
        assert summary(sweep_dir / str(number))["resumed_at"] == [1]
        assert summary(sweep_dir / str(number))["epochs"] == 2
    assert folder["files_after_resume"] == folder["earlier_files"]


def test_the_report_lists_every_job_of_the_folder(folder):
    with open(folder["dir"] / "sweep.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert sorted((int(row["job"]), int(row["model.depth"])) for row in rows) == [
        (0, 1),
        (1, 2),
        (2, 3),
        (3, 4),
    ]


def test_a_job_is_its_overrides_less_where_it_runs_and_a_resume_what_a_resume_may_change():
    launched = ["model.depth=2", "+extra=1", "trainer.epochs=3", "hydra.launcher.n_jobs=2"]
    resumed = ["resume=out/s", "logger.tracking_uri=x", "+extra=1", "model.depth=2", "plots=false"]
    identity = ("+extra=1", "model.depth=2")
    assert job_identity(launched, resuming=True) == job_identity(resumed, resuming=True) == identity
    assert job_identity(launched) == ("+extra=1", "model.depth=2", "trainer.epochs=3")
    assert job_identity(["model.depth=3", "+extra=1"]) != job_identity(launched)


def test_a_sweep_that_differs_in_a_resumable_key_alone_is_another_sweep(tmp_path):
    claimed(tmp_path, 0, ["a=1", "trainer.epochs=3"])
    assert job_number(tmp_path, 0, ["a=1", "trainer.epochs=6"]) == 1  # not retrained in 0
    assert job_number(tmp_path, 0, ["a=1", "trainer.epochs=6", f"resume={tmp_path}"]) == 0


def claimed(sweep_dir: Path, number: int, overrides: list[str]) -> Path:
    assert job_subdir(str(sweep_dir), number, overrides) == str(number)
    return sweep_dir / str(number)


def test_a_resumed_job_finds_its_own_directory_and_a_new_one_never_takes_another(tmp_path):
    claimed(tmp_path, 0, ["a=1"])
    claimed(tmp_path, 1, ["a=2"])
    (tmp_path / "2").mkdir()  # a directory that holds nothing known: not a job's to take
    # a requeue or multiclass-resume adds resume=: Hydra's job 3 (free) still finds a=2's own
    assert job_number(tmp_path, 3, ["a=2", f"resume={tmp_path}"]) == 1
    assert job_number(tmp_path, 0, ["a=3"]) == 3  # 0 holds a=1: after the highest
    assert job_number(tmp_path, 0, ["a=3"]) == 3  # asked again: the same
    assert job_number(tmp_path, 4, ["a=1"]) == 4  # the same job twice in one sweep: its own
    assert job_number(tmp_path, 1, ["a=1", f"resume={tmp_path}"]) == 0
    never_started = job_number(tmp_path, 9, ["a=9", f"resume={tmp_path}"])  # no .hydra/ then
    assert never_started == 9 and job_number(tmp_path, 0, ["a=9"]) == 9
    assert yaml.safe_load((tmp_path / "3" / ".hydra/overrides.yaml").read_text()) == ["a=3"]


def claim_many(sweep_dir: Path, worker: int, count: int) -> list[int]:
    """`count` different jobs, all Hydra's job 0, numbered one after another, once the other
    worker is ready too (joblib starts its workers one by one)."""
    (sweep_dir.parent / f"ready{worker}").touch()
    deadline = time.monotonic() + 60
    while len(list(sweep_dir.parent.glob("ready*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    return [job_number(sweep_dir, 0, [f"worker={worker}", f"job={i}"]) for i in range(count)]


def test_jobs_numbered_in_parallel_never_share_a_number(tmp_path):
    from joblib import Parallel, delayed

    sweep_dir = tmp_path / "sweep"
    claimed(sweep_dir, 0, ["earlier=1"])
    numbers = Parallel(n_jobs=2, backend="loky")(
        delayed(claim_many)(sweep_dir, worker, 40) for worker in range(2)
    )
    everyone = [n for worker in numbers for n in worker]
    assert sorted(everyone) == list(range(1, 81))
