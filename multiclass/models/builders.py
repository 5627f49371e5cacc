"""Our own networks, the seeds' MLPs and CNNs. Each takes the input shape and output width
(derived from the data and the loss, never typed in) and returns an `nn.Sequential`."""

import math
from collections.abc import Sequence

import torch
from torch import nn

from multiclass.errors import UserError
from multiclass.settings import check_value

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
        check_value("model.depth", depth)  # by the key's rule: called from Python too
        check_value("model.width", width)
        sizes = [width] * depth
    else:
        sizes = list(hidden)
        check_value("model.hidden", sizes)
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
    convs_per_block: int = 1,
    batch_norm: bool = False,
) -> nn.Sequential:
    """A block per entry of `channels`: `convs_per_block` convolutions, each followed by batch
    norm (with `batch_norm`) and the activation, then max-pooling; then dense layers. The
    flattened size is inferred from the input shape."""
    if len(input_shape) != 3:
        raise UserError(
            f"model=cnn needs image inputs (channels, height, width); these inputs have shape"
            f" {tuple(input_shape)}: use model=mlp"
        )
    check_value("model.convs_per_block", convs_per_block)
    check_value("model.channels", list(channels))
    features: list[nn.Module] = []
    in_channels = input_shape[0]
    for out_channels in channels:
        for _ in range(convs_per_block):
            features.append(nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding))
            if batch_norm:
                features.append(nn.BatchNorm2d(out_channels))
            features.append(activation_layer(activation))
            in_channels = out_channels
        if pool > 1:
            features.append(nn.MaxPool2d(pool))
    flat = flattened_size(nn.Sequential(*features), input_shape)
    return nn.Sequential(
        *features, nn.Flatten(), *dense_layers(flat, list(hidden), num_outputs, activation, dropout)
    )


def dense_layers(
    in_features: int, sizes: Sequence[int], num_outputs: int, activation: str, dropout: float
) -> list[nn.Module]:
    """Linear-activation(-dropout) for each hidden size, then the linear output layer."""
    check_value("model.dropout", dropout)
    layers: list[nn.Module] = []
    for size in sizes:
        layers += [nn.Linear(in_features, size), activation_layer(activation)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        in_features = size
    layers.append(nn.Linear(in_features, num_outputs))
    return layers


def activation_layer(name: str) -> nn.Module:
    check_value("model.activation", name)  # its choices: ACTIVATIONS' names
    return ACTIVATIONS[name]()


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
