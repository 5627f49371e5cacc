"""The default run on a busy machine: `multiclass-train` beside competing processes that keep
every core busy, as on a shared workstation or cluster node, with the thread settings a user
might run it with. Idle threads that spin for work (OpenMP's active wait) take the cores the
other processes need; torch's threads then wait for each other at every step."""

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BURNER = "while True: pass"
# What a run is timed with: our defaults, OpenMP spinning as its own default does, one thread.
SETTINGS = {
    "default": ({}, []),
    "OMP_WAIT_POLICY=ACTIVE": ({"OMP_WAIT_POLICY": "ACTIVE"}, []),
    "device.num_threads=1": ({}, ["device.num_threads=1"]),
}


@contextmanager
def competing_load(processes: int) -> Iterator[None]:
    """`processes` busy loops, ended afterwards."""
    burners = [subprocess.Popen([sys.executable, "-c", BURNER]) for _ in range(processes)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def train_seconds(environ: dict[str, str], overrides: list[str], epochs: int) -> float:
    """The train_time_s of a default run of `epochs` epochs (start-up not counted)."""
    env = {**os.environ, **environ}
    if "OMP_WAIT_POLICY" not in environ:
        env.pop("OMP_WAIT_POLICY", None)
    with tempfile.TemporaryDirectory() as cwd:
        command = [sys.executable, "-m", "multiclass", f"trainer.epochs={epochs}", "plots=false"]
        command += [*overrides, "hydra.run.dir=run"]
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[1:])} failed: {done.stderr[-2000:]}")
        return json.loads((Path(cwd) / "run" / "summary.json").read_text())["train_time_s"]


def under_load(repeats: int, epochs: int = 20) -> dict[str, Any]:
    """Median train_time_s of each setting, idle and with two busy loops a core (a load of
    about twice the cores), measured in turn."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    result: dict[str, Any] = {"burners": 2 * cores, "epochs": epochs}
    for load, burners in (("idle", 0), ("loaded", 2 * cores)):
        times: dict[str, list[float]] = {name: [] for name in SETTINGS}
        with competing_load(burners):
            for _ in range(repeats):
                for name, (environ, overrides) in SETTINGS.items():
                    times[name].append(train_seconds(environ, overrides, epochs))
        result[load] = {name: statistics.median(values) for name, values in times.items()}
        result[f"{load}_rounds"] = times
    return result
