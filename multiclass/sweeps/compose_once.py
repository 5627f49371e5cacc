"""Hydra composes each job of a sweep twice: the sweeper composes every job of a batch to check
its overrides before the first job starts, then the launcher composes each job again to run it.
A composition costs 0.2 to 0.3 s here, more than a small job's training. `compose_jobs_once`
hands the launcher the config the check composed (the check only reads it)."""

import os
from collections.abc import Hashable, Sequence

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig

KEPT = 64  # checked configs kept for the launcher (about 0.5 MB each); later jobs recompose


class CheckedJobs:
    """The configs of the batch last checked, by what their composition depends on."""

    def __init__(self) -> None:
        self.configs: dict[Hashable, list[DictConfig]] = {}
        self.checking = False

    def check(self, check_batch, sweeper: Sweeper, batch: Sequence[Sequence[str]]) -> None:
        """Run the sweeper's check, keeping what it composes (this batch's only)."""
        self.configs, self.checking = {}, True
        try:
            check_batch(sweeper, batch)
        finally:
            self.checking = False

    def load(self, compose, loader: ConfigLoaderImpl, master: DictConfig, overrides: list[str]):
        """A job's config: composed while checking (and kept), or taken from what was kept."""
        key = job_key(loader, master, overrides)
        if not self.checking and self.configs.get(key):
            return self.configs[key].pop(0)
        config = compose(loader, master, overrides)
        if self.checking and sum(map(len, self.configs.values())) < KEPT:
            self.configs.setdefault(key, []).append(config)
        return config


def compose_jobs_once() -> None:
    """From now on in this process, a checked sweep job's config is composed once; idempotent."""
    if getattr(Sweeper.validate_batch_is_legal, "composes_once", False):
        return
    jobs = CheckedJobs()
    check_batch, compose = Sweeper.validate_batch_is_legal, ConfigLoaderImpl.load_sweep_config

    def validate_batch_is_legal(self: Sweeper, batch: Sequence[Sequence[str]]) -> None:
        jobs.check(check_batch, self, batch)

    def load_sweep_config(self: ConfigLoaderImpl, master_config: DictConfig, sweep_overrides):
        return jobs.load(compose, self, master_config, list(sweep_overrides))

    validate_batch_is_legal.composes_once = True  # type: ignore[attr-defined]
    Sweeper.validate_batch_is_legal = validate_batch_is_legal  # type: ignore[method-assign]
    ConfigLoaderImpl.load_sweep_config = load_sweep_config  # type: ignore[method-assign]


def job_key(loader: ConfigLoaderImpl, master: DictConfig, overrides: list[str]) -> Hashable:
    """All a job's composition depends on: the loader (its search path), the sweep's config
    (its name and Hydra overrides), the job's overrides, the working directory (which Hydra
    records) and the variables `hydra.job.env_copy` records (a run may set others, such as
    cuBLAS's)."""
    return (
        id(loader),
        id(master),
        tuple(overrides),
        os.getcwd(),
        tuple((name, os.environ.get(name)) for name in master.hydra.job.env_copy),
    )
