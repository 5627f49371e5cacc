"""Whole `multiclass-train` processes timed from outside: start-up beside the floor any torch
script pays, and the overhead of a sweep's jobs."""

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def timed_process(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[1:])} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - started


FLOOR_SCRIPT = "import torch; torch.optim.Adam([torch.zeros(1, requires_grad=True)])"


def startup_seconds(repeats: int) -> dict[str, float]:
    """Median wall time of `multiclass-train trainer.epochs=1` on the default data set, and of
    the floor any torch training script pays on this machine (importing torch, building an
    optimizer), measured in turn; `ours_s`, the median of their differences, is what our code
    adds."""
    floor = [sys.executable, "-c", FLOOR_SCRIPT]
    run = [sys.executable, "-m", "multiclass", "trainer.epochs=1"]
    runs, floors = [], []
    with tempfile.TemporaryDirectory() as cwd:
        for _ in range(repeats):
            runs.append(timed_process(run, Path(cwd)))
            floors.append(timed_process(floor, Path(cwd)))
    return {
        "framework_s": statistics.median(runs),
        "torch_floor_s": statistics.median(floors),
        "ours_s": statistics.median(r - f for r, f in zip(runs, floors, strict=True)),
    }


def sweep_overhead(jobs: int = 8, repeats: int = 1) -> dict[str, Any]:
    """For sweeps of tiny runs, with and without plots: (wall time - the jobs' own training
    time) / jobs, start-up included; and the cost of each job past the first, from the
    difference between a sweep of `jobs` and a sweep of one. Medians of `repeats` rounds, each
    timing all four sweeps in turn (so that a machine's changing load falls on all four
    alike), and each round's figures under `<name>_rounds`."""
    rounds: dict[str, list[float]] = {}
    for _ in range(repeats):
        for plots in ("true", "false"):
            one_wall, one_trained = timed_sweep(1, plots)
            wall, trained = timed_sweep(jobs, plots)
            marginal = (wall - trained - one_wall + one_trained) / (jobs - 1)
            measured = {"s": (wall - trained) / jobs, "wall_s": wall, "marginal_s": marginal}
            for name, value in measured.items():
                rounds.setdefault(f"plots_{plots}_{name}", []).append(value)
    medians = {name: statistics.median(values) for name, values in rounds.items()}
    return {**medians, **{f"{name}_rounds": values for name, values in rounds.items()}}


def timed_sweep(jobs: int, plots: str) -> tuple[float, float]:
    """Wall time of a sweep of one-epoch runs on the default data, and its jobs' training time."""
    with tempfile.TemporaryDirectory() as cwd:
        seeds = ",".join(str(s) for s in range(jobs))
        command = [
            sys.executable,
            "-m",
            "multiclass",
            "-m",
            f"seed={seeds}",
            "trainer.epochs=1",
            f"plots={plots}",
        ]
        wall = timed_process(command, Path(cwd))
        summaries = Path(cwd).rglob("summary.json")
        return wall, sum(json.loads(p.read_text())["train_time_s"] for p in summaries)
