"""Class balance from the training labels: scikit-learn's 'balanced' class weights
(`loss.weight=balanced`) and each epoch's order of samples (`dataset.sampler`), drawn from the
run's seeded order generator so that last.pt's state resumes it."""

import torch

from multiclass.errors import UserError


def class_counts(labels: torch.Tensor, num_classes: int, key: str) -> torch.Tensor:
    """How many of `labels` each class has (on the CPU, float64); every class must have one,
    or balancing it by `key` would divide by zero."""
    counts = torch.bincount(labels.cpu(), minlength=num_classes)
    missing = (counts == 0).nonzero().flatten().tolist()
    if missing:
        raise UserError(
            f"{key}: class(es) {missing} have no training sample to balance by"
            " (dataset.limit or the split left them out)"
        )
    return counts.double()


def balanced_weights(labels: torch.Tensor, num_classes: int) -> list[float]:
    """n_samples / (n_classes * count) per class, scikit-learn's
    compute_class_weight('balanced'): every class then weighs as much in the loss as the
    others, and a class as common as the average has weight 1."""
    counts = class_counts(labels, num_classes, "loss.weight=balanced")
    return (len(labels) / (num_classes * counts)).tolist()


def epoch_order(labels: torch.Tensor, sampler: str, generator: torch.Generator) -> torch.Tensor:
    """The indices of one epoch's training samples, on the CPU. `shuffle`: a permutation.
    `balanced`: as many draws, with replacement, each sample with probability inverse to
    its class's count, so that every class is drawn equally often on average. Both draw from
    `generator` alone; every data parallel process holds the same labels and generator state
    and so draws the same global order, of which each takes its share."""
    if sampler == "shuffle":
        return torch.randperm(len(labels), generator=generator)
    if sampler != "balanced":
        raise UserError(f"dataset.sampler must be shuffle or balanced, got {sampler!r}")
    labels = labels.cpu()
    chances = 1.0 / torch.bincount(labels).double()[labels]
    return torch.multinomial(chances, len(labels), replacement=True, generator=generator)
