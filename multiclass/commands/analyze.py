"""multiclass-analyze RUN_OR_SWEEP_DIR: error analysis, written into DIR/analysis/: the class
pairs most confused (confused_pairs.csv, confusion_matrix.png), the top losses (images: a
grid, top_losses.png; every run: top_losses.csv, a table's rows as its file has them), the
label-issue candidates ranked by confident learning (cleanlab, the extra multiclass[analysis]:
label_issues.csv, and for images label_issues.png), and a page of it all (analysis.md,
analysis.html), with a short summary on the console.

A run is analysed on its test predictions (test_predictions.csv). A k-fold sweep
(-m dataset.folds=K 'dataset.fold=range(K)') is analysed on the out-of-fold predictions its
report joined (oof.csv at the sweep root): every training sample predicted by a model that
never trained on it, which is what confident learning needs. A run's label-issue ranking
checks only its test labels, and says so; a sweep without oof.csv has none, and says why.

Everything is read and checked first: a directory that is neither a run nor a sweep, or a run
without test_predictions.csv, is one line, exit status 1, and nothing written."""

import argparse
from collections.abc import Sequence
from pathlib import Path

from multiclass.commands.exits import command_parser, exit_on_error


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = command_parser("multiclass-analyze", __doc__)
    parser.add_argument(
        "directory", type=Path, help="a run directory, or a sweep's (k-fold: holds oof.csv)"
    )
    return parser.parse_args(argv)


def analyze(args: argparse.Namespace) -> None:
    from multiclass.analysis.findings import analyse
    from multiclass.analysis.output import write_analysis
    from multiclass.analysis.page import summary_lines
    from multiclass.analysis.source import subject_of
    from multiclass.records.artifacts import shown_path

    analysis = analyse(subject_of(args.directory))
    out_dir, files = write_analysis(analysis)
    print("\n".join(summary_lines(analysis, shown_path(out_dir), files)))


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)  # before the imports that load torch: --help stays quick
    exit_on_error(analyze, args)


if __name__ == "__main__":
    main()
