"""Shared helpers: compose a config as the CLI would, run it in-process, run the CLI."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from multiclass.config import compose_config
from multiclass.lifecycle.run import Outcome, execute

QUIET = ["trainer.progress=false", "plots=false"]
# What a run on image data writes itself; the CLI adds Hydra's .hydra/ and train.log.
RUN_FILES = (
    "config.yaml",
    "metrics.csv",
    "per_class.csv",
    "summary.json",
    "model.pt",
    "curves.png",
    "confusion_matrix.png",
    "predictions.png",
    "layers.csv",
    "layers.png",
)


@pytest.fixture
def train(tmp_path: Path) -> Callable[..., Outcome]:
    """Run a configuration in-process into a fresh directory; plots and progress off by default."""
    counter = iter(range(1_000_000))

    def run(*overrides: str, run_dir: Path | None = None) -> Outcome:
        cfg = compose_config(*QUIET, *overrides)
        return execute(cfg, run_dir or tmp_path / f"run{next(counter)}")

    return run


def files_of(folder: Path, but: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file under `folder` (.hydra/ too) with its bytes, but those named in `but`: what a
    command that must change nothing is compared by."""
    files = (p for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in but)
    return {str(path.relative_to(folder)): path.read_bytes() for path in files}


def read_summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m multiclass <args>` in `cwd`, as a user would type it."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "multiclass", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def family(pid: int) -> list[int]:
    """The processes `pid` started, and theirs."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    children = [int(child) for child in found.stdout.split()]
    return children + [grandchild for child in children for grandchild in family(child)]


def gone(pids: list[int], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(os.path.exists(f"/proc/{pid}") for pid in pids):
            return True
        time.sleep(0.05)
    return False
