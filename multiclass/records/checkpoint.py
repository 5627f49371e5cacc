"""model.pt: the weights plus the plain data that rebuilds the model, loadable with
`torch.load(weights_only=True)`; `load_classifier` gives back a ready model.

Loading treats the file as untrusted: weights_only refuses a pickle that would run code, and
the builders it names (`_target_`s, which Hydra calls) must be a torch loss and a model builder
as build_classifier calls it: ours, or a user's whose module is importable here."""

import io
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from multiclass import models
from multiclass.errors import UserError
from multiclass.heads import PROJECT_LOSSES, Head, build_loss
from multiclass.models import build_classifier
from multiclass.models.finetune import from_checkpoint, pickled_globals
from multiclass.records.artifacts import write_atomic

CONTENT_KEYS = ("state_dict", "model", "loss", "input_shape", "class_names")


def save_checkpoint(
    path: Path,
    model: nn.Module,
    model_cfg: DictConfig,
    loss_cfg: DictConfig,
    input_shape: tuple[int, ...],
    class_names: list[str],
    temperature: float = 1.0,
    **extra: str,
) -> None:
    """`temperature`: trainer.calibrate's, which load_run applies (recorded when not 1);
    `extra`: plain data to record beside them (a table's preprocess.pkl digest)."""
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    content = {
        "state_dict": state,
        "model": OmegaConf.to_container(model_cfg, resolve=True),
        "loss": OmegaConf.to_container(loss_cfg, resolve=True),
        "input_shape": list(input_shape),
        "class_names": list(class_names),
        **extra,
    }
    if temperature != 1.0:
        content["temperature"] = float(temperature)
    buffer = io.BytesIO()
    torch.save(content, buffer)
    write_atomic(path, buffer.getvalue())


def load_classifier(path: Path | str) -> tuple[nn.Module, Head, dict[str, Any]]:
    """The model saved at `path` in eval mode on the CPU, its head, and the checkpoint's data."""
    content = read_checkpoint(path)
    model, _, head = rebuild(path, content)
    return model, head, content


def read_checkpoint(path: Path | str) -> dict[str, Any]:
    """The checkpoint's content, or a one-line UserError for a file that is missing, cut short,
    not a checkpoint, or holds anything but tensors and plain data."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint file")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, empty, not written by torch.save, or pickled code
        pickled = pickled_globals(path, error)
        if pickled:
            raise UserError(
                f"{path}: refused, it holds objects other than tensors and plain data"
                f" ({pickled[0]}), which loading could run as code"
            ) from None
        raise UserError(
            f"{path}: not a readable checkpoint, truncated or not written by torch.save"
            f" ({type(error).__name__})"
        ) from None
    missing = [key for key in CONTENT_KEYS if not isinstance(content, dict) or key not in content]
    if missing:
        raise UserError(f"{path}: not a multiclass checkpoint (no {', '.join(missing)})")
    check_builders(path, content)
    return content


def check_builders(path: Path, content: dict[str, Any]) -> None:
    """Hydra calls whatever a `_target_` names: allow a torch loss class and an importable model
    builder taking (input_shape, num_outputs), and no builder nested in their options."""
    for node, allowed in (("loss", is_torch_loss), ("model", is_model_builder)):
        config = content[node]
        target = config.get("_target_") if isinstance(config, dict) else None
        try:
            builds = isinstance(target, str) and allowed(target)
        except UserError as why:  # a model builder that is not importable, or not called so
            raise UserError(f"{path}: refused, {why}") from None
        if not builds:
            raise UserError(f"{path}: refused, its {node} would be built by {target!r}")
        if any(names_builder(value) for value in config.values()):
            raise UserError(f"{path}: refused, its {node} options name builders of their own")


def is_torch_loss(target: str) -> bool:
    """torch's losses, by name, and ours (heads.PROJECT_LOSSES), each a torch loss's subclass."""
    module, _, name = target.rpartition(".")
    return (module == "torch.nn" and name in nn.modules.loss.__all__) or target in PROJECT_LOSSES


def is_model_builder(target: str) -> bool:
    """A function or class build_classifier would call, ours or a user's; else a UserError
    saying why not (not importable, or not taking input_shape and num_outputs)."""
    return callable(models.model_builder(target))


def names_builder(value: Any) -> bool:
    if isinstance(value, dict):
        return "_target_" in value or any(names_builder(v) for v in value.values())
    return isinstance(value, list) and any(names_builder(v) for v in value)


def rebuild(path: Path | str, content: dict[str, Any]) -> tuple[nn.Module, nn.Module, Head]:
    """The saved model in eval mode on the CPU, its loss and its head."""
    try:
        num_classes = len(content["class_names"])
        criterion, head = build_loss(OmegaConf.create(content["loss"]), num_classes)
        model_cfg = from_checkpoint(OmegaConf.create(content["model"]))  # nothing downloaded
        model = build_classifier(model_cfg, content["input_shape"], head)
        model.load_state_dict(content["state_dict"])
    except Exception as error:  # weights of another shape, options no builder takes
        text = " ".join(str(error).split())[:200]
        raise UserError(f"{path}: cannot rebuild the model it describes: {text}") from None
    return model.eval(), criterion, head
