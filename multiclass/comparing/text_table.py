"""A table of text for the console that fits the terminal: what every row shows alike is said
once above it, long swept values are shortened, and if that is not enough the last columns are
left out (the markdown report has them). Serves the sweep's jobs and its groups alike."""

import shutil
from dataclasses import dataclass, replace

DEFAULT_WIDTH = 100  # the console table's width when the output is no terminal
NARROWEST = 10  # a swept column is shortened to no fewer characters than this
GAP = "  "  # between the console table's columns


@dataclass(frozen=True, eq=False)
class Column:
    """A column of the console table. `role` says what fitting it to the terminal may do:
    `name` and `objective` stay whole; a `swept` column may be shortened; `swept` and `figure`
    columns may be said once above the table (one value for every run) or left out."""

    header: str
    cells: list[str]
    role: str

    @property
    def width(self) -> int:
        return max(len(text) for text in [self.header, *self.cells])

    def narrowed(self, width: int) -> "Column":
        if self.role != "swept" or self.width <= width:
            return self
        return replace(
            self, header=clip(self.header, width), cells=[clip(c, width) for c in self.cells]
        )


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def fitted_lines(
    columns: list[Column], rows: str, markdown: str, width: int | None = None
) -> list[str]:
    """`columns` as aligned lines within `width` (the terminal's, DEFAULT_WIDTH where the output
    is none): `All 3 jobs: status completed` above for the columns every row shows alike (the
    `rows` they are, `3 jobs`), `Left out: ...` below for those that did not fit."""
    width = width or shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    shared, kept = split_shared(columns)
    kept, left_out = fit(kept, width)
    lines = (
        [f"All {rows}: " + ", ".join(f"{c.header} {c.cells[0]}" for c in shared)] if shared else []
    )
    lines.append(GAP.join(column.header.rjust(column.width) for column in kept))
    lines += [
        GAP.join(column.cells[row].rjust(column.width) for column in kept)
        for row in range(len(kept[0].cells))
    ]
    if left_out:
        lines.append(f"Left out: {', '.join(column.header for column in left_out)} (in {markdown})")
    return [clip(line, width) for line in lines]


def split_shared(columns: list[Column]) -> tuple[list[Column], list[Column]]:
    """The columns with one value in every row of several (said once), and the others."""
    shared: list[Column] = []
    kept: list[Column] = []
    for column in columns:
        one = len(column.cells) > 1 and len(set(column.cells)) == 1
        (shared if one and column.role in ("swept", "figure") else kept).append(column)
    return shared, kept


def fit(columns: list[Column], width: int) -> tuple[list[Column], list[Column]]:
    """The columns shortened to `width` in all (the widest swept values first, to no fewer than
    NARROWEST characters), and those left out where that was not enough (leave_out)."""
    narrowed = columns
    for widest in range(max(column.width for column in columns), NARROWEST - 1, -1):
        narrowed = [column.narrowed(widest) for column in columns]
        if table_width(narrowed) <= width:
            return narrowed, []
    return leave_out(narrowed, width)


def leave_out(columns: list[Column], width: int) -> tuple[list[Column], list[Column]]:
    """The columns kept and those left out, from the right, until the rest fit `width`: the
    figures before the swept values; the name and the objective always stay."""
    kept = list(columns)
    for column in reversed(columns):
        if table_width(kept) <= width:
            break
        if column.role in ("swept", "figure"):
            kept.remove(column)
    return kept, [column for column in columns if column not in kept]


def table_width(columns: list[Column]) -> int:
    return sum(column.width for column in columns) + len(GAP) * (len(columns) - 1)
