"""multiclass-rerun RUN_DIR [key=value ...]: run again exactly the config a run (or a sweep's
job) used, into a new directory, and say whether it came out the same: identical weights
(`weights_sha256`) and every metrics.csv column but the times (the weights alone, and said so,
for a run without metrics.csv). Exit 0 when reproduced, else 1. It trains on the thread count
the run recorded, unless the config or the command line names one. Where the source commit,
uncommitted changes, library versions, device or threads differ from what the run recorded, it
says so (without failing): they may explain a difference.
A data parallel run (device.processes=N, torchrun's, a Slurm job's tasks) is rerun in as many
processes on this machine, as it trained: rank 0 writes the new run and compares it."""

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import NoReturn

from omegaconf import DictConfig, OmegaConf

from multiclass.commands.exits import command_parser, exit_on_error
from multiclass.device import openmp
from multiclass.errors import UserError

log = logging.getLogger("multiclass")
LOG_FORMAT = "[%(asctime)s][%(levelname)s] %(message)s"
ABSENT = object()


def rerun_config(run_dir: Path, overrides: list[str]) -> DictConfig:
    """The resolved config.yaml the run wrote as it started, with the thread count it trained
    with, and `overrides` of its values."""
    from multiclass.records.artifacts import read_config  # eval's and predict's own check

    if not (run_dir / "config.yaml").is_file() or not (run_dir / "summary.json").is_file():
        raise UserError(f"{run_dir} is not a run directory (no config.yaml and summary.json)")
    cfg = read_config(run_dir / "config.yaml")
    cfg.resume = None
    cfg.device.num_threads = threads_that_trained(run_dir, cfg)
    for override in overrides:
        key, equals, value = override.partition("=")
        current = OmegaConf.select(cfg, key, default=ABSENT) if equals else ABSENT
        if current is ABSENT or isinstance(current, DictConfig):
            raise UserError(f"{override!r}: a rerun changes values of the run's config, key=value")
        OmegaConf.update(cfg, key, OmegaConf.from_dotlist([f"value={value}"]).value)
    return cfg


def threads_that_trained(run_dir: Path, cfg: DictConfig) -> int | None:
    """device.num_threads as the run trained: its summary's `num_threads` where the config
    left the count to the machine (null), which a Slurm job's cpus_per_task or another
    machine's cores would choose otherwise, and sums taken in another order give other
    weights. (An override of device.num_threads still wins.)"""
    from multiclass.records.artifacts import read_json

    configured = cfg.device.get("num_threads")
    recorded = (read_json(run_dir / "summary.json") or {}).get("num_threads")
    if configured is None and isinstance(recorded, int) and recorded > 0:
        return recorded
    return configured


@contextmanager
def logging_into(run_dir: Path) -> Iterator[None]:
    """The run's lines on stderr and in its train.log, as multiclass-train logs them. The
    directory may be there already (`prepare` refused one that was): a data parallel rerun's
    launcher makes it, whose lines (how a rank ended) follow its rank 0's."""
    run_dir.mkdir(parents=True, exist_ok=True)
    train_log = logging.FileHandler(run_dir / "train.log", delay=True)
    handlers = [logging.StreamHandler(sys.stderr), train_log]
    root, level = logging.getLogger(), logging.getLogger().level
    root.setLevel(logging.INFO)
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)


def default_out() -> Path:
    now = datetime.now()
    return Path("outputs") / f"{now:%Y-%m-%d}" / f"{now:%H-%M-%S-%f}-rerun"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Overrides may come before or after --out, as in the other commands."""
    parser = command_parser("multiclass-rerun", __doc__)
    parser.add_argument("run_dir", type=Path, help="a run directory, or one job of a sweep")
    parser.add_argument(
        "overrides", nargs="*", default=[], help="key=value changes to the run's config"
    )
    parser.add_argument("--out", type=Path, help="the new run's directory (default: outputs/...)")
    return parser.parse_intermixed_args(argv)


def prepare(args: argparse.Namespace) -> tuple[DictConfig, Path]:
    """The config to run again and the new directory for it, checked before anything is
    written."""
    out = args.out or default_out()
    cfg = rerun_config(args.run_dir, args.overrides)
    if out.exists():
        raise UserError(f"{out} exists already: a rerun writes into a new directory")
    return cfg, out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    openmp.set_wait_policy()  # before torch loads OpenMP, which reads it once
    if "WORLD_SIZE" in os.environ:  # one of the processes of a data parallel rerun
        rerun_as_rank(args)
    cfg, out = exit_on_error(prepare, args)
    from multiclass.records.artifacts import processes_to_restart

    processes = processes_to_restart(args.run_dir, args.overrides, cfg.device.processes)
    if processes > 1:
        from multiclass.lifecycle.distributed import launch

        module = ["-m", "multiclass.commands.rerun", str(args.run_dir), *args.overrides]
        with logging_into(out):
            code = launch(processes, [*module, "--out", str(out)], out)
        sys.exit(code)
    sys.exit(rerun(cfg, args.run_dir, out))


def rerun(cfg: DictConfig, run_dir: Path, out: Path) -> int:
    """Train `cfg` into `out`, then compare it with `run_dir`: the exit status."""
    from multiclass.lifecycle.run import execute
    from multiclass.records.compare import compare_runs

    with logging_into(out):
        outcome = execute(cfg, out)
        if outcome.status != "completed":
            return outcome.exit_code
        comparison = compare_runs(run_dir, out)
        for note in comparison.provenance:
            log.warning("differs from the original run: %s", note)
    print(comparison.verdict())
    return 0 if comparison.reproduced else 1


def rerun_as_rank(args: argparse.Namespace) -> NoReturn:
    """Join the rerun's other processes; rank 0 reruns into `--out` (which the launcher chose
    and checked), the others train in step with it and write nothing."""
    from multiclass.lifecycle import distributed
    from multiclass.lifecycle.run import execute

    rank = distributed.join_group()
    cfg = rerun_config(args.run_dir, args.overrides)  # the launcher checked it
    if rank == 0:
        distributed.leave(rerun(cfg, args.run_dir, args.out))
    logging.basicConfig(format=LOG_FORMAT)  # its errors, on stderr
    distributed.leave(execute(cfg, args.out).exit_code)


if __name__ == "__main__":
    main()
