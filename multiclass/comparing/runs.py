"""Run directories read back as records: what a sweep report needs from each job, whichever
launcher ran it and however far it got (a job still running, or killed, says `running` in its
summary.json: its figures come from the metrics.csv rows it wrote; a job refused before it
wrote a summary has only Hydra's .hydra/ and the one error line in its log)."""

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from multiclass.class_metrics import PER_CLASS_CSV
from multiclass.config import MONITORS
from multiclass.errors import UserError
from multiclass.records.artifacts import lock_run_dir, read_csv_rows, read_json

# Files that mark a run directory: the run writes config.yaml first, Hydra writes .hydra/.
RUN_MARKERS = ("config.yaml", "summary.json", ".hydra/overrides.yaml")
# A line the run logged as its error, whatever prefix the log format puts before it.
ERROR_LINE = re.compile(r"^(?:\[[^\]]*\])*\s*error: (.+)$")
# The one line of a job that sweep.fail_fast kept from training (commands.train): `not started`.
NOT_STARTED_LINE = re.compile(r"^(?:\[[^\]]*\])*\s*not started: (.+)$")


@dataclass(frozen=True)
class RunRecord:
    path: Path
    job: int | None  # Hydra's job number (for a search, the trial number)
    overrides: dict[str, str]  # the job's command-line overrides: key -> value as typed
    config: dict[str, Any]  # the resolved config.yaml, flattened: "model.depth" -> 2
    summary: dict[str, Any]  # summary.json, or what metrics.csv says so far
    val_acc: list[float]  # validation accuracy per epoch
    choices: dict[str, str] = field(default_factory=dict)  # config group -> option Hydra chose

    @property
    def status(self) -> str:
        return self.summary.get("status") or "unfinished"

    @property
    def monitor(self) -> str:
        """What picked the run's best epoch (trainer.monitor; val_acc in runs from before it)."""
        return monitor_of(self.config)

    @cached_property
    def class_f1(self) -> dict[str, float]:
        """Each class's test F1 from per_class.csv, in the data set's order; none without one."""
        rows = read_csv_rows(self.path / PER_CLASS_CSV)
        return {row["class"]: float(row["f1"]) for row in rows if row.get("f1")}

    def value(self, key: str) -> Any:
        """A config value, typed as the run saw it; a null one as its override typed it (`null`),
        if any; a list as JSON. Config groups are named by the report (SweepReport.value), which
        sees every run."""
        configured = self.config.get(key)
        if configured is None:
            return self.overrides.get(key)
        return json.dumps(configured) if isinstance(configured, list) else configured


def find_runs(paths: Iterable[Path]) -> list[RunRecord]:
    """Every run directory at or below `paths`, once each, in job order."""
    found: set[Path] = set()
    for path in paths:
        if not path.is_dir():
            raise UserError(f"{path}: no such directory")
        for marker in RUN_MARKERS:
            found.update(run_dir_of(hit) for hit in path.rglob(Path(marker).name) if is_marker(hit))
    records = [read_run(run_dir) for run_dir in found]
    return sorted(records, key=lambda r: (str(r.path.parent), r.job is None, r.job, str(r.path)))


def is_marker(hit: Path) -> bool:
    """config.yaml and summary.json of a run, or the overrides.yaml inside its .hydra/."""
    if hit.name == "overrides.yaml":
        return hit.parent.name == ".hydra"
    return hit.parent.name != ".hydra"


def run_dir_of(marker: Path) -> Path:
    return marker.parent.parent if marker.parent.name == ".hydra" else marker.parent


def read_run(run_dir: Path) -> RunRecord:
    rows = read_csv_rows(run_dir / "metrics.csv")
    hydra = (read_yaml(run_dir / ".hydra" / "hydra.yaml") or {}).get("hydra") or {}
    config = flatten(read_run_config(run_dir))
    log_file = run_dir / f"{(hydra.get('job') or {}).get('name') or 'train'}.log"
    return RunRecord(
        path=run_dir,
        job=job_number(run_dir, hydra),
        overrides=read_overrides(run_dir / ".hydra" / "overrides.yaml"),
        config=config,
        summary=read_summary(run_dir, rows, monitor_of(config), log_file),
        val_acc=[float(row["val_acc"]) for row in rows if row.get("val_acc")],
        choices=group_choices(hydra),
    )


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """config.yaml, as the run resolved it; for a job refused before it wrote one (a bad value),
    the config Hydra composed for it, resolved alike, so that its values read as its peers'."""
    saved = read_yaml(run_dir / "config.yaml")
    if saved is not None:
        return saved
    composed = read_yaml(run_dir / ".hydra" / "config.yaml") or {}
    try:
        return OmegaConf.to_container(OmegaConf.create(composed), resolve=True)
    except (OmegaConfBaseException, ValueError):  # a resolver only the run registers
        return composed


