"""multiclass-export RUN_DIR --format onnx|torchscript [--out DIR]: a trained run's model as a
file that runs without this package, and what a user must know to use it.

Writes RUN_DIR/export/FORMAT/ (or DIR): model.onnx (torch's ONNX exporter, a dynamic batch
dimension) or model.ts (TorchScript, traced), bundle.json (class names, input shape and dtype,
the preprocessing to apply, the output rule, the temperature), README.txt (the same, with a
Python snippet), and for a table run its preprocess.pkl. Before the folder appears, the export
is checked against torch on the run's test split: ONNX run by onnxruntime, TorchScript loaded
by a fresh Python that has only torch; outputs within 1e-4 and the same predicted classes.

A model that cannot be exported, or a check that fails, is one line and exit status 1, and
nothing is written. --format onnx needs the export extra: pip install multiclass[export]."""

import argparse
from collections.abc import Sequence
from pathlib import Path

from multiclass.commands.exits import command_parser, exit_on_error

FORMATS = ("onnx", "torchscript")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = command_parser("multiclass-export", __doc__)
    parser.add_argument("run_dir", type=Path, help="a run directory (holds model.pt)")
    parser.add_argument("--format", required=True, choices=FORMATS, help="the file format")
    parser.add_argument(
        "--out", type=Path, help="the folder to write (default: RUN_DIR/export/FORMAT)"
    )
    parser.add_argument(
        "--checkpoint", default="model.pt", help="the checkpoint in RUN_DIR (default: model.pt)"
    )
    return parser.parse_args(argv)


def export(args: argparse.Namespace) -> None:
    from multiclass.export.exporting import export_run
    from multiclass.records.artifacts import shown_path

    exported = export_run(args.run_dir, args.format, args.out, args.checkpoint)
    print(f"{args.format}: {', '.join(exported.files)} -> {shown_path(exported.out_dir)}")
    print(exported.check.line())


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)  # before the imports that load torch: --help stays quick
    exit_on_error(export, args)


if __name__ == "__main__":
    main()
