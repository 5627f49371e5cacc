"""model.pt: the weights plus the plain data that rebuilds the model, loadable with
`torch.load(weights_only=True)`; `load_classifier` gives back a ready model."""

import io
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from multiclass.heads import Head, build_loss
from multiclass.lifecycle.artifacts import write_atomic
from multiclass.models import build_classifier


def save_checkpoint(
    path: Path,
    model: nn.Module,
    model_cfg: DictConfig,
    loss_cfg: DictConfig,
    input_shape: tuple[int, ...],
    class_names: list[str],
) -> None:
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    content = {
        "state_dict": state,
        "model": OmegaConf.to_container(model_cfg, resolve=True),
        "loss": OmegaConf.to_container(loss_cfg, resolve=True),
        "input_shape": list(input_shape),
        "class_names": list(class_names),
    }
    buffer = io.BytesIO()
    torch.save(content, buffer)
    write_atomic(path, buffer.getvalue())


def load_classifier(path: Path | str) -> tuple[nn.Module, Head, dict[str, Any]]:
    """The model saved at `path` in eval mode on the CPU, its head, and the checkpoint's data."""
    content = torch.load(path, map_location="cpu", weights_only=True)
    _, head = build_loss(OmegaConf.create(content["loss"]), len(content["class_names"]))
    model = build_classifier(OmegaConf.create(content["model"]), content["input_shape"], head)
    model.load_state_dict(content["state_dict"])
    return model.eval(), head, content
