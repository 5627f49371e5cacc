"""Data augmentation of training batches (the `augment` config group), on the device where the
data lives, from a seed the engine draws from the run's batch-order generator: a rerun, and a
resume from last.pt, draw the same seeds and so the same augmented images.

An augmentation takes a batch as stored (uint8 images, N x C x H x W) and returns one of the
same shape and dtype. Validation and test batches are never augmented."""

from collections.abc import Callable
from typing import Any

import torch

from multiclass.errors import UserError

Augmentation = Callable[[torch.Tensor, int], torch.Tensor]


class FlipCrop:
    """A random crop of each image padded with `padding` zero pixels on every side, and a
    horizontal flip of half the images, drawn per sample: the CIFAR and Fashion-MNIST staple.
    Vectorised over the batch (torchvision's RandomCrop draws one crop per call)."""

    def __init__(self, padding: int = 4, flip: bool = True) -> None:
        self.padding, self.flip = padding, flip

    def __call__(self, images: torch.Tensor, seed: int) -> torch.Tensor:
        n, _, height, width = images.shape
        generator = torch.Generator(images.device).manual_seed(seed)
        out = images
        if self.padding:
            p = self.padding
            padded = torch.nn.functional.pad(images, (p, p, p, p))
            top = torch.randint(2 * p + 1, (n, 1), generator=generator, device=images.device)
            left = torch.randint(2 * p + 1, (n, 1), generator=generator, device=images.device)
            rows = top + torch.arange(height, device=images.device)  # N x H
            cols = left + torch.arange(width, device=images.device)  # N x W
            batch = torch.arange(n, device=images.device)[:, None, None, None]
            channel = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
            out = padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]
        if self.flip:
            flipped = torch.rand(n, generator=generator, device=images.device) < 0.5
            out = torch.where(flipped[:, None, None, None], out.flip(-1), out)
        return out


class PerSample:
    """Any torchvision transform (a v2 policy such as TrivialAugmentWide or RandAugment),
    applied to each image on its own, so that each draws its own operations. torchvision draws
    from torch's global generator: it is seeded here inside `fork_rng`, which puts the run's
    own generator state back afterwards."""

    def __init__(self, transform: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.transform = transform

    def __call__(self, images: torch.Tensor, seed: int) -> torch.Tensor:
        devices = [images.device] if images.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return torch.stack([self.transform(image) for image in images])


def check_augmentation(augmentation: Augmentation | None, inputs: Any) -> None:
    """Before training, a one-line error for an augment that cannot work on these inputs (a
    split's, in memory or on disk): a table's rows, a single-image transform given as the
    augment itself, or one that, tried once on the first image, fails or changes its shape or
    dtype. Tried inside `fork_rng`: the check draws nothing from the run's generators."""
    if augmentation is None:
        return
    name = type(augmentation).__name__
    shape = tuple(inputs.shape[1:])
    if len(shape) != 3:
        raise UserError(
            f"augment ({name}) needs image inputs (channels, height, width); these inputs have"
            f" shape {shape}: use augment=none"
        )
    if type(augmentation).__module__.startswith("torchvision.transforms"):
        raise UserError(one_image_transform(augmentation))
    first = inputs.index_select(0, torch.zeros(1, dtype=torch.int64, device=inputs.device))
    devices = [first.device] if first.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        try:
            out = augmentation(first, 0)
        except Exception as error:
            text = " ".join(str(error).split())[:200]
            raise UserError(
                f"augment ({name}) fails on one image of shape {sized(first)}:"
                f" {type(error).__name__}: {text}"
            ) from None
    check_output(name, first, out)


def check_output(name: str, images: torch.Tensor, out: Any) -> None:
    """`out`, what an augment gave for `images`: a batch of their shape and dtype."""
    if not isinstance(out, torch.Tensor):
        raise UserError(
            f"augment ({name}) gave a {type(out).__name__}, not a batch of images: an augment is"
            " called as augment(images, seed) and returns the images"
        )
    if out.shape != images.shape:
        raise UserError(
            f"augment: the transform changed the image shape {sized(images)} -> {sized(out)}: an"
            " augment must keep the shape (end it with a crop or resize back to"
            f" {images.shape[-2]}x{images.shape[-1]})"
        )
    if out.dtype != images.dtype:
        raise UserError(
            f"augment: the transform changed the images' dtype {dtype_name(images)} ->"
            f" {dtype_name(out)}: an augment must give them back as stored (leave out ToDtype"
            " and Normalize; the model gets floats in [0, 1] after it)"
        )


def one_image_transform(transform: Any) -> str:
    """What to write for a torchvision transform given as the augment itself: it takes one
    image, and the engine calls an augment with a batch and a seed."""
    v2 = type(transform).__module__.startswith("torchvision.transforms.v2")
    target = f"torchvision.transforms{'.v2' if v2 else ''}.{type(transform).__name__}"
    return (
        f"augment: {target} transforms one image, and an augment takes a batch and a seed: put it"
        " under PerSample's transform, as conf/augment/trivial_augment.yaml does, e.g. augment:"
        " {_target_: multiclass.datasets.augment.PerSample, transform: {_target_:"
        f" {target}}}}}, or on the command line augment=trivial_augment"
        f" augment.transform._target_={target}"
    )


def sized(images: torch.Tensor) -> str:
    """A batch's image shape as C x H x W (the whole shape when not 4-d)."""
    shape = images.shape[1:] if images.dim() == 4 else images.shape
    return "x".join(str(size) for size in shape)


def dtype_name(images: torch.Tensor) -> str:
    return str(images.dtype).removeprefix("torch.")
