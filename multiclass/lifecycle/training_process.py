"""The process where the command line's runs train. `multiclass-train` forks it first thing: it
imports torch (2 to 3 s here) while the command line imports Hydra and composes the config
(about 1 s), each on its own core, instead of one after the other. Each run or sweep job the
command line hands over trains there; its log records go to the command line's handlers (the
console, the job's train.log) and its outcome comes back as `execute` returned it. The
painter's helpers are this process's children. Where no training process was started (a run
started from Python, a launcher's own worker processes) runs train in place."""

import atexit
import logging
import multiprocessing
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from logging.handlers import QueueHandler
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from multiclass.lifecycle.outcome import Outcome
from multiclass.reporting.painter import can_start, end_with_parent, painter


class TrainingProcessError(RuntimeError):
    """An error the training process raised (HYDRA_FULL_ERROR=1), with its traceback."""


class TrainingProcess:
    """Runs `execute` in the forked training process once `start` has made it, else in place."""

    def __init__(self) -> None:
        self.connection: Connection | None = None
        self.process: BaseProcess | None = None
        self.owner = 0  # the pid that started it: a forked copy of this object is not its owner
        self.asked = False

    def __reduce__(self) -> tuple:
        """A launcher that pickles the task function (joblib, submitit, Ray) gets, in its worker
        process, that process's own training process, not started: its jobs train in place."""
        return (the_training_process, ())

    def start(self, pictures: bool = True) -> bool:
        """Fork the training process (not after torch is imported, nor where fork does not
        exist: `painter.can_start`). True when it runs. With `pictures`
        false (`plots=false` on the command line) it starts no painter's helpers."""
        if self.running:
            return True
        if not can_start("fork"):
            return False
        ours, theirs = multiprocessing.Pipe()
        process = multiprocessing.get_context("fork").Process(
            target=serve, args=(theirs, ours, pictures), name="multiclass-training"
        )  # not a daemon: it has children, the painter's helpers
        process.start()
        theirs.close()
        self.connection, self.process, self.owner = ours, process, os.getpid()
        atexit.register(self.stop)  # before multiprocessing's own exit handler joins it
        return True

    def stop(self) -> None:
        """Close the connection: the training process finishes its pictures and ends. One that
        was never asked anything (bad input, --cfg) ends at once, not once torch has loaded."""
        if self.running:
            self.connection.close()
            self.connection = None
            if not self.asked:
                self.process.terminate()

    @property
    def running(self) -> bool:
        return self.connection is not None and self.owner == os.getpid()

    def execute(self, cfg: DictConfig, run_dir: Path, overrides: Sequence[str] = ()) -> Outcome:
        """`lifecycle.run.execute`, in the training process if there is one."""
        if not self.running:
            from multiclass.lifecycle.run import execute

            return execute(cfg, run_dir, overrides)
        return self.ask("execute", job_state(), cfg, run_dir, list(overrides))

    def undrawn(self) -> list[str]:
        """`painter.undrawn` where the pictures are drawn: wait for them; the failures."""
        return self.ask("undrawn") if self.running else painter.undrawn()

    def ask(self, request: str, *args: Any) -> Any:
        """Send a request and wait for its answer, logging the records that come meanwhile and
        passing Ctrl-C on (the training process handles it as a run in place would)."""
        assert self.connection is not None and self.process is not None
        self.asked = True
        try:
            self.connection.send((request, args))
            with interrupts_passed_to(self.process.pid):
                while True:
                    kind, payload = self.connection.recv()
                    if kind == "log":
                        log_here(payload)
                    elif kind == "raised":
                        raise TrainingProcessError(payload)
                    else:
                        return payload
        except (EOFError, BrokenPipeError):
            self.process.join(1)
            self.connection = None
            code = self.process.exitcode
            return died(request, f"the training process ended unexpectedly (exit code {code})")


def log_here(record: logging.LogRecord) -> None:
    """A record from the training process, to this process's handlers but the console's (the
    training process wrote it to the console itself, above its progress bar)."""
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None:
        for handler in logger.handlers:
            if not is_console(handler) and record.levelno >= handler.level:
                handler.handle(record)
        logger = logger.parent if logger.propagate else None  # type: ignore[assignment]


