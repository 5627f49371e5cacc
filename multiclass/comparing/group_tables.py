"""A sweep's groups (jobs that differ only in their seed) as text: the console's best groups and
sweep.md's groups section. A figure reads `mean ± sd` with its 95% interval; a group of one
run says it has no interval rather than print one of zero width."""

from multiclass.comparing.groups import Difference, Estimate, Group, GroupReport
from multiclass.comparing.sweep_jobs import format_figure
from multiclass.comparing.text_table import Column, fitted_lines

CONSOLE_FIGURE = "test_acc"  # shown beside the objective on the console
ONE_RUN = "none (1 run)"
SAME = "none (every run the same)"


def estimate_text(estimate: Estimate) -> str:
    """`0.9123 ± 0.0040`; one run's figure alone; `-` where no run finished."""
    if estimate.mean is None:
        return "-"
    if estimate.sd is None:
        return format_figure(estimate.mean)
    return f"{format_figure(estimate.mean)} ± {format_figure(estimate.sd)}"


def interval_text(estimate: Estimate) -> str:
    """`[0.9024, 0.9222]`; what stands in its place where there is none: one run, or runs
    that all gave the same figure (an interval of zero width would claim certainty)."""
    if estimate.mean is None or estimate.low is None or estimate.high is None:
        return ONE_RUN if estimate.n == 1 else "-"
    if estimate.sd == 0:
        return SAME
    return f"[{format_figure(estimate.low)}, {format_figure(estimate.high)}]"


def counted(group: Group, figure: str) -> str:
    """`2 of 3`: the runs a figure averages, of the group's jobs."""
    estimate = group.estimate(figure)
    return f"{estimate.n} of {estimate.total}"


def difference_text(difference: Difference | None) -> str:
    """`-0.0140 [-0.0236, -0.0044]`: the group's mean less the best's, with its interval."""
    if difference is None:
        return "best"
    shown = format_figure(-difference.mean)
    if difference.low is None or difference.high is None:
        return shown
    return f"{shown} [{format_figure(-difference.high)}, {format_figure(-difference.low)}]"


def p_text(difference: Difference | None, n: int) -> str:
    """`0.0123 paired t`, `0.4100 Welch t *` (* not distinguishable from the best)."""
    if difference is None:
        return ""
    if difference.p is None:
        return "untested (1 run)" if n <= 1 else "untested"
    mark = "" if difference.distinct else " *"
    return f"{format_figure(difference.p)} {difference.test}{mark}"


def group_cell(group: Group, key: str) -> str:
    return dict(group.values).get(key, "-")


def console_group_lines(
    groups: GroupReport, top: int = 5, width: int | None = None, markdown: str = "sweep.md"
) -> list[str]:
    """The best `top` groups: their keys, runs, the objective's mean ± sd and interval, the
    difference from the best and its test, and test_acc, fitted to the terminal."""
    shown = groups.groups[:top]
    objective = groups.report.objective
    keys = [key for key, _ in shown[0].values] if shown else []
    lasts = [key.rsplit(".", 1)[-1] for key in keys]
    columns = [
        Column(
            last if lasts.count(last) == 1 else key,
            [group_cell(group, key) for group in shown],
            "swept",
        )
        for key, last in zip(keys, lasts, strict=True)
    ]
    estimates = [group.estimate(objective) for group in shown]
    differences = [groups.difference(group) for group in shown]
    columns += [
        Column("runs", [counted(group, objective) for group in shown], "figure"),
        Column(groups.report.objective_name, [estimate_text(e) for e in estimates], "objective"),
        Column("95% interval", [interval_text(e) for e in estimates], "objective"),
        Column("vs best", [difference_text(d) for d in differences], "figure"),
        Column(
            "p",
            [p_text(d, e.n) for d, e in zip(differences, estimates, strict=True)],
            "figure",
        ),
    ]
    if objective != CONSOLE_FIGURE:
        figure = [estimate_text(group.estimate(CONSOLE_FIGURE)) for group in shown]
        columns.append(Column(CONSOLE_FIGURE, figure, "figure"))
    rows = f"{len(shown)} shown" if len(shown) < len(groups.groups) else f"{len(shown)} groups"
    return fitted_lines(columns, rows, markdown, width)


def markdown_group_table(groups: GroupReport) -> list[str]:
    """Every group, best first: its keys, runs, each figure's mean ± sd [interval], and the
    objective's difference from the best with its test."""
    keys = [key for key, _ in groups.groups[0].values]
    headers = [*keys, "runs", *groups.figures, "vs best", "p"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for group in groups.groups:
        difference = groups.difference(group)
        n = group.estimate(groups.report.objective).n
        cells = [group_cell(group, key) for key in keys]
        cells.append(counted(group, groups.report.objective))
        for figure in groups.figures:
            estimate = group.estimate(figure)
            interval = interval_text(estimate)
            cells.append(f"{estimate_text(estimate)} {interval}" if estimate.n else "-")
        cells += [difference_text(difference), p_text(difference, n)]
        lines.append("| " + " | ".join(text.replace("|", "\\|") for text in cells) + " |")
    return lines


def best_group_line(groups: GroupReport) -> str:
    """`Best group: width=128 (3 of 3 runs), best_val_acc 0.9123 ± 0.0040 [0.9024, 0.9222]`."""
    best = groups.best
    objective = groups.report.objective
    if best is None:
        return f"No group has a completed job with a `{objective}`."
    estimate = best.estimate(objective)
    interval = interval_text(estimate)
    return (
        f"Best group: {best.label} ({counted(best, objective)} runs),"
        f" {groups.report.objective_name} {estimate_text(estimate)} {interval}"
    )
