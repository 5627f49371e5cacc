"""One run in-process: every file of the run directory, determinism, and how runs end badly."""

import csv
import json
import logging

import pytest
import torch
import yaml
from hydra.utils import instantiate
from torch.nn.modules.module import register_module_forward_pre_hook
from torch.optim.optimizer import register_optimizer_step_post_hook

from multiclass import engine
from multiclass.config import compose_config
from multiclass.records.artifacts import weights_sha256, write_atomic
from multiclass.records.checkpoint import load_classifier
from tests.conftest import RUN_FILES, flagged

DIGITS = ["dataset.limit=400", "trainer.epochs=3"]
METRIC_COLUMNS = [
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "val_macro_f1",
    "val_balanced_acc",
    "lr",
    "train_seconds",
    "epoch_seconds",
]


def read_metrics(run_dir):
    with open(run_dir / "metrics.csv") as file:
        return list(csv.DictReader(file))


def test_a_run_fills_its_directory(train, tmp_path):
    run_dir = tmp_path / "run"
    outcome = train(*DIGITS, "plots=true", "seed=3", run_dir=run_dir)
    assert outcome.status == "completed" and outcome.exit_code == 0

    for name in RUN_FILES:
        assert (run_dir / name).stat().st_size > 0, name
    assert not (run_dir / "decision_boundary.png").exists()  # inputs are images, not 2-D
    assert not list(run_dir.glob(".*.tmp"))

    rows = read_metrics(run_dir)
    assert list(rows[0]) == METRIC_COLUMNS
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3]

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary == outcome.summary
    assert summary["status"] == "completed"
    assert summary["epochs"] == 3 and summary["seed"] == 3 and summary["device"] == "cpu"
    assert summary["test_error"] == pytest.approx(1 - summary["test_acc"])
    best = max(rows, key=lambda row: float(row["val_acc"]))
    assert summary["best_val_acc"] == pytest.approx(float(best["val_acc"]))
    assert summary["best_epoch"] == int(best["epoch"])
    assert summary["train_time_s"] == pytest.approx(sum(float(r["train_seconds"]) for r in rows))
    assert summary["samples_per_s"] > 0
    assert set(summary["versions"]) == {"python", "torch", "hydra"}
    assert summary["split_sizes"]["train"] == 360 and summary["evaluated_on"] == "test"

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["dataset"]["seed"] == 3  # resolved, not ${seed}

    saved = torch.load(run_dir / "model.pt", weights_only=True)
    assert {"state_dict", "model", "loss", "input_shape", "class_names"} <= set(saved)
    model, head, _ = load_classifier(run_dir / "model.pt")
    assert weights_sha256(model) == summary["weights_sha256"]
    test = instantiate(compose_config(*DIGITS, "seed=3").dataset).test
    with torch.no_grad():
        accuracy = (head.predict(model(test.x)) == test.y).float().mean().item()
    assert accuracy == pytest.approx(summary["test_acc"])


def test_a_two_dimensional_data_set_gets_a_decision_boundary(train, tmp_path):
    outcome = train("dataset=blobs", "trainer.epochs=2", "plots=true", run_dir=tmp_path / "r")
    assert outcome.status == "completed"
    assert (tmp_path / "r" / "decision_boundary.png").stat().st_size > 0
    assert not (tmp_path / "r" / "predictions.png").exists()


def test_same_seed_same_numbers_other_seed_other_weights(train):
    first, again, other = (
        train(*DIGITS, "model=cnn", "model.dropout=0.2", f"seed={s}") for s in (0, 0, 1)
    )
    keys = ("weights_sha256", "test_acc", "test_loss", "best_val_acc", "train_loss")
    assert [first.summary[k] for k in keys] == [again.summary[k] for k in keys]
    assert first.summary["weights_sha256"] != other.summary["weights_sha256"]


def test_log_every_thins_the_log_but_not_the_metrics(train, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="multiclass"):
        train(*DIGITS, "trainer.epochs=5", "trainer.log_every=2", run_dir=tmp_path / "r")
    logged = [
        r.getMessage().split()[1] for r in caplog.records if r.getMessage().startswith("epoch")
    ]
    assert logged == ["2/5", "4/5", "5/5"]
    assert [int(row["epoch"]) for row in read_metrics(tmp_path / "r")] == [1, 2, 3, 4, 5]


