"""Run every command README.md and docs/*.md show, and compare what it prints with the page.

A page shows a session as a fenced block of `$ command` lines, each followed by the lines it
printed. This script runs each block's commands in order, in one scratch folder per page
(`outputs/docs-check/<page>`, with `docs/` and `../shared` linked in, so the pages' relative
paths hold), and checks that every line shown after a command appears, in order, in what the
command printed now. In a shown line `...` stands for anything, a `[date time,ms]` prefix for
any log prefix, and `(1.23 s)` for any time, and two spaces or more for any padding of two or
more (an aligned table's columns move when a cell shown as `...` prints wider): every other
character, every figure included, must be printed again. A command's `DIR` is the folder
holding the real data sets (`dataset.root=DIR`, `--data-root DIR`): the scratch folder has
`DIR` as a link to `--data-root`.

A page fails too where a line of it names an absolute path of a machine (`/home/...`,
`/tmp/...`): a page shows paths relative to where its commands run, which hold on any machine.

With `--update`, a shown line that the command printed with other figures (the same words, other
numbers, times or dated folders) takes the printed figures, in the page itself: rerun the pages
after a change that moves figures, then read `git diff` before committing it.

An HTML comment on the line before a block, invisible on the rendered page, says how to run it:
- `<!-- docs-check: skip REASON -->`: not run (over a minute, a cluster, a browser), said so;
- `<!-- docs-check: file PATH -->`: the block is a file's content: written to PATH, not run;
- `<!-- docs-check: in FOLDER -->`: its commands run in FOLDER under the page's scratch folder.

    python docs/checks/docs_check.py                 # every page
    python docs/checks/docs_check.py README.md --only 'trainer.epochs=0'
    python docs/checks/docs_check.py docs/own-data.md --update
"""

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRATCH = ROOT / "outputs" / "docs-check"
DATA_ROOT = ROOT.parent / "shared" / "data"  # where this repository's development data lives
# An absolute path under a folder that holds checkouts, homes or scratch files on some machine.
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:home|Users|root|tmp|work|check|mnt|scratch)/\S*")
MARKER = re.compile(r"<!--\s*docs-check:\s*(skip|file|in)\s*(.*?)\s*-->")
# The parts of a shown line that are not taken literally: the log prefix, an elision, a time in
# seconds, a run folder named by its start, and (for --update) every other number.
TOKENS = re.compile(
    r"(?P<prefix>^\[[^\]]*\])|(?P<elided>\.\.\.)|(?P<seconds>\(\d+(?:\.\d+)? s\))"
    r"|(?P<started>\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d(?:-\d+)?)|(?P<number>\d+(?:\.\d+)?(?:e[-+]?\d+)?)"
)
PADDING = re.compile(r" {2,}")
ANY = {
    "prefix": r"\[[^\]]*\]",
    "elided": ".*",
    "seconds": r"\(\d+(?:\.\d+)? s\)",
    "started": r"\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d(?:-\d+)?",
    "number": r"\d+(?:\.\d+)?(?:e[-+]?\d+)?",
}


@dataclass
class Command:
    """One `$ ` line and the lines the page shows it printed."""

    text: str
    shown: list[str] = field(default_factory=list)
    shown_at: list[int] = field(default_factory=list)  # their indexes in the page's lines


@dataclass
class Block:
    """A fenced block of a page: a session to run, or a file to write."""

    page: Path
    line: int
    commands: list[Command]
    body: str
    marker: tuple[str, str] | None = None

    @property
    def where(self) -> str:
        return f"{os.path.relpath(self.page, ROOT)}:{self.line}"


def read_blocks(page: Path) -> list[Block]:
    """The page's fenced blocks that show a session, or that a `file` marker names."""
    blocks, lines = [], page.read_text().splitlines()
    marker, index = None, 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("```"):
            end = next(
                (i for i in range(index + 1, len(lines)) if lines[i].startswith("```")), len(lines)
            )
            body = lines[index + 1 : end]
            commands = parse_session(body, first=index + 1)
            if commands or (marker and marker[0] == "file"):
                blocks.append(Block(page, index + 1, commands, "\n".join(body) + "\n", marker))
            marker, index = None, end + 1
            continue
        found = MARKER.search(line)
        if found:
            marker = (found.group(1), found.group(2))
        elif line.strip():
            marker = None
        index += 1
    return blocks


