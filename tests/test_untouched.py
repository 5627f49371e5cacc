"""Nothing a failed command does changes a run directory it did not create: every command,
given bad input against a completed run, exits non-zero and leaves every byte of the run as it
was (multiclass-resume may append to train.log, which this run, trained in-process, has not)."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from multiclass.commands import evaluate, predict, report, rerun
from tests.conftest import files_of

TINY = ["dataset=blobs", "trainer.epochs=2"]


def resume_refused(run_dir: Path, tmp_path: Path) -> int:
    """The command line's resume, refused: it would change what the run trained."""
    command = [sys.executable, "-m", "multiclass.commands.resume", str(run_dir), "model.depth=5"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "model.depth was 2, not 5" in done.stderr
    return done.returncode


def exit_code(main: Callable[[list[str]], None], argv: list[str]) -> int:
    with pytest.raises(SystemExit) as ended:
        main(argv)
    return ended.value.code


FAILING = {
    "resume": resume_refused,
    "rerun": lambda run, tmp: exit_code(
        rerun.main, [str(run), "--out", str(tmp / "again"), "optimizer.lr=abc"]
    ),
    "eval": lambda run, tmp: exit_code(evaluate.main, [str(run), "dataset.classes=[0,9]"]),
    "predict": lambda run, tmp: exit_code(predict.main, [str(run), str(tmp / "missing.csv")]),
    "report": lambda run, tmp: exit_code(report.main, [str(run), "--objective", "no_such"]),
}


@pytest.mark.parametrize("command", list(FAILING))
def test_a_failed_command_leaves_the_run_as_it_was(train, tmp_path, command):
    run_dir = tmp_path / "run"
    assert train(*TINY, run_dir=run_dir).status == "completed"
    before = files_of(run_dir, but=("train.log",))  # a command may append to it
    assert FAILING[command](run_dir, tmp_path) != 0
    assert files_of(run_dir, but=("train.log",)) == before
