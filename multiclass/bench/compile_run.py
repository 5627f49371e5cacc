"""multiclass-bench --compile-run: does torch.compile pay for itself over a whole seed run?

Times whole `multiclass-train` processes of seed 000's MLP on MNIST (experiment
seed000_mnist_mlp, 20 epochs) at batch 256, with `device.compile=false` and `true` in turn,
each in a fresh process so that every compilation starts cold. It records each run's wall time
and `train_time_s` (both include compiling: it happens at the first step), its first epoch and
the median of its later ones, from which follows the epoch at which compiling pays back.
Plots and the progress bar are off in both; the device is the default (`device=auto`).
It writes compile-run.md and compile-run.json.
"""

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from multiclass.bench.machine import machine
from multiclass.bench.processes import timed_process
from multiclass.bench.workloads import prepare_data
from multiclass.records.artifacts import read_csv_rows, read_json

EXPERIMENT = "seed000_mnist_mlp"
BATCH_SIZE = 256
SETTINGS = ("false", "true")  # device.compile


def seed_run_overrides(root: Path, samples: int, epochs: int, compile: str) -> list[str]:
    return [
        f"experiment={EXPERIMENT}",
        f"trainer.batch_size={BATCH_SIZE}",
        f"trainer.epochs={epochs}",
        f"dataset.root={root}",
        "dataset.download=false",
        f"dataset.limit={samples}",
        f"device.compile={compile}",
        "plots=false",
        "trainer.progress=false",
    ]


def seed_run(overrides: list[str]) -> dict[str, Any]:
    """One whole `multiclass-train` process: its wall time, and what its run directory says."""
    with tempfile.TemporaryDirectory() as cwd:
        wall = timed_process([sys.executable, "-m", "multiclass", *overrides], Path(cwd))
        (summary_path,) = Path(cwd).rglob("summary.json")
        summary = read_json(summary_path)
        rows = read_csv_rows(summary_path.parent / "metrics.csv")
        epochs = [float(row["train_seconds"]) for row in rows]
    return {
        "wall_s": wall,
        "train_time_s": summary["train_time_s"],
        "first_epoch_s": epochs[0],
        "later_epoch_s": statistics.median(epochs[1:]) if len(epochs) > 1 else None,
        "test_acc": summary["test_acc"],
        "device": summary["device"],
    }


def median_of(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [run[key] for run in runs if run[key] is not None]
    return statistics.median(values) if values else None


def compile_run(args: argparse.Namespace) -> dict[str, Any]:
    """Both settings in turn (false true false true ...), `args.repeats` times; medians."""
    with tempfile.TemporaryDirectory() as scratch:
        root, data = prepare_data(args.data_root, args.samples, Path(scratch))
        overrides = {
            c: seed_run_overrides(root, args.samples, args.compile_epochs, c) for c in SETTINGS
        }
        runs: dict[str, list] = {c: [] for c in SETTINGS}
        for repeat in range(args.repeats):
            for setting in SETTINGS:
                runs[setting].append(seed_run(overrides[setting]))
                print(
                    f"device.compile={setting} #{repeat + 1}: "
                    f"{runs[setting][-1]['wall_s']:.1f} s wall",
                    file=sys.stderr,
                )
    results = {
        setting: {
            "overrides": overrides[setting],
            "runs": setting_runs,
            **{key: median_of(setting_runs, key) for key in setting_runs[0] if key != "device"},
            "device": setting_runs[0]["device"],
        }
        for setting, setting_runs in runs.items()
    }
    return {
        "machine": machine(),
        "repeats": args.repeats,
        "data": data,
        "experiment": EXPERIMENT,
        "batch_size": BATCH_SIZE,
        "epochs": args.compile_epochs,
        "settings": results,
    }


def pays_back(report: dict[str, Any]) -> str:
    """The epochs after which compiling has cost no more than it saved, if ever."""
    off, on = report["settings"]["false"], report["settings"]["true"]
    if off["later_epoch_s"] is None or on["later_epoch_s"] is None:
        return "unknown (one epoch only)"
    saved = off["later_epoch_s"] - on["later_epoch_s"]
    if saved <= 0:
        return "never (its later epochs are no faster)"
    cost = on["first_epoch_s"] - off["first_epoch_s"]
    return f"after about {1 + max(cost, 0) / saved:.0f} epochs"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Machine: {report['machine']}; {report['repeats']} repeats, medians; "
        f"data: {report['data']}.",
        f"`experiment={report['experiment']} trainer.batch_size={report['batch_size']} "
        f"trainer.epochs={report['epochs']}`, whole `multiclass-train` processes, plots off.",
        "",
        "| device.compile | device | wall s | train_time_s | epoch 1 s | later epochs s "
        "| test acc |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for setting, row in report["settings"].items():
        later = "-" if row["later_epoch_s"] is None else f"{row['later_epoch_s']:.2f}"
        lines.append(
            f"| {setting} | {row['device']} | {row['wall_s']:.1f} | {row['train_time_s']:.2f} "
            f"| {row['first_epoch_s']:.2f} | {later} | {row['test_acc']:.4f} |"
        )
    off, on = report["settings"]["false"], report["settings"]["true"]
    lines += [
        "",
        f"- compile / no compile: wall {on['wall_s'] / off['wall_s']:.2f}, train_time_s "
        f"{on['train_time_s'] / off['train_time_s']:.2f}; compiling pays for itself: "
        f"{pays_back(report)}.",
    ]
    return "\n".join(lines) + "\n"
