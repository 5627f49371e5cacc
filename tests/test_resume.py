"""Resume after a crash (a real kill -9), best.pt and early stopping, and what a resume refuses."""

import csv
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate

from multiclass import engine
from multiclass.callbacks import Callback, checkpoints
from multiclass.comparing.runs import read_run
from multiclass.config import compose_config
from multiclass.lifecycle.run import execute
from multiclass.models import mlp
from multiclass.records.artifacts import lock_run_dir, weights_sha256
from multiclass.records.checkpoint import load_classifier
from tests.conftest import CPU, QUIET, family, files_of, read_summary, run_cli

# 180 single-sample steps an epoch: slow enough to kill between epochs, fast enough to test.
SLOW = ["dataset.limit=200", "trainer.batch_size=1", "model.dropout=0.2", "trainer.epochs=4"]
TIMED = ("train_seconds", "epoch_seconds")


def metrics_without_times(run_dir):
    with open(run_dir / "metrics.csv") as file:
        return [{k: v for k, v in row.items() if k not in TIMED} for row in csv.DictReader(file)]


def resume(run_dir, *overrides):
    cfg = compose_config(*QUIET, f"resume={run_dir}", *overrides)
    return execute(cfg, run_dir, [f"resume={run_dir}", *overrides])


# One completed run of 2 epochs, trained once for the module: the tests that damage or resume a
# finished run each take a copy (`copy_of`), and its weights are also what the same config
# trained straight through gives (the runs are deterministic, as every test here relies on).
COMPLETED = ["dataset.limit=300", "trainer.epochs=2"]


