"""Resuming a run in its own directory, from its last.pt (records.last_checkpoint): the config
a resumed run uses is the one it saved, with only the keys a resume may change laid over it,
so a resume cannot quietly train something else."""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from multiclass.errors import UserError
from multiclass.records.artifacts import read_config, read_json, shown_path
from multiclass.schedulers import scheduler_name, spans_the_run
from multiclass.settings import RESUMABLE_KEYS  # how long it trains and what it shows, never what


def already_complete(run_dir: Path, epochs: int) -> dict[str, Any] | None:
    """The summary of a run that completed `epochs` epochs (or stopped early), else None."""
    summary = read_json(run_dir / "summary.json") or {}
    done = summary.get("status") == "completed"
    if done and (summary.get("stopped_early") or (summary.get("epochs") or 0) >= epochs):
        return summary
    return None


def resumed_config(cfg: DictConfig, run_dir: Path, overrides: Iterable[str]) -> DictConfig:
    """The config `run_dir` saved, with only the RESUMABLE_KEYS of `cfg` laid over it; any other
    command-line override that would change the saved config is an error. A run directory
    without a saved config (a sweep job that never started) starts afresh from `cfg`."""
    saved_path = run_dir / "config.yaml"
    if not saved_path.exists():
        return cfg
    saved = read_config(saved_path)  # a damaged file: one line naming it
    epochs = saved.trainer.epochs
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key.startswith("hydra.") or key.startswith("hydra/"):
            continue
        now, before = plain(OmegaConf.select(cfg, key)), plain(OmegaConf.select(saved, key))
        now, before = fixed_part(key, now), fixed_part(key, before)
        if key in RESUMABLE_KEYS or key.startswith("logger."):
            OmegaConf.update(saved, key, now, force_add=True)
        elif now != before:
            raise UserError(
                f"a resume continues {shown_path(run_dir)}'s own config: {key} was {before},"
                f" not {now}"
                f" (only {', '.join(k for k in RESUMABLE_KEYS if k != 'resume')} may change)"
            )
    keep_schedule_length(saved, epochs, run_dir)
    OmegaConf.update(saved, "resume", cfg.resume, force_add=True)
    return saved


def fixed_part(key: str, value: Any) -> Any:
    """A config group's node (`device=cpu` on the command line) without the keys a resume may
    change (device.processes): it must equal the saved one in the rest."""
    if not isinstance(value, dict):
        return value
    prefix = f"{key}."
    resumable = {k.removeprefix(prefix) for k in RESUMABLE_KEYS if k.startswith(prefix)}
    return {name: item for name, item in value.items() if name not in resumable}


def keep_schedule_length(saved: DictConfig, epochs: int, run_dir: Path) -> None:
    """Refuse a new trainer.epochs when the lr schedule was laid out over the run's `epochs`
    (onecycle, cosine): it would be bent mid-way, and OneCycleLR fails past its last step."""
    if saved.trainer.epochs != epochs and spans_the_run(saved.get("scheduler")):
        raise UserError(
            f"a resume cannot change trainer.epochs of {run_dir} from {epochs} to"
            f" {saved.trainer.epochs}: its lr schedule ({scheduler_name(saved.scheduler)}) is laid"
            " out over the run's length"
        )


def plain(value: Any) -> Any:
    """A config node as plain, resolved data, so that nodes compare by content."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value
