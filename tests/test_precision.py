"""device.precision=fp16: autocast to half precision with a gradient scaler, on the CPU too;
repeatable, and resumed with the scaler's state (the loss scale it had grown or cut to).
device.channels_last: the same results in another memory layout."""

import logging

import pytest
import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook

from multiclass import engine
from multiclass.device.runtime import FP16_ON_CPU
from multiclass.records.checkpoint import load_classifier
from tests.conftest import flagged
from tests.test_resume import metrics_without_times, resume
from tests.test_schedulers import SMALL, interrupt_third_epoch

FP16 = [*SMALL, "device.precision=fp16"]


def test_fp16_trains_through_a_gradient_scaler_and_repeats(train, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="multiclass"):
        half = train(*FP16, run_dir=tmp_path / "half")
    assert caplog.messages.count(FP16_ON_CPU) == 1  # once, as the run starts
    assert "use device.precision=fp32, or bf16" in FP16_ON_CPU
    again = train(*FP16, run_dir=tmp_path / "again")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="multiclass"):
        full = train(*SMALL, run_dir=tmp_path / "full")
        train(*SMALL, "device.precision=bf16", "trainer.epochs=1", run_dir=tmp_path / "bf16")
    assert FP16_ON_CPU not in caplog.messages
    assert half.status == again.status == full.status == "completed"
    assert half.summary["weights_sha256"] == again.summary["weights_sha256"]
    assert half.summary["weights_sha256"] != full.summary["weights_sha256"]
    assert abs(half.summary["test_acc"] - full.summary["test_acc"]) <= 0.03  # 0.661 and 0.664
    scaler = torch.load(tmp_path / "half" / "last.pt", weights_only=True)["scaler"]
    assert scaler["scale"] > 0 and scaler["_growth_tracker"] > 0  # it scaled every step
    assert torch.load(tmp_path / "full" / "last.pt", weights_only=True)["scaler"] is None


def test_an_fp16_run_resumes_to_the_uninterrupted_runs_weights(train, tmp_path, monkeypatch):
    straight = train(*FP16, "trainer.epochs=4", run_dir=tmp_path / "straight")
    cut = tmp_path / "cut"
    with monkeypatch.context() as patch:
        interrupt_third_epoch(patch)
        assert train(*FP16, "trainer.epochs=4", run_dir=cut).status == "interrupted"
    outcome = resume(cut)
    assert outcome.status == "completed" and outcome.summary["resumed_at"] == [2]
    assert outcome.summary["weights_sha256"] == straight.summary["weights_sha256"]
    assert metrics_without_times(cut) == metrics_without_times(tmp_path / "straight")


def test_channels_last_lays_out_the_convolutions_and_gives_the_same_results(
    train, tmp_path, monkeypatch
):
    """Every convolution's output in the training epochs and their validation is channels_last
    with it and plain NCHW without; the runs differ in rounding alone."""
    layouts: dict[bool, set[tuple[bool, bool]]] = {True: set(), False: set()}
    runs, current, fitting = {}, [], []

    def conv_output(module, inputs, output):
        if fitting and isinstance(module, nn.Conv2d):
            last = output.is_contiguous(memory_format=torch.channels_last)
            layouts[current[-1]].add((last, output.is_contiguous()))

    for name in ("train_epoch", "evaluate"):  # the epochs and their validation
        monkeypatch.setattr(engine, name, flagged(getattr(engine, name), fitting))
    hook = register_module_forward_hook(conv_output)
    try:
        for channels_last in (True, False):
            current.append(channels_last)
            overrides = ["model=cnn", *SMALL, "trainer.epochs=3"]
            overrides.append(f"device.channels_last={str(channels_last).lower()}")
            runs[channels_last] = train(*overrides, run_dir=tmp_path / str(channels_last))
    finally:
        hook.remove()
    assert layouts == {True: {(True, False)}, False: {(False, True)}}

    with_it, without = runs[True].summary, runs[False].summary
    for figure in ("test_acc", "best_val_acc", "best_epoch", "train_acc"):
        assert with_it[figure] == without[figure], figure
    for figure in ("test_loss", "train_loss"):
        assert with_it[figure] == pytest.approx(without[figure], rel=1e-5), figure
    one, _, _ = load_classifier(tmp_path / "True" / "model.pt")
    other, _, _ = load_classifier(tmp_path / "False" / "model.pt")
    for (name, weights), theirs in zip(
        one.state_dict().items(), other.state_dict().values(), strict=True
    ):
        assert torch.allclose(weights, theirs, rtol=1e-4, atol=1e-5), name


def test_only_a_model_with_convolutions_gets_its_batches_in_channels_last():
    """An MLP flattens its inputs: a channels_last batch would be copied there and back."""
    from multiclass.bench.workloads import build_model
    from multiclass.device.runtime import Runtime

    runtime = Runtime(torch.device("cpu"))
    rgb = torch.rand(4, 3, 8, 8)
    assert (
        runtime.fitted_to(build_model("cnn"))
        .layout(rgb)
        .is_contiguous(memory_format=torch.channels_last)
    )
    assert runtime.fitted_to(build_model("mlp")).layout(rgb) is rgb
    assert (
        not Runtime(torch.device("cpu"), channels_last=False)
        .fitted_to(build_model("cnn"))
        .channels_last
    )
