"""Every value a user can set, checked before anything is built or written: a rule per config
key (its type, its range or choices), and one line naming the key, the value and what is
allowed, instead of an error from deep inside torch or scikit-learn after minutes of work.

A key is known by its dotted path (`optimizer.lr`) whatever option of its group set it; a key
without a rule (a user's own model or callback) is left to its builder. Torch-free: the
command line checks a run's config before it imports torch."""

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, ListConfig, OmegaConf

from multiclass.errors import UserError

NOT_CHECKED = ("hydra", "reproduces", "callbacks")  # Hydra's own; bookkeeping; by their class
MARKERS = ("_target_", "_partial_", "_recursive_", "_convert_", "_args_")
NULL_GROUPS = ("scheduler", "augment")  # groups whose `none` option is null


@dataclass(frozen=True)
class Rule:
    """What a key takes: a `kind` (int, float, bool, str or list), within `low`..`high`
    (`open_low`/`open_high`: the bound itself excluded), one of `choices`, null when
    `optional`; a list's items follow `items`."""

    kind: type
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    choices: tuple[str, ...] = ()
    optional: bool = False
    items: "Rule | None" = None
    one_of: tuple["Rule", ...] = ()  # kind object: what any of these rules allows

    def allows(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if self.one_of:
            return any(rule.allows(value) for rule in self.one_of)
        if self.kind is list:
            return isinstance(value, list | tuple) and all(map(self.items.allows, value))
        if not self.has_kind(value):
            return False
        if self.choices:
            return value in self.choices
        return self.within(value)

    def has_kind(self, value: Any) -> bool:
        if isinstance(value, bool) or self.kind is bool:
            return isinstance(value, bool) and self.kind is bool
        if self.kind is float:
            return isinstance(value, int | float) and math.isfinite(value)
        return isinstance(value, self.kind)

    def within(self, value: float | str) -> bool:
        if isinstance(value, str):
            return True
        low_ok = self.low is None or (value > self.low if self.open_low else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.open_high else value <= self.high)
        return low_ok and high_ok

    def describe(self) -> str:
        """What is allowed, in words: 'a number above 0 and below 1, or null'."""
        if self.one_of:
            text = " or ".join(rule.describe() for rule in self.one_of)
        elif self.kind is list:
            text = f"a list of {self.items.describe_plural()}"
        elif self.choices:
            text = "one of " + ", ".join(self.choices)
        else:
            text = {int: "an integer", float: "a number", bool: "true or false", str: "a text"}[
                self.kind
            ] + self.describe_range()
        return f"{text}, or null" if self.optional else text

    def describe_plural(self) -> str:
        if self.one_of:
            return " or ".join(rule.describe_plural() for rule in self.one_of)
        if self.kind is list:
            return f"lists of {self.items.describe_plural()}"
        names = {int: "integers", float: "numbers", bool: "true/false values", str: "texts"}
        return names[self.kind] + self.describe_range()

    def describe_range(self) -> str:
        """' > 0 and < 1', ' >= 1'."""
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {plain_number(self.low)}")
        if self.high is not None:
            parts.append(f"{'<' if self.open_high else '<='} {plain_number(self.high)}")
        return " " + " and ".join(parts) if parts else ""


def plain_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def integer(low: float | None = None, high: float | None = None, optional: bool = False) -> Rule:
    return Rule(int, low, high, optional=optional)


def number(
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
    open_high: bool = False,
    optional: bool = False,
) -> Rule:
    return Rule(float, low, high, open_low, open_high, optional=optional)


def flag(optional: bool = False) -> Rule:
    return Rule(bool, optional=optional)


def text(optional: bool = False) -> Rule:
    return Rule(str, optional=optional)


def choice(*choices: str, optional: bool = False) -> Rule:
    return Rule(str, choices=choices, optional=optional)


def listing(items: Rule, optional: bool = False) -> Rule:
    return Rule(list, items=items, optional=optional)


def either(*rules: Rule) -> Rule:
    return Rule(object, one_of=rules)


FRACTION = number(0, 1, open_high=True)  # a share of the data, of a unit's outputs
ACTIVATION = choice("relu", "leaky_relu", "sigmoid", "tanh", "gelu")

SEED = integer(0, 2**32 - 1)  # what numpy and scikit-learn take (torch takes more)

RULES: dict[str, Rule] = {
    "seed": SEED,
    "plots": flag(),
    "resume": text(optional=True),
    # trainer
    "trainer.epochs": integer(1),
    "trainer.batch_size": integer(1),
    "trainer.eval_batch_size": integer(1),
    "trainer.drop_last": flag(),
    "trainer.progress": flag(),
    "trainer.log_every": integer(1),
    "trainer.early_stopping.patience": integer(1, optional=True),
    "trainer.early_stopping.min_delta": number(0),
    "trainer.test_on": choice("last", "best"),
    "trainer.monitor": choice("val_acc", "val_loss", "val_macro_f1", "val_balanced_acc"),
    "trainer.checkpoint_every_s": number(0),
    "trainer.layer_stats": flag(),
    "trainer.divergence_factor": number(1, open_low=True, optional=True),
    "trainer.gradient_clip_norm": number(0, open_low=True, optional=True),
    "trainer.gradient_clip_value": number(0, open_low=True, optional=True),
    "trainer.accumulate_grad_batches": integer(1),
    "trainer.ema": number(0, 1, open_low=True, open_high=True, optional=True),
    # dataset
    "dataset.classes": listing(either(integer(0), text()), optional=True),  # index or name
    "dataset.limit": integer(1, optional=True),
    "dataset.val_fraction": FRACTION,
    "dataset.test_fraction": number(0, 1, open_low=True, open_high=True),
    "dataset.seed": SEED,
    "dataset.eval_on_train": flag(),
    "dataset.n_samples": integer(2),
    "dataset.centers": listing(listing(number())),
    "dataset.cluster_std": number(0, open_low=True),
    "dataset.noise": number(0),
    "dataset.root": text(optional=True),
    "dataset.download": flag(),
    "dataset.image_size": integer(1, optional=True),
    "dataset.grayscale": flag(),
    "dataset.max_bytes": integer(1, optional=True),
    "dataset.on_bad_image": choice("skip", "error"),
    "dataset.progress": flag(),
    "dataset.storage": choice("memory", "disk", "auto"),
    "dataset.cache_dir": text(optional=True),
    "dataset.path": text(optional=True),
    "dataset.target": text(optional=True),
    "dataset.features": listing(text(), optional=True),
    "dataset.numeric": listing(text(), optional=True),
    "dataset.impute": choice("mean", "most_frequent", optional=True),
    "dataset.test_path": text(optional=True),
    # model
    "model.depth": integer(0),
    "model.width": integer(1),
    "model.hidden": listing(integer(1), optional=True),
    "model.activation": ACTIVATION,
    "model.dropout": FRACTION,
    "model.channels": listing(integer(1)),
    "model.kernel_size": integer(1),
    "model.padding": integer(0),
    "model.pool": integer(1),
    "model.convs_per_block": integer(1),
    "model.batch_norm": flag(),
    "model.name": text(),
    "model.weights": text(optional=True),
    "model.freeze": choice("backbone", optional=True),
    "model.backbone_lr": number(0, open_low=True),
    # augment
    "augment.padding": integer(0),
    "augment.flip": flag(),
    # loss
    "loss.weight": listing(number(0), optional=True),
    "loss.pos_weight": listing(number(0, open_low=True), optional=True),
    "loss.label_smoothing": number(0, 1),
    "loss.one_hot": flag(),
    # optimizer
    "optimizer.lr": number(0, open_low=True),
    "optimizer.weight_decay": number(0),
    "optimizer.momentum": FRACTION,
    "optimizer.fused": flag(optional=True),
    # scheduler
    "scheduler.interval": choice("batch", "epoch"),
    "scheduler.step_size": integer(1),
    "scheduler.gamma": number(0, open_low=True),
    "scheduler.T_max": integer(1, optional=True),
    "scheduler.eta_min": number(0),
    "scheduler.max_lr": number(0, open_low=True),
    "scheduler.total_steps": integer(1, optional=True),
    "scheduler.pct_start": number(0, 1, open_low=True, open_high=True),
    "scheduler.div_factor": number(0, open_low=True),
    "scheduler.final_div_factor": number(0, open_low=True),
    "scheduler.cycle_momentum": flag(),
    "scheduler.base_momentum": FRACTION,
    "scheduler.max_momentum": FRACTION,
    # device
    "device.kind": choice("auto", "cuda", "mps", "cpu"),
    "device.deterministic": flag(),
    "device.num_threads": integer(1, optional=True),
    "device.processes": integer(1),
    "device.precision": choice("fp32", "bf16", "fp16"),
    "device.compile": flag(),
    "device.channels_last": flag(),
    "device.reuse_memory": flag(),
    # logger
    "logger.subdir": text(),
    "logger.tracking_uri": text(),
    "logger.experiment": text(optional=True),
    "logger.artifacts": flag(),
}


def check_config(cfg: DictConfig) -> None:
    """A UserError for the first value that its key's rule does not allow."""
    for key, value in leaves(cfg):
        rule = RULES.get(key)
        if rule is not None and not rule.allows(value):
            raise UserError(f"{key} must be {rule.describe()}, got {shown(value)}")


def check_sweep(config: DictConfig) -> None:
    """What no job of a sweep (-m) can run, refused as the sweep starts, before Hydra writes
    its folder or any job's: data parallel (device.processes > 1, set or swept) trains a
    single run; a sweep's jobs train so on Slurm's tasks (hydra/launcher=slurm_ddp), with
    device.processes 1. A job's bad values are check_config's, as that job starts."""
    for processes in processes_asked(config):
        if isinstance(processes, int) and processes > 1:
            raise UserError(
                f"device.processes={processes} trains a single run, not a sweep (-m): run it"
                " without -m, or leave device.processes at 1 (hydra/launcher=slurm_ddp trains"
                " each job of a sweep in data parallel)"
            )


def processes_asked(config: DictConfig) -> list[Any]:
    """device.processes as the sweep's config has it, then each value that the command line
    sweeps it over (Hydra composes that config without the sweeps: each job gets its own)."""
    asked = [OmegaConf.select(config, "device.processes", default=1)]
    typed = OmegaConf.select(config, "hydra.overrides.task", default=None) or []
    for override in OverridesParser.create().parse_overrides(list(typed)):
        swept = override.is_sweep_override() and not override.is_interval_sweep()
        if swept and override.key_or_group == "device.processes":
            asked += override.sweep_iterator()
    return asked


def leaves(node: DictConfig, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf value of `node` by its dotted key, but the keys NOT_CHECKED, instantiate's
    markers and interpolations (`dataset.seed: ${seed}` is checked as `seed`)."""
    for name in node:
        key = f"{prefix}{name}"
        if key in NOT_CHECKED or name in MARKERS or OmegaConf.is_interpolation(node, name):
            continue  # an interpolation's source is checked under its own key
        try:
            value = node[name]
        except Exception as error:  # `???`: a value that must be given
            raise UserError(f"{key} must be given: {' '.join(str(error).split())}") from None
        if isinstance(value, DictConfig):
            yield from leaves(value, f"{key}.")
        elif not (value is None and key in NULL_GROUPS):
            listed = isinstance(value, ListConfig)
            yield key, OmegaConf.to_container(value, resolve=True) if listed else value


def shown(value: Any) -> str:
    """A value as the user typed it: text quoted, null as null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value)
