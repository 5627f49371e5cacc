"""The typed schema of the top-level config, so that Hydra rejects wrong types when it composes.

The groups (dataset, model, loss, optimizer, scheduler, device, logger, callbacks) stay
free-form: each is checked by the signature of the component it instantiates.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from multiclass.errors import UserError


@dataclass
class EarlyStopping:
    """Stop when validation accuracy has not beaten its best by more than `min_delta` for
    `patience` epochs; `patience: null` (the default) never stops early."""

    patience: int | None = None
    min_delta: float = 0.0


TEST_ON = ("last", "best")


@dataclass
class TrainerSettings:
    """How long and in what batches to train; `progress` turns itself off when not on a terminal."""

    epochs: int = 20
    batch_size: int = 64
    eval_batch_size: int = 1024
    drop_last: bool = False
    progress: bool = True
    log_every: int = 1  # a log line every N epochs (and for the last); metrics.csv has all
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)
    test_on: str = "last"  # the weights the test figures and model.pt come from: last or best
    checkpoint_every_s: float = 0.0  # last.pt after an epoch once this long since the last one
    layer_stats: bool = True  # layers.csv/.png: per-layer gradients and activations, each log_every
    divergence_factor: float | None = 1e3  # diverged: train loss over this x chance's; null: off

    def __post_init__(self) -> None:
        if isinstance(self.early_stopping, dict):
            self.early_stopping = EarlyStopping(**self.early_stopping)
        for name in ("epochs", "batch_size", "eval_batch_size", "log_every"):
            value = getattr(self, name)
            if value < 1:
                raise UserError(f"trainer.{name} must be a positive integer, got {value}")
        patience = self.early_stopping.patience
        if patience is not None and patience < 1:
            raise UserError(f"trainer.early_stopping.patience must be positive, got {patience}")
        if self.test_on not in TEST_ON:
            raise UserError(f"trainer.test_on must be last or best, got {self.test_on!r}")
        factor = self.divergence_factor
        if factor is not None and not factor > 1:
            raise UserError(f"trainer.divergence_factor must be above 1 or null, got {factor}")

    def reports(self, epoch: int) -> bool:
        """Every `log_every` epochs and the last: a log line and the layers.csv rows (a probe
        costs about 2 ms, as much as a whole epoch of the seeds' XOR and toy runs)."""
        return epoch % self.log_every == 0 or epoch == self.epochs


@dataclass
class TrainConfig:
    """Top level of `conf/train.yaml`; the groups are typed by what they instantiate."""

    dataset: Any = None
    model: Any = None
    loss: Any = None
    optimizer: Any = None
    scheduler: Any = None  # null: no lr schedule (conf/scheduler/none.yaml)
    device: Any = None
    logger: Any = None  # a tracker besides the run directory (conf/logger)
    seed: int = 0
    plots: bool = True
    trainer: TrainerSettings = field(default_factory=TrainerSettings)
    callbacks: Any = None  # what a run records as it trains (conf/callbacks)
    reproduces: Any = None  # an experiment's reference figures (conf/experiment)
    resume: str | None = None  # a run (or sweep) directory to continue in place


# `${first_set:${resume},outputs/...}`: the run directory is the one resumed, if any.
OmegaConf.register_new_resolver("first_set", lambda *values: next((v for v in values if v), None))


ConfigStore.instance().store(name="train_schema", node=TrainConfig)


# The configs: conf/ at the top of a checkout (run in place or installed editable); an
# installed wheel carries them inside the package as multiclass/conf (pyproject.toml).
PACKAGED_CONFIG_DIR = Path(__file__).resolve().parent / "conf"
CONFIG_DIR = (
    PACKAGED_CONFIG_DIR if PACKAGED_CONFIG_DIR.is_dir() else PACKAGED_CONFIG_DIR.parents[1] / "conf"
)


def compose_config(*overrides: str) -> DictConfig:
    """The config `multiclass-train <overrides>` runs, without Hydra's own node: for running
    it in-process (the tests, multiclass-bench, multiclass-reproduce)."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


SEEDS = range(2**32)  # what numpy and scikit-learn take (torch takes more)


def check_seed(seed: int) -> None:
    if seed not in SEEDS:
        raise UserError(f"seed must be an integer from 0 to {SEEDS[-1]}, got {seed}")


def trainer_settings(cfg: DictConfig) -> TrainerSettings:
    """The validated `trainer` node of a composed config."""
    return TrainerSettings(**OmegaConf.to_container(cfg.trainer, resolve=True))
