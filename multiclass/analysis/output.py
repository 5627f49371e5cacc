"""analysis/ in the run or sweep directory: the tables (CSV), the pictures and the page, each
written whole (write, then rename). A file an earlier analysis wrote that this one does not
(a label-issue table, once cleanlab is gone) is removed, so that the folder never mixes two."""

from pathlib import Path

from multiclass.analysis.confusion import PAIR_COLUMNS
from multiclass.analysis.findings import Analysis
from multiclass.analysis.losses import LOSS_NAME, TOP, Shown
from multiclass.analysis.page import html, markdown
from multiclass.analysis.samples import Samples
from multiclass.analysis.source import TEST
from multiclass.records.artifacts import write_atomic, write_csv
from multiclass.reporting import plots

FOLDER = "analysis"
PAIRS, MATRIX = "confused_pairs.csv", "confusion_matrix.png"
LOSSES, LOSSES_PNG = "top_losses.csv", "top_losses.png"
ISSUES, ISSUES_PNG = "label_issues.csv", "label_issues.png"
PAGES = ("analysis.md", "analysis.html")
EVERY_FILE = (PAIRS, MATRIX, LOSSES, LOSSES_PNG, ISSUES, ISSUES_PNG, *PAGES)


def write_analysis(analysis: Analysis) -> tuple[Path, list[Path]]:
    """The folder and the files written into it, in the order a reader opens them."""
    out_dir = analysis.subject.directory / FOLDER
    out_dir.mkdir(exist_ok=True)
    files = [*tables(analysis, out_dir), *pictures(analysis, out_dir)]
    drawn = [path for path in files if path.suffix == ".png"]
    for name, text in zip(PAGES, (markdown(analysis, drawn), html(analysis, drawn)), strict=True):
        write_atomic(out_dir / name, text)
        files.append(out_dir / name)
    for name in set(EVERY_FILE) - {path.name for path in files}:
        (out_dir / name).unlink(missing_ok=True)
    return out_dir, files


def tables(analysis: Analysis, out_dir: Path) -> list[Path]:
    """confused_pairs.csv (every pair with a mistake; the header alone where there is none),
    top_losses.csv (for a table, with each row's columns as its file holds them) and
    label_issues.csv (every candidate)."""
    pairs = [pair.row() for pair in analysis.pairs]
    if pairs:
        write_csv(out_dir / PAIRS, pairs)
    else:
        write_atomic(out_dir / PAIRS, ",".join(PAIR_COLUMNS) + "\n")
    write_csv(out_dir / LOSSES, with_features(analysis.losses, analysis.samples))
    written = [out_dir / PAIRS, out_dir / LOSSES]
    if analysis.issues is not None and len(analysis.issues.rows):
        write_csv(out_dir / ISSUES, analysis.issues.records())
        written.append(out_dir / ISSUES)
    return written


def with_features(shown: Shown, samples: Samples) -> list[dict[str, object]]:
    """The shown rows, and for a table each row's columns as its file holds them."""
    records = shown.records()
    if samples.images:
        return records
    columns = samples.columns(shown.rows)
    return [
        {**record, **{name: values[i] for name, values in columns.items()}}
        for i, record in enumerate(records)
    ]


def pictures(analysis: Analysis, out_dir: Path) -> list[Path]:
    """The confusion matrix; for images, the grids of the top losses and of the likeliest
    label issues."""
    subject = analysis.subject
    predictions = subject.predictions
    where = "test" if subject.split == TEST else "out-of-fold"
    plots.confusion_matrix(
        predictions.labels,
        predictions.predicted,
        predictions.class_names,
        f"{subject.name}: {len(predictions)} {where} predictions",
        out_dir / MATRIX,
    )
    drawn = [out_dir / MATRIX]
    if not analysis.samples.images:
        return drawn
    grids = [(analysis.losses, LOSSES_PNG, f"top losses of the {where} predictions ({LOSS_NAME})")]
    if analysis.issues is not None and len(analysis.issues.rows):
        top = Shown(predictions, analysis.issues.rows[:TOP])
        grids.append((top, ISSUES_PNG, "label-issue candidates, likeliest first (given label)"))
    for shown, name, title in grids:
        given = "given" if name == ISSUES_PNG else "true"
        tiles = analysis.samples.take(shown.rows)
        plots.captioned_grid(tiles, shown.captions(given), title, out_dir / name, title_size=9)
        drawn.append(out_dir / name)
    return drawn
