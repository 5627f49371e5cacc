"""multiclass: Hydra-configured PyTorch experiments for multiclass and binary classification.

`multiclass.load_run(RUN_DIR)` gives a trained run's model, ready to predict."""

import importlib
import os
from typing import Any

# OpenMP's idle threads sleep rather than spin for work (unless the user chose otherwise):
# spinning threads take the cores other processes need, and on a busy machine the default
# run trained 20 to 100 times slower (multiclass-bench, docs/performance.md). It must be set
# before torch loads OpenMP, so it is set here, where every command starts, and child
# processes (launcher workers) inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
__all__ = ["TrainedRun", "load_run"]


def __getattr__(name: str) -> Any:
    """`load_run` and `TrainedRun` import torch when first asked for, not at `import
    multiclass`, which every command's start-up pays."""
    if name in __all__:
        return getattr(importlib.import_module("multiclass.inference"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
