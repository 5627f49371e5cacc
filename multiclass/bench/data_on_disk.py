"""`multiclass-bench --storage`: what `dataset.storage=disk` costs and saves. Peak memory and
training-pass time of whole `multiclass-train` processes (`model=linear trainer.batch_size=256`)
on synthetic 64x64 RGB image folders of two sizes, with the images in memory and on disk
(building the cache, then reading a warm one); and one-epoch training time on MNIST with the
splits in memory and on disk (warm cache), alternated as the main bench alternates its
contestants."""

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from multiclass.bench.contestants import measure
from multiclass.bench.machine import machine
from multiclass.bench.workloads import prepare_data, workloads

FOLDER_SIZES = (5_000, 50_000)
IMAGE_SIDE = 64
CLASSES = 10
BUDGET_MB = 150  # disk storage: the larger folder's peak RSS at most this above the smaller's
SPEED_TARGET = 0.9  # disk storage: at least this share of memory storage's samples per second
# The folder runs' model and batch, the small model a new user tries first: reading the
# images is then a large share of the training pass, which is what this measures.
FOLDER_RUN = ("model=linear", "trainer.batch_size=256")

# The child's peak RSS, from a parent that starts only it.
PEAK_OF_CHILD = (
    "import resource, subprocess, sys;"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
    "sys.stderr.write(done.stderr[-2000:]);"
    "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def storage_bench(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        root, data = prepare_data(args.data_root, args.samples, Path(scratch))
        speed = {
            workload.name: epoch_times(workload, root, args.repeats)
            for workload in workloads(args.samples, args.cnn_steps, variants=False)
            if args.workloads is None or workload.name in args.workloads
        }
        growth = folder_growth(Path(scratch))
    return {
        "machine": machine(),
        "repeats": args.repeats,
        "data": data,
        "speed": speed,
        "growth": growth,
    }


def epoch_times(workload: Any, root: Path, repeats: int) -> dict[str, Any]:
    """Median epoch seconds in memory and on disk (a first, untimed disk run warms the cache)."""
    workload = replace(workload, contestants=("framework", "framework+disk"))
    measure("framework+disk", workload, root)
    runs: dict[str, list[float]] = {name: [] for name in workload.contestants}
    for repeat in range(repeats):
        for name in workload.contestants:
            runs[name].append(measure(name, workload, root)["seconds"])
            print(f"{workload.name} {name} #{repeat + 1}: {runs[name][-1]:.2f} s", file=sys.stderr)
    memory, disk = (statistics.median(runs[name]) for name in workload.contestants)
    return {"memory_s": memory, "disk_s": disk, "disk_speed": memory / disk, "runs": runs}


def folder_growth(scratch: Path) -> list[dict[str, Any]]:
    """Peak RSS and times of one-epoch runs on each folder size: memory, disk building its
    cache, disk reading it."""
    rows = []
    for count in FOLDER_SIZES:
        folder = write_folder(scratch / f"images{count}", count)
        cache = scratch / f"cache{count}"
        for storage, label in (("memory", "memory"), ("disk", "disk, cold"), ("disk", "disk")):
            run_dir = scratch / f"run-{count}-{label.replace(', ', '-')}"
            measured = whole_run(folder, storage, cache, run_dir)
            rows.append({"images": count, "storage": label, **measured})
            print(f"{count} images, {label}: {measured}", file=sys.stderr)
    return rows


def write_folder(folder: Path, count: int) -> Path:
    """`count` 64x64 RGB PNGs in CLASSES class folders: blocks of random colour, upscaled,
    with a white square where the class puts it."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(count)
    for index in range(count):
        label = index % CLASSES
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        blocks = rng.integers(0, 200, (8, 8, 3), dtype=np.uint8)
        row, col = divmod(label, 4)
        blocks[2 * row : 2 * row + 2, 2 * col : 2 * col + 2] = 255  # the class's bright square
        pixels = blocks.repeat(IMAGE_SIDE // 8, axis=0).repeat(IMAGE_SIDE // 8, axis=1)
        Image.fromarray(pixels).save(folder / str(label) / f"{index}.png", compress_level=1)
    return folder


def whole_run(folder: Path, storage: str, cache: Path, run_dir: Path) -> dict[str, Any]:
    """`multiclass-train` for one epoch on `folder`: its peak RSS, wall time and epoch time."""
    command = [
        sys.executable, "-m", "multiclass", "dataset=image_folder", f"dataset.root={folder}",
        f"dataset.image_size={IMAGE_SIDE}", f"dataset.storage={storage}",
        f"dataset.cache_dir={cache}", *FOLDER_RUN, "trainer.epochs=1", "plots=false",
        "trainer.progress=false", f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK_OF_CHILD, *command], capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    status, peak_kb = done.stdout.split()
    if status != "0":
        raise RuntimeError(f"{' '.join(command[2:])} failed: {done.stderr}")
    with open(run_dir / "metrics.csv") as file:
        (row,) = csv.DictReader(file)
    summary = json.loads((run_dir / "summary.json").read_text())
    return {
        "peak_rss_mb": int(peak_kb) / 1024,
        "wall_s": wall,
        "train_s": float(row["train_seconds"]),
        "test_acc": summary["test_acc"],
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Machine: {report['machine']}; {report['repeats']} repeats, medians; data:"
        f" {report['data']}.",
        "",
        "One epoch with the splits in memory and on disk (warm cache):",
        "",
        "| workload | memory (s) | disk (s) | disk speed / memory speed |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, speed in report["speed"].items():
        lines.append(
            f"| {name} | {speed['memory_s']:.2f} | {speed['disk_s']:.2f} |"
            f" {speed['disk_speed']:.2f} (target >= {SPEED_TARGET}) |"
        )
    lines += [
        "",
        f"Whole `multiclass-train trainer.epochs=1` on folders of {IMAGE_SIDE}x{IMAGE_SIDE} RGB"
        " PNGs:",
        "",
        "| images | storage | peak RSS MB | wall (s) | epoch (s) | test acc |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in report["growth"]:
        lines.append(
            f"| {row['images']:,} | {row['storage']} | {row['peak_rss_mb']:,.0f} |"
            f" {row['wall_s']:.1f} | {row['train_s']:.2f} | {row['test_acc']:.4f} |"
        )
    lines += ["", *growth_lines(report["growth"]), folder_speed_line(report["growth"])]
    return "\n".join(lines) + "\n"


def growth_lines(rows: list[dict[str, Any]]) -> list[str]:
    """How much peak RSS grew from the smaller folder to the larger, per storage."""
    small, large = FOLDER_SIZES
    peak = {(row["images"], row["storage"]): row["peak_rss_mb"] for row in rows}
    lines = []
    for storage in ("memory", "disk, cold", "disk"):
        grown = peak[(large, storage)] - peak[(small, storage)]
        budget = f" (budget <= {BUDGET_MB} MB)" if storage == "disk" else ""
        lines.append(
            f"- {storage}: peak RSS {grown:+,.0f} MB from {small:,} to {large:,} images{budget}."
        )
    return lines


def folder_speed_line(rows: list[dict[str, Any]]) -> str:
    """The training pass on disk (warm cache) against memory, on the larger folder."""
    large = FOLDER_SIZES[-1]
    train = {row["storage"]: row["train_s"] for row in rows if row["images"] == large}
    return (
        f"- {large:,} images, training pass: disk at {train['memory'] / train['disk']:.2f} of"
        f" memory's speed ({train['disk']:.2f} s against {train['memory']:.2f} s; target >="
        f" {SPEED_TARGET})."
    )
