"""multiclass-predict RUN_DIR INPUT... [--out FILE.csv]: a trained run's predictions for image
files (PNG, JPEG) or CSV files of feature rows, as CSV: the input (file, or file:line for a
CSV row), the predicted class, and the probability of every class (p_<class name>).

The CSV goes to stdout, so that a query writes nothing into the run directory and pipes into
other tools, or, with --out, to FILE written whole (write, then rename). Every input is read
before anything is written: a bad one is a one-line error, exit status 1, and no output."""

import argparse
import csv
import io
import sys
from collections.abc import Sequence
from pathlib import Path

from multiclass.commands.exits import command_parser, exit_on_error


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = command_parser("multiclass-predict", __doc__)
    parser.add_argument("run_dir", type=Path, help="a run directory (holds model.pt)")
    parser.add_argument("inputs", nargs="+", type=Path, help="image files or CSV files")
    parser.add_argument("--out", type=Path, help="write the CSV to this file (default: stdout)")
    parser.add_argument(
        "--invert",
        choices=("auto", "yes", "no"),
        default="auto",
        help="make dark strokes on light paper light on dark, as the training images are"
        " (auto: when an image's border is mostly light; default: auto)",
    )
    parser.add_argument(
        "--checkpoint", default="model.pt", help="the checkpoint in RUN_DIR (default: model.pt)"
    )
    return parser.parse_intermixed_args(argv)


def predictions_csv(args: argparse.Namespace) -> tuple[str, int]:
    """The predictions of every input as CSV text, and how many rows it has."""
    from multiclass.inference import load_run
    from multiclass.inference.inputs import read_inputs

    run = load_run(args.run_dir, args.checkpoint)
    inputs = read_inputs(args.inputs, run.input_shape, args.invert, run.preprocess)
    outputs = run.outputs(inputs.x)
    predicted = run.head.predict(outputs).tolist()
    probabilities = run.task.probabilities(outputs).tolist()
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["input", "predicted", *(f"p_{name}" for name in run.class_names)])
    for name, index, row in zip(inputs.names, predicted, probabilities, strict=True):
        writer.writerow([name, run.class_names[index], *(f"{p:.6g}" for p in row)])
    return text.getvalue(), len(predicted)


def predict(args: argparse.Namespace) -> None:
    from multiclass.errors import UserError
    from multiclass.records.artifacts import write_atomic

    if args.out is not None and not args.out.parent.is_dir():
        raise UserError(f"--out {args.out}: no such directory {args.out.parent}")
    text, rows = predictions_csv(args)
    if args.out is None:
        sys.stdout.write(text)
        return
    write_atomic(args.out, text)
    print(f"{rows} predictions -> {args.out}")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)  # before the imports that load torch: --help stays quick
    exit_on_error(predict, args)


if __name__ == "__main__":
    main()
