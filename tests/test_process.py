"""A run trains in the process the user started, as plain Python: Ctrl-C and SIGTERM end it as
`interrupted` and it resumes; breakpoint(), pdb, cProfile and full tracebacks reach the
training; no child process is started."""

import os
import pstats
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from multiclass.config import compose_config
from multiclass.lifecycle.run import execute
from tests.conftest import CPU, QUIET, family, read_summary

# 180 single-sample steps an epoch: slow enough to signal mid-run, fast enough to test.
SLOW = ["dataset.limit=200", "trainer.batch_size=1", "trainer.epochs=4", "plots=false", CPU]
# The digits are read without scikit-learn, whose import costs each process a second.
TINY = [*QUIET, "dataset=digits", "dataset.limit=100", "trainer.epochs=1"]

USER_MODELS = '''
    import math

    import torch
    from torch import nn


    class Stops(nn.Module):
        """Stops at a breakpoint the first time it trains."""

        stopped = False

        def __init__(self, input_shape, num_outputs):
            super().__init__()
            self.layer = nn.Linear(math.prod(input_shape), num_outputs)

        def forward(self, x):
            if self.training and not Stops.stopped:
                Stops.stopped = True
                secret = 6 * 7
                breakpoint()
            return self.layer(x.flatten(1))


    class Fails(nn.Module):
        """Raises in its forward pass once it trains (eval passes, so the model is built)."""

        def __init__(self, input_shape, num_outputs):
            super().__init__()
            self.layer = nn.Linear(math.prod(input_shape), num_outputs)

        def forward(self, x):
            if self.training:
                raise ValueError("the user's own bug")
            return self.layer(x.flatten(1))


    class Unchecked(nn.Module):
        """Raises in its forward pass at the model check, before training."""

        def __init__(self, input_shape, num_outputs):
            super().__init__()
            self.layer = nn.Linear(math.prod(input_shape) + 1, num_outputs)

        def forward(self, x):
            flat = x.flatten(1)
            raise ValueError(f"the user's check bug: {flat.shape[1]} inputs")
'''


def python(*args: str, cwd: Path, stdin: str | None = None, **env: str):
    """`python <args>` in `cwd` with the user's folder (cwd) importable."""
    environ = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(cwd), **env}
    if "HYDRA_FULL_ERROR" not in env:
        environ.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=environ, input=stdin,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def user_models(tmp_path: Path) -> Path:
    (tmp_path / "user_models.py").write_text(textwrap.dedent(USER_MODELS))
    return tmp_path


