"""The bad-value battery: for every leaf key of every option of every config group (and every
experiment), values of the wrong type and out of range, generated from the rules in
multiclass/validation.py, each refused in one line that names the key; on the command line,
exit status 1 and no run directory. The bounds themselves are pinned here in BOUNDS, a table
written out by hand: a rule loosened in validation.py (`trainer.batch_size >= 0`) fails it."""

import copy
import functools
import math
import re
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


# What each bounded key allows, as its error message says it: the bounds written out, not
# read from RULES, so that a rule loosened (or tightened) there fails
# test_each_bound_refuses_the_value_past_it_and_allows_the_one_at_it.
BOUNDS = {
    "seed": "an integer >= 0 and <= 4294967295",
    "trainer.epochs": "an integer >= 1",
    "sweep.retries": "an integer >= 0",
    "trainer.batch_size": "an integer >= 1",
    "trainer.eval_batch_size": "an integer >= 1",
    "trainer.log_every": "an integer >= 1",
    "trainer.early_stopping.patience": "an integer >= 1, or null",
    "trainer.early_stopping.min_delta": "a number >= 0",
    "trainer.checkpoint_every_s": "a number >= 0",
    "trainer.divergence_factor": "a number > 1, or null",
    "trainer.gradient_clip_norm": "a number > 0, or null",
    "trainer.gradient_clip_value": "a number > 0, or null",
    "trainer.accumulate_grad_batches": "an integer >= 1",
    "trainer.ema": "a number > 0 and < 1, or null",
    "dataset.classes": "a list of integers >= 0 or texts, or null",
    "dataset.limit": "an integer >= 1, or null",
    "dataset.folds": "an integer >= 2, or null",
    "dataset.fold": "an integer >= 0, or null",
    "dataset.val_fraction": "a number >= 0 and < 1",
    "dataset.test_fraction": "a number > 0 and < 1",
    "dataset.seed": "an integer >= 0 and <= 4294967295",
    "dataset.n_samples": "an integer >= 2",
    "dataset.cluster_std": "a number > 0",
    "dataset.noise": "a number >= 0",
    "dataset.image_size": "an integer >= 1, or null",
    "dataset.max_bytes": "an integer >= 1, or null",
    "model.depth": "an integer >= 0",
    "model.width": "an integer >= 1",
    "model.hidden": "a list of integers >= 1, or null",
    "model.dropout": "a number >= 0 and < 1",
    "model.channels": "a list of integers >= 1",
    "model.kernel_size": "an integer >= 1",
    "model.padding": "an integer >= 0",
    "model.pool": "an integer >= 1",
    "model.convs_per_block": "an integer >= 1",
    "finetune.backbone_lr": "a number > 0",
    "augment.padding": "an integer >= 0",
    "loss.weight": "a list of numbers >= 0 or one of balanced, or null",
    "loss.pos_weight": "a list of numbers > 0, or null",
    "loss.label_smoothing": "a number >= 0 and <= 1",
    "optimizer.lr": "a number > 0",
    "optimizer.weight_decay": "a number >= 0",
    "optimizer.momentum": "a number >= 0 and < 1",
    "scheduler.step_size": "an integer >= 1",
    "scheduler.gamma": "a number > 0",
    "scheduler.T_max": "an integer >= 1, or null",
    "scheduler.eta_min": "a number >= 0",
    "scheduler.max_lr": "a number > 0",
    "scheduler.total_steps": "an integer >= 1, or null",
    "scheduler.pct_start": "a number > 0 and < 1",
    "scheduler.div_factor": "a number > 0",
    "scheduler.final_div_factor": "a number > 0",
    "scheduler.base_momentum": "a number >= 0 and < 1",
    "scheduler.max_momentum": "a number >= 0 and < 1",
    "device.num_threads": "an integer >= 1, or null",
    "device.processes": "an integer >= 1",
}


def edges(allowed: str) -> list[tuple[float, float]]:
    """For each bound in a BOUNDS text, (the value just past it, the value at it): `>= 1` of
    an integer gives (0, 1), `> 0` of a number (0, the smallest number above 0)."""
    integer = "integer" in allowed
    pairs = []
    for sign, text in re.findall(r"([<>]=?) (\d+(?:\.\d+)?)", allowed):
        bound = int(text) if integer else float(text)
        refused = -1 if sign.startswith(">") else 1  # the side of the bound that is refused
        if sign.endswith("="):  # the bound itself is allowed
            pairs.append((beside(bound, refused, integer), bound))
        else:
            pairs.append((bound, beside(bound, -refused, integer)))
    return pairs


def beside(value: float, side: int, integer: bool) -> float:
    """The next integer or number after `value` on `side` (+1 above, -1 below)."""
    return value + side if integer else math.nextafter(value, side * math.inf)


def bounded(rule: Rule) -> bool:
    if rule.one_of:
        return any(map(bounded, rule.one_of))
    if rule.items is not None:
        return bounded(rule.items)
    return rule.low is not None or rule.high is not None


def config_with(key: str) -> DictConfig:
    """A copy of the first composed config that has `key`."""
    missing = object()
    cfg = next(
        c for c in every_config() if OmegaConf.select(c, key, default=missing) is not missing
    )
    cfg = copy.deepcopy(cfg)
    if key in PARTNERS:  # a key that is checked with another: that one set in range
        OmegaConf.update(cfg, *PARTNERS[key], merge=False)
    return cfg


# k-fold's keys are set together, and dataset.fold must be below dataset.folds.
PARTNERS = {"dataset.folds": ("dataset.fold", 0), "dataset.fold": ("dataset.folds", 1000)}


def test_every_bound_of_the_rules_is_pinned_in_bounds():
    assert {key for key, rule in RULES.items() if bounded(rule)} == set(BOUNDS)


@pytest.mark.parametrize("key", sorted(BOUNDS))
def test_each_bound_refuses_the_value_past_it_and_allows_the_one_at_it(key):
    allowed = BOUNDS[key]
    pairs = edges(allowed)
    assert pairs, allowed
    given = (lambda value: [value]) if allowed.startswith("a list of") else (lambda value: value)
    for past, at in pairs:
        cfg = config_with(key)
        OmegaConf.update(cfg, key, given(past), merge=False)
        with pytest.raises(UserError) as refused:
            check_config(cfg)
        assert str(refused.value) == f"{key} must be {allowed}, got {shown(given(past))}"
        OmegaConf.update(cfg, key, given(at), merge=False)
        check_config(cfg)


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
    assert not unruled, f"keys without a rule in multiclass/settings.py: {sorted(unruled)}"


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
