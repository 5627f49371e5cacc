"""multiclass-bench: the framework's training speed beside the loops people write by hand.

Contestants train the same model on the same MNIST-shaped data for one epoch, in turn
(A B C A B C ...), each in a fresh process so that its peak memory is its own:

- seed-style: seed 000's loop: torchvision MNIST with ToTensor, DataLoader(shuffle=True),
  `.item()` every step;
- minimal: a hand-written loop over slices of a seeded permutation, nothing else;
- framework: `multiclass.lifecycle.run.execute`, the code path of `multiclass-train`, timed by the
  `train_seconds` its metrics.csv records (the training pass alone, as for the others);
- lightning and fastai, where installed (the `bench` extra): the frameworks users would pick
  instead, set up as their docs advise (bench_lightning.py, bench_fastai.py).

It also times whole `multiclass-train` processes (start-up, an 8-job sweep) and, for the CNN,
compares the speed reached with the floor that its FLOP count and this machine's measured
matrix-multiply rate give. It writes bench.md and bench.json. `--compile-run` instead times
whole seed runs with and without torch.compile (bench_compile.py).
"""

import argparse
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CONTESTANTS = ("seed-style", "minimal", "framework")
# Other frameworks' contestants: the module each needs, and how to install it.
RIVALS = {"lightning": "pytorch_lightning", "fastai": "fastai"}
RIVALS_INSTALL = "pip install -e '.[bench]'"
LEARNING_RATE = 1e-3


@dataclass(frozen=True)
class Workload:
    name: str
    model: str  # "mlp": seed 000's 784-256-128-64-10; "cnn": seed 004's two conv blocks
    batch_size: int
    samples: int  # training samples in the one epoch
    contestants: tuple[str, ...] = CONTESTANTS


def workloads(
    samples: int, cnn_steps: int, variants: bool, rivals: tuple[str, ...] = ()
) -> list[Workload]:
    """The MLP at batch 32 and 256 (the framework also with torch.compile and with bf16 at 256
    when `variants`), and the CNN at batch 256 for `cnn_steps` steps; every one also with the
    `rivals` (other frameworks' contestants)."""
    everywhere = (*CONTESTANTS, *rivals)
    at_256 = (*everywhere, "framework+compile", "framework+bf16") if variants else everywhere
    return [
        Workload("mlp-b32", "mlp", 32, samples, everywhere),
        Workload("mlp-b256", "mlp", 256, samples, at_256),
        Workload("cnn-b256", "cnn", 256, min(samples, cnn_steps * 256), everywhere),
    ]


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def installed_rivals() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The other frameworks' contestants whose library imports here, and those that do not."""
    present = tuple(name for name, module in RIVALS.items() if installed(module))
    return present, tuple(name for name in RIVALS if name not in present)


# ---------------------------------------------------------------------------- the contestants
# Each runs in its own process (`multiclass-bench worker ...`) and returns one measurement.


def build_model(kind: str):
    from multiclass import models

    if kind == "mlp":
        return models.mlp((1, 28, 28), 10, hidden=[256, 128, 64])
    return models.cnn((1, 28, 28), 10, channels=[64, 64], kernel_size=5, padding=0, pool=2)


def framework_overrides(workload: Workload, root: Path, variant: str) -> list[str]:
    model = (
        "model.hidden=[256,128,64]"
        if workload.model == "mlp"
        else "model=cnn model.channels=[64,64] model.kernel_size=5 model.padding=0 model.pool=2"
    )
    extra = {
        "framework": "",
        "framework+compile": "device.compile=true",
        "framework+bf16": "device.precision=bf16",
    }[variant]
    return [
        "dataset=mnist",
        f"dataset.root={root}",
        "dataset.download=false",
        "dataset.val_fraction=0",
        f"dataset.limit={workload.samples}",
        *model.split(),
        f"trainer.batch_size={workload.batch_size}",
        "trainer.epochs=1",
        "plots=false",
        "trainer.progress=false",
        f"optimizer.lr={LEARNING_RATE}",
        "device=cpu",
        *extra.split(),
    ]


def run_framework(workload: Workload, root: Path, variant: str) -> dict[str, Any]:
    import csv

    from multiclass.config import compose_config
    from multiclass.lifecycle.run import execute

    cfg = compose_config(*framework_overrides(workload, root, variant))
    with tempfile.TemporaryDirectory() as run_dir:
        outcome = execute(cfg, Path(run_dir))
        if outcome.status != "completed":
            raise RuntimeError(f"framework run {outcome.status}: {outcome.summary.get('error')}")
        with open(Path(run_dir) / "metrics.csv") as file:
            (row,) = csv.DictReader(file)
    accuracy = outcome.summary["test_acc"] if workload.model == "mlp" else None
    return {"seconds": float(row["train_seconds"]), "test_acc": accuracy}


