"""A user's own model: a function or nn.Module class in the user's module, named by `_target_`
in a model config of the user's own config folder, trained, loaded back and resumed like ours."""

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

import multiclass
from multiclass.config import compose_config
from multiclass.engine import Examples, evaluate
from multiclass.errors import UserError
from multiclass.lifecycle.run import execute
from multiclass.models import mlp, model_builder
from tests.conftest import QUIET, files_of, run_cli
from tests.test_resume import metrics_without_times

MODULE = "my_models"
USER_MODELS = '''
    """A user's models: each takes input_shape and num_outputs, as ours do."""
    import math

    from torch import nn


    def tiny(input_shape, num_outputs, width=8):
        return nn.Sequential(
            nn.Flatten(), nn.Linear(math.prod(input_shape), width), nn.ReLU(),
            nn.Linear(width, num_outputs),
        )


    class Residual(nn.Module):
        def __init__(self, input_shape, num_outputs, width=8):
            super().__init__()
            self.inp = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), width))
            self.block = nn.Sequential(nn.ReLU(), nn.Linear(width, width))
            self.out = nn.Linear(width, num_outputs)

        def forward(self, x):
            hidden = self.inp(x)
            return self.out(hidden + self.block(hidden))


    def too_wide(input_shape, num_outputs, width=8):
        return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_outputs + 1))


    def no_module(input_shape, num_outputs, width=8):
        return "not a network"


    NOT_CALLABLE = 3
'''
# Blobs: 4 classes of 2-D points; cross entropy asks for 4 outputs.
TINY_RUN = (*QUIET, "dataset=blobs", "trainer.epochs=1")


@pytest.fixture
def user_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """my_models.py importable from `tmp_path`, and the config folder `tmp_path/my_conf` with
    model/my_model.yaml naming its class; the module is forgotten again afterwards."""
    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(USER_MODELS))
    model_group = tmp_path / "my_conf" / "model"
    model_group.mkdir(parents=True)
    (model_group / "my_model.yaml").write_text(f"_target_: {MODULE}.Residual\nwidth: 8\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    yield tmp_path / "my_conf"
    sys.modules.pop(MODULE, None)


def train_user_model(config_dir: Path, run_dir: Path, *overrides: str):
    cfg = compose_config(*TINY_RUN, f"hydra.searchpath=[file://{config_dir}]", *overrides)
    return execute(cfg, run_dir), cfg


@pytest.mark.parametrize(
    ("target", "built"),
    [("Residual", "Residual"), ("tiny", "Sequential")],
    ids=["class", "function"],
)
def test_a_user_model_trains_loads_predicts_and_resumes(user_code, tmp_path, target, built):
    run_dir = tmp_path / "run"
    model = ("model=my_model", f"model._target_={MODULE}.{target}")
    outcome, cfg = train_user_model(user_code, run_dir, *model)
    assert outcome.status == "completed", outcome.summary.get("error")

    run = multiclass.load_run(run_dir)
    assert type(run.task.model[0]).__name__ == built  # the loss's head follows: model[1]
    test = instantiate(cfg.dataset).test
    tested = evaluate(run.task, Examples.of(test, run.head), batch_size=64)
    assert tested.acc == pytest.approx(outcome.summary["test_acc"])
    assert run.predict(test.x[:5]).shape == (5,)
    assert np.allclose(run.predict_proba(test.x[:5]).sum(axis=1), 1, atol=1e-5)

    resume = (f"resume={run_dir}", "trainer.epochs=2")
    resumed = execute(compose_config(*TINY_RUN, *resume), run_dir, resume)
    assert resumed.status == "completed" and resumed.summary["resumed_at"] == [1]
    straight, _ = train_user_model(
        user_code, tmp_path / "straight", *model, "trainer.epochs=2"
    )  # two epochs in one go: the resume ends where it does
    assert resumed.summary["weights_sha256"] == straight.summary["weights_sha256"]
    assert metrics_without_times(run_dir) == metrics_without_times(tmp_path / "straight")


def test_a_config_folder_adds_options_and_keeps_ours(user_code):
    extra = f"hydra.searchpath=[file://{user_code}]"
    assert compose_config(extra, "model=my_model").model._target_ == f"{MODULE}.Residual"
    assert compose_config(extra).model._target_ == "multiclass.models.mlp"
    assert compose_config(extra, "model=cnn").model._target_ == "multiclass.models.cnn"


def test_the_command_line_takes_a_config_dir(user_code, tmp_path):
    """`python -m multiclass` has the current folder on sys.path, so my_models imports."""
    done = run_cli(
        "--config-dir", str(user_code), "model=my_model", *TINY_RUN, "hydra.run.dir=run",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed"
    saved = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert saved["model"]["_target_"] == f"{MODULE}.Residual"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nowhere.model", "model._target_ nowhere.model cannot be imported: no module named"),
        (f"{MODULE}.missing", f"cannot be imported: {MODULE} has no 'missing'"),
        (f"{MODULE}.NOT_CALLABLE", "is not a function or class taking input_shape and num_outputs"),
        (f"{MODULE}.no_module", "returned a str, not a torch.nn.Module"),
    ],
)
def test_a_bad_user_model_fails_the_run_in_one_line(user_code, tmp_path, target, message):
    outcome, _ = train_user_model(
        user_code, tmp_path / "run", "model=my_model", f"model._target_={target}"
    )
    assert outcome.status == "failed"
    error = outcome.summary["error"]
    assert message in error and "\n" not in error
    assert not (tmp_path / "run" / "model.pt").exists()


