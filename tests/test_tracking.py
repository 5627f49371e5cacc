"""logger=tensorboard and logger=mlflow, read back with each library's own reader; a tracker
that fails costs one warning line and never the run."""

import csv
import json
import logging
from importlib.util import find_spec

import pytest

from multiclass.config import compose_config
from multiclass.lifecycle.run import execute
from multiclass.tracking.mlflow import MlflowTracker
from tests.conftest import QUIET
from tests.test_resume import interrupt_epoch

BLOBS = ["dataset=blobs", "trainer.epochs=2", "model.depth=1"]
needs_mlflow = pytest.mark.skipif(not find_spec("mlflow"), reason="needs the [mlflow] extra")
needs_tensorboard = pytest.mark.skipif(
    not find_spec("tensorboard"), reason="needs the [tensorboard] extra"
)


def events_of(folder):
    """The TensorBoard event files under `folder`, read by TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return events


def mlflow_client(tmp_path):
    from mlflow import MlflowClient

    return MlflowClient(mlflow_uri(tmp_path))


def metrics_csv(run_dir):
    with open(run_dir / "metrics.csv") as file:
        return list(csv.DictReader(file))


def summary(run_dir):
    return json.loads((run_dir / "summary.json").read_text())


def mlflow_uri(tmp_path):
    return f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"


def only_run(client, experiment="multiclass"):
    found = client.get_experiment_by_name(experiment)
    assert found is not None, [e.name for e in client.search_experiments()]
    (run,) = client.search_runs([found.experiment_id])
    return run


@needs_tensorboard
def test_tensorboard_has_every_epoch_every_layer_and_the_hparams(train, tmp_path):
    from tensorboard.plugins.hparams import plugin_data_pb2

    outcome = train(*BLOBS, "logger=tensorboard", run_dir=tmp_path / "run")
    assert outcome.status == "completed"
    events = events_of(tmp_path / "run" / "tensorboard")
    rows = metrics_csv(tmp_path / "run")
    for tag, column in [("train/loss", "train_loss"), ("val/acc", "val_acc"), ("lr", "lr")]:
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [int(r["epoch"]) for r in rows]
        assert [e.value for e in logged] == pytest.approx([float(r[column]) for r in rows])
    with open(tmp_path / "run" / "layers.csv") as file:
        layers = {row["layer"] for row in csv.DictReader(file) if row["grad_norm"]}
    for layer in layers:
        assert [e.step for e in events.Scalars(f"layers/grad_norm/{layer}")] == [0, 1, 2]
    hparams = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/session_start_info"])
    assert start.session_start_info.hparams["model.depth"].number_value == 1
    assert start.session_start_info.hparams["dataset._target_"].string_value.endswith("blobs")
    assert events.Scalars("hparams/test_acc")[0].value == pytest.approx(outcome.summary["test_acc"])


@needs_mlflow
def test_mlflow_has_the_params_every_epoch_the_figures_and_the_files(train, tmp_path):
    run_dir = tmp_path / "run"
    outcome = train(
        *BLOBS, "logger=mlflow", f"logger.tracking_uri={mlflow_uri(tmp_path)}", run_dir=run_dir
    )
    assert outcome.status == "completed"
    client = mlflow_client(tmp_path)
    run = only_run(client)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "run"
    assert run.data.params["model.depth"] == "1"
    assert run.data.params["trainer.epochs"] == "2"
    assert "hydra.run.dir" not in run.data.params
    history = client.get_metric_history(run.info.run_id, "val_acc")
    rows = metrics_csv(run_dir)
    assert [m.step for m in history] == [int(r["epoch"]) for r in rows]
    assert [m.value for m in history] == pytest.approx([float(r["val_acc"]) for r in rows])
    assert run.data.metrics["test_acc"] == pytest.approx(summary(run_dir)["test_acc"])
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model.pt", "metrics.csv", "summary.json", "config.yaml", "layers.csv"} <= files
    # Artifacts sit beside the SQLite store, not in ./mlruns of whatever folder ran it.
    assert (tmp_path / "store" / "mlartifacts").is_dir()


@needs_mlflow
def test_a_resumed_run_goes_on_in_its_mlflow_run(train, tmp_path):
    run_dir, uri = tmp_path / "run", f"logger.tracking_uri={mlflow_uri(tmp_path)}"
    train(*BLOBS, "logger=mlflow", uri, run_dir=run_dir)
    overrides = ["trainer.epochs=3", "logger=mlflow", uri]
    cfg = compose_config(*QUIET, *BLOBS, f"resume={run_dir}", *overrides)
    assert execute(cfg, run_dir, [f"resume={run_dir}", *overrides]).status == "completed"
    client = mlflow_client(tmp_path)
    run = only_run(client)
    assert run.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
    assert steps == [1, 2, 3]


@needs_mlflow
@pytest.mark.parametrize(("ending", "status"), [("interrupted", "KILLED"), ("diverged", "FAILED")])
def test_a_run_that_does_not_complete_ends_its_mlflow_run_killed_or_failed(
    train, tmp_path, monkeypatch, ending, status
):
    """Ctrl-C in the second epoch: KILLED; a loss blown up by lr 1e30: FAILED. Either way with
    the epochs it finished and the run directory's files."""
    overrides = [*BLOBS, "logger=mlflow", f"logger.tracking_uri={mlflow_uri(tmp_path)}"]
    if ending == "interrupted":
        interrupt_epoch(monkeypatch, 2)
    else:
        overrides += ["optimizer=sgd", "optimizer.lr=1e30"]
    run_dir = tmp_path / "run"
    assert train(*overrides, run_dir=run_dir).status == ending
    client = mlflow_client(tmp_path)
    run = only_run(client)
    assert run.info.status == status
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert [m.step for m in history] == [int(row["epoch"]) for row in metrics_csv(run_dir)]
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.csv", "summary.json", "config.yaml"} <= files


