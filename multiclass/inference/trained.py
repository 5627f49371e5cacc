"""A finished run's model, rebuilt from its run directory, predicting class indices and the
probability of every class by its head's own rule (multiclass.heads)."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from multiclass.datasets.image_folder import ImageDecoding, image_folder
from multiclass.datasets.table_file import is_frame, transform_rows
from multiclass.device.runtime import Runtime
from multiclass.engine import Task, all_outputs
from multiclass.errors import UserError
from multiclass.heads import Head
from multiclass.records.artifacts import read_config
from multiclass.records.checkpoint import read_checkpoint, rebuild
from multiclass.records.preprocess import load_preprocess

CHECKPOINT = "model.pt"
CONFIG = "config.yaml"


@dataclass(frozen=True)
class TrainedRun:
    """The model of `run_dir` with what it was trained on; `predict` and `predict_proba` take
    an array or tensor of inputs (N, *input_shape), or one input (*input_shape), and for a
    run on a table (dataset=table) a pandas DataFrame of its columns, transformed first."""

    run_dir: Path
    checkpoint: Path
    config: DictConfig
    task: Task  # the engine's view of the model: evaluate and all_outputs take it
    class_names: list[str]
    input_shape: tuple[int, ...]
    # How the run prepared its inputs, for prediction to do the same: a table run's fitted
    # transform (preprocess.pkl), an image folder run's ImageDecoding; None: nothing to repeat.
    preprocess: Any = None

    @property
    def head(self) -> Head:
        return self.task.head

    @property
    def temperature(self) -> float:
        """trainer.calibrate's fitted temperature (model.pt's `temperature`), which divides the
        logits before the probabilities (Head.tempered); 1.0 for a run that fitted none."""
        return self.task.temperature

    @property
    def batch_size(self) -> int:
        return int(OmegaConf.select(self.config, "trainer.eval_batch_size", default=1024))

    @property
    def table_transform(self) -> Any:
        """A table run's fitted transform; None for any other run."""
        is_image_decoding = isinstance(self.preprocess, ImageDecoding)
        return None if is_image_decoding else self.preprocess

    def predict(self, x: Any) -> np.ndarray:
        """Class indices (N,), by the head's rule; `class_names[i]` names class i."""
        return self.head.predict(self.outputs(x)).numpy()

    def predict_proba(self, x: Any) -> np.ndarray:
        """(N, k) probabilities of the k classes, tempered by `temperature`; their argmax is
        `predict`'s class."""
        return self.task.probabilities(self.outputs(x)).numpy()

    @torch.no_grad()
    def outputs(self, x: Any) -> torch.Tensor:
        """The model's float outputs (N, head width), computed as training evaluated them."""
        return all_outputs(self.task, self.as_inputs(x), self.batch_size).cpu()

    def as_inputs(self, x: Any) -> torch.Tensor:
        """`x` as a batch the model takes: uint8 pixels stay (scaled to [0, 1] batch by batch,
        as training stored them), other numbers become float32 as they are, and a table's
        rows are transformed as its training rows were."""
        if self.table_transform is not None and is_frame(x):
            x = transform_rows(self.table_transform, x, "inputs")
        try:
            tensor = torch.as_tensor(x if isinstance(x, torch.Tensor) else np.asarray(x))
        except (TypeError, ValueError, RuntimeError):
            raise UserError(f"inputs must be numbers, got {type(x).__name__}") from None
        if tuple(tensor.shape) == self.input_shape:
            tensor = tensor.unsqueeze(0)
        if tuple(tensor.shape[1:]) != self.input_shape:
            raise UserError(
                f"inputs of shape {tuple(tensor.shape)}: the model takes"
                f" (N, {', '.join(map(str, self.input_shape))})"
            )
        if tensor.dtype != torch.uint8:
            tensor = tensor.float()
        return tensor.to(self.task.runtime.device)


def load_run(run_dir: Path | str, checkpoint: str = CHECKPOINT) -> TrainedRun:
    """The model a run saved (model.pt, or another checkpoint of the same format, such as
    best.pt), on the CPU in eval mode; a one-line UserError if it cannot be had safely."""
    run_dir = Path(run_dir)
    check_run_dir(run_dir, checkpoint)
    path = run_dir / checkpoint
    content = read_checkpoint(path)
    model, criterion, head = rebuild(path, content)
    runtime = Runtime(torch.device("cpu")).fitted_to(model)
    # No optimizer: evaluating and predicting never step one.
    temperature = float(content.get("temperature", 1.0))
    task = Task(  # type: ignore[arg-type]
        runtime.place(model), criterion, head, None, runtime, temperature=temperature
    )
    config = read_config(run_dir / CONFIG)
    input_shape = tuple(content["input_shape"])
    preprocess = load_preprocess(run_dir, content)
    if preprocess is None and builds(config.dataset, image_folder):
        preprocess = ImageDecoding.of_shape(input_shape)  # the shape its images were decoded to
    return TrainedRun(
        run_dir=run_dir,
        checkpoint=path,
        config=config,
        task=task,
        class_names=list(content["class_names"]),
        input_shape=input_shape,
        preprocess=preprocess,
    )


def builds(node: DictConfig, builder: Callable[..., Any]) -> bool:
    """Whether a config node's _target_ is `builder`."""
    return node.get("_target_") == f"{builder.__module__}.{builder.__qualname__}"


def check_run_dir(run_dir: Path, checkpoint: str) -> None:
    """A run directory holds its config and the checkpoint; say why one does not."""
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a run directory (no such directory)")
    for name in (CONFIG, checkpoint):
        if not (run_dir / name).is_file():
            raise UserError(f"{run_dir}: not a finished run directory (no {name}){ended(run_dir)}")


def ended(run_dir: Path) -> str:
    """How the run ended, from its summary.json, for a run that left no checkpoint."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
        status, error = summary["status"], summary.get("error")
    except (OSError, ValueError, TypeError, KeyError):  # no summary, or not one of ours
        return ""
    return f"; the run {status}" + (f": {error}" if error else "")
