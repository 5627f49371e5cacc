"""Fine-tuning, for every model alike: start from a weights file (`finetune.weights`), train the
head only (`finetune.freeze=backbone`) or the backbone at a fraction of the lr
(`finetune.backbone_lr`). The head is the model's last layer with parameters, the one that
gives the classes' outputs; the backbone is everything before it.

These keys are the `finetune` node's (declared in multiclass/settings.py), beside the model's,
not among its builder's arguments; a model rebuilt from model.pt, or resumed from last.pt,
never reads the weights file again (`finetuning(restoring=True)`, `from_checkpoint`)."""

import copy
import dataclasses
import logging
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, open_dict
from torch import nn

from multiclass.errors import UserError
from multiclass.settings import Finetuning

# The model node of a config saved before the `finetune` node (a run's config.yaml, a model.pt)
# held these keys among its builder's arguments: read from there, left out of the call.
FINETUNE_KEYS = tuple(item.name for item in dataclasses.fields(Finetuning))
# A standard architecture's options that fetch pretrained weights: timm's, torchvision's.
DOWNLOADING_OPTIONS = ("pretrained", "weights")
SHOWN = 4  # layers named in an error
DETAIL = 200  # characters of a library's error in a line of ours

log = logging.getLogger("multiclass")


def finetuning(cfg: DictConfig, restoring: bool = False) -> Finetuning:
    """A run's fine-tuning: its `finetune` node, with the keys of an older config's model node
    over it. `restoring`: a checkpoint replaces every weight, so no weights file is read."""
    given = dict(cfg.get("finetune") or {})
    given.update({key: cfg.model[key] for key in FINETUNE_KEYS if key in cfg.model})
    settings = Finetuning(**given)
    return dataclasses.replace(settings, weights=None) if restoring else settings


@dataclass(frozen=True)
class Trainable:
    """What the optimizer updates (its parameter groups, each group's lr a factor of the
    optimizer's) and what stays in eval mode."""

    groups: list[dict[str, Any]]
    lr_factors: tuple[float, ...] = (1.0,)
    frozen: tuple[nn.Module, ...] = ()


def from_checkpoint(model_cfg: DictConfig) -> DictConfig:
    """The model config for a build whose every weight a checkpoint then replaces (a resume's
    last.pt): without the options that download pretrained weights (nor an older config's
    model.weights), so that a resume needs neither the file nor the download, which only the
    first build used."""
    rebuilt = copy.deepcopy(model_cfg)
    with open_dict(rebuilt):
        if "weights" in rebuilt:
            rebuilt.weights = None
        options = rebuilt.get("options")
        if isinstance(options, DictConfig):
            for option in DOWNLOADING_OPTIONS:
                options.pop(option, None)
    return rebuilt


def prepare(body: nn.Module, settings: Finetuning) -> Trainable:
    """Load the weights file into `body`, then split its parameters as `settings` says. With
    the defaults the optimizer gets one group of every parameter, as without fine-tuning."""
    head = head_module(body)
    if settings.weights is not None:
        load_weights(body, head, Path(settings.weights))
    in_head = {id(parameter) for parameter in head.parameters()}
    backbone = [p for p in body.parameters() if id(p) not in in_head]
    if settings.freeze == "backbone":
        for parameter in backbone:
            parameter.requires_grad_(False)
        # In eval mode too: batch norm keeps its running statistics, dropout is off.
        head_modules = set(head.modules())
        frozen = tuple(m for m in body.modules() if m not in head_modules and not any(m.children()))
        return Trainable([{"params": list(head.parameters())}], frozen=frozen)
    if settings.backbone_lr != 1.0:
        # the head's group first: metrics.csv's lr is the head's
        groups = [{"params": list(head.parameters())}, {"params": backbone}]
        return Trainable(groups, lr_factors=(1.0, settings.backbone_lr))
    return Trainable([{"params": list(body.parameters())}])


def head_module(body: nn.Module) -> nn.Module:
    """The classifier: timm's `get_classifier()`, else the last module with parameters of its
    own (torchvision's `fc`, `classifier[-1]`, `heads.head`; our models' last Linear)."""
    get_classifier = getattr(body, "get_classifier", None)
    if callable(get_classifier) and isinstance(get_classifier(), nn.Module):
        return get_classifier()
    with_parameters = [m for m in body.modules() if list(m.parameters(recurse=False))]
    if not with_parameters:
        raise UserError("finetune.freeze and finetune.backbone_lr need a model with parameters")
    return with_parameters[-1]


