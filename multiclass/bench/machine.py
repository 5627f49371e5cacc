"""This machine: what the report says it is, and the CNN's floor, the most samples per second
that its measured matrix-multiply rate allows."""

import os
import platform
import time

from multiclass.bench.workloads import build_model


def machine() -> str:
    import torch

    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"Python {platform.python_version()}"
    )


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
