"""The `model` config group's builders and the contract they keep. A model config's
`_target_` names one of them (`multiclass.models.mlp`), a standard architecture
(`multiclass.models.torchvision`, `multiclass.models.timm`) or a user's own builder."""

from multiclass.models.builders import cnn, flattened_size, mlp
from multiclass.models.contract import build_classifier, check_outputs, model_builder
from multiclass.models.zoo import timm, torchvision

__all__ = [
    "build_classifier",
    "check_outputs",
    "cnn",
    "flattened_size",
    "mlp",
    "model_builder",
    "timm",
    "torchvision",
]
