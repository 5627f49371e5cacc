"""Configs that share a base through Hydra's defaults list: device=cpu and device=cuda take
every setting of device/auto.yaml (its `_target_`, and the device keys' declared defaults,
multiclass/settings.py) but `kind`; seed 004's Fashion-MNIST experiments take their
common settings from experiment/base/seed004_fashion.yaml. Each option still composes to the
base's values and its own, and says nothing the base already says."""

from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from multiclass.commands.reproduce import experiment_names
from multiclass.config import CONFIG_DIR, compose_config
from multiclass.settings import DeviceSettings, defaults

DEVICE_BASE = CONFIG_DIR / "device" / "auto.yaml"
FASHION_BASE = CONFIG_DIR / "experiment" / "base" / "seed004_fashion.yaml"
FASHION = sorted(path.stem for path in (CONFIG_DIR / "experiment").glob("seed004_fashion_*.yaml"))


def own_values(path: Path) -> dict[str, Any]:
    """A config file's own settings (its defaults list left out), as dotted keys."""
    node = OmegaConf.to_container(OmegaConf.load(path))
    node.pop("defaults", None)
    return flatten(node)


def flatten(node: dict, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in node.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def composed_values(cfg, keys) -> dict[str, Any]:
    """The composed config's values at those dotted keys, as plain python."""
    found = {key: OmegaConf.select(cfg, key, default="<missing>") for key in keys}
    return {k: OmegaConf.to_object(v) if OmegaConf.is_config(v) else v for k, v in found.items()}


def group_choices(path: Path) -> dict[str, str]:
    """The `override /group: option` entries of a config's defaults list."""
    choices = {}
    for entry in OmegaConf.to_container(OmegaConf.load(path)).get("defaults", []):
        if isinstance(entry, dict):
            ((key, option),) = entry.items()
            choices[key.removeprefix("override").strip().lstrip("/")] = option
    return choices


def test_the_bases_exist_and_the_fashion_experiments_are_found():
    assert DEVICE_BASE.is_file() and FASHION_BASE.is_file()
    assert FASHION == [
        "seed004_fashion_cnn",
        "seed004_fashion_mlp256",
        "seed004_fashion_mlp32",
        "seed004_fashion_mlp4096",
        "seed004_fashion_mlp4x256",
    ]


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda"])
def test_every_device_option_has_the_bases_settings_and_its_own_kind(name):
    base = {**own_values(DEVICE_BASE), **defaults(DeviceSettings)}  # its _target_, the declared
    device = OmegaConf.to_container(compose_config(f"device={name}").device)
    assert list(device) == list(base)  # every key, in the base's order
    assert device == {**base, "kind": name}


def test_the_device_base_says_nothing_its_declared_settings_say():
    """Its settings come after its own lines (its _target_ first in the node, as it was): a
    setting written in auto.yaml would be overridden, unseen."""
    assert own_values(DEVICE_BASE) == {"_target_": "multiclass.device.runtime.prepare"}


@pytest.mark.parametrize("name", ["cpu", "cuda"])
def test_a_device_option_says_only_what_differs_from_the_base(name):
    path = CONFIG_DIR / "device" / f"{name}.yaml"
    assert OmegaConf.load(path).defaults == ["auto", "_self_"]
    assert own_values(path) == {"kind": name}


def test_a_device_setting_given_on_the_command_line_still_wins():
    cfg = compose_config("device=cpu", "device.precision=bf16", "device.num_threads=2")
    assert (cfg.device.kind, cfg.device.precision, cfg.device.num_threads) == ("cpu", "bf16", 2)


@pytest.mark.parametrize("name", FASHION)
def test_each_fashion_experiment_has_the_bases_settings_and_its_own(name):
    path = CONFIG_DIR / "experiment" / f"{name}.yaml"
    base, own = own_values(FASHION_BASE), own_values(path)
    assert not set(base) & set(own), "an experiment repeats (or contradicts) its base"
    cfg = compose_config(f"experiment={name}")
    assert composed_values(cfg, base) == base
    assert composed_values(cfg, own) == own
    assert set(cfg.reproduces) == {"seed", "figures", "reported"}
    # The groups the base picks (dataset, loss, optimizer), and the model the experiment picks.
    choices = {**group_choices(FASHION_BASE), **group_choices(path)}
    assert set(choices) == {"dataset", "model", "loss", "optimizer"}
    for group, option in choices.items():
        chosen = OmegaConf.load(CONFIG_DIR / group / f"{option}.yaml")
        assert cfg[group]._target_ == chosen._target_, group


def test_the_fashion_experiments_differ_only_in_their_model_and_figures():
    owns = [own_values(CONFIG_DIR / "experiment" / f"{name}.yaml") for name in FASHION]
    for own in owns:
        assert all(key.startswith(("model.", "reproduces.")) for key in own), own


def test_the_base_is_not_an_experiment_to_reproduce():
    names = experiment_names()
    assert set(FASHION) <= set(names)
    assert not [name for name in names if "base" in name]
    assert FASHION_BASE.parent != CONFIG_DIR / "experiment"


def test_a_value_given_on_the_command_line_still_wins_over_the_base():
    cfg = compose_config("experiment=seed004_fashion_mlp32", "optimizer.lr=0.01")
    assert cfg.optimizer.lr == 0.01 and cfg.trainer.batch_size == 256
