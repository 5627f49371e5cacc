"""One home per setting: each key of the top level, `trainer`, `finetune` and `device` is declared
once, in multiclass/settings.py, and its default in the composed config, its rule, its line in
docs/configuration.md and whether a resume may change it all come from that declaration; no
key of ours sits among a library's or a builder's arguments (a `_target_` block's keys are
what its target takes), and a config saved with them there still reads the same."""

import inspect
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from multiclass.config import CONFIG_DIR, compose_config
from multiclass.datasets.storage import choose_storage
from multiclass.device.runtime import prepare
from multiclass.errors import UserError
from multiclass.heads import build_loss
from multiclass.models.builders import ACTIVATIONS, mlp
from multiclass.models.contract import build_classifier, model_builder
from multiclass.models.finetune import finetuning
from multiclass.settings import (
    DECLARED,
    RESUMABLE_KEYS,
    RULES,
    Finetuning,
    Setting,
    declared,
    number,
    rule_of,
    settings_table,
)
from multiclass.validation import leaves

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
GROUPS = {"dataset", "model", "loss", "optimizer", "scheduler", "augment", "device", "logger"}

# What a resume may change, written out by hand: a key's `resumable` flipped in settings.py
# (a resume that could change trainer.batch_size would train something else) fails here.
RESUMABLE = {
    "resume",
    "plots",
    "trainer.epochs",
    "trainer.progress",
    "trainer.log_every",
    "trainer.early_stopping.patience",
    "logger",
    "device.processes",
    "sweep.retries",
    "sweep.fail_fast",
}


def project_keys(cfg: DictConfig) -> set[str]:
    """The composed config's keys outside the groups' options, and the device group's: the
    ones settings.py declares."""
    own = OmegaConf.masked_copy(cfg, [key for key in cfg if key not in {*GROUPS, "callbacks"}])
    devices = {key for key, _ in leaves(cfg.device, "device.")}
    return {key for key, _ in leaves(own)} | {"reproduces"} | devices


def test_the_composed_defaults_are_the_declared_ones_and_nothing_else():
    """No second home: conf/train.yaml neither sets a declared key's default nor adds a key
    that is not declared."""
    cfg = compose_config("device=auto")  # the suite composes device=cpu first (conftest.py)
    assert project_keys(cfg) == set(DECLARED)
    for key, item in DECLARED.items():
        assert OmegaConf.select(cfg, key) == item.default, key


def test_every_declared_key_has_a_doc_line_and_a_rule_but_bookkeeping():
    for key, item in DECLARED.items():
        assert item.doc and not item.doc.endswith("."), key
        assert (item.rule is None) == (key == "reproduces"), key
        assert item.rule is None or RULES[key] is item.rule


def test_a_rule_takes_its_kind_and_null_from_the_field_type():
    spec = Setting("doc", low=0, open_low=True)
    assert rule_of(float | None, spec) == number(0, open_low=True, optional=True)
    assert rule_of(float, spec) == number(0, open_low=True)
    assert rule_of(str, Setting("doc", choices=("a", "b"))).describe() == "one of a, b"
    assert rule_of(int | None, Setting("doc", low=1)).describe() == "an integer >= 1, or null"


def test_a_field_without_its_declaration_fails_as_the_module_loads():
    @dataclass
    class Undeclared:
        epochs: int = 3

    with pytest.raises(TypeError, match=r"Undeclared.epochs: declare it with setting"):
        list(declared(Undeclared))


def test_what_a_resume_may_change_is_pinned():
    assert set(RESUMABLE_KEYS) == RESUMABLE


def test_the_docs_table_is_the_declarations():
    assert settings_table() in DOCS.read_text(), (
        "docs/configuration.md's settings table differs from multiclass/settings.py: paste"
        " multiclass.settings.settings_table() between its markers"
    )


