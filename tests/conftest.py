"""Shared helpers: compose a config as the CLI would, run it in-process, run the CLI.

Every run of the suite trains on the CPU, whatever accelerator the machine has: `device=auto`
would move in-process runs to CUDA or MPS there (and summary.json's device with them). The
`cpu_only` fixture pins every in-process composition to `device=cpu` (a test's own `device=`
override still wins), QUIET carries it into command lines built from it, and run_cli adds it to
every command it runs."""

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import multiclass.config
from multiclass.config import compose_config
from multiclass.lifecycle.run import Outcome, execute

CPU = "device=cpu"
# The files whose processes take longest (a Slurm cluster's jobs, the CLI's signals and
# debuggers, a killed sweep, launchers, the benchmark, process groups), collected first, the
# longest first as `--durations` measured them on 2 cores: pytest-xdist hands each worker whole
# files in collection order, and one of these last would run on after the other worker had
# finished (pytest_configure keeps xdist from reordering them).
SLOWEST_FILES = (
    "test_slurm.py",  # make test-cluster's; `make test` leaves it out
    "test_distributed.py",
    "test_process.py",
    "test_cli.py",
    "test_bench.py",
    "test_resume.py",
    "test_search.py",
    "test_launchers.py",
    "test_fail_fast.py",
)
QUIET = ["trainer.progress=false", "plots=false", CPU]
# What a run on image data writes itself; the CLI adds Hydra's .hydra/ and train.log.
RUN_FILES = (
    "config.yaml",
    "metrics.csv",
    "per_class.csv",
    "summary.json",
    "model.pt",
    "curves.png",
    "confusion_matrix.png",
    "reliability.png",
    "predictions.png",
    "layers.csv",
    "layers.png",
)


@pytest.fixture(autouse=True)
def logging_as_it_was() -> Iterator[None]:
    """The root logger's handlers and level and the multiclass logger's level, as before each
    test: a command run in-process (Hydra's app, multiclass-rerun) sets them, and a handler on
    the test's captured stderr, closed after it, failed every later line ("Logging error")."""
    root, ours = logging.getLogger(), logging.getLogger("multiclass")
    handlers, levels = list(root.handlers), (root.level, ours.level)
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(levels[0])
    ours.setLevel(levels[1])


@pytest.fixture(scope="session", autouse=True)
def cpu_only() -> Iterator[None]:
    """`device=cpu` first in every in-process composition (compose_config's call of Hydra's
    compose), so that a test's own `device=...` comes later and wins. Session-wide: runs that
    module-scoped fixtures make are pinned too."""
    compose = multiclass.config.compose

    def on_the_cpu(config_name: str, overrides: list[str], **kwargs: Any) -> Any:
        return compose(config_name, overrides=[CPU, *overrides], **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(multiclass.config, "compose", on_the_cpu)
        yield


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


def cli(*args: str) -> tuple[list[str], dict[str, str]]:
    """The command and environment of `python -m multiclass <args> device=cpu`, as a user would
    type it (`device=cpu` last, where Hydra takes overrides after `-m`). Left out where `args`
    name a device, or resume a run, which takes its device from the config it saved (made on
    the CPU here)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("HYDRA_FULL_ERROR", None)
    pinned = () if any(arg.startswith(("device=", "resume=")) for arg in args) else (CPU,)
    return [sys.executable, "-m", "multiclass", *args, *pinned], env


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m multiclass <args>` in `cwd` (see `cli`), to its end."""
    command, env = cli(*args)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


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


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Files in the order collected: pytest-xdist 3.x hands them out largest first by default
    (--loadscope-reorder, by their count of tests), which sent SLOWEST_FILES, few tests each,
    last. The option's own value, as `--no-loadscope-reorder` sets it."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """SLOWEST_FILES first, in that order; the rest, and each file's tests, as collected."""
    rank = {name: index for index, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOWEST_FILES)))


def flagged(real: Callable[..., Any], inside: list[bool]) -> Callable[..., Any]:
    """`real`, which while it runs holds True in `inside`: for hooks that count only what
    happens within it (a training epoch, an evaluation)."""

    def within(*args: Any, **kwargs: Any) -> Any:
        inside.append(True)
        try:
            return real(*args, **kwargs)
        finally:
            inside.pop()

    return within
