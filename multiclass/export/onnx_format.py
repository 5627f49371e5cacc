"""model.onnx: torch's default ONNX exporter (torch.export, then onnxscript's translation) with
a dynamic batch dimension, and the file run again by onnxruntime, the runtime a user ships it
with. onnx, onnxscript and onnxruntime are the `export` extra."""

import contextlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from multiclass.errors import UserError
from multiclass.export.bundle import INPUT, OUTPUT
from multiclass.export.failure import reason

FILE = "model.onnx"
NEEDED = ("onnx", "onnxscript", "onnxruntime")


def require() -> str:
    """onnxruntime's version; a UserError naming the extra when a package it needs is missing.
    Asked before anything is loaded or written."""
    import importlib

    for name in NEEDED:
        try:
            module = importlib.import_module(name)
        except ImportError:
            raise UserError(
                f"--format onnx needs {', '.join(NEEDED)}; {name} is not installed:"
                " pip install multiclass[export]"
            ) from None
    return str(module.__version__)


def write(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    """`model` as one ONNX file (its weights inside) taking a batch of any size; what the
    exporter refuses is one line."""
    batch = torch.export.Dim("batch")
    try:
        with quietly():
            torch.onnx.export(
                model,
                (example,),
                str(path),
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_shapes=({0: batch},),
                external_data=False,
                verbose=False,
            )
    except Exception as error:  # torch.export's and the translation's errors have no common base
        raise UserError(f"onnx export failed: {reason(error)}") from None


@contextlib.contextmanager
def quietly() -> Iterator[None]:
    """The exporter's progress lines, graph dumps, log records and warnings kept off the user's
    terminal: the command prints its own lines, and a failure is one. Log records are held
    back by logging.disable, as torch's loggers set levels and handlers of their own."""
    disabled = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield
    finally:
        logging.disable(disabled)


def outputs(path: Path, x: torch.Tensor, batch_size: int) -> np.ndarray:
    """onnxruntime's outputs of the file at `path` on inputs `x`, batch by batch."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batches = [session.run([OUTPUT], {INPUT: part.numpy()})[0] for part in x.split(batch_size)]
    return np.concatenate(batches)