def is_console(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    return isinstance(handler, logging.StreamHandler) and stream in (sys.stdout, sys.stderr)


def died(request: str, message: str) -> Any:
    """The answer of a training process that died: its pictures' failure, which the caller
    logs, or the run's failed outcome, logged here as the run would have logged it."""
    if request == "undrawn":
        return [message]
    logging.getLogger("multiclass").error("error: %s", message)
    return Outcome("failed", {"status": "failed", "error": message})


@contextmanager
def interrupts_passed_to(pid: int) -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, lambda *_: os.kill(pid, signal.SIGINT))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def job_state() -> dict[str, Any]:
    """What a job finds in its process besides its config: the working directory and
    environment Hydra gave it, Hydra's config (`HydraConfig.get()`), the log levels and
    console handlers (how a log line looks on the console)."""
    from hydra.core.hydra_config import HydraConfig

    loggers = logging.root.manager.loggerDict.items()
    levels = {name: lg.level for name, lg in loggers if isinstance(lg, logging.Logger)}
    return {
        "cwd": os.getcwd(),
        "environ": dict(os.environ),
        "hydra": HydraConfig.instance().cfg,  # with its parent: `${now:...}` as it was
        "levels": {**levels, "": logging.root.level},
        "console": [describe_console(h) for h in logging.root.handlers if is_console(h)],
    }


def describe_console(handler: logging.StreamHandler) -> tuple[str, int, str | None, str | None]:
    stream = "stderr" if handler.stream is sys.stderr else "stdout"
    form = handler.formatter
    return stream, handler.level, form and form._fmt, form and form.datefmt


# ------------------------------------------------------------------- in the training process


def serve(connection: Connection, command_lines_end: Connection, pictures: bool) -> None:
    """Start the painter's helpers, import torch, then answer requests until the command line
    closes the connection (or dies: Linux ends this process then)."""
    command_lines_end.close()  # fork's copy: the connection ends when the command line's does
    os.setpgid(0, 0)  # Ctrl-C reaches the command line alone, which passes it on once
    end_with_parent()
    if pictures:
        painter.start()
    from hydra.core.utils import setup_globals

    from multiclass.lifecycle.run import execute  # torch: the import this process is for

    setup_globals()  # Hydra's resolvers (`${now:...}`), registered there after this fork

    sender = QueueHandler(Sender(connection))
    answers: dict[str, Callable[..., Any]] = {
        "execute": lambda state, *args: execute_as_job(execute, sender, state, *args),
        "undrawn": painter.undrawn,
    }
    while True:
        try:
            request, args = connection.recv()
        except EOFError:
            break
        except KeyboardInterrupt:  # between jobs: nothing to stop
            continue
        try:
            connection.send(("answer", answers[request](*args)))
        except BaseException:  # the command line raises it
            connection.send(("raised", traceback.format_exc()))
    painter.stop()


def execute_as_job(
    execute: Callable[..., Outcome], sender: logging.Handler, state: dict, *args: Any
) -> Outcome:
    """`execute` in the state the command line gave the job (see `job_state`)."""
    from hydra.core.hydra_config import HydraConfig

    os.chdir(state["cwd"])
    os.environ.clear()
    os.environ.update(state["environ"])
    HydraConfig.instance().cfg = state["hydra"]
    for name, level in state["levels"].items():
        logging.getLogger(name or None).setLevel(level)
    logging.root.handlers = [sender, *(console(*spec) for spec in state["console"])]
    return execute(*args)


def console(stream: str, level: int, form: str | None, datefmt: str | None) -> logging.Handler:
    handler = logging.StreamHandler(getattr(sys, stream))
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(form, datefmt))
    return handler


class Sender:
    """QueueHandler's queue: a log record, formatted and made picklable, to the command line."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def put_nowait(self, record: logging.LogRecord) -> None:
        self.connection.send(("log", record))


training_process = TrainingProcess()  # the command line's one training process


def the_training_process() -> TrainingProcess:
    return training_process
