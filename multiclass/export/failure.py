"""An exporter's failure as one line: the innermost error of its chain (torch's exporters wrap
the one that says why in pages of advice) and the line of the model's code that caused it."""

import sysconfig
import traceback
from pathlib import Path

import torch

from multiclass.records.artifacts import shown_path

LONGEST = 240  # characters of the error's first line kept, by whole sentences


def chain(error: BaseException) -> list[BaseException]:
    """`error` and what caused it, outermost first."""
    found: list[BaseException] = []
    while error is not None and error not in found:
        found.append(error)
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return found


def reason(error: BaseException) -> str:
    """`Type: first line` of the innermost error, and `(at FILE:LINE: code)` where a frame of
    the model's own code is in the tracebacks."""
    innermost = chain(error)[-1]
    lines = [line.strip() for line in str(innermost).splitlines() if line.strip()]
    text = f"{type(innermost).__name__}: {shortened(lines[0]) if lines else ''}"
    where = model_frame(error)
    return text.strip().rstrip(":") + (f" (at {where})" if where else "")


def shortened(line: str) -> str:
    """`line`, or where it is longer than LONGEST its sentences that fit (at least its first
    LONGEST characters)."""
    if len(line) <= LONGEST:
        return line
    end = line.rfind(". ", 0, LONGEST)
    return line[: end + 1] if end > 0 else line[:LONGEST] + "..."


def model_frame(error: BaseException) -> str | None:
    """The deepest frame of the innermost error that has one, in code that is neither torch's,
    the exporters', the standard library's nor this package's: the user's model's."""
    skipped = [
        Path(torch.__file__).parent,
        Path(sysconfig.get_paths()["stdlib"]),
        Path(__file__).parents[1],
    ]
    frames = [
        frame
        for each in chain(error)
        for frame in traceback.extract_tb(each.__traceback__)
        if Path(frame.filename).is_file() and not outside(Path(frame.filename), skipped)
    ]
    if not frames:
        return None
    last = frames[-1]
    return f"{shown_path(last.filename)}:{last.lineno}: {(last.line or '').strip()}"


def outside(path: Path, folders: list[Path]) -> bool:
    """Whether `path` lies in one of `folders` or in an exporter's package."""
    resolved = path.resolve()
    exporters = ("onnx", "onnxscript", "onnxruntime")
    in_exporter = any(part in exporters for part in resolved.parts)
    return in_exporter or any(resolved.is_relative_to(folder.resolve()) for folder in folders)