def test_the_output_width_error_names_expected_and_got(user_code, tmp_path):
    outcome, _ = train_user_model(
        user_code, tmp_path / "run", "model=my_model", f"model._target_={MODULE}.too_wide"
    )
    assert outcome.status == "failed"
    assert outcome.summary["error"] == (
        f"model {MODULE}.too_wide gives outputs of shape (2, 5) for inputs of shape (2, 2):"
        " expected (2, 4), num_outputs=4 as the loss and classes ask"
    )
    assert not (tmp_path / "run" / "model.pt").exists()


def test_loading_refuses_a_model_whose_module_is_gone_or_not_a_builder(user_code, tmp_path):
    run_dir = tmp_path / "run"
    assert train_user_model(user_code, run_dir, "model=my_model")[0].status == "completed"
    checkpoint = run_dir / "model.pt"
    content = torch.load(checkpoint, weights_only=True)
    content["model"]["_target_"] = f"{MODULE}.NOT_CALLABLE"
    torch.save(content, run_dir / "other.pt")
    with pytest.raises(UserError) as refused:
        multiclass.load_run(run_dir, "other.pt")
    assert f"refused, model._target_ {MODULE}.NOT_CALLABLE is not a function" in str(refused.value)

    sys.path.remove(str(tmp_path))  # as on a machine without the user's module
    sys.modules.pop(MODULE)
    with pytest.raises(UserError) as refused:
        multiclass.load_run(run_dir)
    assert str(refused.value) == (
        f"{checkpoint}: refused, model._target_ {MODULE}.Residual cannot be imported: no module"
        f" named '{MODULE}': install it or put its folder on PYTHONPATH"
    )


@pytest.mark.parametrize(
    "target", ["os.system", "torch.hub.load", "multiclass.models.flattened_size"]
)
def test_only_callables_taking_input_shape_and_num_outputs_are_builders(target):
    with pytest.raises(UserError, match="is not a function or class taking input_shape"):
        model_builder(target)
    assert model_builder("multiclass.models.mlp") is mlp


def test_a_resume_without_the_users_module_leaves_the_completed_run_as_it_was(user_code, tmp_path):
    """PYTHONPATH forgotten: the resume fails in one line and the run keeps its record."""
    run_dir = tmp_path / "run"
    assert train_user_model(user_code, run_dir, "model=my_model")[0].status == "completed"
    before = files_of(run_dir)
    sys.path.remove(str(tmp_path))
    sys.modules.pop(MODULE)
    resume = (f"resume={run_dir}", "trainer.epochs=3")
    outcome = execute(compose_config(*TINY_RUN, *resume), run_dir, resume)
    assert outcome.status == "failed"
    assert f"model._target_ {MODULE}.Residual cannot be imported" in outcome.summary["error"]
    assert files_of(run_dir) == before
