"""Which directory of a sweep folder a job writes into: never one that holds another job's run.

Hydra puts job N of a sweep into `<hydra.sweep.dir>/<hydra.sweep.subdir>`, and computes that in
the job's own process (hydra.core.utils.run_job, under every launcher: basic, joblib, submitit,
and the search's trials, numbered by trial). conf/train.yaml sets the subdir to the resolver
this module registers, `${job_subdir:${hydra.sweep.dir},${hydra.job.num},${hydra.overrides.task}}`:

- a job is its overrides, less the keys that say where it is launched (`hydra.*`, `resume`),
  as a job directory's .hydra/overrides.yaml has them; a resuming job (`resume=` among its
  overrides) is also the same job with other values of the keys a resume may change
  (RESUMABLE_KEYS: `trainer.epochs=N` trains it longer), and no other;
- job N goes into directory N if N holds the same job (the same sweep again, a requeue or a
  retry of it), else, if it resumes (`resume=` among its overrides: multiclass-resume, a
  requeue), into the directory that holds it, else into N if N is free, else into the
  directory that holds it, else into a new one numbered after the highest in the folder.

A number is claimed by creating its directory (os.mkdir, which one process alone can do), with
the job's overrides in its .hydra/overrides.yaml at once, so jobs running in parallel never
take the same one, and a resumed job that never started (Hydra writes no .hydra/ for a resume)
is known next time too.
"""

from collections.abc import Iterable
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from multiclass.records.artifacts import write_atomic
from multiclass.settings import RESUMABLE_KEYS

RESOLVER = "job_subdir"
OVERRIDES = Path(".hydra") / "overrides.yaml"  # what a job directory holds, as Hydra wrote it


def override_key(override: str) -> str:
    """`+model.depth=2` -> `model.depth`; `~key` and `++key` by their key too."""
    return override.split("=", 1)[0].lstrip("+~")


def says_where(key: str, resuming: bool) -> bool:
    """A key that says where a job is launched (or, for a resume, one a resume may change),
    not what it trains: a sweep that differs in trainer.epochs alone is another sweep, whose
    jobs must not retrain the earlier ones in place."""
    if key.startswith(("hydra.", "hydra/")) or key == "resume":
        return True
    return resuming and any(key == k or key.startswith(f"{k}.") for k in RESUMABLE_KEYS)


def resumes(overrides: Iterable[str]) -> bool:
    return "resume" in map(override_key, overrides)


def job_identity(overrides: Iterable[str], resuming: bool = False) -> tuple[str, ...]:
    """What makes a job the job it is: its overrides but the ones that say where it runs, in
    any order."""
    kept = (o for o in map(str, overrides) if not says_where(override_key(o), resuming))
    return tuple(sorted(kept))


def held_job(job_dir: Path, resuming: bool = False) -> tuple[str, ...] | None:
    """The job a directory holds; None where it holds none that can be read."""
    try:
        overrides = yaml.safe_load((job_dir / OVERRIDES).read_text())
    except (OSError, yaml.YAMLError):
        return None
    return job_identity(overrides, resuming) if isinstance(overrides, list) else None


def numbered_dirs(sweep_dir: Path) -> list[int]:
    """The numbers of the job directories in a sweep folder, lowest first."""
    try:
        names = [path.name for path in sweep_dir.iterdir() if path.is_dir()]
    except OSError:
        return []
    return sorted(int(name) for name in names if name.isdigit() and str(int(name)) == name)


def directory_of(sweep_dir: Path, identity: tuple[str, ...], resuming: bool) -> int | None:
    """The lowest-numbered directory that holds the job."""
    held = (
        n for n in numbered_dirs(sweep_dir) if held_job(sweep_dir / str(n), resuming) == identity
    )
    return next(held, None)


def claim(sweep_dir: Path, number: int, overrides: list[str]) -> bool:
    """Take `number` if no job has it: its directory made, the job's overrides written in it."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    job_dir = sweep_dir / str(number)
    try:
        job_dir.mkdir()
    except FileExistsError:
        return False
    (job_dir / OVERRIDES.parent).mkdir()
    write_atomic(job_dir / OVERRIDES, OmegaConf.to_yaml(OmegaConf.create(overrides)))
    return True


def claim_next(sweep_dir: Path, overrides: list[str]) -> int:
    """A new number, after the highest in the folder (a parallel job may take it first)."""
    while True:
        number = max(numbered_dirs(sweep_dir), default=-1) + 1
        if claim(sweep_dir, number, overrides):
            return number


def job_number(sweep_dir: Path, number: int, overrides: list[str]) -> int:
    """The directory number of job `number` with these overrides (see the module's doc)."""
    resuming = resumes(overrides)
    identity = job_identity(overrides, resuming)
    if held_job(sweep_dir / str(number), resuming) == identity:
        return number
    if resuming and (found := directory_of(sweep_dir, identity, resuming)) is not None:
        return found
    if claim(sweep_dir, number, overrides):  # a first sweep's jobs read no other directory
        return number
    found = directory_of(sweep_dir, identity, resuming)
    return found if found is not None else claim_next(sweep_dir, overrides)


def job_subdir(sweep_dir: str, number: int, overrides: Iterable[str]) -> str:
    """The resolver: hydra.sweep.subdir of a job, evaluated in its own process."""
    return str(job_number(Path(str(sweep_dir)), int(number), [str(o) for o in overrides]))


# Cached per config, so a job's subdir reads the same however often it is resolved; a second
# evaluation in a fresh config finds the directory the first one claimed.
OmegaConf.register_new_resolver(RESOLVER, job_subdir, use_cache=True)
