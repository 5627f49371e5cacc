"""Where and how tensors compute: device, threads, precision, determinism and seeds."""

import contextlib
import ctypes
import logging
import os
import random
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace

import numpy as np
import torch

from multiclass.errors import UserError
from multiclass.settings import DeviceSettings, check_value

log = logging.getLogger("multiclass")

HALF = {"bf16": torch.bfloat16, "fp16": torch.float16}  # autocast's dtype for each


@dataclass(frozen=True)
class Runtime:
    """The device a run trains on and the precision its forward passes use."""

    device: torch.device
    precision: str = "fp32"
    compile: bool = False
    channels_last: bool = True
    num_threads: int | None = None  # device.num_threads; None: threads_for_step chooses

    def settle_threads(self, multiply_adds_per_step: int) -> int:
        """Set the threads a CPU run trains with, once its model is known: device.num_threads
        where given, else threads_for_step's choice for a step of this much work."""
        if self.device.type == "cpu":
            torch.set_num_threads(self.num_threads or threads_for_step(multiply_adds_per_step))
        return torch.get_num_threads()

    def fitted_to(self, model: torch.nn.Module) -> "Runtime":
        """This runtime for `model`: channels_last only where it has 2-d convolutions, the
        layers that run faster on it; for any other model it would be a copy of every image
        batch that the model's flattening copies back."""
        has_convolutions = any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
        return replace(self, channels_last=self.channels_last and has_convolutions)

    def place(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model on the device, its convolutions in channels_last when asked for."""
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def layout(self, batch: torch.Tensor) -> torch.Tensor:
        """An image batch in channels_last when asked for: the CPU's convolutions run about
        a third faster on it (multiclass-bench, seed 004's CNN); other batches as they are."""
        if self.channels_last and batch.dim() == 4:
            return batch.contiguous(memory_format=torch.channels_last)
        return batch

    def compiled(self, model: torch.nn.Module) -> torch.nn.Module:
        """`torch.compile(model)` when asked for (it compiles at the first step), else `model`."""
        return torch.compile(model) if self.compile else model

    def autocast(self) -> AbstractContextManager:
        """bf16 or fp16 autocast when asked for, else nothing (fp32 needs no context)."""
        if self.precision in HALF:
            return torch.autocast(self.device.type, dtype=HALF[self.precision])
        return contextlib.nullcontext()

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """fp16's loss scaling (its gradients would underflow without it); None otherwise:
        bf16 has fp32's range, and fp32 steps exactly as without a scaler."""
        return torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else None


# Said, not refused: fp16 on the CPU trains correctly (a GPU config tried on a laptop), only
# several times slower than fp32 (CPUs have no fast fp16 arithmetic).
FP16_ON_CPU = (
    "warning: device.precision=fp16 on the CPU is several times slower than fp32 (CPUs have"
    " no fast fp16 arithmetic): use device.precision=fp32, or bf16 on a CPU with bf16 support"
)


DEVICE = DeviceSettings()  # the declared defaults (multiclass/settings.py), for a call from Python


def prepare(
    kind: str = DEVICE.kind,
    deterministic: bool = DEVICE.deterministic,
    num_threads: int | None = DEVICE.num_threads,
    precision: str = DEVICE.precision,
    compile: bool = DEVICE.compile,
    channels_last: bool = DEVICE.channels_last,
    reuse_memory: bool = DEVICE.reuse_memory,
    processes: int = DEVICE.processes,
) -> Runtime:
    """Pick the device and set torch's process-wide knobs as the run starts; built from the
    `device` config group. Until the model is built (Runtime.settle_threads), torch takes the
    threads the job was granted. `processes` is read before: by the command, which starts
    that many (lifecycle.distributed)."""
    device = select_device(kind)
    check_value("device.precision", precision)  # called from Python too, not only by a config
    check_value("device.num_threads", num_threads)
    if precision == "fp16" and device.type == "cpu":
        log.warning(FP16_ON_CPU)
    # Set every time: a launcher's reused worker (joblib's loky) keeps the last job's count.
    torch.set_num_threads(num_threads or threads_per_job())
    if deterministic and device.type == "cuda":
        # cuBLAS is only deterministic with a fixed workspace; it must be set before its first use.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # Its first call imports the compiler's config (over a second of imports), which the
    # optimizer's first step imports anyway: no time lost on a run.
    torch.use_deterministic_algorithms(deterministic)
    # Deterministic mode also fills every new tensor with NaN, in case a kernel reads memory it
    # never wrote; torch's kernels write all they return, so the fill only costs time (about
    # a fifth more a step of seed 000's MLP at batch 32) and changes no weight.
    torch.utils.deterministic.fill_uninitialized_memory = False
    torch.backends.cudnn.benchmark = not deterministic
    if reuse_memory:
        keep_freed_memory()
    return Runtime(device, precision, compile, channels_last, num_threads)


# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8


def keep_freed_memory() -> bool:
    """Have the C library's malloc, which torch's CPU tensors come from, keep freed memory for
    the next step instead of handing it back to the OS. By default every tensor over 32 MB (a
    CNN's activations at batch 256) is a fresh mmap that the kernel faults in and zeroes page
    by page, every step: on seed 004's CNN a fifth to a quarter of the step (multiclass-bench).
    The process keeps its peak memory until it ends, as torch's caching allocator does on a
    GPU. False, and nothing changed, where the C library is not glibc."""
    if not hasattr(os, "confstr") or "glibc" not in (os.confstr("CS_GNU_LIBC_VERSION") or ""):
        return False
    libc = ctypes.CDLL(None)
    kept = libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, 2**30)
    # One heap for every thread: a block that the disk prefetcher's thread read into and the
    # training's thread freed is then reused by the next read, not kept in a heap of its own.
    return bool(kept and libc.mallopt(M_ARENA_MAX, 1))


THREAD_LIMITS = ("OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK")
# A training step whose forward pass does fewer multiply-adds than this trains on one thread:
# multiclass-bench --threads (docs/performance.md#threads) measured one thread as fast as two
# or faster on such steps on a quiet machine, and several times faster beside busy processes,
# where a second thread waits for a core at every hand-off.
SMALL_STEP = 20_000_000


def threads_for_step(multiply_adds: int) -> int:
    """One thread for a small step (SMALL_STEP), else every core the job was granted; the
    thread count OMP_NUM_THREADS names (the user's, or a launcher's grant) always wins."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() or multiply_adds >= SMALL_STEP:
        return threads_per_job()
    return 1


def threads_per_job() -> int:
    """The cores this job may use: what its launcher granted (joblib's loky workers get
    OMP_NUM_THREADS = cores // n_jobs, Ray tasks their num_cpus, Slurm its cpus_per_task),
    never more than the cores this process may run on. Concurrent jobs then never
    oversubscribe."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    available = available or os.cpu_count() or 1
    for name in THREAD_LIMITS:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return min(int(value), available)
    return available


def select_device(kind: str) -> torch.device:
    """`auto` takes cuda, then mps, then cpu; naming a device that is not there is an error."""
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
        "cpu": True,
    }
    if kind == "auto":
        return torch.device(next(name for name, ok in available.items() if ok))
    check_value("device.kind", kind)
    if not available[kind]:
        raise UserError(
            f"device.kind={kind} was asked for but this machine has none: use device=cpu"
        )
    return torch.device(kind)


def seed_everything(seed: int) -> None:
    """Seed every generator a run draws from: python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
