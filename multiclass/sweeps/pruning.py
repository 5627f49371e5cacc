"""Pruning a search's trials (`hydra.sweeper.pruner=median|hyperband|none`): the pruner built
from its name and `hydra.sweeper.pruner_options`, the same in the search and in its jobs; and,
in a job the search runs, a callback that reports each epoch's `trainer.monitor` figure to the
job's trial through the study's storage and stops the run as `pruned` when the pruner says so.

The job is a process of its own wherever the launcher runs it (a joblib worker, a Slurm node),
so it reaches its trial through the storage alone: the study loaded by name, the trial by its
number, which is the job's number (the search numbers its jobs by trial). Optuna's public API
only: `optuna.load_study`, the storage's ids, `optuna.trial.Trial`'s report and should_prune.
Importing this module loads no optuna: a run outside a search never needs it."""

import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from multiclass.callbacks import Callback, RunState
from multiclass.errors import TrialPruned, UserError, one_line

if TYPE_CHECKING:
    from optuna.pruners import BasePruner
    from optuna.trial import Trial

    from multiclass.engine import EpochMetrics

log = logging.getLogger("multiclass")

# The sweeper a job's hydra.sweeper names when the search runs it (hydra_plugins).
SEARCH_SWEEPER = "hydra_plugins.multiclass_search.optuna_search.OptunaSearchSweeper"
PRUNERS = {"median": "MedianPruner", "hyperband": "HyperbandPruner", "none": None}


def make_pruner(name: str, options: Mapping[str, Any] | None) -> "BasePruner | None":
    """Optuna's pruner of that name with `options` as its arguments (e.g. n_startup_trials for
    median, min_resource for hyperband); None for `none`. A name or an option optuna does not
    take is a one-line UserError."""
    if name not in PRUNERS:
        raise UserError(f"hydra.sweeper.pruner must be one of {', '.join(PRUNERS)}, got {name!r}")
    options = dict(options or {})
    if PRUNERS[name] is None:
        if options:
            raise UserError("hydra.sweeper.pruner_options are given, but hydra.sweeper.pruner=none")
        return None
    import optuna

    try:
        return getattr(optuna.pruners, PRUNERS[name])(**options)
    except (TypeError, ValueError) as error:
        shown = " ".join(f"{key}={value}" for key, value in options.items())
        raise UserError(
            f"hydra.sweeper.pruner_options ({shown}) for hydra.sweeper.pruner={name}: {error}"
        ) from None


class TrialReporter(Callback):
    """Reports each epoch's monitored figure to the trial and asks the pruner whether to stop:
    after checkpoints (order 100), so that a pruned run's metrics.csv, last.pt and summary are
    whole. The last epoch, or one that early stopping ends, is not pruned: the run is done."""

    order = 200

    def __init__(self, trial: "Trial", pruner: str) -> None:
        self.trial, self.pruner = trial, pruner

    def on_epoch_end(self, run: RunState, row: "EpochMetrics", improved: bool) -> None:
        monitor = run.settings.monitor
        value = getattr(row, monitor, None)
        if value is None or not math.isfinite(value):
            return  # no validation figure this epoch: nothing to compare
        self.trial.report(float(value), row.epoch)
        if row.epoch >= run.settings.epochs or run.progress.stopped_early:
            return
        if self.trial.should_prune():
            raise TrialPruned(row.epoch, monitor, value, self.pruner)


def trial_pruning(hydra: DictConfig, processes: int = 1) -> list[Callback]:
    """The callbacks a job adds to its run: a TrialReporter where the search runs it with a
    pruner, else none. `hydra`: the job's Hydra config (HydraConfig.get()). A data parallel
    job is not pruned (its ranks would have to agree on the pruner's answer): said in a line."""
    sweeper = hydra.get("sweeper")
    searched = hydra.mode == RunMode.MULTIRUN and sweeper is not None
    if not searched or sweeper.get("_target_") != SEARCH_SWEEPER:
        return []
    name = sweeper.get("pruner") or "none"
    if name == "none":
        return []
    if processes > 1:
        log.warning("warning: a data parallel job is not pruned: hydra.sweeper.pruner is ignored")
        return []
    number = int(hydra.job.num)
    try:
        trial = find_trial(sweeper, number)
    except Exception as error:  # the storage unreachable from here: the run trains unpruned
        log.warning("warning: trial %d is not pruned: %s", number, one_line(error))
        return []
    return [] if trial is None else [TrialReporter(trial, name)]


def find_trial(sweeper: DictConfig, number: int) -> "Trial | None":
    """Trial `number` of the search's study, as a Trial this process can report to; None,
    said in a line, where it is not running (the job was started again after its search)."""
    import optuna

    options = OmegaConf.to_container(sweeper.get("pruner_options") or {}, resolve=True)
    pruner = make_pruner(sweeper.pruner, options)
    storage = optuna.storages.RDBStorage(sweeper.storage)
    study_id = storage.get_study_id_from_name(sweeper.study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    if storage.get_trial(trial_id).state != optuna.trial.TrialState.RUNNING:
        log.warning("warning: trial %d of the search has ended: this run is not pruned", number)
        return None
    study = optuna.load_study(
        study_name=sweeper.study_name,
        storage=storage,
        pruner=pruner,
        sampler=optuna.samplers.RandomSampler(),  # the trial's params are drawn already
    )
    return optuna.trial.Trial(study, trial_id)


# Hydra's options that take a value, and those that choose another primary config (with which
# the search's presence cannot be told here: Hydra's own error stands).
VALUED_OPTIONS = ("--cfg", "-c", "--package", "-p", "--experimental-rerun")
OTHER_CONFIG = ("--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd")


def check_pruner_has_search(argv: Sequence[str]) -> None:
    """`hydra.sweeper.pruner=...` on a command line whose sweeper is not the search: Hydra
    would refuse the key it does not know in several lines and a HYDRA_FULL_ERROR hint; here
    it is one line, before Hydra parses. Hydra's config is composed (its public compose API)
    only where a pruner key is given, as the command line selects it: a config group such as
    hparams_search may choose the search. A command line that cannot be composed is left to
    Hydra's own words."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if any(arg.split("=")[0] in OTHER_CONFIG for arg in argv):
        return
    parser = OverridesParser.create()
    try:
        overrides = parser.parse_overrides(plain_overrides(argv))
    except Exception:  # Hydra says what is wrong with it
        return
    pruning = [o for o in overrides if o.key_or_group.startswith("hydra.sweeper.pruner")]
    if not pruning:
        return
    others = [o.input_line for o in overrides if o not in pruning and not o.is_sweep_override()]
    if sweeper_target(others) not in (SEARCH_SWEEPER, None):
        raise UserError(
            f"{pruning[0].input_line}: pruning stops a search's trials, and this command runs"
            " no search: add hydra/sweeper=optuna_search (or an hparams_search config) and -m"
        )


def plain_overrides(argv: Sequence[str]) -> list[str]:
    """The overrides of a command line, its options and their values left out."""
    overrides, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in VALUED_OPTIONS
        else:
            overrides.append(arg)
    return overrides


def sweeper_target(overrides: list[str]) -> str | None:
    """hydra.sweeper's _target_ in the config these overrides compose; None where it cannot be
    composed."""
    from hydra import compose, initialize_config_dir

    from multiclass.config import CONFIG_DIR

    try:
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("train", overrides=overrides, return_hydra_config=True)
    except Exception:  # Hydra says what is wrong with the command line
        return None
    return OmegaConf.select(cfg, "hydra.sweeper._target_")