def parse_session(body: list[str], first: int = 0) -> list[Command]:
    """`$ ` lines with the lines after each (`first`: the page's index of the body's first
    line); a command whose quotes are open goes on to the next line."""
    commands: list[Command] = []
    for index, line in enumerate(body, start=first):
        if line.startswith("$ "):
            commands.append(Command(line[2:]))
        elif commands and not commands[-1].shown and not complete(commands[-1].text):
            commands[-1].text += "\n" + line
        elif commands:
            commands[-1].shown.append(line)
            commands[-1].shown_at.append(index)
    return commands


def complete(command: str) -> bool:
    """Whether bash would run `command` as it is, or wait for a closing quote."""
    try:
        shlex.split(command)
    except ValueError:
        return False
    return True


def pattern(shown: str, any_figures: bool = False) -> re.Pattern:
    """A shown line as a pattern: the log prefix, `...`, times and run folders match any; with
    `any_figures`, so does every number, each a group (times and run folders too)."""
    text, parts, end = shown.rstrip(), [], 0
    for token in TOKENS.finditer(text):
        parts.append(literal(text[end : token.start()]))
        kind, end = token.lastgroup, token.end()
        if kind in ("prefix", "elided"):
            parts.append(ANY[kind])
        elif any_figures:
            parts.append(f"({ANY[kind]})")
        else:
            parts.append(re.escape(token.group()) if kind == "number" else ANY[kind])
    parts.append(literal(text[end:]))
    return re.compile("".join(parts))


def literal(text: str) -> str:
    """`text` as a pattern, its column padding (two spaces or more) matching any padding of two
    or more: a table's columns move when a cell shown as `...` prints wider or narrower."""
    return " {2,}".join(re.escape(part) for part in PADDING.split(text))


def with_figures(shown: str, printed: re.Match) -> str:
    """`shown` with the figures `printed` matched in their places."""
    text, parts, end, figure = shown.rstrip(), [], 0, 0
    for token in TOKENS.finditer(text):
        parts.append(text[end : token.start()])
        end = token.end()
        if token.lastgroup in ("prefix", "elided"):
            parts.append(token.group())
        else:
            figure += 1
            parts.append(printed.group(figure))
    return "".join(parts) + text[end:]


def compare(
    shown: list[str], printed: list[str], update: bool = False
) -> tuple[list[str], str | None]:
    """The shown lines (with `update`, those printed with other figures take them) and the
    first shown line not printed, in order, or None when each one was."""
    position, lines = 0, list(shown)
    for index, line in enumerate(shown):
        if line.strip() in ("", "..."):
            continue
        found = find(pattern(line), printed, position)
        if found is None and update:
            found = closest(line, printed, position)
            if found is not None:
                lines[index] = with_figures(line, found[1])
        if found is None:
            return lines, line
        position = found[0] + 1
    return lines, None


def closest(shown: str, printed: list[str], start: int) -> tuple[int, re.Match] | None:
    """The printed line from `start` with the same words as `shown` and the most figures in
    common (`epoch 20/20` is the line for `epoch 20/20`, not `epoch 1/20`), with its match."""
    wanted, best, most = pattern(shown, any_figures=True), None, -1
    own = wanted.fullmatch(shown.rstrip())
    figures = own.groups() if own else ()
    for index in range(start, len(printed)):
        match = wanted.fullmatch(printed[index].rstrip())
        if match:
            same = sum(a == b for a, b in zip(match.groups(), figures, strict=False))
            if same > most:
                best, most = (index, match), same
    return best


def find(wanted: re.Pattern, printed: list[str], start: int) -> tuple[int, re.Match] | None:
    """The first printed line from `start` that `wanted` matches whole, with its match."""
    for index in range(start, len(printed)):
        match = wanted.fullmatch(printed[index].rstrip())
        if match:
            return index, match
    return None


def scratch_for(page: Path, data_root: Path = DATA_ROOT) -> Path:
    """A fresh folder for the page, with docs/, ../shared and the data sets' DIR where the
    pages expect them."""
    folder = SCRATCH / page.stem / "work"
    shutil.rmtree(folder.parent, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "docs").symlink_to(ROOT / "docs")
    (folder / "DIR").symlink_to(data_root.resolve())
    shared = ROOT.parent / "shared"
    if shared.exists():
        (folder.parent / "shared").symlink_to(shared)
    return folder


def machine_paths(page: Path) -> list[str]:
    """`page:line  path` for each absolute path of a machine the page shows."""
    where = os.path.relpath(page, ROOT)
    return [
        f"{where}:{number}  {found.group()}"
        for number, line in enumerate(page.read_text().splitlines(), start=1)
        for found in MACHINE_PATH.finditer(line)
    ]


