"""What a launcher gets back from a sweep's job (Hydra's JobReturn), and the record the job left:
its run directory and summary.json, which say how the run ended (the Slurm launcher's retries
and fail-fast, the search's pruned trials read it there)."""

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from multiclass.records.artifacts import read_json


def run_dir(result: Any) -> Path | None:
    """The run directory of a job that returned `result` (Hydra's JobReturn); None where its
    Hydra config does not say (no result, or a job that never composed one)."""
    hydra_cfg = getattr(result, "hydra_cfg", None)
    output_dir = OmegaConf.select(hydra_cfg, "hydra.runtime.output_dir") if hydra_cfg else None
    return Path(output_dir) if output_dir else None


def summary_of(result: Any) -> dict[str, Any]:
    """The summary.json of the job that returned `result`; {} where it has none."""
    folder = run_dir(result)
    return (read_json(folder / "summary.json") or {}) if folder else {}
