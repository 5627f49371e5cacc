"""Failures a user causes and can fix: the CLI reports them as one line, never a traceback;
and errors in a user's code or from torch, said with where they came from (a callback and its
event, a config group and key), or with Python's own traceback when the user asks for it."""

import json
import os
import pkgutil
import re
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class UserError(Exception):
    """Bad input: a config value, a missing data file, a device that is not there."""


class FailedIn(Exception):
    """An error raised in a component the config names (a callback, the loss, the model), with
    where it was raised in front: its text is the whole line, the error itself its cause."""


class TrainingDiverged(Exception):
    """The loss became NaN or infinite, or grew past `bound`; training stopped at `epoch`."""

    def __init__(self, epoch: int, loss: float, bound: float | None = None) -> None:
        what = f"loss became {loss}"
        if bound is not None:
            what = (
                f"train loss {loss:.4g} passed {bound:.4g} (trainer.divergence_factor times the"
                " loss of chance-level outputs)"
            )
        super().__init__(f"{what} at epoch {epoch}: lower optimizer.lr or check the data")
        self.epoch = epoch


class TrainingInterrupted(Exception):
    """Ctrl-C or SIGTERM asked the run to stop, and training did at a safe point: after a
    step's update or an epoch's record, so that what the run wrote is whole."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum


class TrialPruned(Exception):
    """A search's pruner stopped this trial after `epoch`, at the epoch's safe point (its
    record whole): its `monitor` figure fell behind the study's other trials'. Not a failure:
    the run ends as `pruned`."""

    def __init__(self, epoch: int, monitor: str, value: float, pruner: str) -> None:
        super().__init__(
            f"pruned after epoch {epoch}: {monitor} {value:.4f} fell behind the other trials"
            f" (hydra.sweeper.pruner={pruner})"
        )
        self.epoch = epoch


class PeerLost(RuntimeError):
    """A collective of a data parallel run failed: another process of the run is gone (it
    failed, was killed, or ended first). Known by where it arose, a collective of the run,
    not by the backend's words for it, which differ between backends and versions."""


def describe_os_error(error: OSError) -> str:
    """What the system said and about which file, e.g. 'no space left on device: <path>'."""
    if error.errno is None or error.strerror is None:
        return " ".join(str(error).split())
    text = error.strerror[0].lower() + error.strerror[1:]
    return f"{text}: {error.filename}" if error.filename else text


def is_user_error(error: BaseException) -> bool:
    """Bad input, raised as such or wrapped by Hydra's `instantiate`."""
    return isinstance(error, UserError) or isinstance(error.__cause__, UserError)


def says_where(error: BaseException) -> bool:
    """Whether `error`'s line names what to fix already: bad input, a component's error named
    with it, or a file the system refused (e.g. `no space left on device: <path>`)."""
    named_file = isinstance(error, OSError) and bool(error.filename)
    return is_user_error(error) or isinstance(error, FailedIn) or named_file