def test_the_activations_a_model_builds_are_the_rules_choices():
    assert tuple(ACTIVATIONS) == RULES["model.activation"].choices


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: prepare(kind="tpu"), "device.kind must be one of auto, cuda, mps, cpu, got 'tpu'"),
        (
            lambda: prepare(kind="cpu", num_threads=0),
            "device.num_threads must be an integer >= 1, or null, got 0",
        ),
        (
            lambda: prepare(kind="cpu", precision="fp8"),
            "device.precision must be one of fp32, bf16, fp16, got 'fp8'",
        ),
        (
            lambda: choose_storage("ssd", 1),
            "dataset.storage must be one of memory, disk, auto, got 'ssd'",
        ),
        (
            lambda: mlp((2,), 2, hidden=[8, 0]),
            "model.hidden must be a list of integers >= 1, or null, got [8, 0]",
        ),
        (lambda: mlp((2,), 2, dropout=1.5), "model.dropout must be a number >= 0 and < 1, got 1.5"),
    ],
)
def test_a_builder_called_from_python_checks_by_the_same_rule_as_the_config(call, error):
    """The builders' own checks are the key's rule, not a second copy of it in other words."""
    with pytest.raises(UserError) as refused:
        call()
    assert str(refused.value) == error


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONFIG_DIR / "loss").glob("*.yaml")))
def test_each_loss_option_is_built_as_written_nothing_popped(option):
    """No key of ours among a library's arguments: the node is its `_target_`'s call."""
    node = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "loss" / f"{option}.yaml"))
    assert isinstance(instantiate(node), torch.nn.Module)


@pytest.mark.parametrize("one_hot", [True, False])
def test_a_loss_saved_with_one_hot_among_torchs_arguments_builds_the_same_head(one_hot):
    """A config.yaml or model.pt written before heads.CrossEntropyLoss: torch's class, with
    `one_hot` beside its arguments."""
    saved = {"_target_": "torch.nn.CrossEntropyLoss", "label_smoothing": 0.1, "one_hot": one_hot}
    criterion, head = build_loss(OmegaConf.create(saved), 3)
    now, head_now = build_loss(
        compose_config(f"loss.one_hot={one_hot}", "loss.label_smoothing=0.1").loss, 3
    )
    assert head == head_now and head.targets == ("one_hot" if one_hot else "index")
    assert type(criterion) is type(now) and criterion.label_smoothing == 0.1
    nll, nll_head = build_loss(
        OmegaConf.create({"_target_": "torch.nn.NLLLoss", "one_hot": False}), 3
    )
    assert type(nll) is torch.nn.NLLLoss and nll_head.targets == "index"


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml")))
def test_each_model_option_holds_its_builders_arguments_only(option):
    """Fine-tuning is the `finetune` node beside the model's, not keys among its builder's."""
    node = compose_config(f"model={option}").model
    parameters = inspect.signature(model_builder(node._target_)).parameters
    assert {key for key in node if not key.startswith("_")} <= set(parameters)


def test_a_users_model_config_that_names_base_finetune_still_composes(tmp_path):
    """Model configs once had to name base/finetune to be fine-tuned: it stays, empty."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "mine.yaml").write_text(
        "defaults: [base/finetune, _self_]\n_target_: multiclass.models.mlp\ndepth: 1\n"
    )
    cfg = compose_config(f"hydra.searchpath=[file://{tmp_path}]", "model=mine")
    assert OmegaConf.to_container(cfg.model) == {"_target_": "multiclass.models.mlp", "depth": 1}
    assert cfg.finetune.backbone_lr == 1.0


def test_a_config_saved_with_finetuning_in_the_model_node_reads_the_same():
    """A run's config.yaml or model.pt from before the `finetune` node: its model node held
    weights, freeze and backbone_lr, which are still its fine-tuning, not the builder's."""
    cfg = compose_config("finetune.backbone_lr=0.9")
    OmegaConf.set_struct(cfg, False)
    cfg.model.update(weights="W.pt", freeze="backbone", backbone_lr=0.5)
    assert finetuning(cfg) == Finetuning(weights="W.pt", freeze="backbone", backbone_lr=0.5)
    assert finetuning(cfg, restoring=True) == Finetuning(freeze="backbone", backbone_lr=0.5)
    _, head = build_loss(cfg.loss, 10)
    body = build_classifier(cfg.model, [64], head)  # the builder is not given them
    assert body(torch.zeros(2, 64)).shape == (2, 10)
