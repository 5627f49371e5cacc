"""The bad-value battery: for every leaf key of every option of every config group (and every
experiment), values of the wrong type and out of range, generated from the rules in
multiclass/validation.py, each refused in one line that names the key; on the command line,
exit status 1 and no run directory."""

import copy
import functools
import subprocess
import sys
from typing import Any

import pytest
from omegaconf import DictConfig, OmegaConf

from multiclass.config import CONFIG_DIR, compose_config
from multiclass.errors import UserError
from multiclass.validation import RULES, Rule, check_config, leaves, shown

GROUPS = ("dataset", "model", "loss", "optimizer", "scheduler", "device", "logger", "callbacks")


@functools.cache
def every_config() -> tuple[DictConfig, ...]:
    """The default config, then each option of each group and each experiment in it, composed
    once for the module's tests (about 50 compositions); each test copies what it changes."""
    overrides = [
        f"{group}={option.stem}"
        for group in (*GROUPS, "experiment")
        for option in sorted((CONFIG_DIR / group).glob("*.yaml"))
    ]
    return (compose_config(), *(compose_config(override) for override in overrides))


def bad_values(rule: Rule) -> list[Any]:
    """Values `rule` refuses: another type, null where it is not optional, past each bound,
    a list item of the wrong kind."""
    if rule.one_of:  # what none of the alternatives allows
        values = [v for one in rule.one_of for v in bad_values(one)]
        return [v for v in values if not rule.allows(v)]
    wrong_type = {int: "abc", float: "abc", bool: "maybe", str: 12345, list: "abc"}
    values = [wrong_type[rule.kind]]
    if not rule.optional:
        values.append(None)
    if rule.kind is int and not rule.choices:
        values.append(2.5)
    if rule.choices:
        values.append("nonsense")
    if rule.low is not None:
        values.append(rule.low if rule.open_low else rule.low - 1)
    if rule.high is not None:
        values.append(rule.high if rule.open_high else rule.high + 1)
    if rule.items is not None:
        values += [[item] for item in bad_values(rule.items) if item is not None]
    return values


def cases() -> list[tuple[str, Any, DictConfig]]:
    """(key, bad value, a config that has the key), each key and value once."""
    found: dict[tuple[str, str], tuple[str, Any, DictConfig]] = {}
    for cfg in every_config():
        for key, _ in leaves(cfg):
            for value in bad_values(RULES[key]):
                found.setdefault((key, repr(value)), (key, value, cfg))
    return list(found.values())


def test_every_leaf_of_our_configs_has_a_rule():
    unruled = {key for cfg in every_config() for key, _ in leaves(cfg) if key not in RULES}
    assert not unruled, f"keys without a rule in multiclass/validation.py: {sorted(unruled)}"


def test_every_bad_value_of_every_key_is_one_line_naming_the_key():
    tried = cases()
    keys = {key for cfg in every_config() for key, _ in leaves(cfg)}
    assert {key for key, _, _ in tried} == keys and len(tried) >= 2 * len(keys)
    for key, value, cfg in tried:
        bad = copy.deepcopy(cfg)
        OmegaConf.update(bad, key, value, merge=False)
        with pytest.raises(UserError) as refused:
            check_config(bad)
        message = str(refused.value)
        assert message.startswith(f"{key} must be "), (key, value, message)
        assert "\n" not in message and message.endswith(f"got {shown(value)}")


def test_every_option_as_shipped_is_allowed():
    for cfg in every_config():
        check_config(cfg)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optimizer.lr=abc", "error: optimizer.lr must be a number > 0, got 'abc'"),
        ("trainer.epochs=2.5", "error: trainer.epochs must be an integer >= 1, got 2.5"),
    ],
)
def test_the_command_line_says_it_in_one_line_and_writes_nothing(tmp_path, override, message):
    done = subprocess.run(
        [sys.executable, "-m", "multiclass", override, "hydra.run.dir=run"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == message
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("processes", ["device.processes=2", "device.processes=1,2"])
def test_a_sweep_of_data_parallel_runs_is_refused_before_any_folder_is_made(tmp_path, processes):
    """Refused by each job as it started, it left the job's folder (.hydra/ alone) behind."""
    done = subprocess.run(
        [sys.executable, "-m", "multiclass", "-m", processes, "model.depth=1,2", "device=cpu",
         "hydra.sweep.dir=sweep"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: device.processes=2 trains a single run, not a sweep (-m): run it without -m, or"
        " leave device.processes at 1 (hydra/launcher=slurm_ddp trains each job of a sweep in"
        " data parallel)"
    )
    assert not (tmp_path / "sweep").exists()


def test_classes_are_taken_by_index_or_by_name():
    check_config(compose_config("dataset.classes=[0,2]"))
    check_config(compose_config("dataset=table", "dataset.classes=[setosa,virginica]"))
    with pytest.raises(UserError, match=r"^dataset.classes must be a list of integers >= 0 or"):
        check_config(compose_config("dataset.classes=[1.5]"))
