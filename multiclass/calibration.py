"""Whether a model's probabilities can be believed: expected calibration error, and one
temperature fitted on the validation split that divides the outputs before the probabilities.

ECE is torchmetrics' MulticlassCalibrationError(n_bins=15, norm="l1"): each sample's top-label
confidence (its largest probability) falls in one of 15 equal-width bins [j/15, (j+1)/15), a
confidence of exactly 1 in a bin of its own; ECE is the mean over the bins, weighed by their
samples, of |accuracy - mean confidence|. Temperature scaling (Guo et al., 2017) divides the
logits by one T > 0 that minimises the validation split's negative log-likelihood: no
prediction changes, only how sure the probabilities are."""

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional

from multiclass.heads import Head

BINS = 15
# Where the temperature is searched: T in [e^-5, e^5] (0.0067 to 148), to 1e-9 in log T.
LOG_T_RANGE = (-5.0, 5.0)
LOG_T_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Reliability:
    """Top-label calibration per confidence bin: `bins` equal-width bins of [0, 1), then one
    for a confidence of exactly 1. A bin without samples has accuracy and confidence 0."""

    counts: np.ndarray  # samples per bin (bins + 1)
    accuracy: np.ndarray  # the fraction of the bin's samples whose top label is right
    confidence: np.ndarray  # the bin's mean top-label confidence

    @property
    def ece(self) -> float:
        """Expected calibration error: |accuracy - confidence| weighed by the bins' samples."""
        gaps = np.abs(self.accuracy - self.confidence) * self.counts
        return float(gaps.sum() / max(self.counts.sum(), 1))


def reliability(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = BINS) -> Reliability:
    """The bins of (N, k) `probabilities` against the true class indices `labels` (N,), as
    torchmetrics bins them (bucketize on float32 edges, a bin's lower edge included)."""
    probabilities = torch.as_tensor(probabilities).detach().cpu().float()
    labels = torch.as_tensor(labels).detach().cpu()
    confidence, predicted = probabilities.max(dim=1)
    right = (predicted == labels).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float32)
    index = torch.bucketize(confidence, edges, right=True) - 1

    def per_bin(values: torch.Tensor) -> torch.Tensor:
        return torch.zeros(bins + 1, dtype=torch.float64).scatter_add_(0, index, values)

    counts = per_bin(torch.ones_like(right))
    seen = counts.clamp(min=1)
    return Reliability(
        counts=counts.long().numpy(),
        accuracy=(per_bin(right) / seen).numpy(),
        confidence=(per_bin(confidence.double()) / seen).numpy(),
    )


def expected_calibration_error(
    probabilities: torch.Tensor, labels: torch.Tensor, bins: int = BINS
) -> float:
    """Top-label ECE of (N, k) `probabilities` against the class indices `labels`, in `bins`
    equal-width confidence bins (torchmetrics' MulticlassCalibrationError, norm l1)."""
    return reliability(probabilities, labels, bins).ece


def negative_log_likelihood(head: Head, logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The mean NLL of the labels under the head's probabilities of `logits`: softmax cross
    entropy, or for the BCE heads (independent units) the sum over the units of their binary
    cross entropy against the one-hot (or single-unit) targets. Unweighted, unsmoothed: the
    likelihood itself, not the run's loss."""
    if head.independent:
        targets = head.encode(labels).to(logits.dtype)
        return functional.binary_cross_entropy_with_logits(
            logits, targets, reduction="sum"
        ).item() / len(labels)
    return functional.cross_entropy(logits, labels).item()


@torch.no_grad()
def fit_temperature(outputs: torch.Tensor, labels: torch.Tensor, head: Head) -> float:
    """The temperature T > 0 whose tempered outputs (Head.tempered) give `labels` the least
    negative log-likelihood, from the model's untempered `outputs` (N, head width) on a split
    it was not trained on. The NLL is convex in 1/T, so unimodal in log T: SciPy's bounded
    scalar minimiser (Brent's method) over LOG_T_RANGE finds its minimum, in float64 on the
    CPU, the same every time for the same outputs (a rerun's temperature is bit-identical)."""
    from scipy.optimize import minimize_scalar  # only for a run that calibrates

    logits = head.logits(outputs.detach().cpu().float()).double()
    labels = labels.detach().cpu()

    def loss(log_t: float) -> float:
        return negative_log_likelihood(head, logits / math.exp(log_t), labels)

    found = minimize_scalar(
        loss, bounds=LOG_T_RANGE, method="bounded", options={"xatol": LOG_T_TOLERANCE}
    )
    return math.exp(found.x)
