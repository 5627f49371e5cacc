"""The one place that derives, from the loss and the number of classes, everything the loss
implies: the output width, the final activation, the target encoding and the prediction rule.

| loss                     | 2 classes                      | k > 2 classes                 |
|--------------------------|--------------------------------|-------------------------------|
| cross entropy (default)  | 2 logits, class-index targets  | k logits, class-index targets |
| nll                      | 2 log-probabilities (log-softmax) | k log-probabilities        |
| bce_with_logits          | 1 logit, threshold 0           | k logits, one-hot, argmax     |
| bce                      | 1 probability (sigmoid), 0.5   | k probabilities, one-hot      |

Cross entropy can also take one-hot float targets (`loss.one_hot=true`, an argument of our
CrossEntropyLoss), as seed 002 does. Any other loss is treated like cross entropy: logits and
class-index targets.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

TargetEncoding = Literal["index", "one_hot", "binary"]


@dataclass(frozen=True)
class Head:
    """How a network's outputs meet the loss and become class predictions."""

    width: int
    final_activation: Callable[[], nn.Module] | None
    targets: TargetEncoding
    num_classes: int
    threshold: float = 0.0  # on a single output unit: 0 for a logit, 0.5 for a probability
    independent: bool = False  # each unit a yes/no of its own (the BCE losses), not a softmax

    def output_layer(self) -> nn.Module:
        """The layer after the network's last linear map (identity for logit losses)."""
        return nn.Identity() if self.final_activation is None else self.final_activation()

    def encode(self, labels: torch.Tensor) -> torch.Tensor:
        """Class indices (N,) in the form the loss wants as its target."""
        if self.targets == "index":
            return labels
        if self.targets == "binary":
            return labels.float().unsqueeze(1)
        return nn.functional.one_hot(labels, self.num_classes).float()

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """Class indices from outputs: a threshold on one unit, otherwise the argmax."""
        if self.width == 1:
            return (outputs[:, 0] > self.threshold).long()
        return outputs.argmax(dim=1)

    def logits(self, outputs: torch.Tensor) -> torch.Tensor:
        """The outputs before the final activation, which a temperature divides: logits as
        they are, log-softmax's log-probabilities as they are (softmax takes them as logits),
        BCE's sigmoid probabilities through the logit, clamped to float's resolution (a
        probability that rounded to 1 is the largest logit that does not)."""
        if self.final_activation is None or not self.independent:
            return outputs
        return torch.logit(outputs, eps=torch.finfo(outputs.dtype).eps)

    def tempered(self, outputs: torch.Tensor, temperature: float | torch.Tensor) -> torch.Tensor:
        """The outputs of the same network with its logits divided by `temperature`, in the
        form the head's loss takes (logits, log-probabilities or probabilities): T > 1 softens
        the probabilities, and no T changes a prediction. T = 1 returns `outputs` itself."""
        if isinstance(temperature, float | int) and temperature == 1:
            return outputs
        return self.output_layer()(self.logits(outputs) / temperature)

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        """(N, num_classes) class probabilities by the rule the loss trained: softmax of logits,
        exp of log-softmax, sigmoid of BCE logits, BCE's sigmoid outputs as they are. The BCE
        units are independent, so their k-class rows need not sum to 1; one unit p gives
        [1 - p, p]."""
        if self.final_activation is None:
            probabilities = outputs.sigmoid() if self.independent else outputs.softmax(dim=1)
        else:
            probabilities = outputs if self.independent else outputs.exp()
        if self.width == 1:
            return torch.cat([1 - probabilities, probabilities], dim=1)
        return probabilities


class CrossEntropyLoss(nn.CrossEntropyLoss):
    """torch's cross entropy, told whether its targets are one-hot float rows (`one_hot`) or
    class indices: the loss group's cross_entropy option, every other argument torch's."""

    def __init__(self, *args: Any, one_hot: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.one_hot = one_hot


# The loss classes of ours a config (and a saved model.pt) may name besides torch's.
PROJECT_LOSSES = ("multiclass.heads.CrossEntropyLoss",)


def head_for(criterion: nn.Module, num_classes: int, one_hot: bool = False) -> Head:
    """What `criterion` implies for a problem with `num_classes` classes."""
    if isinstance(criterion, nn.BCELoss | nn.BCEWithLogitsLoss):
        probabilities = isinstance(criterion, nn.BCELoss)
        binary = num_classes == 2
        return Head(
            width=1 if binary else num_classes,
            final_activation=nn.Sigmoid if probabilities else None,
            targets="binary" if binary else "one_hot",
            num_classes=num_classes,
            threshold=0.5 if probabilities else 0.0,
            independent=True,
        )
    if isinstance(criterion, nn.NLLLoss):
        return Head(num_classes, partial(nn.LogSoftmax, dim=1), "index", num_classes)
    return Head(num_classes, None, "one_hot" if one_hot else "index", num_classes)


def build_loss(cfg: DictConfig, num_classes: int) -> tuple[nn.Module, Head]:
    """Instantiate the `loss` group, list values (weight, pos_weight) as float tensors; a
    CrossEntropyLoss of ours says whether its targets are one-hot."""
    options = current_form(OmegaConf.to_container(cfg, resolve=True))
    tensors = {
        key: torch.tensor(value, dtype=torch.float32)
        for key, value in cfg.items()
        if isinstance(value, ListConfig)
    }
    criterion = instantiate(options, **tensors)
    return criterion, head_for(criterion, num_classes, getattr(criterion, "one_hot", False))


def current_form(options: dict[str, Any]) -> dict[str, Any]:
    """A loss node as written now. One saved before (a run's config.yaml, a model.pt) held
    `one_hot` beside torch's own arguments: for torch's cross entropy it is ours now; any
    other loss never used it."""
    if "one_hot" not in options or options.get("_target_") in PROJECT_LOSSES:
        return options
    one_hot = options.pop("one_hot")
    if options.get("_target_") == "torch.nn.CrossEntropyLoss":
        return {**options, "_target_": PROJECT_LOSSES[0], "one_hot": one_hot}
    return options
