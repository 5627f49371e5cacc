"""The typed schema of the top-level config, so that Hydra rejects wrong types when it composes.

The groups (dataset, model, loss, optimizer, device) stay free-form: each is checked by the
signature of the component it instantiates.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from multiclass.errors import UserError


@dataclass
class TrainerSettings:
    """How long and in what batches to train; `progress` turns itself off when not on a terminal."""

    epochs: int = 20
    batch_size: int = 64
    eval_batch_size: int = 1024
    drop_last: bool = False
    progress: bool = True
    log_every: int = 1  # a log line every N epochs (and for the last); metrics.csv has all

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size", "log_every"):
            value = getattr(self, name)
            if value < 1:
                raise UserError(f"trainer.{name} must be a positive integer, got {value}")


@dataclass
class TrainConfig:
    """Top level of `conf/train.yaml`; the groups are typed by what they instantiate."""

    dataset: Any = None
    model: Any = None
    loss: Any = None
    optimizer: Any = None
    device: Any = None
    seed: int = 0
    plots: bool = True
    trainer: TrainerSettings = field(default_factory=TrainerSettings)
    reproduces: Any = None  # an experiment's reference figures (conf/experiment)


ConfigStore.instance().store(name="train_schema", node=TrainConfig)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"


def compose_config(*overrides: str) -> DictConfig:
    """The config `multiclass-train <overrides>` runs, without Hydra's own node: for running
    it in-process (the tests, multiclass-bench, multiclass-reproduce)."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def trainer_settings(cfg: DictConfig) -> TrainerSettings:
    """The validated `trainer` node of a composed config."""
    return TrainerSettings(**OmegaConf.to_container(cfg.trainer, resolve=True))
