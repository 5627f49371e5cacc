"""multiclass-report PATH...: the sweep report (sweep.csv, sweep.md, sweep.png and the best
jobs on the console) from any run or sweep directories: a sweep that ran on a cluster, one
interrupted or still running, loose runs, several sweeps side by side. Every sweep of
multiclass-train writes the same report at its sweep root when it ends; a report ranked by
another --objective is written beside it (sweep-by-OBJECTIVE.csv, .md, .png), never over it.
A k-fold sweep (dataset.folds, dataset.fold) is grouped over its folds, and its folds' oof.csv
are joined into one at the report's folder (comparing.out_of_fold).

multiclass-report --compare RUN_A RUN_B, or PATH --compare KEY=VALUE KEY=VALUE: two runs, or
two groups of the jobs under PATH, side by side (compare-A-vs-B.md and .png)."""

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from multiclass.commands.exits import command_parser, exit_on_error
from multiclass.comparing.comparison import compare
from multiclass.comparing.group_tables import best_group_line, console_group_lines
from multiclass.comparing.groups import OVER, GroupReport, group_report
from multiclass.comparing.out_of_fold import join_out_of_fold
from multiclass.comparing.sweep import best_line, console_lines, failure_lines, write_report
from multiclass.comparing.sweep_jobs import (
    DEFAULT_OBJECTIVE,
    MONITORED_OBJECTIVE,
    SweepReport,
    build_report,
)
from multiclass.errors import UserError

log = logging.getLogger("multiclass")


def report_sweep(
    paths: Sequence[Path],
    out_dir: Path,
    plots: bool = True,
    objective: str | None = None,
    top: int = 5,
    over: Sequence[str] = OVER,
    by_job: bool = False,
) -> SweepReport | None:
    """Write the report of the runs under `paths` into `out_dir` and print its best `top` rows,
    ranked by `objective` (None: what the runs returned to their sweeper, see build_report):
    the groups of jobs that differ only in the keys of `over` (their seed), unless `by_job`
    or no two jobs differ only so. A report that cannot be made is one logged line (it never
    undoes the sweep it reports)."""
    stem = report_stem(objective)
    try:
        report = build_report(paths, objective)
        groups = group_report(report, over)
        written, removed = write_report(groups, out_dir, plots, stem, by_job)
    except (UserError, OSError) as error:
        log.error("error: no sweep report: %s", error)
        return None
    if groups.collapses and not by_job:
        print_groups(groups, top, written[1].name)
    else:
        print_jobs(report, top, written[1].name)
    print(f"Report: {', '.join(str(path) for path in written)}")
    print_out_of_fold(report, out_dir)
    if removed:
        print(f"Removed {removed}: an earlier report's picture, which this one may not match")
    return report


def print_out_of_fold(report: SweepReport, out_dir: Path) -> None:
    """A k-fold sweep's folds' oof.csv joined at `out_dir`: a line for each file written, a
    warning for each cross-validation that could not be joined."""
    joined, warnings = join_out_of_fold(report, out_dir)
    for line in warnings:
        log.warning(line)
    for done in joined:
        print(
            f"Out-of-fold predictions of {done.folds} folds: {done.path} ({done.rows} rows,"
            " each sample once)"
        )


def print_groups(groups: GroupReport, top: int, markdown: str) -> None:
    shown, total = min(top, len(groups.groups)), len(groups.groups)
    over = ", ".join(groups.over)
    print(f"Best {shown} of {total} groups over {over} by {groups.report.objective_name}:")
    print("\n".join(console_group_lines(groups, top, markdown=markdown)))
    print("\n".join([groups.assumption, *failure_lines(groups.report)]).replace("`", ""))
    print(best_group_line(groups).replace("`", ""))


def print_jobs(report: SweepReport, top: int, markdown: str) -> None:
    shown, runs = min(top, len(report.records)), len(report.records)
    print(f"Best {shown} of {runs} {report.kind}s by {report.objective_name}:")
    print("\n".join(console_lines(report, top, markdown=markdown)))
    print(best_line(report).replace("`", ""))


def report_stem(objective: str | None) -> str:
    """The report's file names: `sweep` (the one a sweep writes at its root) ranked as the
    sweep's jobs were, `sweep-by-test_loss` by another objective, so that a report by another
    never rewrites the sweep's own."""
    return "sweep" if objective is None else f"sweep-by-{objective}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = command_parser("multiclass-report", __doc__)
    parser.add_argument(
        "paths", nargs="*", type=Path, help="run or sweep directories (none to --compare runs)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="where to write the report (default: the one PATH given): sweep.csv, sweep.md and"
        " sweep.png, or sweep-by-OBJECTIVE.* with --objective",
    )
    parser.add_argument(
        "--objective",
        help="the summary.json figure to rank by; one ending in loss, error or time_s is"
        f" minimised (default: {DEFAULT_OBJECTIVE}, or {MONITORED_OBJECTIVE} where every run"
        " has one other trainer.monitor, minimised for val_loss)",
    )
    parser.add_argument("--top", type=int, default=5, help="rows printed (default: 5)")
    parser.add_argument(
        "--over",
        action="append",
        default=[],
        metavar="KEY",
        help="group jobs that differ only in their seed and in KEY, too (repeatable; e.g."
        " dataset.split_seed)",
    )
    parser.add_argument(
        "--jobs", action="store_true", help="rank the jobs one by one, not their groups over seed"
    )
    parser.add_argument(
        "--compare",
        nargs="*",
        metavar="A B",
        help="two runs side by side (--compare RUN_A RUN_B), or two groups of the jobs under"
        " PATH (PATH --compare model.width=32 model.width=128): the config keys that differ,"
        " figures, per-class F1, learning curves; written to compare-A-vs-B.md and .png in"
        " --out (default: the folder that holds every run compared)",
    )
    parser.add_argument(
        "--no-plot", action="store_true", help="draw no sweep.png (and remove an older one)"
    )
    args = parser.parse_args(argv)
    if args.compare is not None:
        ranking = {"--objective": args.objective, "--over": args.over, "--jobs": args.jobs}
        ranking["--top"] = args.top != parser.get_default("top")
        given = [flag for flag, value in ranking.items() if value]
        if given:
            parser.error(f"{given[0]} ranks a sweep's report; --compare shows two sides")
        return args
    if not args.paths:
        parser.error("the following arguments are required: paths")
    if args.out is None:
        if len(args.paths) > 1:
            parser.error("several PATHs: say where the report goes with --out DIR")
        args.out = args.paths[0]
    return args


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(format="%(message)s", level=logging.INFO)
    args = parse_args(argv)
    if args.compare is not None:
        lines = exit_on_error(lambda a: compare(a.compare, a.paths, a.out, not a.no_plot), args)
        print("\n".join(lines))
        sys.exit(0)
    over = [*OVER, *args.over]
    report = report_sweep(
        args.paths, args.out, not args.no_plot, args.objective, args.top, over, args.jobs
    )
    sys.exit(0 if report and report.best else 1)  # none completed: the report's last line says so


if __name__ == "__main__":
    main()
