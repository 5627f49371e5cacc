"""One export: the run's model in a format, its bundle and README, checked against torch on
the run's test split, built in a hidden folder beside its destination and renamed into place
only when every check holds, so a failure leaves nothing half written."""

import copy
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch

from multiclass.errors import UserError
from multiclass.export import onnx_format, torchscript_format
from multiclass.export.bundle import (
    BUNDLE,
    OUTPUT,
    README,
    bundle,
    bundle_json,
    readme,
)
from multiclass.export.checks import Agreement, HeldOut, Reference, agreement, held_out
from multiclass.inference.trained import CHECKPOINT, TrainedRun, load_run
from multiclass.records.preprocess import PREPROCESS

FORMATS = {"onnx": onnx_format.FILE, "torchscript": torchscript_format.FILE}
EXPORT = "export"  # RUN_DIR/export/FORMAT by default


@dataclass(frozen=True)
class Exported:
    """Where an export went, what it holds, and its check."""

    out_dir: Path
    files: list[str]
    check: Agreement


def export_run(
    run_dir: Path, fmt: str, out: Path | None = None, checkpoint: str = CHECKPOINT
) -> Exported:
    """Export `run_dir`'s model as `fmt` into `out` (default RUN_DIR/export/FORMAT)."""
    if fmt == "onnx":
        onnx_format.require()
    run = load_run(run_dir, checkpoint)
    out = out if out is not None else run.run_dir / EXPORT / fmt
    check_destination(out)
    inputs = held_out(run)
    reference = Reference.of(run, inputs.x)
    staging = existing_parent(out) / f".{out.name}.partial-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        with tempfile.TemporaryDirectory(prefix="multiclass-export-") as work:
            check = write_export(run, fmt, staging, inputs, reference, Path(work))
        if not check.holds:
            raise UserError(check.line())
        publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when published
    return Exported(out, sorted(path.name for path in out.iterdir()), check)


def write_export(
    run: TrainedRun,
    fmt: str,
    folder: Path,
    inputs: HeldOut,
    reference: Reference,
    work: Path,
) -> Agreement:
    """The model, bundle.json, README.txt (and a table's preprocess.pkl) into `folder`, and
    the exported model's agreement with torch."""
    model = exportable(run.task.model)
    example = torch.zeros(2, *run.input_shape)
    path = folder / FORMATS[fmt]
    if fmt == "onnx":
        onnx_format.write(model, example, path)
        exported = onnx_format.outputs(path, inputs.x, run.batch_size)
        runtime = f"onnxruntime {onnx_format.require()}"
    else:
        torchscript_format.write(model, example, path)
        exported = torchscript_format.outputs_elsewhere(path, inputs.x, run.batch_size, work)
        runtime = f"torch {torch.__version__}, a fresh Python without multiclass"
    content = bundle(run, path.name, inputs.stored_dtype)
    if content["preprocessing"]["kind"] == "table":
        shutil.copyfile(run.run_dir / PREPROCESS, folder / PREPROCESS)
    (folder / BUNDLE).write_text(bundle_json(content))
    (folder / README).write_text(readme(content, fmt))
    rule, temperature = content[OUTPUT], content["temperature"]
    return agreement(fmt, runtime, inputs.split, reference, exported, rule, temperature)


def exportable(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of the run's model in eval mode with its weights in the default memory layout:
    channels_last is a speed setting of the CPU run, not part of the model shipped."""
    return copy.deepcopy(model).to(memory_format=torch.contiguous_format).eval()


def check_destination(out: Path) -> None:
    """`out` may be new, empty, or an export made before (replaced): never a folder of
    something else, which publishing would remove."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / BUNDLE).is_file():
        raise UserError(f"--out {out}: a folder that holds files but no {BUNDLE}: not an export")


def existing_parent(out: Path) -> Path:
    """The nearest folder above `out` that exists: where its staging folder is made, on the
    same file system, so that publishing is a rename."""
    parent = out.absolute().parent
    while not parent.is_dir():
        parent = parent.parent
    return parent


def publish(staging: Path, out: Path) -> None:
    """`staging` renamed to `out`; an export there before is moved aside first, then removed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{staging.name.rsplit('-', 1)[-1]}")
        out.rename(old)
    staging.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
