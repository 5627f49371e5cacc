"""multiclass-resume DIR [overrides]: continue a run, or a whole sweep, in its own directory.

A run goes on from its last.pt (written after every epoch) with the config it saved, and ends
with the weights and metrics it would have had without the interruption; `trainer.epochs=N`
trains it longer. A sweep is launched again with its own overrides and launcher: completed
jobs are skipped, interrupted ones resume, jobs that never started start.
Same as `multiclass-train resume=DIR` (add `-m` and the sweep's overrides for a sweep).
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from multiclass.commands.exits import command_parser, exit_on_error
from multiclass.errors import UserError

LOCATION_KEYS = ("hydra.run.dir", "hydra.sweep.dir", "resume")


def sweep_arguments(sweep_dir: Path) -> list[str]:
    """`-m` and the overrides a sweep was launched with (multirun.yaml), where it was one."""
    try:
        saved = yaml.safe_load((sweep_dir / "multirun.yaml").read_text())["hydra"]["overrides"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return []
    kept = [o for o in saved["hydra"] + saved["task"] if o.split("=")[0] not in LOCATION_KEYS]
    return ["-m", *kept]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = command_parser("multiclass-resume", __doc__)
    parser.add_argument("target", metavar="DIR", type=Path, help="a run or sweep directory")
    parser.add_argument(
        "overrides",
        nargs="*",
        default=[],
        metavar="key=value",
        help="trainer.epochs=N to train longer, or a sweep's further overrides",
    )
    return parser.parse_intermixed_args(argv)


def check_resumable(target: Path) -> None:
    """A directory whose saved configs (its own, or a sweep's jobs') all read: a damaged
    config.yaml is one line naming it, before Hydra writes anything into the directory."""
    if not target.is_dir():
        raise UserError(f"nothing to resume: {target} is not a directory")
    from multiclass.records.artifacts import read_config  # eval's and predict's own check

    jobs = sorted(target.glob("*/config.yaml")) if (target / "multirun.yaml").is_file() else []
    for path in [target / "config.yaml", *jobs]:
        if path.is_file():
            read_config(path)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    exit_on_error(check_resumable, args.target)
    from multiclass.commands.train import main as train

    resume = f"resume={args.target}"
    sys.argv = ["multiclass-train", *sweep_arguments(args.target), resume, *args.overrides]
    train()


if __name__ == "__main__":
    main()
