"""What a run builds from its config: device, data, loss and head, model (seeded), optimizer
and lr schedule, each by `hydra.utils.instantiate`; and how the model's weights are saved.
An error building one (a value that passes its rule but that torch refuses) names its group
and the key that holds the value."""

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from multiclass.config import TrainerSettings
from multiclass.datasets import Splits
from multiclass.datasets.augment import check_augmentation
from multiclass.datasets.balance import balanced_weights, class_counts
from multiclass.device.runtime import seed_everything
from multiclass.engine import Task, optimizer_steps_per_epoch
from multiclass.errors import UserError, building
from multiclass.heads import Head, build_loss
from multiclass.lifecycle.distributed import Processes
from multiclass.models import build_classifier, finetune
from multiclass.models.work import multiply_adds_per_sample
from multiclass.optimizers import build_optimizer
from multiclass.records.checkpoint import save_checkpoint
from multiclass.records.preprocess import save_preprocess
from multiclass.schedulers import build_schedule


@dataclass(frozen=True)
class Built:
    """What a run builds from its config, and how it saves the model's weights."""

    cfg: DictConfig
    splits: Splits
    model: nn.Module  # as built (the task may hold a compiled wrapper of it)
    task: Task

    # preprocess.pkl's record per folder: the transform never changes during a run, so it is
    # written once, not with every best.pt.
    preprocess_saved: dict[Path, dict[str, str]] = field(default_factory=dict, repr=False)

    @property
    def result(self) -> nn.Module:
        """The weights the run tests and saves as best.pt and model.pt: the moving average of
        the trained ones under trainer.ema, else those."""
        return self.model if self.task.average is None else self.task.average.module

    def save_model(self, path: Path) -> None:
        """The weights, and a table's fitted transform beside them (its digest in the file),
        with the task's temperature (trainer.calibrate)."""
        splits = self.splits
        if path.parent not in self.preprocess_saved:
            self.preprocess_saved[path.parent] = save_preprocess(path.parent, splits.preprocess)
        saved_with = self.preprocess_saved[path.parent]
        save_checkpoint(
            path,
            self.result,
            self.cfg.model,
            self.cfg.loss,
            splits.input_shape,
            splits.class_names,
            temperature=self.task.temperature,
            **saved_with,
        )


def build(
    cfg: DictConfig,
    settings: TrainerSettings,
    summary: dict[str, Any],
    processes: Processes,
    restoring: bool = False,
) -> Built:
    """Device, data, loss, model (seeded), optimizer and lr schedule, as the config says.
    `restoring`: a checkpoint replaces every weight, so the weights file is not read."""
    with building("device", cfg.device):
        runtime = instantiate(cfg.device)
    summary.update(seed=cfg.seed, device=str(runtime.device))
    shard = processes.shard()
    summary["processes"] = shard.size
    with building("dataset", cfg.dataset):
        splits: Splits = instantiate(cfg.dataset).to(runtime.device)
    summary.update(describe_data(splits))
    with building("loss", cfg.loss):
        cfg = balanced_loss(cfg, splits, summary)  # model.pt saves the weights themselves
        criterion, head = build_loss(cfg.loss, splits.num_classes)
        check_loss(criterion, head, splits.train.y)
    seed_everything(cfg.seed)
    model_cfg = finetune.from_checkpoint(cfg.model) if restoring else cfg.model
    with building("model", cfg.model):
        network = build_classifier(model_cfg, splits.input_shape, head)
    runtime = runtime.fitted_to(network)
    model = runtime.place(network)
    step = multiply_adds_per_sample(model, splits.input_shape) * settings.batch_size
    summary["num_threads"] = runtime.settle_threads(step)
    trainable = finetune.prepare(model[0], finetune.finetuning(cfg, restoring))  # [0]: the body
    with building("optimizer", cfg.optimizer):
        optimizer = build_optimizer(instantiate(cfg.optimizer), trainable.groups, runtime.device)
    for group, factor in zip(optimizer.param_groups, trainable.lr_factors, strict=True):
        group["lr"] *= factor
    augment = instantiate(cfg.get("augment"))
    check_augmentation(augment, splits.train.x)  # tried on its first image
    steps = optimizer_steps_per_epoch(len(splits.train), settings)
    with building("scheduler", cfg.get("scheduler")):
        schedule = build_schedule(cfg.get("scheduler"), optimizer, settings.epochs, steps)
    summary["num_params"] = sum(p.numel() for p in model.parameters())
    trained = processes.wrap(model, runtime.device, shard)
    task = Task(
        runtime.compiled(trained),
        criterion,
        head,
        optimizer,
        runtime,
        schedule,
        augment=augment,
        frozen=trainable.frozen,
        scaler=runtime.grad_scaler(),
        shard=shard,
        unwrapped=None if trained is model else model,
        average=moving_average(model, settings.ema),
    )
    return Built(cfg, splits, model, task)


def balanced_loss(cfg: DictConfig, splits: Splits, summary: dict[str, Any]) -> DictConfig:
    """`cfg`, with loss.weight=balanced replaced by the weights of the training split's class
    counts (summary.json's class_weights), and as it is otherwise. For the BCE losses a
    weight scales each output unit's loss, its positives and negatives alike, which balances
    no class: refused, with the pos_weight that balances each unit's positives and negatives."""
    if cfg.loss.get("weight") != "balanced":
        return cfg
    labels, num_classes = splits.train.y, splits.num_classes
    if issubclass(get_class(cfg.loss._target_), nn.BCELoss | nn.BCEWithLogitsLoss):
        counts = class_counts(labels, num_classes, "loss.weight=balanced")
        negatives = (len(labels) - counts) / counts
        units = negatives[1:] if num_classes == 2 else negatives  # one unit: class 1's
        pos_weight = ",".join(f"{w:.4g}" for w in units.tolist())
        raise UserError(
            f"loss.weight=balanced: {cfg.loss._target_}'s weight scales each output unit's"
            " loss, positives and negatives alike, and balances no class; use"
            " loss=cross_entropy, or loss=bce_with_logits with"
            f" loss.pos_weight=[{pos_weight}] (each unit's negatives per positive)"
        )
    weights = balanced_weights(labels, num_classes)
    summary["class_weights"] = weights
    resolved = copy.deepcopy(cfg)
    resolved.loss.weight = weights
    return resolved


def moving_average(model: nn.Module, decay: float | None) -> AveragedModel | None:
    """trainer.ema: an exponential moving average of the weights (and of the buffers, such as
    batch norm's statistics), which evaluation, best.pt and model.pt then use; None: off."""
    if decay is None:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def check_loss(criterion: nn.Module, head: Head, labels: torch.Tensor) -> None:
    """The loss of blank outputs for two training labels, on the CPU: a value torch takes at
    build but refuses when the loss is computed (a weight per class, of the wrong length)
    fails here, as the loss's, not in the first callback or step that computes one."""
    sample = labels[:2].cpu()
    with torch.no_grad():
        criterion(head.output_layer()(torch.zeros(len(sample), head.width)), head.encode(sample))


def describe_data(splits: Splits) -> dict[str, Any]:
    sizes = {
        "train": len(splits.train),
        "val": 0 if splits.val is None else len(splits.val),
        "test": len(splits.test),
    }
    return {
        "dataset": splits.name,
        "num_classes": splits.num_classes,
        "input_shape": list(splits.input_shape),
        "split_sizes": sizes,
        "evaluated_on": splits.evaluated_on,
    }
