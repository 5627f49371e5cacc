"""`multiclass-bench --threads`: how many threads, and how their idle time is spent, as measured
for each workload, on a quiet machine and beside busy processes (two a core, as on a shared
workstation or cluster node). The framework, and the minimal hand loop at the same setting,
train each workload for one epoch in a fresh process per setting. Its table is where the
framework's thread rule (multiclass.device.runtime.threads_for_step) and wait policy
(multiclass.device.openmp) come from."""

import argparse
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from multiclass.bench.contestants import measure
from multiclass.bench.workloads import Workload, workloads

BURNER = "while True: pass"
LOADS = ("quiet", "loaded")


def settings(cores: int) -> dict[str, dict[str, str]]:
    """Each setting's environment: the framework's default (no variable), then every thread
    count with each way OpenMP's idle threads may wait: sleep (passive), spin a while then
    sleep (libgomp's default, 300,000 spins, as torch's users run it), spin briefly, spin
    forever (active). One thread never waits for another: its policy is moot."""
    table: dict[str, dict[str, str]] = {"default": {}, "1 thread": {"OMP_NUM_THREADS": "1"}}
    for threads in range(2, cores + 1):
        count = {"OMP_NUM_THREADS": str(threads)}
        table[f"{threads} threads, passive"] = {**count, "OMP_WAIT_POLICY": "PASSIVE"}
        table[f"{threads} threads, OpenMP's default"] = {**count, "GOMP_SPINCOUNT": "300000"}
        table[f"{threads} threads, spin 1000"] = {**count, "GOMP_SPINCOUNT": "1000"}
        table[f"{threads} threads, active"] = {**count, "OMP_WAIT_POLICY": "ACTIVE"}
    return table


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


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


def thread_matrix(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Median seconds per epoch of each workload x setting x load; quiet also the minimal
    loop's at the same setting (not under the default, which is the framework's own rule).
    A run past `args.timeout` seconds is recorded as None (it took longer)."""
    table = settings(cores())
    chosen = [
        workload
        for workload in workloads(args.samples, args.cnn_steps, variants=False)
        if args.workloads is None or workload.name in args.workloads
    ]
    report: dict[str, Any] = {
        "burners": 2 * cores(),
        "repeats": args.repeats,
        "timeout_s": args.timeout,
        "rows": [],
    }
    for load in LOADS:
        with competing_load(2 * cores() if load == "loaded" else 0):
            for workload in chosen:
                for name, environ in table.items():
                    contestants = ["framework"]
                    if load == "quiet" and name != "default":
                        contestants.append("minimal")
                    for contestant in contestants:
                        runs = [
                            timed(contestant, workload, root, environ, args.timeout)
                            for _ in range(args.repeats)
                        ]
                        row = summary_row(load, workload, name, contestant, runs)
                        report["rows"].append(row)
                        print(row_line(row), file=sys.stderr)
    return report


def timed(
    contestant: str, workload: Workload, root: Path, environ: dict[str, str], timeout: float
) -> dict[str, Any] | None:
    """One measurement, or None past `timeout` seconds."""
    try:
        return measure(contestant, workload, root, environ, timeout)
    except subprocess.TimeoutExpired:
        return None


def summary_row(
    load: str, workload: Workload, setting: str, contestant: str, runs: list[dict[str, Any] | None]
) -> dict[str, Any]:
    finished = [run["seconds"] for run in runs if run is not None]
    return {
        "load": load,
        "workload": workload.name,
        "samples": workload.samples,
        "setting": setting,
        "contestant": contestant,
        "seconds": statistics.median(finished) if len(finished) == len(runs) else None,
        "all_seconds": finished,
        "threads": next((run["settings"] for run in runs if run is not None), None),
    }


def row_line(row: dict[str, Any]) -> str:
    seconds = "timed out" if row["seconds"] is None else f"{row['seconds']:.2f} s"
    return f"{row['load']} {row['workload']} {row['setting']} {row['contestant']}: {seconds}"


def markdown(report: dict[str, Any]) -> str:
    """A table per load: each workload x setting, the framework's seconds and their ratio to
    the best setting of that workload and load; quiet, also the minimal loop's at the same
    setting and framework / minimal."""
    lines: list[str] = []
    for load in LOADS:
        where = "Quiet" if load == "quiet" else f"Beside {report['burners']} busy loops"
        lines += [
            f"{where}: seconds per epoch (median of {report['repeats']}; timed out past"
            f" {report['timeout_s']:.0f} s):",
            "",
            "| workload | setting | as run | framework (s) | / best | minimal (s) "
            "| framework / minimal |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: |",
            *table_rows([row for row in report["rows"] if row["load"] == load]),
            "",
        ]
    return "\n".join(lines)


def table_rows(rows: list[dict[str, Any]]) -> list[str]:
    seconds = {(r["workload"], r["setting"], r["contestant"]): r["seconds"] for r in rows}
    lines = []
    for row in rows:
        if row["contestant"] != "framework":
            continue
        workload, setting, mine = row["workload"], row["setting"], row["seconds"]
        best = min(
            s for (w, _, c), s in seconds.items() if w == workload and s and c == "framework"
        )
        minimal = seconds.get((workload, setting, "minimal"), "-")
        lines.append(
            f"| {workload} | {setting} | {row['threads'] or '-'} | {cell(mine)} |"
            f" {ratio(mine, best)} | {cell(minimal)} | {ratio(mine, minimal)} |"
        )
    return lines


def cell(seconds: float | str | None) -> str:
    """Seconds, '-' where not measured, 'timed out' where the run took too long."""
    if isinstance(seconds, str):
        return seconds
    return "timed out" if seconds is None else f"{seconds:.2f}"


def ratio(seconds: float | None, other: float | str | None) -> str:
    if seconds is None or not isinstance(other, float):
        return "-"
    return f"{seconds / other:.2f}"
