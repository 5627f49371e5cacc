"""sweep.html: a sweep's groups and jobs in one self-contained page that works offline, beside
sweep.csv and sweep.md: sortable tables of the groups (each figure's mean, sd and interval, the
difference from the best and its test) and of the jobs, every validation curve in one chart,
parallel coordinates of the swept keys against the objective, a per-class F1 heatmap, and
relative links to each job's directory and pictures. Plain HTML, inline SVG and a small inline
script (sweep_html.js, sweep_html.css beside this module): nothing is fetched, nothing to
install, tens of kilobytes. Every value is escaped: a config value may hold <, & or quotes."""

import math
import os
from collections import Counter
from html import escape
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from multiclass.class_metrics import PER_CLASS_CSV
from multiclass.comparing.groups import Estimate, Group, GroupReport
from multiclass.comparing.html_charts import (
    Line,
    group_colour,
    is_number,
    line_chart,
    parallel_chart,
    scale_colour,
)
from multiclass.comparing.runs import RunRecord
from multiclass.comparing.sweep_jobs import format_figure, format_value
from multiclass.records.artifacts import write_atomic


def write_html(groups: GroupReport, path: Path) -> None:
    """The page of `groups` at `path`, its links relative to `path`'s folder."""
    write_atomic(path, page(groups, path))


def page(groups: GroupReport, path: Path) -> str:
    """The whole page, its script and style inlined: one file that opens anywhere, offline."""
    report = groups.report
    tally = Counter(record.status for record in report.records)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(tally.items()))
    title = f"Sweep report: {len(report.records)} {report.kind}s ({counts})"
    body = [
        f"<h1>{escape(title)}</h1>",
        intro(groups),
        "<h2>Groups</h2>",
        group_table(groups),
        f'<p class="note">{escape(groups.assumption)}</p>',
        "<h2>Validation curves</h2>",
        legend(groups, "Hover a line to name its job; dashed: a job that did not complete."),
        curves(groups),
        f"<h2>Swept keys against {escape(report.objective_name)}</h2>",
        legend(groups, "One line a completed job; hover it to name the job."),
        parallel(groups),
        "<h2>Per-class F1 by group</h2>",
        heatmap(groups),
        f"<h2>{escape(report.kind.capitalize())}s</h2>",
        job_table(groups, path.parent),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{asset('sweep_html.css')}</style></head>\n"
        + "\n".join(["<body>", *body, f"<script>{asset('sweep_html.js')}</script>", "</body>"])
        + "</html>\n"
    )


def asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


def intro(groups: GroupReport) -> str:
    report = groups.report
    direction = "lowest" if report.minimize else "highest"
    lines = [
        f"Groups: the {report.kind}s whose configs differ only in {', '.join(groups.over)},"
        f" ranked by the mean of {report.objective_name}, {direction} first; 'n of total': the"
        " completed runs, which alone enter the figures, of all the group's runs."
        " Click a column's header to sort the table by it, again to reverse."
    ]
    if groups.best is not None:
        lines.append(f"Best group: {groups.best.label}.")
    return f"<p>{escape(' '.join(lines))}</p>"


def link(text: str, target: Path, folder: Path) -> str:
    """<a> to `target` by its path relative to `folder` (the page's), which resolves wherever
    the sweep's folder is moved or served from; a folder's ends in `/`."""
    relative = Path(os.path.relpath(target.resolve(), folder.resolve())).as_posix()
    href = quote(relative) + ("/" if target.is_dir() else "")
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def cell(shown: str, key: object = None, detail: str = "") -> str:
    """A table cell showing `shown` (and `detail` below it), sorted by `key`: a number as a
    number, anything else as text; None (a missing value) sorts last either way."""
    sort = "" if key is None else repr(float(key)) if is_number(key) else str(key)
    small = f"<br><small>{escape(detail)}</small>" if detail else ""
    return f'<td data-sort="{escape(sort)}">{escape(shown)}{small}</td>'


