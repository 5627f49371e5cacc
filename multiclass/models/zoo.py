"""Standard architectures by name: torchvision's classification models (`model=torchvision
model.name=resnet18`) and timm's (`model=timm`, the `timm` extra), adapted to the data:

- the classifier gets one output per class (the builders' own `num_classes`);
- the stem takes the images' channels: torchvision's first convolution is rebuilt for them,
  timm builds it so (`in_chans`); a weights file's 3-channel stem is summed over its channels
  for 1-channel images, as timm does (multiclass.models.finetune).

Both are built without weights (nothing is downloaded); `finetune.weights` loads a file."""

import difflib
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from multiclass.errors import UserError
from multiclass.models.finetune import first_conv

CLOSE_NAMES = 5


def torchvision(
    input_shape: Sequence[int], num_outputs: int, name: str, options: dict[str, Any] | None = None
) -> nn.Module:
    """torchvision.models.get_model(name, num_classes=...), `options` its other arguments
    (e.g. `image_size` for a ViT), with its first convolution taking the images' channels."""
    from torchvision import models

    known(name, models.list_models(module=models), "torchvision")
    model = built(models.get_model, name, num_classes=num_outputs, **dict(options or {}))
    take_channels(model, input_shape[0])
    return model


def timm(
    input_shape: Sequence[int], num_outputs: int, name: str, options: dict[str, Any] | None = None
) -> nn.Module:
    """timm.create_model(name, num_classes=..., in_chans=...), `options` its other arguments."""
    try:
        import timm as timm_library
    except ModuleNotFoundError:
        raise UserError("model=timm needs timm: pip install -e '.[timm]'") from None
    known(name, timm_library.list_models(), "timm")
    return built(
        timm_library.create_model,
        name,
        num_classes=num_outputs,
        in_chans=input_shape[0],
        **dict(options or {}),
    )


def known(name: str, names: Sequence[str], library: str) -> None:
    """A one-line error for a name the library lacks, with the closest names it has."""
    if name not in names:
        close = difflib.get_close_matches(name, names, n=CLOSE_NAMES, cutoff=0.5)
        hint = f"; close names: {', '.join(close)}" if close else ""
        raise UserError(f"model.name: {library} has no model {name!r}{hint}")


def built(make: Callable[..., nn.Module], name: str, **arguments: Any) -> nn.Module:
    """`make(name, **arguments)`, an argument the builder refuses being one line."""
    try:
        return make(name, **arguments)
    except (TypeError, ValueError, AssertionError) as error:
        detail = " ".join(str(error).split())[:200]
        raise UserError(f"model.name={name}: cannot build it: {detail}") from None


def take_channels(model: nn.Module, channels: int) -> None:
    """Rebuild the first convolution for `channels` input channels, when it takes others."""
    name, conv = first_conv(model)
    if conv is None or conv.in_channels == channels:
        return
    stem = nn.Conv2d(
        channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    )
    model.set_submodule(name, stem)
