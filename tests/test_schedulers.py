"""The `scheduler` group: each option's lr column, `none` as if there were no group, resumes
that end bit-identical, and bad values as one line before any training."""

import inspect
import logging
import math

import pytest
import torch
from hydra.utils import get_class
from omegaconf import OmegaConf

from multiclass import engine, schedulers
from multiclass.config import CONFIG_DIR, compose_config
from tests.test_resume import metrics_without_times, resume

# 180 training samples, 3 batches of 64; one thread, as such tiny runs are all overhead and two
# threads spin for many times as long when other work shares the cores.
SMALL = ["dataset.limit=200", "device.num_threads=1"]
TINY = [*SMALL, "trainer.epochs=2"]
LR = 0.001  # optimizer=adam's


def options() -> list[str]:
    return sorted(path.stem for path in (CONFIG_DIR / "scheduler").glob("*.yaml"))


def lr_column(run_dir) -> list[float]:
    return [float(row["lr"]) for row in metrics_without_times(run_dir)]


def one_cycle_by_hand(epochs: int, batches: int) -> list[float]:
    """The lr of each epoch's last batch, from torch's OneCycleLR stepped by hand with
    conf/scheduler/onecycle.yaml's settings."""
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=LR, total_steps=epochs * batches, pct_start=0.25, final_div_factor=1e5
    )
    used = []
    for _ in range(epochs * batches):
        used.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return used[batches - 1 :: batches]


EXPECTED_LR = {
    "none": ([], [LR, LR]),
    "step": (["scheduler.step_size=1", "scheduler.gamma=0.5"], [LR, LR / 2]),
    "cosine": ([], [LR, LR * (1 + math.cos(math.pi / 2)) / 2]),  # T_max = 2 epochs
    "onecycle": ([], one_cycle_by_hand(epochs=2, batches=3)),
}


def test_the_group_holds_the_documented_options():
    assert options() == sorted(EXPECTED_LR)


@pytest.mark.parametrize("name", options())
def test_every_option_trains_and_its_lr_column_follows_the_schedule(name, train, tmp_path):
    overrides, expected = EXPECTED_LR[name]
    outcome = train(*TINY, f"scheduler={name}", *overrides, run_dir=tmp_path / "run")
    assert outcome.status == "completed"
    assert lr_column(tmp_path / "run") == pytest.approx(expected, rel=1e-12)
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert (saved["scheduler"] is None) == (name == "none")


def test_onecycle_by_hand_ends_at_its_closed_form_minimum():
    assert one_cycle_by_hand(epochs=2, batches=3)[-1] == pytest.approx(LR / 25 / 1e5, rel=1e-12)


def test_none_trains_as_a_config_without_the_group(train, tmp_path):
    plain = train(*TINY, "~scheduler", run_dir=tmp_path / "plain")
    default = train(*TINY, run_dir=tmp_path / "default")
    assert default.summary["weights_sha256"] == plain.summary["weights_sha256"]
    assert metrics_without_times(tmp_path / "default") == metrics_without_times(tmp_path / "plain")


def interrupt_third_epoch(monkeypatch):
    """Make runs stop as if killed after their second epoch (its last.pt written)."""
    real_epoch, calls = engine.train_epoch, []

    def train_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(engine, "train_epoch", train_epoch)


SCHEDULES = {  # StepLR decays only at epoch 3: a resume must know where it stands
    "onecycle": ["scheduler=onecycle"],
    "step": ["scheduler=step", "scheduler.step_size=3", "scheduler.gamma=0.5"],
}
STOPS = {  # a 4-epoch run cut after epoch 2, or a 2-epoch run: what the run is, how it ends
    "cut": ("trainer.epochs=4", "interrupted"),
    "short": ("trainer.epochs=2", "completed"),
}


@pytest.mark.parametrize(
    ("name", "stop"), [("onecycle", "cut"), ("step", "cut"), ("step", "short")]
)
def test_a_resume_after_epoch_2_ends_as_the_4_epoch_run(name, stop, train, tmp_path, monkeypatch):
    schedule, (epochs, status), run_dir = SCHEDULES[name], STOPS[stop], tmp_path / stop
    straight = train(*SMALL, "trainer.epochs=4", *schedule, run_dir=tmp_path / "4")
    with monkeypatch.context() as patch:
        if stop == "cut":
            interrupt_third_epoch(patch)
        assert train(*SMALL, epochs, *schedule, run_dir=run_dir).status == status
    saved = torch.load(run_dir / "last.pt", weights_only=True)
    steps = 6 if name == "onecycle" else 2  # stepped after each batch (3 an epoch) or epoch
    assert (saved["epoch"], saved["scheduler"]["last_epoch"]) == (2, steps)

    outcome = resume(run_dir, "trainer.epochs=4")
    assert outcome.status == "completed" and outcome.summary["resumed_at"] == [2]
    assert outcome.summary["weights_sha256"] == straight.summary["weights_sha256"]
    assert metrics_without_times(run_dir) == metrics_without_times(tmp_path / "4")


