"""The files of a run directory, each written whole or not at all (write, then rename)."""

import csv
import dataclasses
import hashlib
import io
import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch loads only where weights are digested
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
    """metrics.csv: written whole with its header and first row, then one whole row appended
    (a single write) as each epoch ends: never torn, and cheap for runs of 10,000 epochs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = False

    def rewrite(self, rows: list[Any]) -> None:
        """The file as exactly `rows` (a resumed run's, as its last.pt saved them)."""
        self.started = False
        self.extend(rows)

    def append(self, row: Any) -> None:
        self.extend([row])

    def extend(self, rows: list[Any]) -> None:
        """Add `rows` (dataclasses of one kind) in one write: an epoch's rows come whole."""
        if not rows:
            return
        values = [dataclasses.asdict(row) for row in rows]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(values[0]), lineterminator="\n")
        if not self.started:
            writer.writeheader()
        writer.writerows(values)
        if self.started:
            with open(self.path, "a") as file:
                file.write(text.getvalue())
        else:
            write_atomic(self.path, text.getvalue())
            self.started = True


def write_json(path: Path, content: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(content, indent=2) + "\n")


def weights_sha256(model: "nn.Module") -> str:
    """A digest of every parameter and buffer, by name: equal weights give equal digests."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file of a run, or None when it is absent (atomic writes leave none half written)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a run's CSV file (metrics.csv, layers.csv) as text; none when it is absent."""
    try:
        with open(path, newline="") as file:
            return list(csv.DictReader(file))
    except OSError:
        return []
