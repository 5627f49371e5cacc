"""model.ts: the model traced with torch.jit.trace, and loaded again in a fresh Python that
has only torch.

Why tracing and not torch.jit.script: a trace records the tensor operations one forward pass
runs, so it takes any model built of modules (ours, torchvision's, timm's, a user's class)
without the type annotations and the Python subset scripting demands. What it cannot record
is Python control flow that depends on the data (`if x.sum() > 0`): it would keep the branch the
example took, silently. So every TracerWarning is an error here, and the export fails in one
line. torch 2.14 deprecates torch.jit (its FutureWarning is not shown); the saved file loads
with torch.jit.load, with no Python source of the model."""

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from multiclass.errors import UserError
from multiclass.export.failure import reason

FILE = "model.ts"
# Run as `python -I -c LOADER MODEL INPUTS OUTPUTS BATCH`: isolated (no PYTHONPATH, no current
# folder on the path), so neither this package nor the user's model code can be reached by it.
LOADER = """
import sys
import torch

model = torch.jit.load(sys.argv[1])
x = torch.load(sys.argv[2])
with torch.no_grad():
    outputs = torch.cat([model(part) for part in x.split(int(sys.argv[4]))])
torch.save(outputs, sys.argv[3])
print("multiclass imported" if "multiclass" in sys.modules else "multiclass not imported")
"""
ELSEWHERE_SECONDS = 600


def write(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    """`model` traced on `example` and saved; a TracerWarning (a trace that would not hold for
    other inputs) or the trace check's mismatch is one line."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("error", torch.jit.TracerWarning)
            traced = torch.jit.trace(model, example)
        traced.save(str(path))
    except Exception as error:  # trace errors have no common base (a warning made an error)
        raise UserError(f"torchscript export failed: {reason(error)}") from None


def outputs_elsewhere(path: Path, x: torch.Tensor, batch_size: int, work: Path) -> np.ndarray:
    """The outputs of model.ts on `x` computed by a fresh, isolated Python that imports only
    torch, which must not have imported multiclass; `work`, a folder for the two tensors."""
    inputs, result = work / "inputs.pt", work / "outputs.pt"
    torch.save(x.contiguous(), inputs)
    command = [sys.executable, "-I", "-c", LOADER, str(path), str(inputs), str(result)]
    done = subprocess.run(
        [*command, str(batch_size)],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=ELSEWHERE_SECONDS,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise UserError(f"torchscript: {path.name} failed in a fresh Python: {last}")
    if done.stdout.strip() != "multiclass not imported":
        raise UserError(f"torchscript: loading {path.name} imported multiclass")
    return torch.load(result).numpy()
