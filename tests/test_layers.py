"""Per-layer statistics (layers.csv, layers.png): they never change training, they survive a
resume whole, and they show seed 000's lesson, the vanishing gradient of deep sigmoid nets."""

import math

import pytest
import torch
from hydra import compose, initialize_config_dir
from torch import nn

from multiclass.config import CONFIG_DIR, compose_config
from multiclass.datasets import Split
from multiclass.device.runtime import Runtime
from multiclass.engine import Task
from multiclass.heads import build_loss
from multiclass.models import build_classifier
from multiclass.reporting.layer_rows import plain_number
from multiclass.reporting.layers import LayerProbe, activation_statistics, read_rows
from tests.test_resume import metrics_without_times, resume

SMALL = ["dataset.limit=300", "trainer.epochs=2", "model.dropout=0.2"]
# digits' default MLP: Linear 64-64, ReLU, Dropout, Linear 64-64, ReLU, Dropout, Linear 64-10.
LAYERS = ["1 Linear 64-64", "2 ReLU", "3 Linear 64-64", "4 ReLU", "5 Linear 64-10"]


def test_layer_stats_do_not_change_training(train, tmp_path):
    off = train(*SMALL, "trainer.layer_stats=false", run_dir=tmp_path / "off")
    on = train(*SMALL, "trainer.layer_stats=true", "plots=true", run_dir=tmp_path / "on")
    assert on.summary["weights_sha256"] == off.summary["weights_sha256"]
    assert metrics_without_times(tmp_path / "on") == metrics_without_times(tmp_path / "off")
    assert not (tmp_path / "off" / "layers.csv").exists()
    assert (tmp_path / "on" / "layers.png").stat().st_size > 0

    rows = read_rows(tmp_path / "on" / "layers.csv")
    assert [(r.epoch, r.layer) for r in rows] == [(e, name) for e in (0, 1, 2) for name in LAYERS]
    for row in rows:
        weighted = "Linear" in row.layer
        norms = (row.grad_norm, row.weight_norm)
        assert all(math.isfinite(v) and v > 0 for v in norms) if weighted else norms == (None,) * 2
        assert (row.act_mean is None) == weighted and (row.dead is None) == weighted
        assert row.saturated is None  # no sigmoid or tanh here
        assert weighted or (0 <= row.dead <= 1 and row.act_mean >= 0 and row.act_std >= 0)


def test_a_resumed_run_has_one_set_of_rows_per_epoch(train, tmp_path):
    straight = tmp_path / "straight"
    train("dataset.limit=300", "trainer.epochs=4", run_dir=straight)
    run_dir = tmp_path / "resumed"
    train("dataset.limit=300", "trainer.epochs=2", run_dir=run_dir)
    with open(run_dir / "layers.csv") as file:  # a kill after epoch 3's rows, before last.pt
        epoch_2 = [line for line in file if line.startswith("2,")]
    with open(run_dir / "layers.csv", "a") as file:
        file.writelines("3" + line[1:] for line in epoch_2)

    assert resume(run_dir, "trainer.epochs=4").status == "completed"
    expected = (straight / "layers.csv").read_text()
    assert (run_dir / "layers.csv").read_text() == expected
    assert len(expected.splitlines()) == 1 + 5 * len(LAYERS)


def test_layer_stats_are_taken_when_the_log_reports(train, tmp_path):
    train("dataset.limit=300", "trainer.epochs=5", "trainer.log_every=2", run_dir=tmp_path / "r")
    assert sorted({row.epoch for row in read_rows(tmp_path / "r" / "layers.csv")}) == [0, 2, 4, 5]


def probe_rows(activation: str, depth: int = 8):
    """The probe's epoch-0 rows of a freshly built MLP on 128 random 20-feature samples."""
    cfg = compose_config(f"model.depth={depth}", "model.width=32", f"model.activation={activation}")
    criterion, head = build_loss(cfg.loss, num_classes=4)
    torch.manual_seed(0)
    model = build_classifier(cfg.model, (20,), head)
    data = Split(torch.randn(128, 20), torch.randint(0, 4, (128,)))
    task = Task(
        model, criterion, head, torch.optim.SGD(model.parameters()), Runtime(torch.device("cpu"))
    )
    model.train()
    rows = LayerProbe(task, model, data)(epoch=0)
    assert model.training and all(p.grad is None for p in model.parameters())  # untouched
    return [row for row in rows if row.grad_norm is not None]


def test_a_deep_sigmoid_networks_first_layer_gets_a_vanishing_gradient():
    sigmoid, relu = probe_rows("sigmoid"), probe_rows("relu")
    assert [r.layer for r in sigmoid] == [
        "1 Linear 20-32",
        *[f"{i} Linear 32-32" for i in range(3, 17, 2)],
        "17 Linear 32-4",
    ]
    sigmoid_ratio = sigmoid[0].grad_norm / sigmoid[-1].grad_norm
    relu_ratio = relu[0].grad_norm / relu[-1].grad_norm
    assert sigmoid_ratio < 1e-4  # seed 000: every sigmoid multiplies the gradient by <= 0.25
    assert relu_ratio > 1000 * sigmoid_ratio


def test_saturated_and_dead_units():
    sigmoid = activation_statistics(nn.Sigmoid(), torch.tensor([[0.005, 0.5], [0.995, 0.2]]))
    assert sigmoid[4].item() == pytest.approx(0.5) and math.isnan(sigmoid[5])
    tanh = activation_statistics(nn.Tanh(), torch.tensor([[-0.999, 0.0, 0.98, 0.995]]))
    assert tanh[4].item() == pytest.approx(0.5)
    # Unit 0 is zero for every sample (dead); unit 1 only for one (alive).
    relu = activation_statistics(nn.ReLU(), torch.tensor([[0.0, 0.0, 1.0], [0.0, 2.0, 3.0]]))
    assert relu[5].item() == pytest.approx(1 / 3) and math.isnan(relu[4])
    channels = torch.zeros(2, 4, 3, 3)
    channels[1, 0, 2, 2] = 1.0  # a conv channel lives if any sample lights any position
    assert activation_statistics(nn.ReLU(), channels)[5].item() == pytest.approx(3 / 4)


def test_the_vanishing_experiment_sweeps_activation_and_depth():
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", ["experiment=seed000_vanishing"], return_hydra_config=True)
    assert dict(cfg.hydra.sweeper.params) == {
        "model.activation": "sigmoid,relu",
        "model.depth": "2,4,8",
    }
    assert cfg.dataset._target_.endswith("mnist") and cfg.model.activation == "sigmoid"
    assert cfg.optimizer._target_ == "torch.optim.SGD" and cfg.trainer.layer_stats


def test_the_log_axis_labels_are_plain_numbers_not_formulas():
    values = (1e-7, 3e-5, 0.001, 0.06, 1.0, 20.0, 1e4)
    assert [plain_number(v) for v in values] == ["1e-7", "3e-5", "0.001", "0.06", "1", "20", "1e4"]
