"""Class balance: loss.weight=balanced gives the loss scikit-learn's 'balanced' weights of the
training split (and model.pt keeps them), the BCE losses refuse it in one line, and
dataset.sampler=balanced draws each class equally often, from the run's seeded order, so that
a stopped run resumes to the uninterrupted run's weights, in one process or two."""

import os
import signal
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from multiclass.config import compose_config
from multiclass.datasets import Source, Splits, make_splits
from multiclass.datasets.balance import balanced_weights, epoch_order
from multiclass.lifecycle.run import execute
from multiclass.records.checkpoint import load_classifier
from tests.conftest import QUIET, read_summary

RARE = 48  # training samples of class "b", for 10 times as many of class "a"


def lopsided_data(n_samples: int, seed: int = 0, **split_options: Any) -> Splits:
    """Two Gaussian classes in 2-D, 10:1, that a linear model separates but for a few: the
    blobs option's keys (n_samples of the rare class; centers and cluster_std unused)."""
    split_options = {k: v for k, v in split_options.items() if k not in ("centers", "cluster_std")}
    generator = np.random.default_rng(seed)
    x = np.concatenate(
        [generator.normal(0, 1, (10 * n_samples, 2)), generator.normal(1.5, 1, (n_samples, 2))]
    )
    y = np.repeat([0, 1], [10 * n_samples, n_samples])
    source = Source("lopsided", torch.from_numpy(x).float(), torch.from_numpy(y), ["a", "b"])
    return make_splits(source, seed=seed, **split_options)


LOPSIDED = [
    "dataset=blobs",
    f"dataset._target_={__name__}.lopsided_data",
    f"dataset.n_samples={RARE}",
    "trainer.epochs=3",
]


@pytest.fixture
def lopsided():
    return LOPSIDED


def test_balanced_weights_are_scikit_learns_and_the_run_trains_and_saves_them(
    train, tmp_path, lopsided
):
    from sklearn.utils.class_weight import compute_class_weight

    run_dir = tmp_path / "run"
    outcome = train(*lopsided, "loss.weight=balanced", run_dir=run_dir)
    assert outcome.status == "completed"
    splits = instantiate(compose_config(*lopsided).dataset)
    labels = splits.train.y.numpy()
    expected = compute_class_weight("balanced", classes=np.arange(2), y=labels)
    assert expected[1] > 5 * expected[0]  # the rare class weighs more
    assert outcome.summary["class_weights"] == pytest.approx(expected.tolist(), rel=1e-12)
    assert read_summary(run_dir)["class_weights"] == outcome.summary["class_weights"]
    model, _, saved = load_classifier(run_dir / "model.pt")
    assert saved["loss"]["weight"] == outcome.summary["class_weights"]  # not "balanced"
    test = splits.test
    with torch.no_grad():
        outputs = model(test.x)
    weight = torch.tensor(expected, dtype=torch.float32)
    assert outcome.summary["test_loss"] == pytest.approx(
        F.cross_entropy(outputs, test.y, weight=weight).item(), rel=1e-5
    )


def test_a_class_without_training_samples_cannot_be_balanced():
    with pytest.raises(Exception, match=r"loss.weight=balanced: class\(es\) \[2\] have no"):
        balanced_weights(torch.tensor([0, 0, 1, 3]), 4)


@pytest.mark.parametrize("loss", ["bce", "bce_with_logits"])
def test_the_bce_losses_refuse_balanced_weights_and_say_which_pos_weight_balances(
    train, lopsided, loss
):
    outcome = train(*lopsided, f"loss={loss}", "loss.weight=balanced")
    assert outcome.status == "failed"
    error = outcome.summary["error"]
    assert error.startswith("loss.weight=balanced: torch.nn.BCE")
    assert "\n" not in error
    splits = instantiate(compose_config(*lopsided).dataset)
    counts = torch.bincount(splits.train.y)
    assert f"loss.pos_weight=[{counts[0].item() / counts[1].item():.4g}]" in error


def test_the_shuffle_sampler_is_the_permutation_runs_always_drew():
    labels = torch.tensor([0] * 50 + [1] * 5)
    drawn = epoch_order(labels, "shuffle", torch.Generator().manual_seed(3))
    assert torch.equal(drawn, torch.randperm(55, generator=torch.Generator().manual_seed(3)))


def test_the_balanced_sampler_draws_each_class_equally_often_from_its_generator():
    labels = torch.tensor([0] * 1000 + [1] * 100 + [2] * 10)
    order = torch.Generator().manual_seed(0)
    epochs = [epoch_order(labels, "balanced", order) for _ in range(10)]
    assert all(len(epoch) == len(labels) for epoch in epochs)  # the epoch's length unchanged
    drawn = torch.bincount(labels[torch.cat(epochs)], minlength=3) / (10 * len(labels))
    assert drawn.tolist() == pytest.approx([1 / 3] * 3, abs=0.02)
    assert not torch.equal(epochs[0], epochs[1])  # the generator moves on
    again = torch.Generator().manual_seed(0)
    assert torch.equal(epoch_order(labels, "balanced", again), epochs[0])


STOP_AT_2 = [
    "+callbacks.signal._target_=tests.test_resume.SignalAtEpoch",
    "+callbacks.signal.epoch=2",
    f"+callbacks.signal.signum={int(signal.SIGTERM)}",
]


def test_a_balanced_run_stopped_and_resumed_has_the_uninterrupted_runs_weights(
    train, tmp_path, lopsided
):
    balanced = [*lopsided, "dataset.sampler=balanced", "trainer.epochs=4", "model.dropout=0.2"]
    straight = train(*balanced, run_dir=tmp_path / "straight").summary
    shuffled = train(*lopsided, "trainer.epochs=4", "model.dropout=0.2").summary
    assert shuffled["weights_sha256"] != straight["weights_sha256"]  # the sampler took part
    stopped_dir = tmp_path / "stopped"
    assert train(*balanced, *STOP_AT_2, run_dir=stopped_dir).status == "interrupted"
    cfg = compose_config(*QUIET, f"resume={stopped_dir}")
    resumed = execute(cfg, stopped_dir, [f"resume={stopped_dir}"]).summary
    assert (resumed["status"], resumed["resumed_at"]) == ("completed", [2])
    assert resumed["weights_sha256"] == straight["weights_sha256"]


def test_two_data_parallel_processes_draw_the_balanced_order_of_one(train, tmp_path, lopsided):
    """Each process draws the same global order and takes its share of every batch."""
    sgd = [*lopsided, "dataset.sampler=balanced", "optimizer=sgd", "optimizer.lr=0.1"]
    sgd += ["trainer.batch_size=31", "callbacks=minimal"]
    one = train(*sgd, run_dir=tmp_path / "one")
    command = [sys.executable, "-m", "multiclass", "device.processes=2", *sgd, *QUIET]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [*command, f"hydra.run.dir={tmp_path / 'two'}"], env=env, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    mine = torch.load(tmp_path / "two" / "model.pt", weights_only=True)["state_dict"]
    alone = torch.load(tmp_path / "one" / "model.pt", weights_only=True)["state_dict"]
    for name, tensor in mine.items():
        assert torch.allclose(tensor, alone[name], rtol=0, atol=1e-5), name
    assert one.summary["processes"] == 1
    assert read_summary(tmp_path / "two")["processes"] == 2