def load_weights(body: nn.Module, head: nn.Module, path: Path) -> None:
    """The file's tensors into `body`, but the head's, which stays as built for the data's
    classes. A first convolution saved for another number of input channels is adapted (summed
    over them for one channel, as timm does); any other mismatch is a one-line error."""
    path = weights_file(path)  # a run directory: its model.pt, named in every error
    saved = read_state_dict(path)
    own = body.state_dict()
    (head_name,) = [name for name, module in body.named_modules() if module is head]
    head_prefix = f"{head_name}."  # the head's tensors in the state dict
    stem_name, _ = first_conv(body)
    stem = None if stem_name is None else f"{stem_name}.weight"
    loaded, mismatched = {}, []
    for key, tensor in saved.items():
        if key.startswith(head_prefix) or key not in own:
            continue
        wanted = own[key].shape
        if tensor.shape == wanted:
            loaded[key] = tensor
        elif key == stem and tensor.shape[:1] + tensor.shape[2:] == wanted[:1] + wanted[2:]:
            loaded[key] = adapt_input_conv(tensor, wanted[1])
        else:
            mismatched.append(f"{key} {tuple(tensor.shape)} in the file, {tuple(wanted)} here")
    missing = [
        key
        for key in own
        if key not in saved
        and not key.startswith(head_prefix)
        and not key.endswith("num_batches_tracked")
    ]
    unexpected = [key for key in saved if key not in own and not key.startswith(head_prefix)]
    for problems, what in ((mismatched, "shapes differ"), (missing, "not in the file")):
        if problems:
            raise UserError(f"finetune.weights {path}: {what}: {listed(problems)}")
    if unexpected:
        raise UserError(f"finetune.weights {path}: layers this model lacks: {listed(unexpected)}")
    body.load_state_dict(loaded, strict=False)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a torch file (torch.load with weights_only=True), a .safetensors file,
    or a multiclass model.pt or last.pt (its model's own weights)."""
    content = unwrapped(read_weights_file(path))
    if not isinstance(content, dict) or not all(
        isinstance(v, torch.Tensor) for v in content.values()
    ):
        raise UserError(
            f"finetune.weights {path}: not a state dict (names to tensors): give a run's model.pt,"
            " or a file saved with torch.save(model.state_dict(), PATH)"
        )
    return content


def weights_file(path: Path) -> Path:
    """`path`, or for a run directory its model.pt (its last.pt, before it has one)."""
    if path.is_dir():
        for name in ("model.pt", "last.pt"):
            if (path / name).is_file():
                log.info("finetune.weights %s: a run directory: its %s is read", path, name)
                return path / name
        raise UserError(
            f"finetune.weights {path}: a directory with no model.pt in it: give a weights file (a"
            " run's model.pt, a .pth or .safetensors file)"
        )
    if not path.is_file():
        raise UserError(f"finetune.weights {path}: no such file")
    return path


def read_weights_file(path: Path) -> Any:
    """The file's content, read without running pickled code; a one-line error else."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        pickled = pickled_globals(path, error)
        if pickled:
            raise UserError(
                f"finetune.weights {path}: holds {whole(pickled[0])} ({pickled[0]}), not a state"
                " dict: save the weights alone, torch.save(model.state_dict(), PATH)"
            ) from None
        raise UserError(f"finetune.weights {path}: cannot be read: {plain_text(error)}") from None


# torch.load's words for the first global it refused to unpickle, the saved object's own class,
# as torch 2.14 says them (tests/test_dependencies.py pins them). Where they change, the names
# come from get_unsafe_globals_in_checkpoint alone, which lists them in no order.
REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def pickled_globals(path: Path, error: Exception) -> list[str]:
    """The classes and functions that the torch file at `path` pickles and that torch.load
    (weights_only) refused with `error`: the one it named first, the others sorted. [] for a
    file that pickles none, or one torch cannot list them of (no torch file, or an old torch's
    format)."""
    if not isinstance(error, pickle.UnpicklingError):
        return []
    try:
        found = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # not torch's zip format, cut short, or a torch before 2.5 lacks it
        return []
    named = REFUSED_GLOBAL.search(str(error))
    return sorted(found, key=lambda name: named is None or name != named[1])


def whole(name: str) -> str:
    """What a pickled global says a file holds: a model saved whole, most often."""
    data = name.startswith(("numpy.", "builtins.", "collections.", "_codecs."))
    return "pickled Python objects" if data else "a whole model, saved with torch.save(model)"


def unwrapped(content: Any) -> Any:
    """The model's weights of a checkpoint that holds more: a multiclass model.pt's
    `state_dict`, a last.pt's `model` (both of Sequential(body, output layer)), as many training
    scripts save them too."""
    if not isinstance(content, dict):
        return content
    for entry in ("state_dict", "model"):
        if isinstance(content.get(entry), dict):
            return {k.removeprefix("0."): v for k, v in content[entry].items()}
    return content


def plain_text(error: Exception) -> str:
    """An error's first line, without terminal escapes, cut at a word: a one-line reason."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip().splitlines()
    text = lines[0] if lines else ""
    if len(text) > DETAIL:
        text = text[:DETAIL].rsplit(" ", 1)[0] + " ..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def first_conv(body: nn.Module) -> tuple[str | None, nn.Conv2d | None]:
    """The first convolution and its name: the stem that sees the images (None, None without)."""
    for name, module in body.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    return None, None


def adapt_input_conv(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """A stem's weight (out, c, h, w) for `channels` inputs: summed over c for one channel,
    else c's weights repeated and scaled to keep the output's size (timm's adapt_input_conv)."""
    if channels == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = -(-channels // weight.shape[1])
    return weight.repeat(1, repeats, 1, 1)[:, :channels] * (weight.shape[1] / channels)


def listed(keys: list[str]) -> str:
    more = f" and {len(keys) - SHOWN} more" if len(keys) > SHOWN else ""
    return ", ".join(keys[:SHOWN]) + more
