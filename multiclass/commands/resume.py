"""multiclass-resume DIR [overrides]: continue a run, or a whole sweep, in its own directory.

A run goes on from its last.pt (written after every epoch) with the config it saved, and ends
with the weights and metrics it would have had without the interruption; `trainer.epochs=N`
trains it longer. A sweep is launched again with its own overrides and launcher: completed
jobs are skipped, interrupted ones resume, jobs that never started start.
Same as `multiclass-train resume=DIR` (add `-m` and the sweep's overrides for a sweep).
"""

import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

LOCATION_KEYS = ("hydra.run.dir", "hydra.sweep.dir", "resume")


def sweep_arguments(sweep_dir: Path) -> list[str]:
    """`-m` and the overrides a sweep was launched with (multirun.yaml), where it was one."""
    try:
        saved = yaml.safe_load((sweep_dir / "multirun.yaml").read_text())["hydra"]["overrides"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return []
    kept = [o for o in saved["hydra"] + saved["task"] if o.split("=")[0] not in LOCATION_KEYS]
    return ["-m", *kept]


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-") or "=" in args[0]:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        sys.exit(2)
    target = Path(args[0])
    if not target.is_dir():
        print(f"error: nothing to resume: {target} is not a directory", file=sys.stderr)
        sys.exit(1)
    from multiclass.commands.train import main as train

    sys.argv = ["multiclass-train", *sweep_arguments(target), f"resume={target}", *args[1:]]
    train()


if __name__ == "__main__":
    main()