def test_sigint_and_sigterm_end_a_run_as_interrupted_and_it_resumes(tmp_path):
    """Both signals at once, to two runs side by side (one subprocess's wait each)."""
    runs = {signal.SIGINT: tmp_path / "sigint", signal.SIGTERM: tmp_path / "sigterm"}
    processes = {
        signum: subprocess.Popen(
            [sys.executable, "-m", "multiclass", *SLOW, f"hydra.run.dir={run_dir}"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for signum, run_dir in runs.items()
    }
    waiting, deadline = set(runs), time.monotonic() + 120
    while waiting:  # each gets its signal once its first epoch is done
        for signum in list(waiting):
            process = processes[signum]
            assert time.monotonic() < deadline and process.poll() is None, "no epoch came"
            if (runs[signum] / "last.pt").exists():  # an epoch done and checkpointed
                assert family(process.pid) == []  # no helper: it trains where it was started
                process.send_signal(signum)
                waiting.remove(signum)
        time.sleep(0.005)
    for signum, process in processes.items():
        _, stderr = process.communicate(timeout=60)
        run_dir = runs[signum]
        assert process.returncode == 128 + signum  # 130 for Ctrl-C, 143 for SIGTERM
        interrupted = read_summary(run_dir)
        assert interrupted["status"] == "interrupted" and interrupted["epochs"] < 4
        saved = torch.load(run_dir / "last.pt", weights_only=True)["epoch"]
        how = "by the user" if signum == signal.SIGINT else "by SIGTERM"
        assert stderr.strip().splitlines()[-1].endswith(f"[ERROR] error: interrupted {how}")
        assert "Traceback" not in stderr

        resume = [f"resume={run_dir}"]
        resumed = execute(compose_config(*QUIET, *SLOW, *resume), run_dir, resume)
        assert resumed.status == "completed" and resumed.summary["epochs"] == 4
        assert resumed.summary["resumed_at"] == [saved]


def test_breakpoint_in_a_users_model_stops_at_a_working_pdb_prompt(user_models):
    model = "+model._target_=user_models.Stops"
    done = python(
        "-m", "multiclass", *TINY, "~model", model, "hydra.run.dir=run",
        cwd=user_models, stdin="p secret\nc\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "(Pdb) 42" in done.stdout  # the prompt answered inside the user's forward
    assert read_summary(user_models / "run")["status"] == "completed"


UNCHECKED = ["~model", "+model._target_=user_models.Unchecked"]
CHECK_BUG = "ValueError: the user's check bug: 64 inputs"
USER_ERRORS = {  # a bug in training, and one the model check before training meets
    "training": (
        ["~model", "+model._target_=user_models.Fails"],
        "error: ValueError: the user's own bug",
        "ValueError: the user's own bug",
        'raise ValueError("the user\'s own bug")',
    ),
    "model check": (
        UNCHECKED,
        f"error: model user_models.Unchecked fails on inputs of shape (2, 1, 8, 8): {CHECK_BUG}",
        CHECK_BUG,
        "raise ValueError(f\"the user's check bug",
    ),
}


@pytest.mark.parametrize("where", list(USER_ERRORS))
def test_a_users_exception_is_one_line_or_with_hydra_full_error_pythons_traceback(
    where, user_models, monkeypatch, caplog
):
    """The model check before training follows the rule of the training itself."""
    overrides, one_line, last_line, users_line = USER_ERRORS[where]
    monkeypatch.syspath_prepend(str(user_models))
    monkeypatch.delitem(sys.modules, "user_models", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with caplog.at_level("ERROR", logger="multiclass"):
        short = execute(compose_config(*TINY, *overrides), user_models / "short")
    assert short.status == "failed"
    assert caplog.messages == [one_line]  # one line, no traceback

    run = ["-m", "multiclass", *TINY, *overrides, "hydra.run.dir=full"]
    full = python(*run, cwd=user_models, HYDRA_FULL_ERROR="1")
    assert full.returncode == 1
    assert full.stderr.strip().splitlines()[-1] == last_line  # Python's own traceback, to the end
    assert f'File "{user_models / "user_models.py"}"' in full.stderr
    assert users_line in full.stderr
    assert read_summary(user_models / "full")["status"] == "failed"  # the record is still written


def test_pdb_post_mortem_opens_in_a_model_that_fails_its_check(user_models):
    """`python -m pdb -m multiclass`, no HYDRA_FULL_ERROR: the debugger is enough to let the
    model check's error through, and pdb stops in the user's forward with its variables."""
    run = ["-m", "pdb", "-m", "multiclass", *TINY, *UNCHECKED, "hydra.run.dir=run"]
    done = python(*run, cwd=user_models, stdin="c\np flat.shape\nq\n")
    assert "Entering post mortem debugging" in done.stdout, done.stderr
    assert f"{user_models / 'user_models.py'}" in done.stdout
    assert "(Pdb) torch.Size([2, 64])" in done.stdout
    assert read_summary(user_models / "run")["status"] == "failed"


def test_cprofile_sees_the_training(tmp_path):
    profile = tmp_path / "run.prof"
    run = ["-m", "cProfile", "-o", str(profile), "-m", "multiclass", *TINY, "hydra.run.dir=run"]
    done = python(*run, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    functions = {name for _, _, name in pstats.Stats(str(profile)).stats}
    assert {"fit", "train_epoch", "evaluate"} <= functions


def test_pdb_post_mortem_opens_in_the_users_forward(user_models):
    """`python -m pdb -m multiclass`: the exception (HYDRA_FULL_ERROR=1 lets it through)
    stops in the frame of the user's forward, with its variables, during training."""
    run = ["-m", "pdb", "-m", "multiclass", *TINY, "~model", "+model._target_=user_models.Fails"]
    done = python(
        *run, "hydra.run.dir=run", cwd=user_models, stdin="c\np x.shape\nq\n", HYDRA_FULL_ERROR="1"
    )
    assert "Entering post mortem debugging" in done.stdout, done.stderr
    assert f"{user_models / 'user_models.py'}" in done.stdout
    assert re.search(r"\(Pdb\) torch.Size\(\[\d+, 1, 8, 8\]\)", done.stdout)  # a batch of digits


def test_a_run_without_pictures_on_data_of_its_own_imports_no_matplotlib_nor_scikit_learn(tmp_path):
    """scikit-learn's import costs a fresh process 0.9 s: a run's metrics
    (multiclass/class_metrics.py) and splits (multiclass/datasets/shuffle_split.py) do without
    it, and a run without pictures does without matplotlib."""
    script = (
        "import sys; from pathlib import Path;"
        "from multiclass.config import compose_config;"
        "from multiclass.lifecycle.run import execute;"
        "cfg = compose_config('dataset=xor', 'plots=false', 'trainer.epochs=2', 'device=cpu');"
        "outcome = execute(cfg, Path('run'));"
        "names = {'matplotlib', 'sklearn'};"
        "print(outcome.status, sorted(names & set(sys.modules)))"
    )
    done = python("-c", script, cwd=tmp_path)
    assert done.stdout.strip() == "completed []", done.stderr