@pytest.fixture(scope="module")
def completed(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("completed") / "run"
    outcome = execute(compose_config(*QUIET, *COMPLETED), run_dir)
    assert outcome.status == "completed"
    return run_dir, outcome.summary


def copy_of(run_dir, to):
    """A copy of the run in `run_dir` at `to`, for a test to change or resume."""
    shutil.copytree(run_dir, to)
    return to


def kill_after_epochs(run_dir, epochs, *overrides):
    """Start `multiclass-train` in a subprocess and SIGKILL it once `epochs` rows exist."""
    # pictures on: a run draws them in its own process, with no helper process to outlive it
    quiet = ["trainer.progress=false", CPU]
    command = [sys.executable, "-m", "multiclass", *quiet, f"hydra.run.dir={run_dir}", *overrides]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        metrics = run_dir / "metrics.csv"
        if metrics.exists() and len(metrics.read_text().splitlines()) > epochs:
            assert family(process.pid) == []  # it trains in the process that was started
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    assert process.wait(timeout=60) == -signal.SIGKILL, "the run ended before it was killed"


# Each draws from the generators or keeps state that last.pt must hold: augmentation's seeds,
# and the step options (clipping, an accumulation group of 3 a step, the weights' average).
STEP_OPTIONS = [
    "trainer.gradient_clip_norm=0.5",
    "trainer.accumulate_grad_batches=3",
    "trainer.ema=0.9",
]


@pytest.mark.parametrize("options", [["augment=none"], ["augment=flip_crop"], STEP_OPTIONS])
def test_a_run_killed_mid_way_resumes_to_the_uninterrupted_runs_weights(
    train, tmp_path, caplog, options
):
    slow = [*SLOW, *options]
    straight = train(*slow, run_dir=tmp_path / "straight")
    killed = tmp_path / "killed"
    kill_after_epochs(killed, 2, *slow)
    assert read_summary(killed)["status"] == "running"  # written first: the kill left it so
    assert read_run(killed).status == "killed"  # no process holds its lock
    with lock_run_dir(killed):
        assert read_run(killed).status == "running"
    saved = torch.load(killed / "last.pt", weights_only=True)
    assert 1 <= saved["epoch"] < 4  # the kill may land before the second epoch's last.pt

    with caplog.at_level("INFO", logger="multiclass"):
        outcome = resume(killed)
    assert outcome.status == "completed"
    assert outcome.summary["resumed_at"] == [saved["epoch"]]
    assert "it was killed without warning: SIGKILL, which the out-of-memory killer" in caplog.text
    assert outcome.summary["weights_sha256"] == straight.summary["weights_sha256"]
    assert metrics_without_times(killed) == metrics_without_times(tmp_path / "straight")
    assert read_summary(killed)["test_acc"] == straight.summary["test_acc"]


def test_a_resume_can_train_longer_and_a_finished_run_is_left_alone(train, tmp_path, completed):
    copy_of(completed[0], tmp_path / "short")  # dataset.limit=300, trainer.epochs=2
    longer = train("dataset.limit=300", "trainer.epochs=4", run_dir=tmp_path / "long")
    outcome = resume(tmp_path / "short", "trainer.epochs=4")
    assert outcome.summary["weights_sha256"] == longer.summary["weights_sha256"]
    assert metrics_without_times(tmp_path / "short") == metrics_without_times(tmp_path / "long")

    before = (tmp_path / "short" / "summary.json").read_text()
    again = resume(tmp_path / "short", "trainer.epochs=4")
    assert again.status == "completed" and again.summary["epochs"] == 4
    assert (tmp_path / "short" / "summary.json").read_text() == before


def test_a_resume_that_would_change_the_run_is_refused_and_writes_nothing(tmp_path, completed):
    run_dir = copy_of(completed[0], tmp_path / "run")
    files = {path.name: path.read_bytes() for path in run_dir.iterdir()}
    outcome = resume(run_dir, "model.depth=3", "trainer.epochs=3")
    assert outcome.status == "failed" and outcome.exit_code == 1
    assert "model.depth was 2, not 3" in outcome.summary["error"]
    assert {path.name: path.read_bytes() for path in run_dir.iterdir()} == files


def test_early_stopping_stops_and_says_where(train, tmp_path):
    # Four well-separated blobs: validation accuracy reaches its best and stays there.
    run_dir = tmp_path / "run"
    overrides = ["dataset=blobs", "trainer.epochs=200", "trainer.early_stopping.patience=3"]
    outcome = train(*overrides, run_dir=run_dir)
    result = outcome.summary
    assert result["stopped_early"] is True
    assert result["epochs"] == result["best_epoch"] + 3 < 200
    assert len(metrics_without_times(run_dir)) == result["epochs"]


def test_the_best_epochs_weights_are_kept_and_tested_when_asked(train, tmp_path):
    # SGD at lr 0.5 overshoots: val_acc peaks before the last epoch and falls back.
    run_dir = tmp_path / "run"
    overrides = ["dataset.limit=300", "trainer.epochs=6", "optimizer=sgd", "optimizer.lr=0.5"]
    result = train(*overrides, "trainer.test_on=best", run_dir=run_dir).summary
    rows = metrics_without_times(run_dir)
    best_epoch = 1 + max(range(len(rows)), key=lambda i: (float(rows[i]["val_acc"]), -i))
    assert best_epoch < 6, "the best epoch must not be the last, or test_on=best tests nothing"
    assert result["best_epoch"] == best_epoch and result["tested_epoch"] == best_epoch
    assert result["tested"] == "best"

    best_model, head, _ = load_classifier(run_dir / "best.pt")
    tested_model, _, _ = load_classifier(run_dir / "model.pt")
    assert weights_sha256(best_model) == weights_sha256(tested_model) == result["weights_sha256"]
    last = torch.load(run_dir / "last.pt", weights_only=True)
    assert last["epoch"] == 6
    assert any(
        not torch.equal(weights, last["model"][name])
        for name, weights in best_model.state_dict().items()
    ), "the last epoch's weights are the best epoch's: nothing tells them apart"
    test = instantiate(compose_config(*overrides).dataset).test
    with torch.no_grad():
        accuracy = (head.predict(best_model(test.x)) == test.y).float().mean().item()
    assert result["test_acc"] == pytest.approx(accuracy)


def test_resuming_a_folder_with_no_run_is_one_line_and_creates_nothing(tmp_path):
    missing = tmp_path / "no-such-run"
    result = run_cli(*QUIET, f"resume={missing}", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: nothing to resume: {missing} is not a run directory"
    assert not missing.exists()


def test_a_resume_that_fails_before_it_restored_leaves_a_completed_run_as_it_was(
    tmp_path, completed
):
    run_dir = copy_of(completed[0], tmp_path / "run")
    (run_dir / "last.pt").write_bytes(b"damaged")
    before = files_of(run_dir)
    outcome = resume(run_dir, "trainer.epochs=4")
    assert outcome.status == "failed"
    assert outcome.summary["error"].startswith(
        f"cannot resume from {run_dir / 'last.pt'}: not a readable checkpoint, damaged or truncated"
    )
    assert files_of(run_dir) == before  # summary.json still says completed, config.yaml 2 epochs


def test_a_completed_run_without_last_pt_is_not_started_again_over_its_results(tmp_path, completed):
    run_dir = copy_of(completed[0], tmp_path / "run")
    (run_dir / "last.pt").unlink()
    before = files_of(run_dir)
    outcome = resume(run_dir, "trainer.epochs=4")
    assert outcome.status == "failed"
    assert outcome.summary["error"] == (
        f"cannot resume {run_dir}: it completed 2 epoch(s) but there is no last.pt to go on"
        f" from; `multiclass-rerun {run_dir}` trains the run again from the start"
    )
    assert files_of(run_dir) == before


def test_a_run_killed_before_its_first_last_pt_starts_again_and_says_so(
    tmp_path, caplog, completed
):
    straight_dir, straight = completed  # the same config trained straight through
    run_dir = copy_of(straight_dir, tmp_path / "run")
    (run_dir / "last.pt").unlink()  # as if killed while writing it the first time
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    (run_dir / "metrics.csv").write_text("\n".join(rows[:2]) + "\n")
    (run_dir / "summary.json").write_text('{"status": "running"}')
    with caplog.at_level("INFO", logger="multiclass"):
        outcome = resume(run_dir)
    assert (
        f"warning: {run_dir} stopped before it saved its first last.pt: the 1 epoch(s) in"
        " metrics.csv are trained again from epoch 1"
    ) in caplog.messages
    assert outcome.summary["weights_sha256"] == straight["weights_sha256"]


def test_a_run_that_finished_no_epoch_starts_again_and_says_so(tmp_path, caplog, completed):
    straight_dir, straight = completed  # the same config trained straight through
    run_dir = copy_of(straight_dir, tmp_path / "run")
    for name in ("last.pt", "metrics.csv", "summary.json"):  # as if killed before epoch 1 ended
        (run_dir / name).unlink()
    with caplog.at_level("INFO", logger="multiclass"):
        outcome = resume(run_dir)
    assert f"{run_dir} finished no epoch before it stopped: starting it from epoch 1" in (
        caplog.messages
    )
    assert outcome.summary["weights_sha256"] == straight["weights_sha256"]


def interrupt_epoch(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    """Ctrl-C as epoch `epoch` starts, as the run's own SIGINT handler turns it into."""
    real_epoch, calls = engine.train_epoch, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == epoch:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(engine, "train_epoch", interrupted)


def test_multiclass_resume_continues_an_interrupted_run_and_keeps_its_hydra_record(
    train, tmp_path, monkeypatch
):
    """The installed command on one run: it trains the epochs left to the uninterrupted run's
    weights; .hydra/ still describes the run as it was launched (a CNN with SGD), not the
    resume's own composition."""
    launch = ["dataset.limit=300", "model=cnn", "optimizer=sgd", "trainer.epochs=3"]
    straight = train(*launch, run_dir=tmp_path / "straight")
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_epoch(patch, 2)
        assert train(*launch, run_dir=run_dir).status == "interrupted"
    (run_dir / ".hydra").mkdir()  # what Hydra wrote when it launched the run
    (run_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in launch))
    (run_dir / ".hydra" / "config.yaml").write_text((run_dir / "config.yaml").read_text())
    hydra_files = {k: v for k, v in files_of(run_dir).items() if k.startswith(".hydra")}

    command = Path(sys.executable).parent / "multiclass-resume"
    resumed = subprocess.run(
        [command, str(run_dir)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    summary = read_summary(run_dir)
    assert (summary["status"], summary["epochs"], summary["resumed_at"]) == ("completed", 3, [1])
    assert summary["weights_sha256"] == straight.summary["weights_sha256"]
    assert metrics_without_times(run_dir) == metrics_without_times(tmp_path / "straight")
    after = files_of(run_dir)
    assert {k: v for k, v in after.items() if k.startswith(".hydra")} == hydra_files


@pytest.mark.parametrize(
    ("every_s", "saved_at"), [(0, [1, 2, 3, 4, 5]), (3, [2, 4, 5]), (3600, [5])]
)
def test_last_pt_is_written_once_checkpoint_every_s_passed_and_after_the_last_epoch(
    train, tmp_path, monkeypatch, every_s, saved_at
):
    """Every epoch takes 2 s of a clock of the test's own: with 3 s, last.pt follows epochs 2
    and 4 (4 s since the one before) and the last; with an hour, only the last."""
    clock, saved = [0.0], []
    real_epoch, real_save = engine.train_epoch, checkpoints.save_last

    def two_seconds(*args, **kwargs):
        clock[0] += 2.0
        return real_epoch(*args, **kwargs)

    def counted(path, model, task, progress):
        saved.append(progress.epoch)
        real_save(path, model, task, progress)

    monkeypatch.setattr(engine, "train_epoch", two_seconds)
    monkeypatch.setattr(checkpoints, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(checkpoints, "save_last", counted)
    run_dir = tmp_path / "run"
    every = f"trainer.checkpoint_every_s={every_s}"
    assert train("dataset=blobs", "trainer.epochs=5", every, run_dir=run_dir).status == "completed"
    assert saved == saved_at
    assert torch.load(run_dir / "last.pt", weights_only=True)["epoch"] == 5


class SignalAtEpoch(Callback):
    """Sends its own process `signum` at the end of `epoch`, after last.pt (the callbacks
    before it) and before the summary's figures: what a scancel or a Ctrl-C can hit."""

    def __init__(self, signum: int, epoch: int) -> None:
        self.signum, self.epoch = signum, epoch

    def on_epoch_end(self, run, row, improved) -> None:
        if row.epoch == self.epoch:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_as_an_epoch_is_recorded_ends_the_run_once_its_record_is_whole(
    train, tmp_path, caplog, signum
):
    """The summary and the log name the epoch last.pt holds; the resume goes on from it."""
    signal_at = [
        f"+callbacks.signal._target_={__name__}.SignalAtEpoch",
        "+callbacks.signal.epoch=2",
    ]
    run_dir, sent = tmp_path / "run", f"+callbacks.signal.signum={int(signum)}"
    every = "trainer.log_every=1"
    with caplog.at_level(logging.INFO, logger="multiclass"):
        stopped = train(
            "dataset=blobs", "trainer.epochs=4", every, *signal_at, sent, run_dir=run_dir
        )
    assert stopped.status == "interrupted"
    assert [m for m in caplog.messages if m.startswith("epoch ")][-1].startswith("epoch 2/4")
    assert stopped.summary["epochs"] == 2
    saved = torch.load(run_dir / "last.pt", weights_only=True)
    assert (saved["epoch"], saved["in_progress"]) == (2, None)  # no epoch begun
    assert len(metrics_without_times(run_dir)) == 2
    resumed = resume(run_dir).summary  # its saved config signals at epoch 2: done by then
    assert (resumed["status"], resumed["resumed_at"]) == ("completed", [2])


def test_a_resume_of_a_damaged_config_is_one_line_and_changes_nothing(tmp_path, completed):
    """The check is where every resume reads the saved config (a sweep's jobs too)."""
    run_dir = copy_of(completed[0], tmp_path / "run")  # 2 epochs
    (run_dir / "config.yaml").write_text("dataset: [1, 2\nmodel: {")
    before = files_of(run_dir)
    outcome = resume(run_dir, "trainer.epochs=3")
    assert outcome.status == "failed"
    assert outcome.summary["error"] == (
        f"{run_dir / 'config.yaml'}: not a readable config (ParserError at line 2, column 6)"
    )
    assert files_of(run_dir) == before


@pytest.mark.parametrize("stop", ["SIGTERM at epoch 2", "completed 2 of 3 epochs"])
def test_a_fine_tuned_run_resumes_without_its_weights_file(train, tmp_path, stop):
    """last.pt holds every weight: a weights file moved or cleaned up since is not needed."""
    weights = tmp_path / "W.pt"
    torch.save(mlp(input_shape=[64], num_outputs=10).state_dict(), weights)  # the digits' mlp
    tuned = ["dataset.limit=300", f"finetune.weights={weights}", "finetune.freeze=backbone"]
    straight = train(*tuned, "trainer.epochs=3", run_dir=tmp_path / "straight")
    run_dir = tmp_path / "run"
    if stop.startswith("SIGTERM"):
        signal_at = [
            f"+callbacks.signal._target_={__name__}.SignalAtEpoch",
            "+callbacks.signal.epoch=2",
        ]
        sent = f"+callbacks.signal.signum={int(signal.SIGTERM)}"
        first = train(*tuned, "trainer.epochs=3", *signal_at, sent, run_dir=run_dir)
        assert first.status == "interrupted"
        longer = ()
    else:
        first = train(*tuned, "trainer.epochs=2", run_dir=run_dir)
        assert first.status == "completed"
        longer = ("trainer.epochs=3",)
    weights.unlink()
    outcome = resume(run_dir, *longer)
    assert (outcome.status, outcome.summary["resumed_at"]) == ("completed", [2])
    assert outcome.summary["weights_sha256"] == straight.summary["weights_sha256"]


class SignalAtBatch(Callback):
    """Sends its own process SIGTERM after each (epoch, batch) of `at`, the batch counted from
    the epoch's start (a resumed epoch's too), as a time limit's warning would land; the run
    stops at the next optimizer step."""

    def __init__(self, at: list) -> None:
        self.at = [tuple(point) for point in at]

    def on_epoch_start(self, run, epoch) -> None:
        partial = run.progress.partial
        self.epoch, self.batch = epoch, 0 if partial is None else partial.batches

    def on_train_batch_end(self, run, batch, loss) -> None:
        self.batch += 1
        if (self.epoch, self.batch) in self.at:
            os.kill(os.getpid(), signal.SIGTERM)


# 270 training samples in 17 batches of 16 an epoch (the last of 14).
MID = ["dataset.limit=300", "trainer.batch_size=16", "trainer.epochs=3", "model.dropout=0.2"]


def signal_at(*points: tuple[int, int]) -> list[str]:
    at = ",".join(f"[{epoch},{batch}]" for epoch, batch in points)
    return [f"+callbacks.signal._target_={__name__}.SignalAtBatch", f"+callbacks.signal.at=[{at}]"]


@pytest.mark.parametrize(
    ("options", "stops", "saved_at"),
    [
        ([], [(2, 5)], [5]),
        (["trainer.accumulate_grad_batches=3"], [(2, 5)], [6]),  # at the group's step
        (["scheduler=onecycle", "augment=flip_crop"], [(2, 5), (2, 11)], [5, 11]),
        (["dataset.sampler=balanced", "trainer.ema=0.9"], [(3, 1)], [1]),
        (["trainer.checkpoint_every_s=3600", "scheduler=onecycle"], [(2, 17)], [17]),  # last step
    ],
    ids=["plain", "accumulated", "onecycle-augmented-twice", "balanced-ema", "last-step"],
)
def test_a_run_stopped_mid_epoch_resumes_at_that_step_to_the_uninterrupted_weights(
    train, tmp_path, caplog, options, stops, saved_at
):
    straight = train(*MID, *options, run_dir=tmp_path / "straight")
    run_dir = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="multiclass"):
        first = train(*MID, *options, *signal_at(*stops), run_dir=run_dir)
        assert first.status == "interrupted"
        for batch in saved_at:
            epoch = stops[0][0]
            saved = torch.load(run_dir / "last.pt", weights_only=True)
            assert (saved["epoch"], saved["in_progress"]["batches"]) == (epoch - 1, batch)
            assert len(metrics_without_times(run_dir)) == epoch - 1
            assert f"saved {run_dir / 'last.pt'} at batch {batch}/17 of epoch {epoch}" in (
                caplog.text
            )
            outcome = resume(run_dir)
            assert f"resuming after batch {batch} of epoch {epoch} from" in caplog.text
            assert outcome.summary["resumed_at"] == [epoch - 1]
    assert outcome.status == "completed"
    assert outcome.summary["weights_sha256"] == straight.summary["weights_sha256"]
    assert metrics_without_times(run_dir) == metrics_without_times(tmp_path / "straight")
    assert torch.load(run_dir / "last.pt", weights_only=True)["in_progress"] is None
    assert ORDER_REPLACED not in caplog.text  # each saved order is the one the seed draws


ORDER_REPLACED = "the batch order in last.pt is not the one seed"


def one_draw_ahead(saved: dict) -> None:
    order = torch.Generator()
    order.set_state(saved["order"])
    torch.randperm(270, generator=order)
    saved["order"] = order.get_state()


def reversed_epoch(saved: dict) -> None:
    saved["in_progress"]["permutation"] = saved["in_progress"]["permutation"].flip(0)


@pytest.mark.parametrize("damage", [one_draw_ahead, reversed_epoch])
def test_a_saved_batch_order_the_seed_would_not_draw_is_said_and_replaced_by_the_seeds(
    train, tmp_path, caplog, stopped_at_batch_5, damage
):
    straight = train(*MID, run_dir=tmp_path / "straight")
    run_dir = copy_of(stopped_at_batch_5, tmp_path / "run")
    saved = torch.load(run_dir / "last.pt", weights_only=True)
    damage(saved)
    torch.save(saved, run_dir / "last.pt")
    with caplog.at_level(logging.INFO, logger="multiclass"):
        outcome = resume(run_dir)
    said = f"warning: {ORDER_REPLACED} 0 draws after batch 5 of epoch 2: training goes on in"
    assert said in caplog.text
    assert outcome.summary["weights_sha256"] == straight.summary["weights_sha256"]
    assert metrics_without_times(run_dir) == metrics_without_times(tmp_path / "straight")


def test_a_stop_after_an_epoch_saves_it_when_checkpoint_every_s_had_not(train, tmp_path, caplog):
    signal_at = [
        f"+callbacks.signal._target_={__name__}.SignalAtEpoch",
        "+callbacks.signal.epoch=2",
    ]
    sent = f"+callbacks.signal.signum={int(signal.SIGTERM)}"
    run_dir, rarely = tmp_path / "run", "trainer.checkpoint_every_s=3600"
    with caplog.at_level(logging.INFO, logger="multiclass"):
        stopped = train(
            "dataset=blobs", "trainer.epochs=4", rarely, *signal_at, sent, run_dir=run_dir
        )
    assert stopped.status == "interrupted"
    assert f"saved {run_dir / 'last.pt'} after epoch 2" in caplog.text
    saved = torch.load(run_dir / "last.pt", weights_only=True)
    assert (saved["epoch"], saved["in_progress"]) == (2, None)


@pytest.fixture(scope="module")
def stopped_at_batch_5(tmp_path_factory):
    """A run of MID stopped by SIGTERM after batch 5 of epoch 2, trained once for the module:
    each test below changes a copy."""
    run_dir = tmp_path_factory.mktemp("stopped") / "run"
    outcome = execute(compose_config(*QUIET, *MID, *signal_at((2, 5))), run_dir)
    assert outcome.status == "interrupted"
    assert torch.load(run_dir / "last.pt", weights_only=True)["in_progress"]["batches"] == 5
    return run_dir


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"permutation": torch.arange(100)}, "its epoch in progress draws from 100 samples, not"),
        ({"epoch": 3}, "its epoch in progress is epoch 3, not the one after the 1 completed"),
        ({"extra": 1}, "its epoch in progress TypeError: EpochInProgress.__init__() got an"),
        ("trainer.epochs=1", "its epoch in progress is epoch 2, past trainer.epochs=1"),
    ],
    ids=["other-data", "other-epoch", "damaged", "fewer-epochs"],
)
def test_an_epoch_in_progress_that_does_not_fit_is_one_line_and_changes_nothing(
    tmp_path, stopped_at_batch_5, change, error
):
    run_dir = copy_of(stopped_at_batch_5, tmp_path / "run")
    saved = torch.load(run_dir / "last.pt", weights_only=True)
    if isinstance(change, dict):  # last.pt's entry, or else the resume's command line
        saved["in_progress"].update(change)
        torch.save(saved, run_dir / "last.pt")
    before = files_of(run_dir)
    outcome = resume(run_dir, *([] if isinstance(change, dict) else [change]))
    assert outcome.status == "failed"
    assert outcome.summary["error"].startswith(f"cannot resume from {run_dir / 'last.pt'}: {error}")
    assert "\n" not in outcome.summary["error"]
    assert files_of(run_dir) == before
