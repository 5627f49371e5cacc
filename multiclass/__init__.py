"""multiclass: Hydra-configured PyTorch experiments for multiclass and binary classification."""

__version__ = "0.1.0"
