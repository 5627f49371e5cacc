"""Where a run's numbers came from: library versions and the source's git commit."""

import functools
import platform
import shlex
import subprocess
import sys
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent


@functools.cache  # constant for a process; a sweep's jobs share it
def versions() -> dict[str, str]:
    import hydra
    import torch

    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),  # a plain str: reading the summary needs no torch
        "hydra": hydra.__version__,
    }


def command_line() -> str:
    """The command that started this process, as a shell would take it back."""
    return shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])


@functools.cache
def git_state() -> tuple[str | None, bool | None]:
    """The commit of the multiclass source tree and whether it has uncommitted changes;
    (None, None) outside a git checkout."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=SOURCE_DIR, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, bool(dirty)
