"""Hyperparameter search with optuna behind Hydra's `-m` (`hydra/sweeper=optuna_search`; Hydra
finds it through hydra_plugins/multiclass_search). Each batch of trials is asked from an optuna
study, run through Hydra's launcher as jobs numbered by trial, and told back.

The study lives in `storage` and `n_trials` is the number of trials it should have in all, so
the same command again continues it. One command drives a study at a time: a trial that an
earlier command left running was cut short (the command was killed), so it is marked failed and
does not count toward `n_trials`. A trial whose job gives no finite objective is failed and the
search goes on. With a pruner (`pruner`, sweeps.pruning), each job reports its epochs to its
trial through `storage`, and a job the pruner stopped is told back as pruned: it counts toward
`n_trials`, as optuna counts it.
"""

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, Transformer
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, configure_log
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler
from optuna.trial import Trial, TrialState
from sqlalchemy.engine import make_url

from multiclass.config import MONITORS
from multiclass.errors import UserError
from multiclass.sweeps.fail_fast import stop_record
from multiclass.sweeps.job_record import summary_of
from multiclass.sweeps.pruning import make_pruner

log = logging.getLogger(__name__)

DIRECTIONS = ("maximize", "minimize")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
ABANDONED = "abandoned_trials"  # study user attr: trials whose command stopped before they ended


class SearchError(UserError):
    """A search that cannot start or go on: the sweeper (hydra_plugins/multiclass_search)
    ends the command with it as one line and exit status 1."""


class TrialFailed(Exception):
    """A job that gave no finite objective: its trial is failed and the search goes on."""


@dataclass(frozen=True)
class Param:
    """A searched key's optuna distribution; for a choice, each option as override text too
    (lists and strings with spaces need Hydra's own quoting to come back as they were)."""

    distribution: BaseDistribution
    texts: tuple[str, ...] = ()

    def override(self, key: str, value: Any) -> str:
        if isinstance(self.distribution, CategoricalDistribution):
            return f"{key}={self.texts[self.distribution.choices.index(value)]}"
        return f"{key}={Transformer.str(value)}"


@dataclass(frozen=True)
class SearchSpace:
    """The keys a trial draws, and the overrides every trial shares, as they were typed."""

    params: dict[str, Param]
    fixed: tuple[str, ...]

    @property
    def distributions(self) -> dict[str, BaseDistribution]:
        return {key: param.distribution for key, param in self.params.items()}

    def overrides(self, values: dict[str, Any]) -> list[str]:
        """A trial's job overrides: its drawn values, then the shared ones."""
        return [
            *(self.params[key].override(key, value) for key, value in values.items()),
            *self.fixed,
        ]


def parse_search_space(overrides: Sequence[str], parser: OverridesParser) -> SearchSpace:
    """`params` then the command line, a later key winning (so `model.depth=2` on the command
    line pins a searched key): sweeps become params, everything else is passed on as typed."""
    by_key = {
        override.get_key_element(): override for override in parser.parse_overrides(list(overrides))
    }
    return SearchSpace(
        params={key: to_param(o) for key, o in by_key.items() if o.is_sweep_override()},
        fixed=tuple(o.input_line for o in by_key.values() if not o.is_sweep_override()),
    )


def to_param(override: Override) -> Param:
    """Hydra's sweep syntax as an optuna distribution. `interval` is a float unless tagged
    `int`; tag `log` samples log-uniformly. `range` keeps Hydra's meaning, stop excluded
    (hydra-optuna-sweeper included it), so `-m` and a search read it alike."""
    sweep = override.value()
    if override.is_interval_sweep():
        log_scale = "log" in sweep.tags
        if "int" in sweep.tags:
            return Param(IntDistribution(int(sweep.start), int(sweep.end), log=log_scale))
        return Param(FloatDistribution(sweep.start, sweep.end, log=log_scale))
    values = list(override.sweep_iterator())  # choice(), a,b,c, range() or a group's glob()
    if not values:
        raise SearchError(f"{override.input_line}: nothing to search, the sweep has no values")
    if override.is_range_sweep():  # shuffle() changes nothing: a sampler has no order
        kind = IntDistribution if all(isinstance(v, int) for v in values) else FloatDistribution
        return Param(kind(min(values), max(values), step=abs(sweep.step)))
    choices = [Transformer.encode(value) for value in values]
    return Param(CategoricalDistribution(choices), tuple(map(Transformer.str, values)))


def check_direction(direction: str, config: DictConfig, space: SearchSpace) -> None:
    """The app returns the best figure of `trainer.monitor`: a search must minimise val_loss
    and maximise the others, or it looks for the worst model (a searched monitor: unchecked)."""
    if "trainer.monitor" in space.params:
        return
    monitor = OmegaConf.select(config, "trainer.monitor", default=None) or "val_acc"
    wanted = "minimize" if MONITORS.get(monitor) == "min" else "maximize"
    if direction != wanted:
        raise SearchError(
            f"hydra.sweeper.direction={direction} with trainer.monitor={monitor} would search"
            f" for the worst model: set hydra.sweeper.direction={wanted}"
        )


