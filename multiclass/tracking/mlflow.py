"""logger=mlflow: each run an MLflow run in a real tracking store (SQLite at outputs/mlflow.db
by default, MLflow 3's own default), each sweep an MLflow experiment, so that `mlflow ui`
compares a sweep's jobs side by side."""

import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from multiclass.engine import EpochMetrics
from multiclass.tracking import (
    FINAL_STATUS,
    Tracker,
    epoch_scalars,
    final_metrics,
    flat_params,
    require,
)

RUN_DIR_TAG = "multiclass.run_dir"
MAX_BATCH = 100  # MLflow's limit on params (and metrics) per log_batch


class MlflowTracker(Tracker):
    """The run's params (the resolved config, flattened), its metrics per epoch (step = epoch)
    and final figures, its status, and its directory's files as artifacts. A resumed run goes
    on in the MLflow run that its directory started."""

    def __init__(
        self,
        tracking_uri: str = "sqlite:///outputs/mlflow.db",
        experiment: str | None = None,
        artifacts: bool = True,
    ) -> None:
        require("mlflow", "mlflow")
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.artifacts = artifacts
        self.client: Any = None
        self.run_id = ""

    def start(self, cfg: DictConfig, run_dir: Path, resumed_epoch: int) -> None:
        from mlflow import MlflowClient

        make_sqlite_folder(self.tracking_uri)
        self.client = MlflowClient(self.tracking_uri)
        experiment_id = self.experiment_id(self.experiment or sweep_name() or "multiclass")
        run_dir_text = str(run_dir.resolve())
        previous = resumed_epoch and self.client.search_runs(
            [experiment_id], f"tags.`{RUN_DIR_TAG}` = '{run_dir_text}'", max_results=1
        )
        if previous:
            self.run_id = previous[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
            return
        tags = {RUN_DIR_TAG: run_dir_text}
        run = self.client.create_run(experiment_id, run_name=job_name(run_dir), tags=tags)
        self.run_id = run.info.run_id
        self.log({}, flat_params(cfg))

    def experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        return self.client.create_experiment(
            name, artifact_location=artifact_root(self.tracking_uri)
        )

    def log_epoch(self, row: EpochMetrics) -> None:
        self.log(epoch_scalars(row), {}, step=row.epoch)

    def finish(self, summary: dict[str, Any], run_dir: Path) -> None:
        if not self.run_id:
            return
        self.log(final_metrics(summary), {}, step=summary.get("epochs") or 0)
        if self.artifacts:
            self.client.log_artifacts(self.run_id, str(run_dir))
        self.client.set_terminated(self.run_id, FINAL_STATUS.get(summary["status"], "FAILED"))

    def log(self, metrics: dict[str, float], params: dict[str, Any], step: int = 0) -> None:
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        entries = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        entries += [Param(k, str(v)) for k, v in params.items()]
        for start in range(0, len(entries), MAX_BATCH):
            chunk = entries[start : start + MAX_BATCH]
            self.client.log_batch(
                self.run_id,
                metrics=[e for e in chunk if isinstance(e, Metric)],
                params=[e for e in chunk if isinstance(e, Param)],
            )


def sweep_job() -> Any:
    """Hydra's config when this run is a job of a multirun (any launcher), else None."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    return hydra_cfg if hydra_cfg.mode == RunMode.MULTIRUN else None


def sweep_name() -> str | None:
    """The sweep's folder: one MLflow experiment a sweep. An absolute path below the folder
    the command ran in is named relative to it, as Hydra's default `outputs/...` is: a resume
    (`multiclass-resume /abs/outputs/...`) then finds the experiment its sweep started."""
    job = sweep_job()
    if job is None:
        return None
    folder = Path(job.sweep.dir)
    if folder.is_absolute() and folder.is_relative_to(job.runtime.cwd):
        return str(folder.relative_to(job.runtime.cwd))
    return str(folder)


def job_name(run_dir: Path) -> str:
    """A sweep job by its overrides (`model.depth=2,model.width=32`), a run by its folder."""
    job = sweep_job()
    return ",".join(job.overrides.task) if job and job.overrides.task else run_dir.name


def sqlite_path(tracking_uri: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(tracking_uri.removeprefix(prefix)) if tracking_uri.startswith(prefix) else None


def make_sqlite_folder(tracking_uri: str) -> None:
    """SQLite creates the database file but not its folder."""
    path = sqlite_path(tracking_uri)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def artifact_root(tracking_uri: str) -> str | None:
    """Beside a SQLite store, `mlartifacts/` (not MLflow's `./mlruns` in whatever folder the
    command ran from); other stores keep their own default."""
    path = sqlite_path(tracking_uri)
    return None if path is None else (path.parent.resolve() / "mlartifacts").as_uri()
