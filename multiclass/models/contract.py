"""The contract every model keeps, ours, torchvision's, timm's or a user's: a function or
nn.Module class, named by a model config's `_target_`, that takes `input_shape` and
`num_outputs` by name and returns a module giving (N, num_outputs) outputs."""

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from multiclass.errors import UserError, full_tracebacks, import_target
from multiclass.heads import Head
from multiclass.models.finetune import FINETUNE_KEYS


def build_classifier(cfg: DictConfig, input_shape: Sequence[int], head: Head) -> nn.Sequential:
    """The `model` group's network (ours or a user's, called alike) with the output layer the
    loss asks for appended; the network must give (N, num_outputs) outputs."""
    target = cfg.get("_target_")
    model_builder(target)
    arguments = {key: value for key, value in cfg.items() if key not in FINETUNE_KEYS}
    body = instantiate(arguments, input_shape=list(input_shape), num_outputs=head.width)
    check_outputs(target, body, input_shape, head.width)
    return nn.Sequential(body, head.output_layer())


BUILDER_PARAMETERS = ("input_shape", "num_outputs")


def model_builder(target: Any) -> Callable[..., nn.Module]:
    """The function or class a model `_target_` names: importable, and taking `input_shape` and
    `num_outputs` by name (the loader of model.pt calls nothing else); else a one-line error."""
    found = import_target("model._target_", target)
    try:
        parameters = inspect.signature(found).parameters
    except (TypeError, ValueError):  # not a callable, or one without a signature
        parameters = {}
    by_name = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    named = {name for name, p in parameters.items() if p.kind in by_name}
    if not (callable(found) and named.issuperset(BUILDER_PARAMETERS)):
        raise UserError(
            f"model._target_ {target} is not a function or class taking input_shape and num_outputs"
        )
    return found


def check_outputs(target: str, body: Any, input_shape: Sequence[int], num_outputs: int) -> None:
    """A model's outputs for a blank batch of two are (2, num_outputs), or a one-line error.
    In eval mode and without gradients, so that it changes no weight, statistic or RNG."""
    if not isinstance(body, nn.Module):
        raise UserError(f"model {target} returned a {type(body).__name__}, not a torch.nn.Module")
    shape = (2, *input_shape)
    training = body.training
    try:
        with torch.no_grad():
            outputs = body.eval()(torch.zeros(shape))
    except Exception as error:
        if full_tracebacks():  # Python's traceback, or pdb's post-mortem, in the user's forward
            raise
        text = " ".join(str(error).split())[:200]
        raise UserError(
            f"model {target} fails on inputs of shape {shape}: {type(error).__name__}: {text}"
        ) from None
    finally:
        body.train(training)
    got = tuple(outputs.shape) if isinstance(outputs, torch.Tensor) else type(outputs).__name__
    if got != (2, num_outputs):
        raise UserError(
            f"model {target} gives outputs of shape {got} for inputs of shape {shape}: expected"
            f" (2, {num_outputs}), num_outputs={num_outputs} as the loss and classes ask"
        )
