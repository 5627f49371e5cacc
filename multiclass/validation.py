"""Every value of a composed config checked before anything is built or written, each by its
key's rule (multiclass/settings.py, where every key is declared): one line naming the key, the
value and what is allowed. Torch-free: the command line checks a run's config before it
imports torch."""

from collections.abc import Iterator
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, ListConfig, OmegaConf

from multiclass.errors import UserError
from multiclass.settings import DECLARED, RULES, Rule, check_folds, check_value, shown

# RULES, Rule and shown: the names callers and tests know the rules by, from before they moved.
__all__ = ["RULES", "Rule", "check_config", "check_sweep", "leaves", "shown"]

# Hydra's own; by their class; bookkeeping (`reproduces`, declared not checked)
NOT_CHECKED = ("hydra", "callbacks", *(item.key for item in DECLARED.values() if item.rule is None))
MARKERS = ("_target_", "_partial_", "_recursive_", "_convert_", "_args_")
NULL_GROUPS = ("scheduler", "augment")  # groups whose `none` option is null
SLURM = "hydra_plugins.multiclass_slurm.slurm_queue_launcher.SlurmQueueLauncher"
# Launchers whose sweeps sweep.fail_fast can stop: Hydra's own (the hydra/launcher option
# `basic`, known by its name) runs jobs in order; the others here (by _target_) as workers free
# up (joblib, Ray), and each job reads the record (sweeps.fail_fast); our Slurm launcher
# cancels what is pending. Hydra's stock submitit_slurm and submitit_local start every job at
# once and cancel none.
BASIC_LAUNCHER = "basic"
LAUNCHERS_THAT_STOP = (
    "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
    "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher",  # ray_local's (and ray's)
    SLURM,  # slurm's and slurm_ddp's
)
LAUNCHERS_THAT_RETRY = (SLURM,)


def check_config(cfg: DictConfig) -> None:
    """A UserError for the first value that its key's rule does not allow."""
    for key, value in leaves(cfg):
        check_value(key, value)
    dataset = cfg.get("dataset") or {}
    check_folds(dataset.get("folds"), dataset.get("fold"), dataset.get("eval_on_train", False))
    check_calibration(cfg)


def check_calibration(cfg: DictConfig) -> None:
    """trainer.calibrate fits its temperature on a validation split held out of training: a
    data set that validates on its training samples (xor, toy) or keeps none is refused."""
    calibrate = OmegaConf.select(cfg, "trainer.calibrate", default=None)
    if calibrate is None:
        return
    dataset = cfg.get("dataset") or {}
    if dataset.get("eval_on_train"):
        raise UserError(
            f"trainer.calibrate={calibrate} needs a validation split held out of training:"
            " this data set validates on its training samples (dataset.eval_on_train=true)"
        )
    unfolded = dataset.get("folds") is None and dataset.get("fold") is None
    if unfolded and dataset.get("val_fraction") == 0:
        raise UserError(
            f"trainer.calibrate={calibrate} needs a validation split: dataset.val_fraction=0"
            " keeps none"
        )


def check_sweep(config: DictConfig) -> None:
    """What no job of a sweep (-m) can run, refused as the sweep starts, before Hydra writes
    its folder or any job's: data parallel (device.processes > 1, set or swept) trains a
    single run; a sweep's jobs train so on Slurm's tasks (hydra/launcher=slurm_ddp), with
    device.processes 1. Every `sweep.*` value (what the launcher reads too), and what its
    launcher cannot do: fail fast, retry. A job's other bad values are check_config's, as
    that job starts."""
    for processes in asked(config, "device.processes", default=1):
        if isinstance(processes, int) and processes > 1:
            raise UserError(
                f"device.processes={processes} trains a single run, not a sweep (-m): run it"
                " without -m, or leave device.processes at 1 (hydra/launcher=slurm_ddp trains"
                " each job of a sweep in data parallel)"
            )
    for key, _ in leaves(config.get("sweep") or DictConfig({}), "sweep."):
        for value in asked(config, key):
            check_value(key, value)
    check_launcher(config)


def check_launcher(config: DictConfig) -> None:
    """sweep.fail_fast needs a launcher whose jobs read the sweep's fail-fast record before
    they start and as they train, and that starts no job ahead of that (LAUNCHERS_THAT_STOP);
    sweep.retries > 0 one that starts a job again (ours for Slurm)."""
    target = OmegaConf.select(config, "hydra.launcher._target_", default=None)
    choices = OmegaConf.select(config, "hydra.runtime.choices", default=None) or {}
    launcher = f"hydra/launcher={choices.get('hydra/launcher') or target}"
    stops = target in LAUNCHERS_THAT_STOP or choices.get("hydra/launcher") == BASIC_LAUNCHER
    if not stops and True in asked(config, "sweep.fail_fast"):
        raise UserError(
            f"sweep.fail_fast=true needs a launcher that can stop a sweep's jobs: {launcher}"
            " cannot; use hydra/launcher=basic (the default), joblib, ray_local, slurm or"
            " slurm_ddp"
        )
    retries = [n for n in asked(config, "sweep.retries") if isinstance(n, int) and n > 0]
    if retries and target not in LAUNCHERS_THAT_RETRY:
        raise UserError(
            f"sweep.retries={retries[0]} needs a launcher that starts a job again: {launcher}"
            " does not; use hydra/launcher=slurm or slurm_ddp, or leave sweep.retries at 0"
        )


def asked(config: DictConfig, key: str, default: Any = None) -> list[Any]:
    """`key` as the sweep's config has it, then each value that the command line sweeps it
    over (Hydra composes that config without the sweeps: each job gets its own)."""
    values = [OmegaConf.select(config, key, default=default)]
    typed = OmegaConf.select(config, "hydra.overrides.task", default=None) or []
    for override in OverridesParser.create().parse_overrides(list(typed)):
        swept = override.is_sweep_override() and not override.is_interval_sweep()
        if swept and override.key_or_group == key:
            values += override.sweep_iterator()
    return values


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