def table(headers: list[str], rows: list[str], kind: str) -> str:
    heads = "".join(f'<th title="sort by {escape(h)}">{escape(h)}</th>' for h in headers)
    return (
        f'<div class="scroll"><table class="sortable {kind}"><thead><tr>{heads}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def group_table(groups: GroupReport) -> str:
    report = groups.report
    shown = [report.objective_name, *groups.figures[1:]]
    headers = ["rank", "group", "n of total", *shown]
    headers += [f"group minus best ({report.objective_name})", "p (test)", "*"]
    rows = []
    for rank, group in enumerate(groups.groups, 1):
        counted = group.estimate(report.objective)
        cells = [
            cell(str(rank), rank),
            cell(group.label, group.label),
            cell(f"{counted.n} of {counted.total}", counted.n),
        ]
        cells += [estimate_cell(group.estimate(figure)) for figure in groups.figures]
        cells += difference_cells(groups, group)
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return table(headers, rows, "groups")


def estimate_cell(estimate: Estimate) -> str:
    """`mean ± sd` over the interval; one run has neither spread nor interval, and says so."""
    if estimate.mean is None:
        return cell("-", None, "no finished run has it")
    if estimate.sd is None:
        return cell(format_figure(estimate.mean), estimate.mean, "one run: no interval")
    if estimate.sd == 0:
        return cell(format_figure(estimate.mean), estimate.mean, "the same in every run")
    interval = f"95%: {format_figure(estimate.low)} to {format_figure(estimate.high)}"
    shown = f"{format_figure(estimate.mean)} ± {format_figure(estimate.sd)}"
    return cell(shown, estimate.mean, interval)


def difference_cells(groups: GroupReport, group: Group) -> list[str]:
    """`group`'s objective less the best's (as the console and sweep.md show it) with its
    interval, the test's p-value, and `*` where the two are not distinguishable
    (groups.assumption says how)."""
    if group is groups.best:
        return [cell("best", 0.0), cell("-"), cell("")]
    difference = groups.difference(group)
    if difference is None:
        return [cell("-"), cell("-"), cell("")]
    mean = -difference.mean
    low, high = (None, None) if difference.low is None else (-difference.high, -difference.low)
    detail = "too few runs for an interval"
    if low is not None and high is not None:
        detail = f"95%: {low:+.4f} to {high:+.4f}" if low < high else "the same on every seed"
    p = cell("too few runs to test")
    if difference.p is not None:
        p = cell(f"{difference.p:.3g}", difference.p, str(difference.test))
    mark = "" if difference.distinct else "*"
    return [cell(f"{mean:+.4f}", mean, detail), p, cell(mark, mark or None)]


def colours(groups: GroupReport) -> dict[Path, str]:
    """Each run's colour: its group's, the same in every chart."""
    return {
        record.path: group_colour(index)
        for index, group in enumerate(groups.groups)
        for record in group.records
    }


def legend(groups: GroupReport, note: str) -> str:
    """Each group's colour, then `note`."""
    items = [
        f'<span class="swatch" style="background:{group_colour(i)}"></span>{escape(group.label)}'
        for i, group in enumerate(groups.groups)
    ]
    spans = "".join(f"<span>{item}</span>" for item in items)
    return f'<p class="legend">{spans} {escape(note)}</p>'


def hover(groups: GroupReport, record: RunRecord) -> str:
    """What hovering a job's line says: the job, its swept values, its status."""
    report = groups.report
    return f"{report.title(record)}: {report.label(record)} ({record.status})"


def curves(groups: GroupReport) -> str:
    """Every job's validation accuracy by epoch, in its group's colour; dashed where the job did
    not complete."""
    colour, lines = colours(groups), []
    for record in groups.report.records:
        points = [(epoch, acc) for epoch, acc in enumerate(record.val_acc, 1) if math.isfinite(acc)]
        if points:
            dashed = record.status != "completed"
            lines.append(Line(hover(groups, record), colour[record.path], points, dashed))
    if not lines:
        return "<p>No job recorded a validation accuracy.</p>"
    return f'<div class="chart">{line_chart(lines, "epoch", "val_acc")}</div>'


def parallel(groups: GroupReport) -> str:
    """One polyline a completed job through its swept values and its objective."""
    report, colour = groups.report, colours(groups)
    if not report.swept:
        return "<p>No key varies between the jobs.</p>"
    lines = []
    for record in report.records:
        score = report.score(record)
        if record.status != "completed" or score is None:
            continue
        values = [report.value(record, key) for key in report.swept]
        shown = [value if is_number(value) else format_value(value) for value in values]
        title = f"{hover(groups, record)}, {report.objective_name} {format_figure(score)}"
        lines.append(Line(title, colour[record.path], [*shown, score]))
    if not lines:
        return f"<p>No completed job has a {escape(report.objective_name)}.</p>"
    chart = parallel_chart([*report.swept, report.objective_name], lines)
    return f'<div class="chart">{chart}</div>'


def heatmap(groups: GroupReport) -> str:
    """Rows: the groups; columns: the classes; each cell the group's mean test F1, coloured."""
    f1 = {id(group): group.class_f1() for group in groups.groups}
    classes = list(dict.fromkeys(name for by_class in f1.values() for name in by_class))
    means = [e.mean for by_class in f1.values() for e in by_class.values() if is_number(e.mean)]
    if not means:
        return f"<p>No run wrote {PER_CLASS_CSV}: no per-class F1 to show.</p>"
    low, high = min(means), max(means)
    rows = []
    for group in groups.groups:
        cells = [heat_cell(group, f1[id(group)].get(name), name, low, high) for name in classes]
        rows.append(f"<tr>{cell(group.label, group.label)}{''.join(cells)}</tr>")
    scale = (
        f"Each cell the mean test F1 over the group's completed runs; colour from {low:.3f}"
        f" (dark) to {high:.3f} (light). Hover a cell for its spread."
    )
    return table(["group", *classes], rows, "heatmap") + f'<p class="note">{escape(scale)}</p>'


def heat_cell(group: Group, estimate: Estimate | None, name: str, low: float, high: float) -> str:
    if estimate is None or not is_number(estimate.mean):
        return cell("-")
    fraction = (estimate.mean - low) / (high - low) if high > low else 1.0
    spread = "" if estimate.sd is None else f" ± {estimate.sd:.3f}"
    title = f"{group.label}, {name}: {estimate.mean:.3f}{spread} ({estimate.n} of {estimate.total})"
    style = f"background:{scale_colour(fraction)};color:{'#000' if fraction > 0.55 else '#fff'}"
    return (
        f'<td data-sort="{estimate.mean!r}" style="{style}" title="{escape(title)}">'
        f"{estimate.mean:.3f}</td>"
    )


def job_table(groups: GroupReport, folder: Path) -> str:
    """Every job, best first: its swept values, status, figures, and links to its directory and
    the pictures in it."""
    report = groups.report
    figures = [
        f
        for f in dict.fromkeys([report.objective, *report.figures])
        if f not in ("status", "error")
    ]
    headers = [report.kind, *report.swept, "status", *figures, "pictures"]
    rows = []
    for record in report.ranked():
        name = report.name(record)
        cells = [
            f'<td data-sort="{escape(name)}">{link(name, record.path, folder)}</td>',
            *(cell(format_value(v), v) for v in (report.value(record, k) for k in report.swept)),
            cell(record.status, record.status, str(record.summary.get("error") or "")),
            *(cell(format_figure(record.summary.get(f)), record.summary.get(f)) for f in figures),
            f"<td>{pictures(record, folder)}</td>",
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return table(headers, rows, "jobs")


def pictures(record: RunRecord, folder: Path) -> str:
    """Links to the pictures the run drew (curves.png, confusion_matrix.png, ...)."""
    return " ".join(link(png.stem, png, folder) for png in sorted(record.path.glob("*.png")))