# A sweep as one MLflow experiment: tests/test_cli.py, with the sweep the CLI runs there.


@needs_mlflow
def test_an_unwritable_store_is_one_warning_and_the_run_completes(train, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="multiclass"):
        outcome = train(
            *BLOBS,
            "logger=mlflow",
            "logger.tracking_uri=sqlite:////proc/no/mlflow.db",
            run_dir=tmp_path / "run",
        )
    assert outcome.status == "completed"
    assert (tmp_path / "run" / "model.pt").exists()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "MlflowTracker stopped tracking" in warnings[0]
    assert "\n" not in warnings[0]


@needs_mlflow
def test_a_store_that_fails_mid_run_warns_once(train, tmp_path, caplog, monkeypatch):
    def locked(self, row):
        raise RuntimeError("(sqlite3.OperationalError) database is locked")

    monkeypatch.setattr(MlflowTracker, "log_epoch", locked)
    with caplog.at_level(logging.WARNING, logger="multiclass"):
        outcome = train(
            *BLOBS,
            "logger=mlflow",
            f"logger.tracking_uri={mlflow_uri(tmp_path)}",
            run_dir=tmp_path / "run",
        )
    assert outcome.status == "completed"
    assert len(metrics_csv(tmp_path / "run")) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "warning: MlflowTracker stopped tracking this run:"
        " RuntimeError: (sqlite3.OperationalError) database is locked"
    ]


def test_a_logger_whose_library_is_missing_is_one_line_before_training(
    train, tmp_path, monkeypatch
):
    monkeypatch.setattr("multiclass.tracking.find_spec", lambda name: None)
    outcome = train(*BLOBS, "logger=tensorboard", run_dir=tmp_path / "run")
    assert outcome.status == "failed"
    assert outcome.summary["error"] == (
        "logger=tensorboard needs tensorboard: pip install 'multiclass[tensorboard]'"
    )
    assert not (tmp_path / "run" / "metrics.csv").exists()


@needs_tensorboard
def test_a_resume_may_switch_the_logger_on(train, tmp_path):
    run_dir = tmp_path / "run"
    train(*BLOBS, run_dir=run_dir)
    overrides = ["trainer.epochs=3", "logger=tensorboard"]
    cfg = compose_config(*QUIET, *BLOBS, f"resume={run_dir}", *overrides)
    assert execute(cfg, run_dir, [f"resume={run_dir}", *overrides]).status == "completed"
    events = events_of(run_dir / "tensorboard")
    assert [e.step for e in events.Scalars("train/loss")] == [3]