def open_study(
    name: str, storage: str | None, direction: str, pruner: BasePruner | None = None
) -> optuna.Study:
    """The study in `storage`, created on first use; one created to optimize the other way
    is refused (optuna would silently keep its direction). `pruner`: the study's, so that a
    sampler that knows it (hyperband's brackets) samples with it."""
    if storage is not None:
        make_sqlite_folder(storage)
    study = optuna.create_study(
        study_name=name, storage=storage, direction=direction, load_if_exists=True, pruner=pruner
    )
    if study.direction.name.lower() != direction:
        raise SearchError(
            f"study {name} in {storage} was created to {study.direction.name.lower()},"
            f" not to {direction}: pick another hydra.sweeper.study_name"
        )
    return study


def make_sqlite_folder(storage: str) -> None:
    """SQLite creates its database file but not the folder it goes in."""
    url = make_url(storage)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def make_sampler(config: DictConfig | None, offset: int) -> BaseSampler | None:
    """The configured sampler, its seed (if any) offset by the trials the study already has: a
    seeded sampler starts its random stream over in every command, and would otherwise propose
    a continued study's first trials again."""
    if config is None:
        return None
    seed = config.get("seed")
    return instantiate(config, **({} if seed is None else {"seed": seed + offset}))


def to_plain(options: DictConfig | dict | None) -> dict[str, Any]:
    """hydra.sweeper.pruner_options as plain values (Hydra hands the sweeper a DictConfig)."""
    if options is None:
        return {}
    if not OmegaConf.is_dict(options):
        if isinstance(options, dict):
            return options
        raise SearchError(f"hydra.sweeper.pruner_options must be a mapping, got {options!r}")
    return OmegaConf.to_container(options, resolve=True)


def abandon(study: optuna.Study, numbers: Sequence[int]) -> None:
    """Fail trials whose command stopped before their jobs returned, and note them so that
    they do not count toward n_trials."""
    if not numbers:
        return
    for number in numbers:
        study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
    study.set_user_attr(ABANDONED, sorted({*study.user_attrs.get(ABANDONED, []), *numbers}))


def trials_done(study: optuna.Study) -> int:
    """The trials that count toward n_trials: finished, less the abandoned ones."""
    abandoned = set(study.user_attrs.get(ABANDONED, []))
    finished = study.get_trials(deepcopy=False, states=FINISHED)
    return sum(trial.number not in abandoned for trial in finished)


def objective(job: JobReturn) -> float:
    """The job's finite objective; TrialFailed says why there is none."""
    try:
        value = job.return_value  # re-raises what the job raised
    except Exception as error:
        raise TrialFailed(f"{type(error).__name__}: {error}") from error
    if value is None:
        raise TrialFailed("the run did not complete (its train.log says why)")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TrialFailed(f"the objective {value!r} is not a number") from None
    if not math.isfinite(number):
        raise TrialFailed(f"the objective is {number}")
    return number


def pruned_after(job: JobReturn) -> int | None:
    """The epoch after which the pruner stopped the job, from its summary.json; None for a
    job it did not stop (or one that left no summary: killed, or run where it cannot be read)."""
    summary = summary_of(job)
    return summary.get("epochs") if summary.get("status") == "pruned" else None


def tell(study: optuna.Study, trial: Trial, job: JobReturn) -> None:
    """Record a trial's job and log one line for it; a job without an objective fails the
    trial, never the search; one its pruner stopped is pruned (optuna keeps its last reported
    figure as its value)."""
    epoch = pruned_after(job)
    if epoch is not None:
        study.tell(trial, state=TrialState.PRUNED)
        log.info(
            "trial %d pruned after epoch %s  (%s)", trial.number, epoch, describe(trial.params)
        )
        return
    try:
        value = objective(job)
    except TrialFailed as failure:
        study.tell(trial, state=TrialState.FAIL)
        log.warning("trial %d failed: %s  (%s)", trial.number, failure, describe(trial.params))
        return
    study.tell(trial, value)
    log.info("trial %d: %.4f  (%s)", trial.number, value, describe(trial.params))


def to_do(done: int, n_trials: int) -> str:
    """What a command does with its study: run the trials it lacks, or nothing, said plainly so
    that the same command again does not read as a failure."""
    if done < n_trials:
        return f": {done} of {n_trials} trials done, running {n_trials - done} more"
    return (
        f" is complete: {done} of {n_trials} trials done, nothing to run"
        " (raise hydra.sweeper.n_trials to run more)"
    )