def read_summary(
    run_dir: Path, rows: list[dict[str, str]], monitor: str, log_file: Path
) -> dict[str, Any]:
    """summary.json; for a run it says is `running`, what metrics.csv says so far, and whether
    it still runs (a process holds its lock) or was killed without a word (SIGKILL, as the
    out-of-memory killer sends). A run without one that logged an error (a job the config
    checks refused) `failed` with that error; one kept from training `not started`, with why."""
    summary = read_json(run_dir / "summary.json")
    if summary is None:
        error = logged_error(log_file)
        so_far = summary_so_far(rows, monitor)
        if not error and (why := logged_error(log_file, NOT_STARTED_LINE)):
            return {**so_far, "status": "not started", "error": why}
        return {**so_far, "status": "failed", "error": error} if error else so_far
    if summary.get("status") == "running":
        so_far = summary_so_far(rows, monitor)
        return {**so_far, "status": "running" if in_use(run_dir) else "killed"}
    return summary


def logged_error(log_file: Path, said: re.Pattern = ERROR_LINE) -> str | None:
    """The last error line of a run's log (`error: model.width must be ...`), without its
    prefix (or the last line that matches `said`); None where it logged none or has no log."""
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return None
    errors = [match[1] for line in lines if (match := said.match(line))]
    return errors[-1].strip() if errors else None


def monitor_of(config: dict[str, Any]) -> str:
    return config.get("trainer.monitor") or "val_acc"


def in_use(run_dir: Path) -> bool:
    try:
        lock_run_dir(run_dir).close()
    except UserError:
        return True
    return False


def job_number(run_dir: Path, hydra: dict[str, Any]) -> int | None:
    """A job directory's own number, which is Hydra's job number unless that directory held
    another job's run (sweeps.numbering); else Hydra's (a subdir of another name)."""
    if run_dir.name.isdigit():
        return int(run_dir.name)
    number = (hydra.get("job") or {}).get("num")
    return number if isinstance(number, int) else None


def group_choices(hydra: dict[str, Any]) -> dict[str, str]:
    """The option of each config group, as .hydra/hydra.yaml recorded it (`model` -> `cnn`), by
    the group's dotted key as in config.yaml; Hydra's own groups (hydra/launcher) left out."""
    choices = (hydra.get("runtime") or {}).get("choices") or {}
    return {
        group.replace("/", "."): "null" if option is None else str(option)
        for group, option in choices.items()
        if not group.startswith("hydra/")
    }


def read_overrides(path: Path) -> dict[str, str]:
    """`model.depth=2` -> {"model.depth": "2"}; `+key`, `++key` and `~key` by their key."""
    overrides = {}
    for item in read_yaml(path) or []:
        key, _, value = str(item).partition("=")
        overrides[key.lstrip("+~")] = value
    return overrides


def summary_so_far(rows: list[dict[str, str]], monitor: str = "val_acc") -> dict[str, Any]:
    """A job without summary.json (running, or killed): its best epoch by `monitor` (the first
    of a tie) and time so far."""
    summary: dict[str, Any] = {"status": "unfinished", "epochs": len(rows)}
    scored = [row for row in rows if row.get(monitor)]
    if scored:
        sign = -1 if MONITORS.get(monitor) == "min" else 1
        best = max(scored, key=lambda row: (sign * float(row[monitor]), -int(row["epoch"])))
        summary.update(best_val_acc=float(best["val_acc"]), best_epoch=int(best["epoch"]))
        summary.update(monitor=monitor, best_score=float(best[monitor]))
    if rows:
        summary["train_time_s"] = sum(float(row["train_seconds"]) for row in rows)
    return summary


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys; a mapping's own key also maps to it (for group names)."""
    flat: dict[str, Any] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            flat[dotted] = value
            if isinstance(value, dict):
                flat.update(flatten(value, f"{dotted}."))
    return flat


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
