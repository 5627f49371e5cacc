"""What every contestant shares: the workloads, their model, their data and how it is scored.
The bottom of the bench package, so that the other frameworks' contestants import it without
importing the bench that runs them."""

from dataclasses import dataclass
from pathlib import Path

CONTESTANTS = ("seed-style", "minimal", "framework")
LEARNING_RATE = 1e-3


@dataclass(frozen=True)
class Workload:
    name: str
    model: str  # "mlp": seed 000's 784-256-128-64-10; "cnn": seed 004's two conv blocks
    batch_size: int
    samples: int  # training samples in the one epoch
    contestants: tuple[str, ...] = CONTESTANTS


def workloads(
    samples: int, cnn_steps: int, variants: bool, rivals: tuple[str, ...] = ()
) -> list[Workload]:
    """The MLP at batch 32 and 256 (the framework also with torch.compile, bf16 and fp16 at 256
    when `variants`), and the CNN at batch 256 for `cnn_steps` steps; every one also with the
    `rivals` (other frameworks' contestants)."""
    everywhere = (*CONTESTANTS, *rivals)
    at_256 = (
        (*everywhere, "framework+compile", "framework+bf16", "framework+fp16")
        if variants
        else everywhere
    )
    return [
        Workload("mlp-b32", "mlp", 32, samples, everywhere),
        Workload("mlp-b256", "mlp", 256, samples, at_256),
        Workload("cnn-b256", "cnn", 256, min(samples, cnn_steps * 256), everywhere),
    ]


def build_model(kind: str):
    from multiclass import models

    if kind == "mlp":
        return models.mlp((1, 28, 28), 10, hidden=[256, 128, 64])
    return models.cnn((1, 28, 28), 10, channels=[64, 64], kernel_size=5, padding=0, pool=2)


def prepare_data(data_root: Path | None, samples: int, scratch: Path) -> tuple[Path, str]:
    """The real MNIST when `data_root` holds it, else synthetic IDX files of the same shape."""
    if data_root is not None and (data_root / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        return data_root.resolve(), f"MNIST from {data_root}"
    from multiclass.datasets.synthetic import write_idx_dataset

    write_idx_dataset(scratch / "MNIST" / "raw", num_train=samples, num_test=min(samples, 10_000))
    return scratch, f"synthetic MNIST-shaped data ({samples:,} training images)"


def mnist_tensors(workload: Workload, root: Path):
    """The workload's training images as one float tensor in [0, 1], and their labels."""
    from torchvision.datasets import MNIST

    train = MNIST(str(root), train=True)
    images, labels = train.data[: workload.samples], train.targets[: workload.samples]
    return images.unsqueeze(1).float() / 255, labels


def accuracy_on_test_set(model, workload: Workload, root: Path) -> float | None:
    """Accuracy on the official test set after the epoch (MLP workloads; untimed)."""
    if workload.model != "mlp":
        return None
    import torch
    from torchvision.datasets import MNIST

    test = MNIST(str(root), train=False)
    with torch.no_grad():
        predicted = model.eval()(test.data.unsqueeze(1).float() / 255).argmax(dim=1)
    return (predicted == test.targets).float().mean().item()
