"""multiclass-lr-find [--start LR] [--end LR] [--steps N] [overrides]: the learning-rate range
test on the run the overrides describe (composed as multiclass-train composes it). Its model
trains from its initial weights for --steps optimizer steps (default 100) with an lr growing
exponentially from --start (1e-07) to --end (10), and stops early once the smoothed loss
passes 4 times its best. Prints the suggested lr as the override to give multiclass-train
(the valley's: halfway along the longest fall of the smoothed loss, fastai's default; and
where it falls fastest, fastai's steep), and writes lr_find.png (loss against lr, log x,
both marked) and lr_find.csv (every step) into outputs/lr_find/<date>/<time>, or
hydra.run.dir. Nothing of the run is changed: its weights and its order of batches are as
a train run would start them."""

import argparse
import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from multiclass.commands.exits import command_parser, exit_on_error
from multiclass.device import openmp

RUN_DIR = "hydra.run.dir="
LOG_FORMAT = "[%(asctime)s][%(levelname)s] %(message)s"  # multiclass-train's


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = command_parser("multiclass-lr-find", __doc__)
    parser.add_argument("--start", type=float, default=1e-7, help="the first lr (default 1e-07)")
    parser.add_argument("--end", type=float, default=10.0, help="the last lr (default 10)")
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps (default 100)")
    parser.add_argument(
        "overrides", nargs="*", default=[], help="as multiclass-train's, e.g. model=cnn"
    )
    return parser.parse_intermixed_args(argv)


def output_folder(overrides: list[str]) -> tuple[Path, list[str]]:
    """hydra.run.dir if given (taken out of the overrides), else outputs/lr_find/<date>/<time>
    as runs are named."""
    given = [o for o in overrides if o.startswith(RUN_DIR)]
    rest = [o for o in overrides if not o.startswith(RUN_DIR)]
    if given:
        return Path(given[-1].removeprefix(RUN_DIR)), rest
    now = datetime.now()
    return Path("outputs/lr_find", now.strftime("%Y-%m-%d"), now.strftime("%H-%M-%S-%f")), rest


def composed(overrides: list[str]):
    """The config multiclass-train would run; a bad override or value is the same one line."""
    from hydra.errors import HydraException

    from multiclass.config import compose_config
    from multiclass.errors import UserError
    from multiclass.validation import check_config

    try:
        cfg = compose_config(*overrides)
    except HydraException as error:  # no such key or option: Hydra's text, without its paths
        text = " ".join(str(error).split())
        raise UserError(text.split(" Config search path")[0]) from None
    check_config(cfg)
    return cfg


def find(args: argparse.Namespace) -> None:
    from multiclass.config import trainer_settings
    from multiclass.errors import UserError, full_tracebacks, one_line, says_where
    from multiclass.lifecycle import lr_range
    from multiclass.lifecycle.build import build
    from multiclass.lifecycle.distributed import Processes
    from multiclass.records.artifacts import shown_path, writable_folder

    span = lr_range.Span(args.start, args.end, args.steps)
    out_dir, overrides = output_folder(args.overrides)
    cfg = composed(overrides)
    settings = trainer_settings(cfg)
    existed = out_dir.exists()
    writable_folder(out_dir, "hydra.run.dir")
    try:
        built = build(cfg, settings, {}, Processes())
        curve = lr_range.range_test(built, settings, span, cfg.seed)
        suggestion = lr_range.suggest(curve)
    except BaseException as error:
        if not existed and not any(out_dir.iterdir()):
            out_dir.rmdir()  # nothing left behind but what was there
        if isinstance(error, Exception) and says_where(error) and not full_tracebacks():
            raise UserError(one_line(error)) from error  # as multiclass-train says it
        raise
    lr_range.write_outputs(suggestion, out_dir)
    for line in lr_range.report_lines(suggestion, span):
        print(line)
    print(f"-> {shown_path(out_dir)} (lr_find.png, lr_find.csv)")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)  # before the imports that load torch: --help stays quick
    openmp.set_wait_policy()  # before torch loads OpenMP, as multiclass-train does
    logging.basicConfig(format=LOG_FORMAT, level=logging.INFO)  # build's lines, on stderr
    exit_on_error(find, args)


if __name__ == "__main__":
    main()