@pytest.mark.parametrize("name", ["onecycle", "cosine"])
def test_a_schedule_over_the_runs_length_refuses_a_longer_resume(name, train, tmp_path, caplog):
    run_dir = tmp_path / "run"
    train(*TINY, f"scheduler={name}", run_dir=run_dir)
    files = {path.name: path.read_bytes() for path in run_dir.iterdir()}
    with caplog.at_level(logging.ERROR, logger="multiclass"):
        outcome = resume(run_dir, "trainer.epochs=4")
    assert outcome.status == "failed"
    assert "cannot change trainer.epochs" in outcome.summary["error"]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"error: {outcome.summary['error']}"]
    assert {path.name: path.read_bytes() for path in run_dir.iterdir()} == files


BAD_VALUES = {
    "scheduler=step scheduler.step_size=0": "scheduler.step_size must be an integer >= 1, got 0",
    "scheduler=onecycle scheduler.pct_start=1.5": (
        "scheduler.pct_start must be a number > 0 and < 1, got 1.5"
    ),
    "scheduler=cosine scheduler.interval=hourly": (
        "scheduler.interval must be one of batch, epoch, got 'hourly'"
    ),
}


@pytest.mark.parametrize("overrides", list(BAD_VALUES))
def test_a_bad_value_is_one_line_before_any_training(overrides, train, tmp_path, caplog):
    with caplog.at_level(logging.ERROR, logger="multiclass"):
        outcome = train(*TINY, *overrides.split(), run_dir=tmp_path / "run")
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"error: {BAD_VALUES[overrides]}"]
    assert not (tmp_path / "run").exists()


def test_a_value_torch_refuses_names_the_schedulers_keys(train, tmp_path, caplog):
    with caplog.at_level(logging.ERROR, logger="multiclass"):
        outcome = train(*TINY, "scheduler=step", "+scheduler.foo=1", run_dir=tmp_path / "run")
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    error = outcome.summary["error"]
    assert error.startswith("cannot use the scheduler torch.optim.lr_scheduler.StepLR (")
    assert "scheduler.foo=1" in error and "TypeError" in error


@pytest.mark.parametrize("name", [option for option in options() if option != "none"])
def test_each_key_of_an_option_is_an_argument_of_schedule_or_of_torchs_class(name):
    """Nothing is popped off torch's arguments: `interval` is `schedule`'s own."""
    node = OmegaConf.to_container(compose_config(f"scheduler={name}").scheduler)
    assert node["_target_"] == schedulers.SCHEDULE
    ours = set(inspect.signature(schedulers.schedule).parameters)
    torchs = set(inspect.signature(get_class(node["lr_scheduler"])).parameters)
    assert {key for key in node if not key.startswith("_")} <= ours | torchs


def test_a_run_saved_with_torchs_class_as_the_target_resumes_as_the_4_epoch_run(
    train, tmp_path, monkeypatch
):
    """A config.yaml written before `schedule` (torch's class the `_target_`, `interval` among
    its arguments) still resumes, to the weights of the uninterrupted run."""
    straight = train(*SMALL, "trainer.epochs=4", "scheduler=onecycle", run_dir=tmp_path / "4")
    run_dir = tmp_path / "cut"
    with monkeypatch.context() as patch:
        interrupt_third_epoch(patch)
        train(*SMALL, "trainer.epochs=4", "scheduler=onecycle", run_dir=run_dir)
    saved = OmegaConf.load(run_dir / "config.yaml")
    node = OmegaConf.to_container(saved.scheduler)
    node["_target_"] = node.pop("lr_scheduler")
    saved.scheduler = node
    OmegaConf.save(saved, run_dir / "config.yaml")

    outcome = resume(run_dir)
    assert outcome.status == "completed" and outcome.summary["resumed_at"] == [2]
    assert outcome.summary["weights_sha256"] == straight.summary["weights_sha256"]
