"""Data augmentation of training batches (the `augment` config group), on the device where the
data lives, from a seed the engine draws from the run's batch-order generator: a rerun, and a
resume from last.pt, draw the same seeds and so the same augmented images.

An augmentation takes a batch as stored (uint8 images, N x C x H x W) and returns one of the
same shape and dtype. Validation and test batches are never augmented."""

from collections.abc import Callable, Sequence

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


def check_augmentation(augmentation: Augmentation | None, input_shape: Sequence[int]) -> None:
    """Image augmentations need image inputs; a one-line error for a table's rows."""
    if augmentation is not None and len(input_shape) != 3:
        name = type(augmentation).__name__
        raise UserError(
            f"augment ({name}) needs image inputs (channels, height, width); these inputs have"
            f" shape {tuple(input_shape)}: use augment=none"
        )