def full_tracebacks() -> bool:
    """Whether an error in the user's code should reach Python as raised: with
    HYDRA_FULL_ERROR=1 for its own traceback, down to the user's line, and under a debugger
    built on bdb (`python -m pdb`, ipdb, pudb) for a post-mortem in the user's frame."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1" or under_debugger()


def under_debugger() -> bool:
    """A frame of bdb's `run` below this one: the process runs under `python -m pdb` or a
    debugger built the same way."""
    bdb = sys.modules.get("bdb")
    if bdb is None:
        return False
    return any(frame.f_code.co_filename == bdb.__file__ for frame, _ in traceback.walk_stack(None))


@contextmanager
def failures_named(where: str | Callable[[BaseException], str]) -> Iterator[None]:
    """An error raised in the block is one line that starts with `where` (a text, or made from
    the error), as FailedIn; one that says where already passes as it is, and so does every
    error when the user asked for full tracebacks."""
    try:
        yield
    except Exception as error:
        if says_where(error) or full_tracebacks() or isinstance(error, TrialPruned):
            raise
        text = where if isinstance(where, str) else where(error)
        raise FailedIn(f"{text}: {one_line(built_by_hydra(error))}") from error


@contextmanager
def building(key: str, options: Any) -> Iterator[None]:
    """An error while building (or first using) the component at config `key` (a group such as
    `loss`, or `callbacks.NAME`) is one line that names the keys of `options` its text
    mentions, `cannot build loss (loss.weight=[1.0, 2.0]): RuntimeError: weight tensor ...`,
    or the component and all its options where it mentions none."""

    def where(error: BaseException) -> str:
        named = suspects(key, options, error)
        return f"cannot build {key} ({named})" if named else f"cannot build {key}"

    with failures_named(where):
        yield


def suspects(key: str, options: Any, error: BaseException) -> str:
    """`key.name=value` for each option that `error` names, else the target and every option."""
    from omegaconf import OmegaConf

    if not OmegaConf.is_dict(options):
        return ""
    given = OmegaConf.to_container(options, resolve=True)
    given = {k: v for k, v in given.items() if not k.startswith("_") and v is not None}
    words = set(re.findall(r"\w+", str(built_by_hydra(error))))
    named = {k: v for k, v in given.items() if k in words}
    shown = [
        f"{key}.{k}={v if isinstance(v, str) else json.dumps(v)}"
        for k, v in (named or given).items()
    ]
    return ", ".join(shown if named else [str(options.get("_target_")), *shown])


def built_by_hydra(error: BaseException) -> BaseException:
    """The error of a component's own code that Hydra's `instantiate` wrapped, or `error`."""
    from hydra.errors import InstantiationException

    if isinstance(error, InstantiationException) and error.__cause__ is not None:
        return error.__cause__
    return error


def import_target(key: str, target: Any) -> Any:
    """What the dotted path `target` at config key `key` (e.g. `model._target_`) names, found
    as Hydra's `instantiate` finds it; a one-line UserError when it cannot be imported."""
    if not isinstance(target, str) or not target:
        raise UserError(f"{key} must name a function or class, got {target!r}")
    try:
        return pkgutil.resolve_name(target)
    except Exception as error:  # not installed, not on PYTHONPATH, or failing on import
        why = import_failure(target, error.__cause__ or error)
        raise UserError(f"{key} {target} cannot be imported: {why}") from None


def import_failure(target: str, cause: BaseException) -> str:
    """Why the lookup of `target` failed, in a few words."""
    parent, _, name = target.rpartition(".")
    no_module = isinstance(cause, ModuleNotFoundError) and cause.name == target
    if no_module or (isinstance(cause, AttributeError) and cause.name == name):
        return f"{parent} has no {name!r}"
    if isinstance(cause, ModuleNotFoundError):
        return f"no module named {cause.name!r}: install it or put its folder on PYTHONPATH"
    return f"{type(cause).__name__}: {' '.join(str(cause).split())}"


# Hydra's words for an error raised by the target `instantiate` called, the only place it names
# that target, as hydra-core 1.3 says them (tests/test_dependencies.py pins them). Where they
# change, the line says "cannot build it".
HYDRA_CALL_FAILED = re.compile(r"Error in call to target ('[^']+')")


def one_line(error: BaseException) -> str:
    """The message of `error` on one line; an instantiation error names what it was building."""
    from hydra.errors import InstantiationException

    if isinstance(error, InstantiationException) and error.__cause__ is not None:
        cause = error.__cause__
        if isinstance(cause, UserError):
            return str(cause)
        called = HYDRA_CALL_FAILED.match(str(error))
        error = type(cause)(f"cannot build {called[1] if called else 'it'}: {cause}")
    if isinstance(error, OSError) and error.filename:  # e.g. no space left on device: <path>
        return describe_os_error(error)
    text = " ".join(str(error).split())
    return text if isinstance(error, (UserError, FailedIn)) else f"{type(error).__name__}: {text}"
