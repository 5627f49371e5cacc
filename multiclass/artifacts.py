"""The files of a run directory, each written whole or not at all (write, then rename)."""

import csv
import dataclasses
import hashlib
import io
import json
import os
import uuid
from pathlib import Path
from typing import Any

from torch import nn


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path`."""
    payload = data.encode() if isinstance(data, str) else data
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "xb") as file:
            file.write(payload)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class MetricsLog:
    """metrics.csv, one row per finished epoch; rewritten whole after each so it is never torn."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []

    def append(self, row: Any) -> None:
        self.rows.append(dataclasses.asdict(row))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(self.rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_atomic(self.path, text.getvalue())


def write_json(path: Path, content: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(content, indent=2) + "\n")


def weights_sha256(model: nn.Module) -> str:
    """A digest of every parameter and buffer, by name: equal weights give equal digests."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