def test_drop_last_trains_on_whole_batches_only(train, monkeypatch):
    """Counted as it trains, inside the training loop's epochs: every optimizer step, and the
    batch size of every forward pass."""
    steps, batch_sizes, in_epoch = [], set(), []

    def step_taken(optimizer, args, kwargs):
        if in_epoch:
            steps.append(1)

    def forward_seen(module, inputs):
        if in_epoch:
            batch_sizes.add(len(inputs[0]))

    monkeypatch.setattr(engine, "train_epoch", flagged(engine.train_epoch, in_epoch))
    hooks = [
        register_optimizer_step_post_hook(step_taken),
        register_module_forward_pre_hook(forward_seen),
    ]
    try:
        summary = train(*DIGITS, "trainer.drop_last=true", "trainer.batch_size=64").summary
    finally:
        for hook in hooks:
            hook.remove()
    trained_on = summary["split_sizes"]["train"]
    assert trained_on % 64 != 0  # a partial batch to leave out
    assert len(steps) == summary["epochs"] * (trained_on // 64)
    assert batch_sizes == {64}
    assert summary["samples_per_s"] == pytest.approx(len(steps) * 64 / summary["train_time_s"])


WEIGHTED = "loss.weight=[1.0,2.0,1.0,1.0,1.0,1.0,1.0,1.0,1.0,3.0]"


@pytest.mark.parametrize(
    "loss",
    [
        [],
        [WEIGHTED],
    ],
    ids=["plain", "class-weighted"],
)
def test_the_eval_batch_size_changes_no_figure(train, tmp_path, loss):
    """7 splits the 40 validation and 360 test samples into batches and a remainder; 1024 takes
    each in one batch. Evaluation trains nothing: same weights, same figures (losses summed in
    another order, so equal to float precision)."""
    runs = {
        size: train(*DIGITS, *loss, f"trainer.eval_batch_size={size}", run_dir=tmp_path / str(size))
        for size in (1024, 7)
    }
    whole, batched = runs[1024].summary, runs[7].summary
    assert whole["split_sizes"]["val"] % 7 and whole["split_sizes"]["test"] % 7
    assert whole["weights_sha256"] == batched["weights_sha256"]
    for figure in ("test_acc", "test_macro_f1", "test_balanced_acc", "best_epoch"):
        assert whole[figure] == batched[figure], figure
    assert whole["test_loss"] == pytest.approx(batched["test_loss"], rel=1e-6)
    rows = zip(read_metrics(tmp_path / "1024"), read_metrics(tmp_path / "7"), strict=True)
    for one, other in rows:
        for column in ("train_loss", "train_acc", "val_acc", "val_macro_f1", "val_balanced_acc"):
            assert one[column] == other[column], column
        assert float(one["val_loss"]) == pytest.approx(float(other["val_loss"]), rel=1e-6)


def test_tiny_tables_say_they_are_evaluated_on_the_training_set(train):
    outcome = train("dataset=xor", "trainer.epochs=2", "trainer.batch_size=4")
    assert outcome.summary["evaluated_on"] == "train"
    assert outcome.summary["split_sizes"] == {"train": 4, "val": 4, "test": 4}


def test_no_validation_split_leaves_val_columns_empty(train, tmp_path):
    outcome = train(*DIGITS, "dataset.val_fraction=0", run_dir=tmp_path / "r")
    assert outcome.status == "completed"
    assert outcome.summary["best_val_acc"] is None
    assert read_metrics(tmp_path / "r")[0]["val_acc"] == ""


def test_a_diverging_loss_stops_the_run(train, tmp_path, caplog):
    outcome = train(
        *DIGITS, "trainer.epochs=5", "optimizer=sgd", "optimizer.lr=1e30", run_dir=tmp_path / "r"
    )
    assert (outcome.status, outcome.exit_code) == ("diverged", 2)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "diverged" and "optimizer.lr" in summary["error"]
    assert len(read_metrics(tmp_path / "r")) == summary["epochs"] < 5
    assert not (tmp_path / "r" / "model.pt").exists()


def test_an_interrupted_run_keeps_what_it_wrote(train, tmp_path, monkeypatch):
    real_epoch = engine.train_epoch
    calls = []

    def interrupt_second_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(engine, "train_epoch", interrupt_second_epoch)
    outcome = train(*DIGITS, run_dir=tmp_path / "r")
    assert (outcome.status, outcome.exit_code) == ("interrupted", 130)
    assert len(read_metrics(tmp_path / "r")) == 1
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["epochs"] == 1


BAD_INPUTS = {  # found when the data and model are built: the run records that it failed
    "dataset.classes=[0,10]": "no class 10",
    "dataset.classes=[4]": "at least two classes",
    "dataset=mnist dataset.root=/nonexistent dataset.download=false": "MNIST not found in",
    "model=cnn dataset=blobs": "model=cnn needs image inputs",
    "loss.weight=[1.0,2.0]": "weight tensor",
    "trainer.drop_last=true trainer.batch_size=5000": "leaves no batch",
}
if not torch.cuda.is_available():
    BAD_INPUTS["device=cuda"] = "device.kind=cuda was asked for"
BAD_VALUES = {  # refused before anything is written (tests/test_validation.py: every key)
    "trainer.epochs=0": "trainer.epochs must be an integer >= 1, got 0",
    "trainer.batch_size=-8": "trainer.batch_size must be an integer >= 1, got -8",
    "model.width=wide": "model.width must be an integer >= 1, got 'wide'",
    "model=cnn model.kernel_size=big": "model.kernel_size must be an integer >= 1, got 'big'",
    "device.precision=fp8": "device.precision must be one of fp32, bf16, fp16, got 'fp8'",
}


def error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("overrides", list(BAD_INPUTS))
def test_bad_input_fails_with_one_line(train, tmp_path, caplog, overrides):
    with caplog.at_level(logging.ERROR, logger="multiclass"):
        outcome = train(*DIGITS, *overrides.split(), run_dir=tmp_path / "r")
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    errors = error_lines(caplog)
    assert len(errors) == 1 and "\n" not in errors[0]
    assert BAD_INPUTS[overrides] in errors[0]
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["test_acc"] is None


@pytest.mark.parametrize("overrides", list(BAD_VALUES))
def test_a_bad_value_is_one_line_and_writes_nothing(train, tmp_path, caplog, overrides):
    with caplog.at_level(logging.ERROR, logger="multiclass"):
        outcome = train(*DIGITS, *overrides.split(), run_dir=tmp_path / "r")
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    assert error_lines(caplog) == [f"error: {BAD_VALUES[overrides]}"]
    assert not (tmp_path / "r").exists()


def test_writes_are_whole_or_not_at_all(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    write_atomic(target, "old")

    def broken_replace(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr("multiclass.records.artifacts.os.replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
