"""multiclass-eval RUN_DIR [OVERRIDES...] [--name NAME]: test a trained run's saved model again,
on its own test split (the run's config.yaml rebuilds the data set) or on another data set
given as overrides of the dataset node: `dataset.classes=[3,8]`, `dataset.root=...`, or a
whole option of the group, `dataset=mnist`. Classes are matched by name. Writes
RUN_DIR/eval/NAME/eval.json and confusion_matrix.png, and prints one line."""

import argparse
from collections.abc import Sequence
from pathlib import Path

from multiclass.commands.exits import command_parser, exit_on_error


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = command_parser("multiclass-eval", __doc__)
    parser.add_argument("run_dir", type=Path, help="a run directory (holds model.pt)")
    parser.add_argument(
        "overrides",
        nargs="*",
        default=[],
        help="dataset=NAME or dataset.KEY=VALUE (default: none)",
    )
    parser.add_argument(
        "--name",
        help="the folder under RUN_DIR/eval (default: test, or the overrides made file-safe)",
    )
    parser.add_argument(
        "--checkpoint", default="model.pt", help="the checkpoint in RUN_DIR (default: model.pt)"
    )
    return parser.parse_intermixed_args(argv)


def evaluate(args: argparse.Namespace) -> None:
    from multiclass.inference import load_run
    from multiclass.inference.evaluation import evaluate_run

    run = load_run(args.run_dir, args.checkpoint)
    print(evaluate_run(run, args.overrides, args.name).line())


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)  # before the imports that load torch: --help stays quick
    exit_on_error(evaluate, args)


if __name__ == "__main__":
    main()
