"""multiclass-lr-find: the range test steps the lr exponentially from --start to --end, stops
when the smoothed loss diverges, suggests the valley's lr as an override and writes
lr_find.png and lr_find.csv; it changes nothing of the run (weights, optimizer, generators),
and bad input is one line, exit status 1, nothing written."""

import csv
import itertools
import math
import re

import pytest
import torch

from multiclass.callbacks.training import GradientClipping
from multiclass.commands import lr_find
from multiclass.config import compose_config, trainer_settings
from multiclass.lifecycle import lr_range
from multiclass.lifecycle.build import build
from multiclass.lifecycle.distributed import Processes
from tests.conftest import CPU, QUIET

DIGITS = ["dataset.limit=400", "model.dropout=0.2", CPU, "trainer.progress=false"]


def run_command(capsys, *args):
    """multiclass-lr-find in this process: its exit status, stdout and stderr."""
    try:
        lr_find.main([*DIGITS, *args])
        code = 0
    except SystemExit as ended:
        code = ended.code
    out, err = capsys.readouterr()
    return code, out, err


def test_it_prints_the_suggestion_as_an_override_and_writes_its_plot_and_steps(capsys, tmp_path):
    out_dir = tmp_path / "found"
    code, out, _ = run_command(capsys, "--steps", "60", f"hydra.run.dir={out_dir}")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("lr range test: ")
    suggested = re.fullmatch(r"suggested \(valley\): optimizer\.lr=(\d\.\de-\d\d)", lines[1])
    assert suggested and re.fullmatch(r"steepest descent: +optimizer\.lr=\d\.\de-\d\d", lines[2])
    assert sorted(path.name for path in out_dir.iterdir()) == ["lr_find.csv", "lr_find.png"]
    assert (out_dir / "lr_find.png").read_bytes().startswith(b"\x89PNG")
    with open(out_dir / "lr_find.csv") as file:
        rows = list(csv.DictReader(file))
    lrs = [float(row["lr"]) for row in rows]
    assert lrs[0] == pytest.approx(1e-7)
    ratio = (10 / 1e-7) ** (1 / 59)  # exponential steps from start to end
    assert all(b / a == pytest.approx(ratio) for a, b in itertools.pairwise(lrs))
    assert 1e-5 < float(suggested[1]) < 1  # Adam on digits: near its own 1e-3, not at an end
    losses = [float(row["smoothed_loss"]) for row in rows]
    assert min(losses) < 0.95 * losses[0]


def test_it_stops_once_the_smoothed_loss_passes_four_times_its_best(capsys, tmp_path):
    # SGD's steps grow with the lr itself: past lr ~10 the logits, and the loss, blow up.
    code, out, _ = run_command(
        capsys, "optimizer=sgd", "--start", "1e-3", "--end", "1e6", f"hydra.run.dir={tmp_path}"
    )
    assert code == 0
    assert "(stopped early: the loss diverged)" in out.splitlines()[0]
    with open(tmp_path / "lr_find.csv") as file:
        smoothed = [float(row["smoothed_loss"]) for row in csv.DictReader(file)]
    assert len(smoothed) < 100
    last = smoothed[-1]
    assert not math.isfinite(last) or last > 4 * min(smoothed)
    assert all(value <= 4 * min(smoothed[: i + 1]) for i, value in enumerate(smoothed[:-1]))


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["--start", "10", "--end", "1e4", "--steps", "30"],
            r"the loss never fell between lr 10 and \S+: it diverged after \d+ steps:"
            r" lower --start",
        ),
        (
            ["--start", "1e-9", "--end", "1e-7", "--steps", "20"],
            r"the loss never fell between lr 1e-09 and 1e-07: its smoothed value went from \S+ to"
            r" \S+ at best: raise --end",
        ),
        (["optimizer.lr=abc"], r"optimizer.lr must be a number > 0, got 'abc'"),
        (["foo=1"], r"Could not override 'foo'. To append to your config use \+foo=1"),
        (["--start", "1", "--end", "1e-3"], r"--start 1 and --end 0.001: need 0 < start < end"),
    ],
)
def test_bad_input_is_one_line_exit_1_and_nothing_written(capsys, tmp_path, args, error):
    out_dir = tmp_path / "never"
    code, out, err = run_command(capsys, *args, f"hydra.run.dir={out_dir}")
    assert code == 1
    assert re.fullmatch(f"error: {error}\n", err.splitlines(keepends=True)[-1])
    assert out == ""
    assert not out_dir.exists()


