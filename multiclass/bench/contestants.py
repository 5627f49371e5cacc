"""The contestants: each trains a workload for one epoch and returns one measurement. Each runs
in its own process (`multiclass-bench worker ...`, which `measure` starts), so that its peak
memory is its own, in the environment the user started the bench with: the peers (Lightning,
fastai, the hand-written loops) at torch's own defaults, as their users run them, and the
framework applying its own settings as `multiclass-train` does. The other frameworks'
contestants are imported only in the worker that runs them, since they need the `bench` extra."""

import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from multiclass.bench.workloads import (
    LEARNING_RATE,
    Workload,
    accuracy_on_test_set,
    build_model,
    mnist_tensors,
)
from multiclass.device import openmp

# Other frameworks' contestants: the module each needs, and how to install it.
RIVALS = {"lightning": "pytorch_lightning", "fastai": "fastai"}
RIVALS_INSTALL = "pip install -e '.[bench]'"
BENCH_CACHE = Path(tempfile.gettempdir()) / "multiclass-bench-cache"  # dataset.storage=disk's


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def installed_rivals() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The other frameworks' contestants whose library imports here, and those that do not."""
    present = tuple(name for name, module in RIVALS.items() if installed(module))
    return present, tuple(name for name in RIVALS if name not in present)


def framework_overrides(
    workload: Workload, root: Path, variant: str, device: str = "cpu"
) -> list[str]:
    model = (
        "model.hidden=[256,128,64]"
        if workload.model == "mlp"
        else "model=cnn model.channels=[64,64] model.kernel_size=5 model.padding=0 model.pool=2"
    )
    extra = {
        "framework": "",
        "framework+compile": "device.compile=true",
        "framework+bf16": "device.precision=bf16",
        "framework+fp16": "device.precision=fp16",
        "framework+disk": f"dataset.storage=disk dataset.cache_dir={BENCH_CACHE}",
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
        f"device={device}",
        *extra.split(),
    ]


def run_framework(
    workload: Workload, root: Path, variant: str, device: str = "cpu"
) -> dict[str, Any]:
    import csv

    from multiclass.config import compose_config
    from multiclass.lifecycle.run import execute

    cfg = compose_config(*framework_overrides(workload, root, variant, device))
    with tempfile.TemporaryDirectory() as run_dir:
        outcome = execute(cfg, Path(run_dir))
        if outcome.status != "completed":
            raise RuntimeError(f"framework run {outcome.status}: {outcome.summary.get('error')}")
        with open(Path(run_dir) / "metrics.csv") as file:
            (row,) = csv.DictReader(file)
    accuracy = outcome.summary["test_acc"] if workload.model == "mlp" else None
    return {
        "seconds": float(row["train_seconds"]),
        "test_acc": accuracy,
        "weights_sha256": outcome.summary["weights_sha256"],
    }


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


# The environment variables that change how torch computes on a CPU: reported per contestant.
COMPUTE_SETTINGS = ("OMP_", "GOMP_", "MKL_", "KMP_", "OPENBLAS_")


def worker(contestant: str, workload: Workload, root: Path) -> dict[str, Any]:
    """One measurement in this process: seconds for the epoch, this process's peak memory, and
    the settings it computed with (torch's threads, the environment's compute variables)."""
    if contestant == "seed-style":
        result = run_seed_style(workload, root)
    elif contestant == "minimal":
        result = run_minimal(workload, root)
    elif contestant == "lightning":
        from multiclass.bench.lightning import run_lightning

        result = run_lightning(workload, root)
    elif contestant == "fastai":
        from multiclass.bench.fastai import run_fastai

        result = run_fastai(workload, root)
    else:
        result = run_framework(workload, root, contestant)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["settings"] = settings_line()
    return result


def settings_line() -> str:
    """torch's threads as trained, and every compute variable of the environment."""
    import torch

    names = sorted(name for name in os.environ if name.startswith(COMPUTE_SETTINGS))
    variables = [f"{name}={os.environ[name]}" for name in names]
    return ", ".join([f"threads {torch.get_num_threads()}", *variables])


def contestant_environment(settings: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a contestant starts in: the one the bench was started with, less
    whatever this package set (openmp.users_environment), plus the measurement's `settings`."""
    return {**openmp.users_environment(os.environ), **(settings or {})}


def measure(
    contestant: str,
    workload: Workload,
    root: Path,
    settings: dict[str, str] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """`worker` in a fresh process (the command's hidden `worker` mode, multiclass.bench.cli),
    in contestant_environment(settings); subprocess.TimeoutExpired past `timeout` seconds."""
    command = [
        sys.executable,
        "-m",
        "multiclass.bench.cli",
        "worker",
        contestant,
        json.dumps(asdict(workload)),
        str(root),
    ]
    environment = contestant_environment(settings)
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, env=environment, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"{contestant} on {workload.name} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
