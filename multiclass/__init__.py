"""multiclass: Hydra-configured PyTorch experiments for multiclass and binary classification.

`multiclass.load_run(RUN_DIR)` gives a trained run's model, ready to predict."""

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["TrainedRun", "load_run"]


def __getattr__(name: str) -> Any:
    """`load_run` and `TrainedRun` import torch when first asked for, not at `import
    multiclass`, which every command's start-up pays."""
    if name in __all__:
        return getattr(importlib.import_module("multiclass.inference"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
