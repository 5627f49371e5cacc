"""What multiclass reads of its dependencies beyond their documented API, pinned: the words in
which Hydra and torch say what failed, and the arguments of hydra-submitit-launcher's job
function. An upgrade that changes one fails here, by name, not in a user's run."""

import inspect
import pickle

import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from torch import nn

from multiclass.errors import HYDRA_CALL_FAILED, UserError, one_line
from multiclass.models.finetune import REFUSED_GLOBAL, pickled_globals
from multiclass.records.checkpoint import is_torch_loss, read_checkpoint


def test_hydra_names_the_target_that_raised_in_the_words_one_line_reads():
    with pytest.raises(InstantiationException) as raised:
        instantiate({"_target_": "builtins.int", "_args_": ["x"]})
    called = HYDRA_CALL_FAILED.match(str(raised.value))
    assert called is not None, str(raised.value)
    assert called[1] == "'builtins.int'"
    assert one_line(raised.value) == (
        "ValueError: cannot build 'builtins.int': invalid literal for int() with base 10: 'x'"
    )


def test_torch_names_the_saved_objects_class_first_and_lists_the_others(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), path)
    with pytest.raises(pickle.UnpicklingError) as raised:
        torch.load(path, weights_only=True)
    named = REFUSED_GLOBAL.search(str(raised.value))
    assert named is not None, str(raised.value)
    assert named[1] == "torch.nn.modules.container.Sequential"
    assert pickled_globals(path, raised.value) == [
        "torch.nn.modules.container.Sequential",
        "torch.nn.modules.activation.ReLU",
        "torch.nn.modules.linear.Linear",
    ]


def test_a_file_that_is_no_torch_file_is_unreadable_not_refused(tmp_path):
    """torch.load raises the same UnpicklingError for it as for pickled code: what the file
    pickles tells them apart."""
    path = tmp_path / "model.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(pickle.UnpicklingError) as raised:
        torch.load(path, weights_only=True)
    assert pickled_globals(path, raised.value) == []
    with pytest.raises(UserError) as refused:
        read_checkpoint(path)
    assert str(refused.value) == (
        f"{path}: not a readable checkpoint, truncated or not written by torch.save"
        " (UnpicklingError)"
    )


def test_torch_losses_are_the_public_names_of_its_loss_module():
    losses = {name for name in dir(nn) if is_torch_loss(f"torch.nn.{name}")}
    ending_in_loss = {name for name in dir(nn) if name.endswith("Loss")}
    # AdaptiveLogSoftmaxWithLoss is a layer; NLLLoss2d, NLLLoss's old name, a loss still
    assert losses == ending_in_loss - {"AdaptiveLogSoftmaxWithLoss"} | {"NLLLoss2d"}
    assert {"CrossEntropyLoss", "BCEWithLogitsLoss", "MSELoss"} <= losses
    assert not is_torch_loss("torch.nn.Linear") and not is_torch_loss("os.CrossEntropyLoss")


def test_the_submitit_launchers_job_function_takes_the_arguments_our_launcher_gives():
    """hydra/launcher=slurm submits hydra-submitit-launcher's `__call__` with these."""
    plugin = pytest.importorskip("hydra_plugins.hydra_submitit_launcher.submitit_launcher")
    assert list(inspect.signature(plugin.SlurmLauncher.__call__).parameters) == [
        "self",
        "sweep_overrides",
        "job_dir_key",
        "job_num",
        "job_id",
        "singleton_state",
    ]