def test_a_bad_value_is_the_line_multiclass_train_prints(train, capsys, tmp_path):
    _, _, err = run_command(capsys, "trainer.epochs=0", f"hydra.run.dir={tmp_path / 'x'}")
    refused = train("trainer.epochs=0", run_dir=tmp_path / "run")
    assert err.splitlines()[-1] == f"error: {refused.summary['error']}"


def test_the_test_leaves_the_weights_the_optimizer_and_the_generators_as_they_were():
    cfg = compose_config(*QUIET, "dataset.limit=400", "model.dropout=0.2", "optimizer=sgd")
    cfg.optimizer.momentum = 0.9  # a state of its own to put back
    settings = trainer_settings(cfg)
    built = build(cfg, settings, {}, Processes())
    before = {k: v.clone() for k, v in built.model.state_dict().items()}
    lrs = [group["lr"] for group in built.task.optimizer.param_groups]
    generator = torch.random.get_rng_state()
    curve = lr_range.range_test(built, settings, lr_range.Span(1e-4, 1, 30), cfg.seed)
    assert len(curve.lrs) == 30
    after = built.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert built.task.optimizer.state_dict()["state"] == {}
    assert [group["lr"] for group in built.task.optimizer.param_groups] == lrs
    assert torch.equal(torch.random.get_rng_state(), generator)  # dropout drew from a fork


def test_a_run_after_the_test_in_one_process_trains_the_weights_of_a_run_without(
    train, capsys, tmp_path
):
    options = ["dataset.limit=400", "model.dropout=0.2", "trainer.epochs=2"]
    without = train(*options).summary["weights_sha256"]
    code, _, err = run_command(
        capsys, "--start", "1e-4", "--steps", "30", f"hydra.run.dir={tmp_path / 'lr'}"
    )
    assert code == 0, err
    assert train(*options).summary["weights_sha256"] == without


def test_the_readings_of_a_known_curve():
    """A flat start, a fall from step 10 to 30, then a rise: the valley is halfway down the
    fall, the steep reading where it falls fastest."""
    lrs = [10 ** (-7 + i / 5) for i in range(40)]
    losses = [2.0] * 10 + [2.0 - 0.05 * i - 0.002 * i * i for i in range(20)] + [3.0] * 10
    assert lr_range.valley(losses) == 19  # the longest fall: 20 steps down to step 29
    assert lr_range.steep(lrs, losses) == 28  # the fall's slope grows: its steepest at its end


def test_the_smoothed_loss_is_the_debiased_moving_average():
    losses = [3.0, 1.0, 2.0, 5.0]
    smoothed = lr_range.smoothed(losses)
    assert len(smoothed) == len(losses)
    beta = lr_range.SMOOTHING
    for n, value in enumerate(smoothed, start=1):
        weights = [beta ** (n - 1 - i) for i in range(n)]
        expected = sum(w * x for w, x in zip(weights, losses, strict=False)) / sum(weights)
        assert value == pytest.approx(expected, rel=1e-12)


def test_each_step_is_the_runs_clipped_step_at_the_tests_lr(monkeypatch):
    """trainer.gradient_clip_norm clips each optimizer step (one per two batches here), which
    the test takes at the lr it records."""
    stepped_at = []
    clip = GradientClipping.on_before_optimizer_step

    def clipping(self, run):
        stepped_at.append(run.built.task.optimizer.param_groups[0]["lr"])
        clip(self, run)

    monkeypatch.setattr(GradientClipping, "on_before_optimizer_step", clipping)
    steps = ["trainer.gradient_clip_norm=1", "trainer.accumulate_grad_batches=2"]
    cfg = compose_config(*QUIET, "dataset.limit=400", *steps)
    settings = trainer_settings(cfg)
    built = build(cfg, settings, {}, Processes())
    curve = lr_range.range_test(built, settings, lr_range.Span(1e-4, 1, 20), cfg.seed)
    assert stepped_at == curve.lrs
    assert len(curve.lrs) == 20
