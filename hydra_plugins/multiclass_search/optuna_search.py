"""The `optuna_search` sweeper as Hydra sees it: its config schema, registered as the
`hydra/sweeper` option `optuna_search` (and by its short name, `search`), and a Sweeper class
that Hydra can find here (it only instantiates plugin classes from `hydra_plugins`). The work
is in multiclass.sweeps.search, imported when a search starts, so that other commands never
load optuna."""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class OptunaSearchConf:
    """`hydra.sweeper` for a search; the field names are hydra-optuna-sweeper's, so its
    users' configs carry over. `params` maps a config key to Hydra's sweep syntax:
    `tag(log, interval(1e-4, 1e-1))`, `interval(0, 0.5)`, `range(1, 4)`, `choice(16, 64)`."""

    _target_: str = "hydra_plugins.multiclass_search.optuna_search.OptunaSearchSweeper"
    _recursive_: bool = False  # the search builds the sampler itself (it offsets the seed)
    direction: str = "maximize"  # or minimize: the app returns trainer.monitor's best figure
    study_name: str = "search"  # the study in `storage` that the same command continues
    storage: str | None = None  # an SQLAlchemy URL, e.g. sqlite:///outputs/search/x.db
    n_trials: int = 20  # trials the study should have in all, counting earlier commands'
    n_jobs: int = 1  # trials handed to the launcher at a time
    sampler: Any = None  # a `_target_` node, e.g. optuna.samplers.TPESampler; null: optuna's
    # Stops trials that fall behind, from each epoch's trainer.monitor figure: median,
    # hyperband or none; needs `storage`, through which the jobs report their epochs.
    pruner: str = "none"
    # The pruner's arguments, e.g. {n_startup_trials: 2, n_warmup_steps: 1} for median; typed
    # Any, not a dict: Hydra takes `hydra.sweeper.pruner_options={...}` then without a `+`.
    pruner_options: Any = None
    params: dict[str, str] = field(default_factory=dict)


for name in ("optuna_search", "search"):  # `search`: its short name, the same sweeper
    ConfigStore.instance().store(
        group="hydra/sweeper", name=name, node=OptunaSearchConf, provider="multiclass"
    )


class OptunaSearchSweeper(Sweeper):
    """Hands the sweep to multiclass.sweeps.search.OptunaSearch. A search that cannot start or
    go on (a direction against trainer.monitor, a study made the other way, no optuna) ends
    the command as one line, `error: ...`, and exit status 1: raised to Hydra, it would be
    three lines with its HYDRA_FULL_ERROR hint."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from multiclass.commands.exits import exit_on_error

        self.search = exit_on_error(make_search, self.settings)
        self.search.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        from multiclass.commands.exits import exit_on_error

        exit_on_error(self.search.sweep, arguments)


def make_search(settings: dict[str, Any]) -> Sweeper:
    """The search, imported only now: other commands never load optuna."""
    from multiclass.errors import UserError

    try:
        from multiclass.sweeps.search import OptunaSearch
    except ModuleNotFoundError as error:  # optuna comes with the [search] extra only
        raise UserError(
            f"hydra/sweeper=optuna_search needs optuna ({error}): pip install 'multiclass[search]'"
        ) from error
    return OptunaSearch(**settings)
