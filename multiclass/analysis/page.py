"""What an analysis says: analysis.md, analysis.html (in the sweep report's style: its
stylesheet, sortable tables and cell helpers, comparing.sweep_html; the pictures inlined, so
the page is one file that opens anywhere) and the console's short summary."""

import base64
from html import escape
from pathlib import Path

from multiclass.analysis.findings import Analysis
from multiclass.analysis.losses import Shown
from multiclass.comparing.sweep_html import asset, cell, table

LOSS = "loss: -log of the probability the model gave the true class"
PAIRS_SHOWN, ROWS_SHOWN = 10, 20  # rows of each table on the page; the CSVs have them all


def summary_lines(analysis: Analysis, out_dir: str, files: list[Path]) -> list[str]:
    """The console's account: what was read, the pairs most confused, the top loss, the
    label issues (or why none), and the files written."""
    subject = analysis.subject
    lines = [f"Analysed {subject.name}: {subject.what} ({subject.file.name})"]
    if analysis.pairs:
        lines.append("Most confused (true -> predicted: count of the true class):")
        lines += [f"  {pair.line()}" for pair in analysis.pairs[:5]]
    else:
        lines.append("No class confused with another: every prediction is right.")
    top = analysis.losses.records()[0]
    lines.append(
        f"Top losses: highest {top['loss']} (index {top['index']}: true {top['label']},"
        f" predicted {top['predicted']} with p {top['p_predicted']})"
    )
    if analysis.issues is None:
        lines.append(analysis.issues_note.capitalize())
    else:
        count = len(analysis.issues.rows)
        lines.append(f"Label issues: {count} candidates by confident learning (cleanlab);")
        lines.append(f"  {analysis.issues_note}")
    lines.append(f"Written: {', '.join(path.name for path in files)} -> {out_dir}")
    return lines


def markdown(analysis: Analysis, pictures: list[Path]) -> str:
    subject = analysis.subject
    lines = [
        f"# Error analysis of {subject.name}",
        "",
        f"Predictions: {subject.what} (`{subject.file.name}`).",
        "",
        "## Most confused classes",
        "",
        "Of the samples of the true class, how many the model predicted as the other, and what"
        " share of the true class that is (all pairs: `confused_pairs.csv`).",
        "",
        *markdown_table([pair.row() for pair in analysis.pairs[:PAIRS_SHOWN]]),
        *picture_lines(pictures, "confusion_matrix.png"),
        "## Top losses",
        "",
        f"The samples the model got most wrong ({LOSS}; `top_losses.csv`).",
        "",
        *picture_lines(pictures, "top_losses.png"),
        *markdown_table(analysis.losses.records()[:ROWS_SHOWN]),
        "## Label issues",
        "",
    ]
    if analysis.issues is None:
        lines += [analysis.issues_note.capitalize() + ".", ""]
    else:
        lines += [issues_intro(analysis), ""]
        lines += picture_lines(pictures, "label_issues.png")
        lines += markdown_table(analysis.issues.records()[:ROWS_SHOWN])
    return "\n".join(lines)


def issues_intro(analysis: Analysis) -> str:
    count = len(analysis.issues.rows) if analysis.issues is not None else 0
    return (
        f"{count} candidates found by confident learning (cleanlab's find_label_issues), the"
        " likeliest first: ranked by the probability the model gave the given label, least"
        f" first (all: `label_issues.csv`). The ranking is {analysis.issues_note}."
    )


def markdown_table(rows: list[dict[str, object]]) -> list[str]:
    if not rows:
        return ["(none)", ""]
    cells = [[str(v).replace("|", "\\|") for v in row.values()] for row in rows]
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return [*lines, *("| " + " | ".join(row) + " |" for row in cells), ""]


def picture_lines(pictures: list[Path], name: str) -> list[str]:
    return [f"![{Path(name).stem}]({name})", ""] if any(p.name == name for p in pictures) else []


def html(analysis: Analysis, pictures: list[Path]) -> str:
    subject = analysis.subject
    title = f"Error analysis of {subject.name}"
    drawn = {picture.name: picture for picture in pictures}
    body = [
        f"<h1>{escape(title)}</h1>",
        f"<p>Predictions: {escape(subject.what)} ({escape(subject.file.name)}).</p>",
        "<h2>Most confused classes</h2>",
        '<p class="note">Of the samples of the true class, how many the model predicted as the'
        " other, and what share of the true class that is. Click a header to sort.</p>",
        html_table([pair.row() for pair in analysis.pairs], "pairs"),
        image(drawn.get("confusion_matrix.png")),
        "<h2>Top losses</h2>",
        f'<p class="note">The samples the model got most wrong ({escape(LOSS)}).</p>',
        image(drawn.get("top_losses.png")),
        html_table(analysis.losses.records(), "losses"),
        "<h2>Label issues</h2>",
        *issues_html(analysis, drawn),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{asset('sweep_html.css')}</style></head>\n"
        + "\n".join(["<body>", *body, f"<script>{asset('sweep_html.js')}</script>", "</body>"])
        + "</html>\n"
    )


def issues_html(analysis: Analysis, drawn: dict[str, Path]) -> list[str]:
    if analysis.issues is None:
        return [f"<p>{escape(analysis.issues_note.capitalize())}.</p>"]
    shown = Shown(analysis.issues.predictions, analysis.issues.rows[:100])
    return [
        f"<p>{escape(issues_intro(analysis))}</p>",
        image(drawn.get("label_issues.png")),
        html_table(shown.records(), "issues"),
    ]


def html_table(rows: list[dict[str, object]], kind: str) -> str:
    if not rows:
        return "<p>(none)</p>"
    body = [
        "<tr>"
        + "".join(cell(str(v), v if not isinstance(v, str) else number(v)) for v in row.values())
        + "</tr>"
        for row in rows
    ]
    return table(list(rows[0]), body, kind)


def number(text: str) -> object:
    """A figure written as text sorts as a number."""
    try:
        return float(text)
    except ValueError:
        return text


def image(path: Path | None) -> str:
    """A picture inlined as data: the page needs no file beside it."""
    if path is None:
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<p><img alt="{escape(path.stem)}" src="data:image/png;base64,{data}"></p>'
