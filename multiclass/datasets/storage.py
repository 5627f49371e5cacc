"""Inputs kept on disk (`dataset.storage=disk`): a split decoded once into a cache file, mapped
read-only, and read batch by batch, so a data set larger than memory trains without the
process's memory growing with it.

The cache is a plain `.npy` file (NumPy's own format: a header, then the rows as one C-order
array) in a folder named by a key of what went into it: the source files' names, sizes and
modification times, and how they were decoded. A changed source gives a new key, so a stale
cache is never read. A cache is built in a `.partial` folder and renamed into place when
complete, so a killed build leaves none half written; `meta.json` records the array's shape
and a BLAKE2 digest of its bytes, checked on every open (a truncated or corrupt cache is
rebuilt, with a warning line).

Why `.npy` and not Arrow, WebDataset or MDS: the rows are fixed-size arrays read at random
positions of a seeded order, which a memory map does with one copy and no decoding; shard
formats are made for sequential streaming and would need our own shuffle buffer, changing the
batches a seed draws. Pages of a memory map count towards the process's memory as they are
touched, so a large cache is read with plain file reads, row by row, which map no page (they
come from the system's page cache); only a small one is read from its map."""

import hashlib
import json
import logging
import math
import mmap
import os
import shutil
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from multiclass.errors import UserError
from multiclass.settings import check_value

log = logging.getLogger("multiclass")

AUTO_SHARE = 0.25  # storage=auto: on disk when the decoded inputs pass this share of memory
CACHE_VERSION = 2  # part of every key: a new layout or decoding never reads an old cache (2:
# images with transparency composited on white)
# A cache file larger than this is read row by row with file reads, never from its map: a map's
# pages count towards the process as a read touches them (the kernel maps the pages around each
# row too), and dropping them after each read (madvise) made every read fault them in again, 3x
# the time of the file reads on 64x64 RGB rows. A file no larger is copied from its map, the
# fastest read of small rows (MNIST's 784 bytes: a third of the file reads' time); its pages can
# never hold more than its size.
MAPPED_BYTES = 64 * 2**20
READ_BYTES = 4 * 2**20  # a prefetch thread reads whole batches, about this much at a time
DATA_FILE, META_FILE = "inputs.npy", "meta.json"
T = TypeVar("T")


class Mapping:
    """One cache file mapped read-only: its rows as a NumPy array, shared by every view."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, "rb") as file:
            shape, dtype = read_header(file)
            self.offset = file.tell()
            self.map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        self.array = np.frombuffer(
            self.map, dtype=dtype, count=math.prod(shape), offset=self.offset
        ).reshape(shape)
        self.row_bytes = self.array[0].nbytes if len(self.array) else 0

    def rows(self, positions: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """A copy of the rows at `positions`, into the first rows of `out` when given: from the
        map for a small file, with file reads for a large one (MAPPED_BYTES)."""
        if out is None:
            out = np.empty((len(positions), *self.array.shape[1:]), self.array.dtype)
        out = out[: len(positions)]
        if len(self.map) <= MAPPED_BYTES:  # positions are rows of the map: "clip" never clips,
            return self.array.take(positions, axis=0, out=out, mode="clip")  # "raise" copies
        self.read_rows(positions, memoryview(out).cast("B"))
        return out

    def read_rows(self, positions: np.ndarray, out: memoryview) -> None:
        """The rows at `positions` read from the file into `out`, one system call a row
        (`os.preadv` reads at an offset: no seek, no position shared between threads)."""
        size = self.row_bytes
        with open(self.path, "rb", buffering=0) as file:
            descriptor = file.fileno()
            for index, position in enumerate(positions.tolist()):
                os.preadv(
                    descriptor,
                    [out[index * size : (index + 1) * size]],
                    self.offset + position * size,
                )


@dataclass(frozen=True)
class DiskArray:
    """Rows of a mapped cache, in `positions` order: what a split's `x` is on disk. Indexing
    selects rows and gives another DiskArray (nothing is read); `read` and `index_select`
    read rows into a tensor. It stays on the CPU: batches move to the device as read."""

    mapping: Mapping
    positions: np.ndarray  # int64 row numbers of the mapping

    @classmethod
    def whole(cls, mapping: Mapping, start: int = 0, stop: int | None = None) -> "DiskArray":
        stop = len(mapping.array) if stop is None else stop
        return cls(mapping, np.arange(start, stop, dtype=np.int64))

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.positions), *self.mapping.array.shape[1:]))

    @property
    def dtype(self) -> torch.dtype:
        return torch.from_numpy(np.empty(0, self.mapping.array.dtype)).dtype

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, key: Any) -> "DiskArray":
        return DiskArray(self.mapping, self.positions[as_index(key)])

    def read(self, key: Any = slice(None), out: torch.Tensor | None = None) -> torch.Tensor:
        """The rows `key` selects (a slice, indices or a mask), read into a tensor: the first
        rows of `out` when given."""
        positions = self.positions[as_index(key)]
        rows = self.mapping.rows(positions, None if out is None else out.numpy())
        return torch.from_numpy(rows)

    def index_select(self, dim: int, index: torch.Tensor) -> torch.Tensor:
        """As torch's `index_select` along rows (dim 0), read from disk."""
        assert dim == 0, "DiskArray selects rows only"
        return self.read(index)

    def to(self, device: torch.device) -> "DiskArray":
        return self  # stays on disk; each batch is moved as it is read

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point


