"""Where the configs are, how a config is composed in-process, and what importing this module
gives Hydra before it composes conf/train.yaml: the declared settings' defaults
(multiclass/settings.py) as the configs `settings` and `device/base/settings`, and two
resolvers."""

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from multiclass.settings import MONITORS, DeviceSettings, TrainerSettings, defaults

__all__ = ["CONFIG_DIR", "MONITORS", "TrainerSettings", "compose_config", "trainer_settings"]

# The declared keys' defaults, kept as plain values (not a structured config), so that a bad
# one is check_config's one line: the node conf/train.yaml's defaults list names `settings`,
# and the device keys' that conf/device/auto.yaml's names `base/settings`.
ConfigStore.instance().store(name="settings", node=OmegaConf.create(defaults()))
ConfigStore.instance().store(
    group="device/base",
    name="settings",
    node=OmegaConf.create(defaults(DeviceSettings)),
    package="device",
)

# `${first_set:${resume},outputs/...}`: the run directory is the one resumed, if any.
OmegaConf.register_new_resolver("first_set", lambda *values: next((v for v in values if v), None))
# `${unless_resuming:${resume},.hydra}`: a resume leaves the run's .hydra/ as the run wrote it.
OmegaConf.register_new_resolver("unless_resuming", lambda resume, value: None if resume else value)
# `${job_subdir:...}`, a sweep job's directory, is registered by multiclass.sweeps.numbering (it
# claims directories in the sweep folder, a layer above this one), which commands.train imports.


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
