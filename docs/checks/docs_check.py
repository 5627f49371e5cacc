"""Run every command README.md and docs/*.md show, and compare what it prints with the page.

A page shows a session as a fenced block of `$ command` lines, each followed by the lines it
printed. This script runs each block's commands in order, in one scratch folder per page
(`outputs/docs-check/<page>`, with `docs/` and `../shared` linked in, so the pages' relative
paths hold), and checks that every line shown after a command appears, in order, in what the
command printed now. In a shown line `...` stands for anything, a `[date time,ms]` prefix for
any log prefix, and `(1.23 s)` for any time: every other character, every figure included,
must be printed again.

An HTML comment on the line before a block, invisible on the rendered page, says how to run it:
- `<!-- docs-check: skip REASON -->`: not run (over a minute, a cluster, a browser), said so;
- `<!-- docs-check: file PATH -->`: the block is a file's content: written to PATH, not run;
- `<!-- docs-check: in DIR -->`: its commands run in DIR under the page's scratch folder.

    python docs/checks/docs_check.py                 # every page
    python docs/checks/docs_check.py README.md --only 'trainer.epochs=0'
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
MARKER = re.compile(r"<!--\s*docs-check:\s*(skip|file|in)\s*(.*?)\s*-->")
ANY_PREFIX = re.compile(r"^\\\[[^\]]*\\\]")  # an escaped "[2026-11-23 17:03:28,836]"
SECONDS = re.compile(r"\\\(\d+(\\\.\d+)?\\ s\\\)")  # an escaped "(2.05 s)"


@dataclass
class Command:
    """One `$ ` line and the lines the page shows it printed."""

    text: str
    shown: list[str] = field(default_factory=list)


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
            commands = parse_session(body)
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


def parse_session(body: list[str]) -> list[Command]:
    """`$ ` lines with the lines after each; a command whose quotes are open goes on."""
    commands: list[Command] = []
    for line in body:
        if line.startswith("$ "):
            commands.append(Command(line[2:]))
        elif commands and not commands[-1].shown and not complete(commands[-1].text):
            commands[-1].text += "\n" + line
        elif commands:
            commands[-1].shown.append(line)
    return commands


def complete(command: str) -> bool:
    """Whether bash would run `command` as it is, or wait for a closing quote."""
    try:
        shlex.split(command)
    except ValueError:
        return False
    return True


def pattern(shown: str) -> re.Pattern:
    """A shown line as a pattern: `...`, the log prefix and times match anything."""
    text = re.escape(shown.rstrip())
    text = ANY_PREFIX.sub(r"\\[[^]]*\\]", text)
    text = SECONDS.sub(r"\\(\\d+(\\.\\d+)?\\ s\\)", text)
    return re.compile(text.replace(r"\.\.\.", ".*"))


def missing(shown: list[str], printed: list[str]) -> str | None:
    """The first shown line not printed (in order), or None when each one was."""
    position = 0
    for line in shown:
        if line.strip() in ("", "..."):
            continue
        wanted = pattern(line)
        while position < len(printed) and not wanted.fullmatch(printed[position].rstrip()):
            position += 1
        if position == len(printed):
            return line
        position += 1
    return None


def scratch_for(page: Path) -> Path:
    """A fresh folder for the page, with docs/ and ../shared where the pages expect them."""
    folder = SCRATCH / page.stem / "work"
    shutil.rmtree(folder.parent, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "docs").symlink_to(ROOT / "docs")
    shared = ROOT.parent / "shared"
    if shared.exists():
        (folder.parent / "shared").symlink_to(shared)
    return folder


def run_block(block: Block, folder: Path, timeout: float) -> str:
    """'ok', or what went wrong: the command and the shown line it did not print."""
    kind, argument = block.marker or ("", "")
    if kind == "file":
        target = folder / argument
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.body)
        return "ok"
    cwd = folder / argument if kind == "in" else folder
    cwd.mkdir(parents=True, exist_ok=True)
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    environment.pop("MULTICLASS_SET_ENV", None)
    for command in block.commands:
        try:
            done = subprocess.run(
                ["bash", "-c", command.text],
                cwd=cwd,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,  # in the order a terminal shows them
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return f"over {timeout:.0f} s: {command.text}"
        printed = done.stdout.splitlines()
        lost = missing(command.shown, printed)
        if lost is not None:
            nearest = "\n".join(f"    | {line}" for line in printed[-6:])
            return f"$ {command.text}\n  shown:   {lost}\n  printed (last lines):\n{nearest}"
    return "ok"


def check(pages: list[Path], only: str | None, timeout: float) -> int:
    """Run the pages' blocks; print one line a block; the number that differ."""
    failures = 0
    for page in pages:
        folder = scratch_for(page)
        for block in read_blocks(page):
            if only and not any(only in command.text for command in block.commands):
                continue
            kind, argument = block.marker or ("", "")
            if kind == "skip":
                print(f"skip  {block.where}  {argument}")
                continue
            started = time.perf_counter()
            result = run_block(block, folder, timeout)
            took = time.perf_counter() - started
            failures += result != "ok"
            label = "ok  " if result == "ok" else "DIFF"
            print(
                f"{label}  {block.where}  ({took:.1f} s)"
                + ("" if result == "ok" else f"\n{result}")
            )
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", type=Path, help="default: README.md and docs/*.md")
    parser.add_argument("--only", help="only the blocks with a command that holds this text")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds a command may take")
    args = parser.parse_args()
    pages = [page.resolve() for page in args.pages] or [
        ROOT / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
    ]
    failures = check(pages, args.only, args.timeout)
    print(
        f"{failures} block(s) differ"
        if failures
        else "every block checked prints what its page shows"
    )
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