def describe(params: dict[str, Any]) -> str:
    """A trial's params for a log line, floats to 3 significant digits."""
    return " ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def log_summary(study: optuna.Study) -> None:
    """The study's counts and its best trial, after every command."""
    trials = study.get_trials(deepcopy=False)
    counts = ", ".join(f"{n} {s.name.lower()}" for s, n in Counter(t.state for t in trials).items())
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    if not completed:
        log.warning("study %s: no trial completed (%s)", study.study_name, counts or "no trials")
        return
    best = study.best_trial
    log.info(
        "study %s: %s; best trial %d: %.4f  (%s)",
        study.study_name,
        counts,
        best.number,
        best.value,
        describe(best.params),
    )


class OptunaSearch(Sweeper):
    """Asks the study for trials, runs them as Hydra jobs numbered by trial (job dir N holds
    trial N, across commands), tells it their objectives, until it has n_trials."""

    def __init__(
        self,
        direction: str,
        study_name: str,
        storage: str | None,
        n_trials: int,
        n_jobs: int,
        sampler: DictConfig | None,
        params: DictConfig | None,
        pruner: str = "none",
        pruner_options: DictConfig | None = None,
    ) -> None:
        if direction not in DIRECTIONS:
            raise SearchError(
                f"hydra.sweeper.direction must be maximize or minimize, got {direction}"
            )
        if n_trials < 0 or n_jobs < 1:
            raise SearchError(
                f"hydra.sweeper.n_trials must be >= 0 and n_jobs >= 1, got {n_trials} and {n_jobs}"
            )
        self.direction, self.study_name, self.storage = direction, study_name, storage
        self.n_trials, self.n_jobs = n_trials, n_jobs
        self.sampler = sampler
        self.params = [f"{key}={value}" for key, value in (params or {}).items()]
        self.pruner = make_pruner(pruner, to_plain(pruner_options))
        if self.pruner is not None and storage is None:
            raise SearchError(
                f"hydra.sweeper.pruner={pruner} needs hydra.sweeper.storage: the jobs report"
                " their epochs to the study through it (e.g. sqlite:///outputs/search/study.db)"
            )

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> None:
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        space = parse_search_space([*self.params, *arguments], parser)
        if not space.params:
            raise SearchError(
                "nothing to search: set hydra.sweeper.params (e.g. hparams_search=mnist_mlp)"
                " or sweep a key on the command line"
            )
        check_direction(self.direction, self.config, space)
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours
        study = self.start()
        if trials_done(study) < self.n_trials:  # a complete study's folder is left as it was
            sweep_dir = Path(self.config.hydra.sweep.dir)
            sweep_dir.mkdir(parents=True, exist_ok=True)
            OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        while (left := self.n_trials - trials_done(study)) > 0 and not self.stopped():
            self.run_batch(study, space, min(left, self.n_jobs))
        log_summary(study)

    def stopped(self) -> bool:
        """A trial failed with sweep.fail_fast (its record at the sweep root): ask no more."""
        return stop_record(Path(self.config.hydra.sweep.dir)) is not None

    def start(self) -> optuna.Study:
        """Open the study, fail what a killed command left running, and say what is to do."""
        study = open_study(self.study_name, self.storage, self.direction, self.pruner)
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if running:
            log.warning(
                "trials %s were left running by a command that stopped: failed, not counted",
                [t.number for t in running],
            )
            abandon(study, [t.number for t in running])
        study.sampler = make_sampler(self.sampler, len(study.trials)) or study.sampler
        done = trials_done(study)
        where = self.storage or "memory"
        log.info("study %s in %s%s", self.study_name, where, to_do(done, self.n_trials))
        return study

    def run_batch(self, study: optuna.Study, space: SearchSpace, size: int) -> None:
        """Ask `size` trials, run them as one launch, tell their results; if the command is
        stopped meanwhile, the trials are abandoned rather than left running."""
        trials = [study.ask(space.distributions) for _ in range(size)]
        try:
            jobs = self.launch(trials, space)
        except BaseException:
            abandon(study, [trial.number for trial in trials])
            raise
        # Back to Hydra's own logging: the last job's log file is still attached.
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        for trial, job in zip(trials, jobs, strict=True):
            tell(study, trial, job)

    def launch(self, trials: list[Trial], space: SearchSpace) -> Sequence[JobReturn]:
        """Run trials as Hydra jobs whose numbers are the trial numbers."""
        first = trials[0].number
        if [trial.number for trial in trials] != list(range(first, first + len(trials))):
            raise SearchError(
                f"study {self.study_name} got trial numbers {[t.number for t in trials]}: another"
                " command is running it; one command drives a study at a time"
            )
        batch = [space.overrides(trial.params) for trial in trials]
        self.validate_batch_is_legal(batch)
        return self.launcher.launch(batch, initial_job_idx=first)
