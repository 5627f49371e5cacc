"""device.precision=fp16: autocast to half precision with a gradient scaler, on the CPU too;
repeatable, and resumed with the scaler's state (the loss scale it had grown or cut to)."""

import torch

from tests.test_resume import metrics_without_times, resume
from tests.test_schedulers import SMALL, interrupt_third_epoch

FP16 = [*SMALL, "device.precision=fp16"]


def test_fp16_trains_through_a_gradient_scaler_and_repeats(train, tmp_path):
    half = train(*FP16, run_dir=tmp_path / "half")
    again = train(*FP16, run_dir=tmp_path / "again")
    full = train(*SMALL, run_dir=tmp_path / "full")
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