def run_block(block: Block, folder: Path, timeout: float, page_lines: list[str] | None) -> str:
    """'ok', or what went wrong: the command and the shown line it did not print. Given the
    page's lines, the shown lines printed with other figures take them there."""
    kind, argument = block.marker or ("", "")
    if kind == "file":
        target = folder / argument
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.body)
        return "ok"
    cwd = folder / argument if kind == "in" else folder
    cwd.mkdir(parents=True, exist_ok=True)
    try:
        outputs = run_session([command.text for command in block.commands], cwd, timeout)
    except subprocess.TimeoutExpired:
        return f"over {timeout:.0f} s: {block.commands[0].text}"
    differences = []
    for command, printed in zip(block.commands, outputs, strict=False):
        lines, lost = compare(command.shown, printed, update=page_lines is not None)
        if page_lines is not None:
            for index, line in zip(command.shown_at, lines, strict=True):
                page_lines[index] = line
        if lost is not None:
            nearest = "\n".join(f"    | {line}" for line in printed[-6:])
            differences.append(
                f"$ {command.text}\n  shown:   {lost}\n  printed (last lines):\n{nearest}"
            )
    return "\n".join(differences) or "ok"


END = "@@ docs-check: end of command @@"


def run_session(commands: list[str], cwd: Path, timeout: float) -> list[list[str]]:
    """What each command printed, run one after another in one bash, as a terminal runs them
    (`echo $?` sees the command before; stdout and stderr in the order printed), with this
    interpreter's commands first on the PATH, as an activated environment has them."""
    script = "".join(
        f"{command}\nstatus=$?; printf '\\n%s\\n' '{END}'; (exit $status)\n" for command in commands
    )
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    environment.pop("MULTICLASS_SET_ENV", None)
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout * len(commands),
    )
    return [part.splitlines() for part in done.stdout.split(END + "\n")]


def selected(block: Block, only: list[str]) -> bool:
    """Whether a command of the block holds one of the texts."""
    return any(text in command.text for command in block.commands for text in only)


def check(
    pages: list[Path],
    only: list[str] | None,
    timeout: float,
    update: bool = False,
    data_root: Path = DATA_ROOT,
) -> int:
    """Run the pages' blocks, one line a block, and name each absolute path of a machine; the
    number of blocks that differ and paths named. With `update`, write the figures printed into
    the pages."""
    failures = 0
    for page in pages:
        for path in machine_paths(page):
            print(f"PATH  {path}  (an absolute path of a machine: show it relative)", flush=True)
            failures += 1
        folder = scratch_for(page, data_root)
        original = page.read_text().splitlines()
        page_lines = list(original) if update else None
        for block in read_blocks(page):
            if only and block.commands and not selected(block, only):
                continue
            kind, argument = block.marker or ("", "")
            if kind == "skip":
                print(f"skip  {block.where}  {argument}", flush=True)
                continue
            started = time.perf_counter()
            result = run_block(block, folder, timeout, page_lines)
            took = time.perf_counter() - started
            failures += result != "ok"
            label = "ok  " if result == "ok" else "DIFF"
            extra = "" if result == "ok" else f"\n{result}"
            print(f"{label}  {block.where}  ({took:.1f} s){extra}", flush=True)
        if page_lines is not None:
            write_figures(page, original, page_lines)
    return failures


def write_figures(page: Path, original: list[str], updated: list[str]) -> None:
    """The updated lines into the page as it is now (it may have been edited meanwhile): each
    replaces the line it was, where that line is still there."""
    current = page.read_text().splitlines()
    for was, now in zip(original, updated, strict=True):
        if was != now and was in current:
            current[current.index(was)] = now
    page.write_text("\n".join(current) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", type=Path, help="default: README.md and docs/*.md")
    parser.add_argument(
        "--only", action="append", help="only the blocks with a command holding this (repeatable)"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds a command may take")
    parser.add_argument(
        "--update", action="store_true", help="write changed figures into the pages"
    )
    parser.add_argument(
        "--data-root", type=Path, default=DATA_ROOT, help="the folder DIR stands for in commands"
    )
    args = parser.parse_args()
    pages = [page.resolve() for page in args.pages] or [
        ROOT / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
    ]
    failures = check(pages, args.only, args.timeout, args.update, args.data_root)
    print(
        f"{failures} block(s) or path(s) differ"
        if failures
        else "every block checked prints what its page shows"
    )
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
