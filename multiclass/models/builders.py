"""Model builders for the `model` config group. Each takes the input shape and output width
(derived from the data and the loss, never typed in) and returns an `nn.Sequential`.

A user's own model follows the same contract: any importable function or nn.Module class with
parameters `input_shape` and `num_outputs`, named by a model config's `_target_`."""

import inspect
import math
import pkgutil
from collections.abc import Callable, Sequence
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from multiclass.errors import UserError
from multiclass.heads import Head

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}


def mlp(
    input_shape: Sequence[int],
    num_outputs: int,
    depth: int = 2,
    width: int = 64,
    hidden: Sequence[int] | None = None,
    activation: str = "relu",
    dropout: float = 0.0,
) -> nn.Sequential:
    """A multilayer perceptron: `depth` hidden layers of `width` units, unless `hidden` lists
    the widths itself (an empty list gives softmax regression, a single linear map)."""
    if hidden is None:
        check_count("model.depth", depth, minimum=0)
        check_count("model.width", width)
        sizes = [width] * depth
    else:
        sizes = list(hidden)
        for size in sizes:
            check_count("model.hidden", size)
    return nn.Sequential(
        nn.Flatten(),
        *dense_layers(math.prod(input_shape), sizes, num_outputs, activation, dropout),
    )


def cnn(
    input_shape: Sequence[int],
    num_outputs: int,
    channels: Sequence[int] = (16, 32),
    kernel_size: int = 3,
    padding: int = 1,
    pool: int = 2,
    activation: str = "relu",
    hidden: Sequence[int] = (),
    dropout: float = 0.0,
) -> nn.Sequential:
    """Conv-activation-maxpool blocks, one per entry of `channels`, then dense layers; the
    flattened size is inferred from the input shape."""
    if len(input_shape) != 3:
        raise UserError(
            f"model=cnn needs image inputs (channels, height, width); these inputs have shape"
            f" {tuple(input_shape)}: use model=mlp"
        )
    features: list[nn.Module] = []
    in_channels = input_shape[0]
    for out_channels in channels:
        check_count("model.channels", out_channels)
        features += [
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding),
            activation_layer(activation),
        ]
        if pool > 1:
            features.append(nn.MaxPool2d(pool))
        in_channels = out_channels
    flat = flattened_size(nn.Sequential(*features), input_shape)
    return nn.Sequential(
        *features, nn.Flatten(), *dense_layers(flat, list(hidden), num_outputs, activation, dropout)
    )


def dense_layers(
    in_features: int, sizes: Sequence[int], num_outputs: int, activation: str, dropout: float
) -> list[nn.Module]:
    """Linear-activation(-dropout) for each hidden size, then the linear output layer."""
    if not 0 <= dropout < 1:
        raise UserError(f"model.dropout must be in [0, 1), got {dropout}")
    layers: list[nn.Module] = []
    for size in sizes:
        layers += [nn.Linear(in_features, size), activation_layer(activation)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        in_features = size
    layers.append(nn.Linear(in_features, num_outputs))
    return layers


def activation_layer(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise UserError(f"model.activation must be one of {', '.join(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]()


def check_count(name: str, value: int, minimum: int = 1) -> None:
    if not isinstance(value, int) or value < minimum:
        wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise UserError(f"{name} must be {wanted}, got {value!r}")


def flattened_size(features: nn.Module, input_shape: Sequence[int]) -> int:
    """The number of features a sample has after `features`, found by running a blank one."""
    try:
        with torch.no_grad():
            return features(torch.zeros(1, *input_shape)).numel()
    except RuntimeError:
        raise UserError(
            f"model=cnn: a {input_shape[1]}x{input_shape[2]} image is too small for these conv"
            " blocks: use fewer model.channels, a smaller kernel_size or pool, or more padding"
        ) from None


def build_classifier(cfg: DictConfig, input_shape: Sequence[int], head: Head) -> nn.Sequential:
    """The `model` group's network (ours or a user's, called alike) with the output layer the
    loss asks for appended; the network must give (N, num_outputs) outputs."""
    target = cfg.get("_target_")
    model_builder(target)
    body = instantiate(cfg, input_shape=list(input_shape), num_outputs=head.width)
    check_outputs(target, body, input_shape, head.width)
    return nn.Sequential(body, head.output_layer())


BUILDER_PARAMETERS = ("input_shape", "num_outputs")


def model_builder(target: Any) -> Callable[..., nn.Module]:
    """The function or class a model `_target_` names: importable, and taking `input_shape` and
    `num_outputs` by name (the loader of model.pt calls nothing else); else a one-line error."""
    if not isinstance(target, str) or not target:
        raise UserError(f"model._target_ must name a function or class, got {target!r}")
    try:
        found = pkgutil.resolve_name(target)  # a dotted path, found as instantiate finds it
    except Exception as error:  # not installed, not on PYTHONPATH, or failing on import
        why = import_failure(target, error.__cause__ or error)
        raise UserError(f"model._target_ {target} cannot be imported: {why}") from None
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


def import_failure(target: str, cause: BaseException) -> str:
    """Why the lookup of `target` failed, in a few words."""
    parent, _, name = target.rpartition(".")
    no_module = isinstance(cause, ModuleNotFoundError) and cause.name == target
    if no_module or (isinstance(cause, AttributeError) and cause.name == name):
        return f"{parent} has no {name!r}"
    if isinstance(cause, ModuleNotFoundError):
        return f"no module named {cause.name!r}: install it or put its folder on PYTHONPATH"
    return f"{type(cause).__name__}: {' '.join(str(cause).split())}"


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
