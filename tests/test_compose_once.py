"""A sweep job's config is composed once: the launcher takes what the sweeper's check composed."""

import pytest
from hydra import initialize_config_dir
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.global_hydra import GlobalHydra
from hydra.plugins.sweeper import Sweeper
from hydra.types import RunMode
from omegaconf import OmegaConf

from multiclass.config import CONFIG_DIR
from multiclass.sweeps.compose_once import compose_jobs_once


class CheckingSweeper(Sweeper):
    """Just enough of a sweeper to run the base class's check of a batch."""

    def __init__(self, loader, config):
        self.config_loader, self.config = loader, config

    def setup(self, *args, **kwargs):
        raise NotImplementedError

    def sweep(self, arguments):
        raise NotImplementedError


@pytest.fixture
def loader(monkeypatch):
    """Hydra's config loader, counting its compositions, with `compose_jobs_once` installed
    for this test only."""
    monkeypatch.setattr(Sweeper, "validate_batch_is_legal", Sweeper.validate_batch_is_legal)
    monkeypatch.setattr(ConfigLoaderImpl, "load_sweep_config", ConfigLoaderImpl.load_sweep_config)
    compositions = []
    compose = ConfigLoaderImpl.load_configuration

    def counted(self, *args, **kwargs):
        compositions.append(kwargs.get("overrides"))
        return compose(self, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counted)
    compose_jobs_once()
    compose_jobs_once()  # installing twice changes nothing
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        yield loader, compositions


def test_the_launcher_takes_the_configs_the_check_composed(loader):
    loader, compositions = loader
    master = loader.load_configuration("train", [], RunMode.MULTIRUN)
    sweeper = CheckingSweeper(loader, master)
    batch = [["seed=0"], ["seed=1"], ["seed=0"]]  # a search may ask for the same job twice
    compositions.clear()

    sweeper.validate_batch_is_legal(batch)
    assert len(compositions) == 3
    launched = [loader.load_sweep_config(master, job) for job in batch]
    assert len(compositions) == 3  # none composed again
    assert [config.seed for config in launched] == [0, 1, 0]
    assert launched[0] is not launched[2]  # each launch gets its own config

    fresh = loader.load_sweep_config(master, ["seed=1"])  # not checked (any more): composed
    assert len(compositions) == 4
    assert OmegaConf.to_yaml(fresh) == OmegaConf.to_yaml(launched[1])