def run_seed_style(workload: Workload, root: Path) -> dict[str, Any]:
    import torch
    from torch.utils.data import DataLoader, Subset
    from torchvision.datasets import MNIST
    from torchvision.transforms import ToTensor

    dataset = Subset(MNIST(str(root), train=True, transform=ToTensor()), range(workload.samples))
    loader = DataLoader(dataset, batch_size=workload.batch_size, shuffle=True)
    torch.manual_seed(0)
    model = build_model(workload.model)
    loss_function = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    started = time.perf_counter()
    epoch_loss, n_corrects = 0.0, 0  # the seed reports these every epoch
    for x, y in loader:
        pred = model.forward(x)
        loss = loss_function(pred, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        epoch_loss += loss.item() * len(x)
        n_corrects += (torch.argmax(pred, dim=1) == y).sum().item()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "test_acc": accuracy_on_test_set(model, workload, root)}


def mnist_tensors(workload: Workload, root: Path):
    """The workload's training images as one float tensor in [0, 1], and their labels."""
    from torchvision.datasets import MNIST

    train = MNIST(str(root), train=True)
    images, labels = train.data[: workload.samples], train.targets[: workload.samples]
    return images.unsqueeze(1).float() / 255, labels


def run_minimal(workload: Workload, root: Path) -> dict[str, Any]:
    import torch

    x, y = mnist_tensors(workload, root)
    torch.manual_seed(0)
    model = build_model(workload.model)
    loss_function = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    started = time.perf_counter()
    for start in range(0, len(y), workload.batch_size):
        batch = order[start : start + workload.batch_size]
        loss = loss_function(model(x[batch]), y[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "test_acc": accuracy_on_test_set(model, workload, root)}


def accuracy_on_test_set(model, workload: Workload, root: Path) -> float | None:
    """Accuracy on the official test set after the epoch (MLP workloads; untimed)."""
    if workload.model != "mlp":
        return None
    import torch
    from torchvision.datasets import MNIST

    test = MNIST(str(root), train=False)
    with torch.no_grad():
        predicted = model.eval()(test.data.unsqueeze(1).float() / 255).argmax(dim=1)
    return (predicted == test.targets).float().mean().item()


def worker(contestant: str, workload: Workload, root: Path) -> dict[str, Any]:
    """One measurement in this process: seconds for the epoch, and this process's peak memory."""
    if contestant == "seed-style":
        result = run_seed_style(workload, root)
    elif contestant == "minimal":
        result = run_minimal(workload, root)
    elif contestant == "lightning":
        from multiclass.commands.bench_lightning import run_lightning

        result = run_lightning(workload, root)
    elif contestant == "fastai":
        from multiclass.commands.bench_fastai import run_fastai

        result = run_fastai(workload, root)
    else:
        result = run_framework(workload, root, contestant)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def measure(contestant: str, workload: Workload, root: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "multiclass.commands.bench",
        "worker",
        contestant,
        json.dumps(asdict(workload)),
        str(root),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{contestant} on {workload.name} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- whole processes


def timed_process(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[1:])} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - started


FLOOR_SCRIPT = "import torch; torch.optim.Adam([torch.zeros(1, requires_grad=True)])"


def startup_seconds(repeats: int) -> dict[str, float]:
    """Median wall time of `multiclass-train trainer.epochs=1` on the default data set, and of
    the floor any torch training script pays here (importing torch, building an optimizer),
    measured in turn; `ours_s`, the median of their differences, is what our code adds."""
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
    timing all four sweeps in turn (one sweep's time varies by a tenth here), and each round's
    figures under `<name>_rounds`."""
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


# ---------------------------------------------------------------------------- the CNN's floor


def cnn_floor(batch_size: int) -> dict[str, float]:
    """FLOPs of one training step (forward and backward, counted by torch) and the matrix
    multiply rate measured here: together, the most samples per second the machine allows."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model("cnn")
    x, y = torch.rand(batch_size, 1, 28, 28), torch.randint(0, 10, (batch_size,))
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(model(x), y).backward()
    flops_per_sample = counter.get_total_flops() / batch_size
    a, b = torch.rand(1024, 1024), torch.rand(1024, 1024)
    a @ b
    started, reps = time.perf_counter(), 20
    for _ in range(reps):
        a @ b
    rate = 2 * 1024**3 * reps / (time.perf_counter() - started)
    return {
        "flops_per_sample": flops_per_sample,
        "matmul_gflops": rate / 1e9,
        "floor_samples_per_s": rate / flops_per_sample,
    }


# ---------------------------------------------------------------------------- the report


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = statistics.median(run["seconds"] for run in runs)
    accuracies = [run["test_acc"] for run in runs if run["test_acc"] is not None]
    summary = {
        "seconds": seconds,
        "all_seconds": [run["seconds"] for run in runs],
        "peak_rss_mb": statistics.median(run["peak_rss_mb"] for run in runs),
        "test_acc": statistics.median(accuracies) if accuracies else None,
    }
    if "fit_seconds" in runs[0]:  # other frameworks' whole fit call, set-up included
        summary["fit_seconds"] = statistics.median(run["fit_seconds"] for run in runs)
    return summary


RIVAL_NAMES = {"lightning": ("Lightning", "`trainer.fit`"), "fastai": ("fastai", "`learn.fit`")}


def rivals_line(name: str, result: dict[str, Any]) -> str | None:
    """framework / each other framework's epoch time, and their whole fit calls' time."""
    contestants = result["contestants"]
    present = [rival for rival in RIVAL_NAMES if rival in contestants]
    if not present:
        return None
    framework = contestants["framework"]["seconds"]
    ratios = ", ".join(
        f"framework / {RIVAL_NAMES[r][0]} = {framework / contestants[r]['seconds']:.2f}"
        for r in present
    )
    fits = ", ".join(f"{RIVAL_NAMES[r][1]} {contestants[r]['fit_seconds']:.2f} s" for r in present)
    return f"- {name}: {ratios} (target <= 0.5); whole fit call, set-up included: {fits}."


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: the table, then the CNN's floor and the whole-process times."""
    lines = [
        f"Machine: {report['machine']}; {report['repeats']} repeats, medians; "
        f"data: {report['data']}.",
        "",
        "| workload | contestant | s / epoch | spread (s) | samples / s | peak RSS MB | test acc "
        "| framework / this |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, result in report["workloads"].items():
        framework = result["contestants"]["framework"]["seconds"]
        for contestant, row in result["contestants"].items():
            accuracy = "-" if row["test_acc"] is None else f"{row['test_acc']:.4f}"
            spread = f"{min(row['all_seconds']):.2f}-{max(row['all_seconds']):.2f}"
            lines.append(
                f"| {name} | {contestant} | {row['seconds']:.2f} | {spread} | "
                f"{result['samples'] / row['seconds']:,.0f} | {row['peak_rss_mb']:,.0f} | "
                f"{accuracy} | {framework / row['seconds']:.2f} |"
            )
    lines.append("")
    for name, result in report["workloads"].items():
        line = rivals_line(name, result)
        if line:
            lines.append(line)
    if report.get("skipped"):
        lines.append(skipped_line(report["skipped"]))
    floor, cnn = report["cnn_floor"], report["workloads"].get("cnn-b256")
    if cnn:
        reached = cnn["samples"] / cnn["contestants"]["framework"]["seconds"]
        lines.append(
            f"- CNN: {floor['flops_per_sample'] / 1e6:.1f} MFLOP per training sample (torch's "
            f"FlopCounterMode), matrix multiply {floor['matmul_gflops']:.1f} GFLOP/s here: floor "
            f"{floor['floor_samples_per_s']:,.0f} samples/s; the framework reaches {reached:,.0f}"
            f" ({reached / floor['floor_samples_per_s']:.0%} of it)."
        )
    if "startup" in report:
        startup, sweep = report["startup"], report["sweep"]
        lines += [
            f"- `multiclass-train trainer.epochs=1` (default data set), whole process: "
            f'{startup["framework_s"]:.2f} s; the floor, `python -c "{FLOOR_SCRIPT}"`: '
            f"{startup['torch_floor_s']:.2f} s; ours, the difference (median of pairs): "
            f"{startup['ours_s']:.2f} s (target <= 1.0 s).",
            f"- 8-job sweep of tiny runs (medians of the rounds), (wall - training) / 8: "
            f"{sweep['plots_true_s']:.2f} s "
            f"per job with plots, {sweep['plots_false_s']:.2f} s with `plots=false` (walls "
            f"{sweep['plots_true_wall_s']:.1f} s and {sweep['plots_false_wall_s']:.1f} s); each "
            f"job past the first: {sweep['plots_true_marginal_s']:.2f} s with plots (target <= "
            f"0.5 s), {sweep['plots_false_marginal_s']:.2f} s without.",
        ]
    if report["smoke"]:
        lines.insert(0, "Smoke run: contestants in one process, not a measurement.")
    return "\n".join(lines) + "\n"


def skipped_line(skipped: tuple[str, ...] | list[str]) -> str:
    return f"- Skipped {', '.join(skipped)}: not installed ({RIVALS_INSTALL})."


def prepare_data(data_root: Path | None, samples: int, scratch: Path) -> tuple[Path, str]:
    """The real MNIST when `data_root` holds it, else synthetic IDX files of the same shape."""
    if data_root is not None and (data_root / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        return data_root.resolve(), f"MNIST from {data_root}"
    from multiclass.datasets.synthetic import write_idx_dataset

    write_idx_dataset(scratch / "MNIST" / "raw", num_train=samples, num_test=min(samples, 10_000))
    return scratch, f"synthetic MNIST-shaped data ({samples:,} training images)"


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement; `args.smoke` runs the contestants in this process and skips the
    compile and bf16 variants and the whole-process timings: a check that it works, no more."""
    run_one = worker if args.smoke else measure
    rivals, skipped = installed_rivals()
    if skipped:
        print(skipped_line(skipped)[2:], file=sys.stderr)
    with tempfile.TemporaryDirectory() as scratch:
        root, data = prepare_data(args.data_root, args.samples, Path(scratch))
        report: dict[str, Any] = {
            "machine": machine(),
            "repeats": args.repeats,
            "data": data,
            "smoke": args.smoke,
            "skipped": list(skipped),
            "workloads": {},
        }
        for workload in workloads(args.samples, args.cnn_steps, not args.smoke, rivals):
            if args.workloads is not None and workload.name not in args.workloads:
                continue
            runs: dict[str, list] = {c: [] for c in workload.contestants}
            for repeat in range(args.repeats):
                for contestant in workload.contestants:
                    runs[contestant].append(run_one(contestant, workload, root))
                    print(
                        f"{workload.name} {contestant} #{repeat + 1}: "
                        f"{runs[contestant][-1]['seconds']:.2f} s",
                        file=sys.stderr,
                    )
            report["workloads"][workload.name] = {
                "samples": workload.samples,
                "batch_size": workload.batch_size,
                "contestants": {c: summarise(r) for c, r in runs.items()},
            }
    report["cnn_floor"] = cnn_floor(256)
    if not (args.smoke or args.no_processes):
        report["startup"] = startup_seconds(args.repeats)
        report["sweep"] = sweep_overhead(repeats=args.repeats)
    return report


def machine() -> str:
    import torch

    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        contestant, workload, root = argv[1], Workload(**json.loads(argv[2])), Path(argv[3])
        print(json.dumps(worker(contestant, workload, root)))
        return
    parser = argparse.ArgumentParser(prog="multiclass-bench", description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, help="a folder holding MNIST/raw")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=60_000, help="training images per epoch")
    parser.add_argument("--cnn-steps", type=int, default=20, help="CNN steps of 256 per epoch")
    parser.add_argument("--output", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--smoke", action="store_true", help="a quick check that it runs")
    parser.add_argument(
        "--workloads",
        nargs="*",
        help="only these of mlp-b32 mlp-b256 cnn-b256; with no names, only the process timings",
    )
    parser.add_argument(
        "--no-processes",
        action="store_true",
        help="skip the whole-process timings (start-up, sweep)",
    )
    parser.add_argument(
        "--compile-run",
        action="store_true",
        help="instead, time whole seed runs with device.compile=false and true",
    )
    parser.add_argument("--compile-epochs", type=int, default=20, help="epochs of --compile-run")
    args = parser.parse_args(argv)
    if min(args.repeats, args.samples, args.compile_epochs) < 1:
        parser.error("--repeats, --samples and --compile-epochs must be positive")
    if args.compile_run:
        from multiclass.commands import bench_compile

        write_report(
            bench_compile.compile_run(args), bench_compile.markdown, args.output, "compile-run"
        )
    else:
        write_report(benchmark(args), markdown, args.output, "bench")


def write_report(
    report: dict[str, Any], to_markdown: Callable[[dict[str, Any]], str], output: Path, name: str
) -> None:
    """`name`.json and `name`.md in `output`; the Markdown also on the screen."""
    from multiclass.lifecycle.artifacts import write_atomic, write_json

    output.mkdir(parents=True, exist_ok=True)
    write_json(output / f"{name}.json", report)
    write_atomic(output / f"{name}.md", to_markdown(report))
    print(to_markdown(report))


if __name__ == "__main__":
    main()
