"""Where the configs are, how a config is composed in-process, and the trainer's settings as a
dataclass. What each value may be is checked by multiclass/validation.py, one line per error."""

from dataclasses import dataclass, field
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

# trainer.monitor's choices: the validation figure that picks the best epoch (best.pt,
# `test_on: best`, early stopping, what a sweep or search optimises), and which way is better.
MONITORS = {"val_acc": "max", "val_loss": "min", "val_macro_f1": "max", "val_balanced_acc": "max"}


@dataclass
class EarlyStopping:
    """Stop when the monitored validation figure (`trainer.monitor`) has not beaten its best
    by more than `min_delta` for `patience` epochs; `patience: null` (the default) never stops
    early."""

    patience: int | None = None
    min_delta: float = 0.0


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
    monitor: str = "val_acc"  # what makes an epoch the best (MONITORS)
    checkpoint_every_s: float = 0.0  # last.pt after an epoch once this long since the last one
    layer_stats: bool = True  # layers.csv/.png: per-layer gradients and activations, each log_every
    divergence_factor: float | None = 1e3  # diverged: train loss over this x chance's; null: off
    gradient_clip_norm: float | None = None  # clip the global gradient norm to it; null: off
    gradient_clip_value: float | None = None  # clamp each gradient element to [-v, v]; null: off
    accumulate_grad_batches: int = 1  # one optimizer step per this many batches
    ema: float | None = None  # decay of a moving average of the weights; null: off

    def __post_init__(self) -> None:
        if isinstance(self.early_stopping, dict):
            self.early_stopping = EarlyStopping(**self.early_stopping)

    def reports(self, epoch: int) -> bool:
        """Every `log_every` epochs and the last: a log line and the layers.csv rows (a probe
        costs about 2 ms, as much as a whole epoch of the seeds' XOR and toy runs)."""
        return epoch % self.log_every == 0 or epoch == self.epochs


# `${first_set:${resume},outputs/...}`: the run directory is the one resumed, if any.
OmegaConf.register_new_resolver("first_set", lambda *values: next((v for v in values if v), None))
# `${unless_resuming:${resume},.hydra}`: a resume leaves the run's .hydra/ as the run wrote it.
OmegaConf.register_new_resolver("unless_resuming", lambda resume, value: None if resume else value)


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


def trainer_settings(cfg: DictConfig) -> TrainerSettings:
    """The validated `trainer` node of a composed config."""
    return TrainerSettings(**OmegaConf.to_container(cfg.trainer, resolve=True))
