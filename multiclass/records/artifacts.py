"""The files of a run directory, each written whole or not at all (write, then rename), and
the folder itself: writable, and written by one run at a time."""

import csv
import dataclasses
import errno
import fcntl
import hashlib
import io
import json
import os
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from multiclass.errors import UserError, describe_os_error

if TYPE_CHECKING:  # torch loads only where weights are digested
    from omegaconf import DictConfig
    from torch import nn


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path`."""
    payload = data.encode() if isinstance(data, str) else data
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "xb") as file:
            file.write(payload)
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        name_file(error, path)
        raise


def append_whole(path: Path, data: str) -> None:
    """Append `data` in one write; if the write fails or falls short (a full disk), cut the
    file back to where it was, so no row is left torn."""
    payload = data.encode()
    with open(path, "ab", buffering=0) as file:
        size = file.seek(0, os.SEEK_END)
        try:
            if file.write(payload) != len(payload):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as error:
            file.truncate(size)
            name_file(error, path)
            raise


def name_file(error: BaseException, path: Path) -> None:
    """Let an OSError name `path`, the file being written, not its temporary (gone now)."""
    if isinstance(error, OSError) and error.errno is not None:
        error.filename = str(path)


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
            append_whole(self.path, text.getvalue())
        else:
            write_atomic(self.path, text.getvalue())
            self.started = True


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """A CSV file of `rows` (mappings with the same keys, in column order), written whole."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, text.getvalue())


LOCK = ".lock"


def writable_folder(path: Path, setting: str) -> None:
    """Create `path` if it is not there and check that a file can be written in it; a
    UserError naming `setting`, the config key that chose the folder, if not (a byte is
    written, so a disk already full is one too)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path) as probe:
            probe.write(b"0")
            probe.flush()
    except OSError as error:
        error.filename = None  # the message names the folder already
        raise UserError(
            f"cannot write the output folder {path} ({setting}): {describe_os_error(error)}"
        ) from None


def lock_run_dir(run_dir: Path) -> IO[bytes]:
    """An exclusive lock on `run_dir` (its .lock file), held while the returned file is open.
    The system drops it when the process ends, so a killed run leaves no stale lock behind;
    a UserError when another process holds it."""
    file = open(run_dir / LOCK, "ab")  # noqa: SIM115 (the caller holds the lock by holding it)
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.close()
        raise UserError(
            f"{run_dir} is in use by another run: wait until it ends, or choose another"
            " directory (hydra.run.dir)"
        ) from None
    return file


def shown_path(path: Path | str) -> str:
    """`path` as a line to a person shows it: relative to the current directory where it lies
    under it, as it was typed (`hydra.run.dir=outputs/x`), since Hydra and the run hold it
    absolute; elsewhere as it is."""
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


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


def processes_that_trained(run_dir: Path) -> int:
    """How many processes trained the run in `run_dir`, which a resume and a rerun start
    again: its summary's record, since a run of torchrun or of a Slurm job's tasks has
    device.processes 1 in its config; the config's where the summary has none (older runs)."""
    recorded = (read_json(run_dir / "summary.json") or {}).get("processes")
    if isinstance(recorded, int) and recorded > 0:
        return recorded
    return read_config(run_dir / "config.yaml").device.get("processes", 1)


def processes_to_restart(run_dir: Path, overrides: Sequence[str], configured: int) -> int:
    """How many processes train the run in `run_dir` again (a resume, a rerun): `configured`
    where the command line names device.processes, else as many as trained it."""
    if any(override.startswith("device.processes=") for override in overrides):
        return configured
    return processes_that_trained(run_dir)


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a run's CSV file (metrics.csv, layers.csv) as text; none when it is absent."""
    try:
        with open(path, newline="") as file:
            return list(csv.DictReader(file))
    except OSError:
        return []


# Where a `_target_` that runs saved in their config.yaml lives now: a run saved before its
# module moved is resumed, rerun and evaluated as it was trained.
MOVED_TARGETS = {
    "multiclass.runtime.prepare": "multiclass.device.runtime.prepare",
    "multiclass.lifecycle.runtime.prepare": "multiclass.device.runtime.prepare",
}


def read_config(path: Path) -> "DictConfig":
    """A run's config.yaml, or one line saying why it cannot be used (where YAML broke)."""
    from omegaconf import DictConfig, OmegaConf

    try:
        config = OmegaConf.load(path)
    except Exception as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"{path}: not a readable config ({type(error).__name__}{where})") from None
    if not isinstance(config, DictConfig) or "dataset" not in config:
        raise UserError(f"{path}: not a run's config (no dataset node)")
    device = config.get("device")
    if OmegaConf.is_dict(device) and device.get("_target_") in MOVED_TARGETS:
        device._target_ = MOVED_TARGETS[device._target_]
    return config