Inputs = torch.Tensor | DiskArray


def as_index(key: Any) -> Any:
    """A torch index (tensor of indices or mask) as NumPy's; slices and arrays as they are."""
    return key.cpu().numpy() if isinstance(key, torch.Tensor) else key


def gather(x: Inputs, key: Any, out: torch.Tensor | None = None) -> torch.Tensor:
    """Rows of a split's inputs as a tensor: indexed in memory, read from disk (into the first
    rows of `out` when given)."""
    return x.read(key, out) if isinstance(x, DiskArray) else x[key]


def as_float(x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Model inputs from stored ones: uint8 pixels (0..255) become floats in [0, 1], in the
    first rows of `out` when given (the same values either way)."""
    if x.is_floating_point():
        return x
    if out is None:
        return x.float().div_(255)
    return out[: len(x)].copy_(x).div_(255)


def unheaped(shape: Sequence[int], dtype: torch.dtype, channels_last: bool = False) -> torch.Tensor:
    """An empty tensor in an anonymous memory map of its own, outside malloc's heap, unmapped
    when the tensor is freed; an image batch (N, C, H, W) laid out channels_last if asked.
    Why: while a run has malloc keep freed memory (device.runtime.keep_freed_memory), a
    large tensor made afresh for each batch grew the heap by most of its size again and again,
    the blocks freed before split by the small allocations made between them (+48 MB a batch of
    1,024 64x64 RGB images as floats, +460 MB over a test split of 10,000)."""
    if channels_last:
        n, c, h, w = shape
        return unheaped((n, h, w, c), dtype).permute(0, 3, 1, 2)
    count = math.prod(shape)
    room = max(1, count)  # neither a map nor frombuffer takes 0 bytes
    buffer = mmap.mmap(-1, room * torch.empty((), dtype=dtype).element_size())
    return torch.frombuffer(buffer, dtype=dtype, count=room)[:count].view(tuple(shape))


class Staging:
    """The two buffers that every batch of an evaluation pass is read into from disk and
    converted into as floats (on the CPU; in channels_last, as Runtime.layout would copy them
    to), made once for the pass outside malloc's heap (`unheaped`): a pass over a split then
    holds one batch, however large the split."""

    def __init__(
        self, x: Inputs, batch_size: int, device: torch.device, channels_last: bool
    ) -> None:
        rows = (min(batch_size, len(x)), *x.shape[1:])
        convert = not x.is_floating_point() and device.type == "cpu"
        self.stored = unheaped(rows, x.dtype) if isinstance(x, DiskArray) else None
        # Off the CPU, batches become floats on the device, whose caching allocator reuses them.
        laid_out = channels_last and len(rows) == 4
        self.floats = unheaped(rows, torch.float32, laid_out) if convert else None
        self.device = device

    def batch(self, x: Inputs, rows: slice) -> torch.Tensor:
        """The rows of `x` as model inputs on the device, in the buffers: valid until the next
        batch is taken."""
        stored = gather(x, rows, self.stored).to(self.device)  # a blocking copy: reusable
        return as_float(stored, self.floats)


def training_batches(
    x: Inputs, batches: Sequence[torch.Tensor], device: torch.device
) -> Iterator[torch.Tensor]:
    """The inputs of each batch of row indices, on `device`. In memory, gathered in place; on
    disk, read in a background thread a few batches at a time (READ_BYTES) while those before
    them train, into pinned memory on CUDA for an asynchronous copy. Reading several batches
    at once keeps the hand-offs between threads few where batches are small (1,875 an epoch
    of MNIST at batch 32)."""
    if not isinstance(x, DiskArray):
        yield from (x.index_select(0, batch) for batch in batches)
        return
    if not batches:
        return
    pin = device.type == "cuda"
    per_read = max(1, READ_BYTES // max(1, x.mapping.row_bytes * len(batches[0])))
    groups = [batches[start : start + per_read] for start in range(0, len(batches), per_read)]

    def read(rows_of_group: np.ndarray) -> torch.Tensor:
        rows = x.read(rows_of_group)  # NumPy only: a torch op here would start a second
        return rows.pin_memory() if pin else rows  # OpenMP team, fighting the training's

    indices = [torch.cat(group).cpu().numpy() for group in groups]
    for group, rows in zip(groups, prefetched(read, indices), strict=True):
        for part in rows.split([len(batch) for batch in group]):
            yield part.to(device, non_blocking=pin)


def prefetched(read: Callable[[Any], T], keys: Iterable[Any]) -> Iterator[T]:
    """`read(key)` of each key in turn, the next read running in a thread while the caller
    uses the current result; a read's error is raised where its result is taken."""
    keys = list(keys)
    if not keys:
        return
    with ThreadPoolExecutor(1, thread_name_prefix="multiclass-prefetch") as pool:
        pending = pool.submit(read, keys[0])
        for following in [*keys[1:], None]:
            current = pending.result()
            if following is not None:
                pending = pool.submit(read, following)
            yield current


def choose_storage(storage: str, decoded_bytes: int) -> str:
    """memory or disk: `storage`, or for auto, disk when the decoded inputs would take more
    than AUTO_SHARE of this machine's memory."""
    check_value("dataset.storage", storage)
    if storage != "auto":
        return storage
    memory = physical_memory()
    return "disk" if memory is not None and decoded_bytes > AUTO_SHARE * memory else "memory"


def physical_memory() -> int | None:
    """This machine's memory in bytes, where the system says (not on Windows)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/multiclass, or ~/.cache/multiclass."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "multiclass"


def cache_key(kind: str, files: Iterable[Path], decoding: Any) -> str:
    """The key of a cache of `files` decoded as `decoding`: a digest of the layout's version,
    the kind, how the files were decoded, and each file's path, size and modification time
    (as Hugging Face datasets key local files: their bytes would take a full read per run)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps([CACHE_VERSION, kind, decoding], default=str).encode())
    for path in files:
        stat = path.stat()
        digest.update(f"\0{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return f"{kind}-{digest.hexdigest()}"


@dataclass(frozen=True)
class Cached:
    """An opened cache: the mapped inputs, meta.json, and the small arrays kept beside them."""

    folder: Path
    mapping: Mapping
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    def whole(self, start: int = 0, stop: int | None = None) -> DiskArray:
        return DiskArray.whole(self.mapping, start, stop)


@dataclass(frozen=True)
class Cache:
    """The cache folder of one key under `root`."""

    root: Path
    key: str

    @classmethod
    def under(cls, cache_dir: str | None, key: str) -> "Cache":
        """The cache of `key` in dataset.cache_dir, or by default in default_cache_dir()."""
        root = default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()
        return cls(root, key)

    @property
    def folder(self) -> Path:
        return self.root / self.key

    def open(self) -> Cached | None:
        """The mapped cache, or None when there is none; a cache that fails its checks is
        removed (for the caller to build again) with a warning line."""
        if not self.folder.is_dir():
            return None
        problem = cache_problem(self.folder)
        if problem is None:
            meta = json.loads((self.folder / META_FILE).read_text())
            arrays = {name: np.load(self.folder / f"{name}.npy") for name in meta["arrays"]}
            return Cached(self.folder, Mapping(self.folder / DATA_FILE), meta, arrays)
        log.warning("warning: cache %s is %s: building it again", self.folder, problem)
        shutil.rmtree(self.folder, ignore_errors=True)
        return None

    def build(
        self,
        shape: tuple[int, ...],
        dtype: np.dtype,
        rows: Iterable[np.ndarray | None],
        arrays: dict[str, np.ndarray] | None = None,
    ) -> Cached:
        """Write `rows` (one array of `shape[1:]` each; None: a row left out, listed in
        meta.json's left_out) and `arrays` (small ones, loaded into memory when opened) into a
        new cache, then rename it into place."""
        arrays = arrays or {}
        log.info("writing %d rows into the cache %s", shape[0], self.folder)
        partial = self.root / f"{self.key}.partial-{socket.gethostname()}-{os.getpid()}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            remove_stale_partials(self.root, self.key)
            partial.mkdir()
            written, left_out, digest = write_rows(partial / DATA_FILE, shape, dtype, rows)
            for name, array in arrays.items():
                np.save(partial / f"{name}.npy", array)
            meta = {
                "shape": [written, *shape[1:]],
                "blake2b": digest,
                "left_out": left_out,
                "arrays": sorted(arrays),
            }
            (partial / META_FILE).write_text(json.dumps(meta))
            try:
                partial.rename(self.folder)
            except OSError:  # another process finished the same cache first: use theirs
                shutil.rmtree(partial, ignore_errors=True)
        except OSError as error:
            shutil.rmtree(partial, ignore_errors=True)
            raise UserError(
                f"cannot write the data cache in {self.root}: {error.strerror or error}"
                " (set dataset.cache_dir to a writable folder with room)"
            ) from None
        except BaseException:  # a bad image with on_bad_image=error, Ctrl-C: no half cache
            shutil.rmtree(partial, ignore_errors=True)
            raise
        opened = self.open()
        assert opened is not None, f"{self.folder} was not readable once written"
        return opened


def remove_stale_partials(root: Path, key: str) -> None:
    """Remove the partial builds of `key` left on this host by processes no longer running
    (killed mid-build); those of running processes are theirs to finish."""
    prefix = f"{key}.partial-{socket.gethostname()}-"
    for partial in root.glob(f"{prefix}*"):
        pid = partial.name.removeprefix(prefix)
        if pid.isdigit() and not process_running(int(pid)):
            shutil.rmtree(partial, ignore_errors=True)


def process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # running, as another user
        return True
    return True


def write_rows(
    path: Path, shape: tuple[int, ...], dtype: np.dtype, rows: Iterable[np.ndarray | None]
) -> tuple[int, list[int], str]:
    """Write the rows as one .npy array, as they come (nothing is held in memory): the header
    first, sized for every row, then rewritten for the rows written. Returns the rows
    written, the indices of those left out (None) and the BLAKE2 digest of the file."""
    written, left_out = 0, []
    with open(path, "wb") as file:
        header = {
            "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
            "fortran_order": False,
            "shape": tuple(shape),
        }
        np.lib.format.write_array_header_1_0(file, header)
        header_end = file.tell()
        for index, row in enumerate(rows):
            if row is None:
                left_out.append(index)
                continue
            file.write(np.ascontiguousarray(row, dtype=dtype).tobytes())
            written += 1
        if written != shape[0]:  # NumPy pads a header for its first axis to grow in place
            end = file.tell()
            file.seek(0)
            np.lib.format.write_array_header_1_0(file, {**header, "shape": (written, *shape[1:])})
            assert file.tell() == header_end, "the rewritten header changed length"
            file.seek(end)
    return written, left_out, file_digest(path)


def read_header(file: Any) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype in a .npy file's header (NumPy's public readers), leaving the file
    at the first byte of the array."""
    version = np.lib.format.read_magic(file)
    reader = {1: np.lib.format.read_array_header_1_0, 2: np.lib.format.read_array_header_2_0}
    if version[0] not in reader:
        raise ValueError(f".npy format version {version}")
    shape, _, dtype = reader[version[0]](file)
    return shape, dtype


def file_digest(path: Path) -> str:
    """BLAKE2 of a file, read in chunks (its pages never count towards this process)."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as file:
        while chunk := file.read(2**22):
            digest.update(chunk)
    return digest.hexdigest()


def cache_problem(folder: Path) -> str | None:
    """What is wrong with a cache folder: meta.json missing or unreadable, the array's size
    not what its header says, or its digest not meta.json's."""
    try:
        meta = json.loads((folder / META_FILE).read_text())
        with open(folder / DATA_FILE, "rb") as file:
            shape, dtype = read_header(file)
            expected = file.tell() + math.prod(shape) * dtype.itemsize
        size = (folder / DATA_FILE).stat().st_size
    except (OSError, ValueError, KeyError) as error:
        return f"unreadable ({type(error).__name__})"
    if list(shape) != meta.get("shape") or size != expected:
        return f"truncated ({size:,} bytes where its header declares {expected:,})"
    if file_digest(folder / DATA_FILE) != meta.get("blake2b"):
        return "corrupt (its bytes differ from the digest written with it)"
    return None
