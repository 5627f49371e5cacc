"""multiclass-bench as a smoke test on tiny synthetic data: it runs, and it benchmarks the
model it says it does. Its numbers are measured by running it, not here."""

import json
import os
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from multiclass.bench import contestants, processes
from multiclass.bench.cli import main
from multiclass.bench.compile_run import pays_back
from multiclass.bench.contestants import framework_overrides, installed_rivals, worker
from multiclass.bench.report import markdown
from multiclass.bench.workloads import CONTESTANTS, Workload, build_model
from multiclass.config import compose_config
from multiclass.heads import build_loss
from multiclass.models import build_classifier


def layer_shapes(model: torch.nn.Module) -> list[tuple[int, ...]]:
    return [tuple(p.shape) for p in model.parameters()]


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_every_contestant_trains_the_same_architecture(model, tmp_path):
    overrides = framework_overrides(Workload("w", model, 256, 512), tmp_path, "framework")
    cfg = compose_config(*overrides)
    _, head = build_loss(cfg.loss, num_classes=10)
    framework_model = build_classifier(cfg.model, (1, 28, 28), head)
    assert layer_shapes(framework_model) == layer_shapes(build_model(model))
    assert instantiate(cfg.optimizer).keywords["lr"] == 1e-3


def test_the_smoke_run_writes_a_table_and_json(tmp_path):
    main(
        [
            "--smoke",
            "--samples",
            "256",
            "--repeats",
            "1",
            "--cnn-steps",
            "1",
            "--output",
            str(tmp_path),
        ]
    )
    report = json.loads((tmp_path / "bench.json").read_text())
    assert list(report["workloads"]) == ["mlp-b32", "mlp-b256", "cnn-b256"]
    for workload in report["workloads"].values():
        assert list(workload["contestants"]) == [*CONTESTANTS, *installed_rivals()[0]]
        for row in workload["contestants"].values():
            assert row["seconds"] > 0 and row["peak_rss_mb"] > 0
    assert report["cnn_floor"]["flops_per_sample"] > 0
    table = (tmp_path / "bench.md").read_text()
    assert table.startswith("Smoke run")
    assert table.count("| framework |") == 3


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> Path:
    from multiclass.datasets.synthetic import write_idx_dataset

    write_idx_dataset(tmp_path / "MNIST" / "raw", num_train=256, num_test=64)
    return tmp_path


@pytest.mark.parametrize(
    ("contestant", "module"), [("lightning", "pytorch_lightning"), ("fastai", "fastai")]
)
def test_other_frameworks_train_an_epoch_when_installed(contestant, module, tiny_mnist):
    pytest.importorskip(module)
    result = worker(contestant, Workload("w", "mlp", 32, 256), tiny_mnist)
    assert 0 < result["seconds"] <= result["fit_seconds"]  # the epoch, within the whole fit
    assert 0 <= result["test_acc"] <= 1 and result["peak_rss_mb"] > 0


def test_peers_start_in_the_users_environment_and_the_framework_applies_its_own(
    monkeypatch, tiny_mnist
):
    """What this package set in the bench's environment never reaches a contestant; the
    user's own variables do; the framework's worker sets its wait policy as the command does."""
    from multiclass.device import openmp

    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_DYNAMIC", "FALSE")  # the user's own
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # as a command of ours sets it
    monkeypatch.setenv(openmp.SET_BY_US, "OMP_WAIT_POLICY")
    workload = Workload("w", "mlp", 64, 128)
    minimal = contestants.measure("minimal", workload, tiny_mnist)
    framework = contestants.measure("framework", workload, tiny_mnist)
    users = [
        f"{name}={value}"
        for name, value in sorted(os.environ.items())
        if name.startswith(contestants.COMPUTE_SETTINGS) and name != "OMP_WAIT_POLICY"
    ]
    assert "MKL_DYNAMIC=FALSE" in users
    threads, *variables = minimal["settings"].split(", ")  # torch's own count, no variable of ours
    assert threads.startswith("threads ") and variables == users
    with_ours = sorted([*users, "OMP_WAIT_POLICY=PASSIVE"])
    assert framework["settings"].split(", ") == ["threads 1", *with_ours]


def test_a_run_without_the_other_frameworks_says_what_it_skipped(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(contestants, "installed", lambda module: False)
    main(["--smoke", "--samples", "256", "--repeats", "1", "--workloads", "mlp-b256",
          "--output", str(tmp_path)])  # fmt: skip
    line = "Skipped lightning, fastai: not installed (pip install -e '.[bench]')."
    assert line in capsys.readouterr().err
    assert line in (tmp_path / "bench.md").read_text()
    report = json.loads((tmp_path / "bench.json").read_text())
    assert list(report["workloads"]["mlp-b256"]["contestants"]) == list(CONTESTANTS)


def row(seconds: float, fit_seconds: float | None = None) -> dict:
    summary = {"seconds": seconds, "all_seconds": [seconds], "peak_rss_mb": 900, "test_acc": None}
    summary["settings"] = "threads 2"
    return summary if fit_seconds is None else {**summary, "fit_seconds": fit_seconds}


def test_the_table_compares_the_framework_with_each_other_framework():
    contestants = {"framework": row(1.0), "lightning": row(2.0, 2.5), "fastai": row(4.0, 4.2)}
    report = {
        "machine": "m",
        "repeats": 1,
        "data": "d",
        "smoke": False,
        "workloads": {"mlp-b256": {"samples": 256, "batch_size": 256, "contestants": contestants}},
        "cnn_floor": {},
    }
    table = markdown(report)
    assert "| mlp-b256 | lightning | 2.00 | 2.00-2.00 | 128 | 900 | - | 0.50 | threads 2 |" in table
    assert "| mlp-b256 | fastai | 4.00 | 4.00-4.00 | 64 | 900 | - | 0.25 | threads 2 |" in table
    assert (
        "- mlp-b256: framework / Lightning = 0.50, framework / fastai = 0.25 (target <= 0.5); "
        "whole fit call, set-up included: `trainer.fit` 2.50 s, `learn.fit` 4.20 s." in table
    )


def test_start_up_is_ours_alone_the_run_minus_the_torch_floor_beside_it(monkeypatch):
    """Runs and floors alternate; ours is the median of each pair's difference."""
    times = iter([9.0, 5.0, 7.0, 6.5, 8.0, 4.0])  # run, floor, run, floor, ...
    monkeypatch.setattr(processes, "timed_process", lambda command, cwd: next(times))
    startup = processes.startup_seconds(3)
    assert startup == {"framework_s": 8.0, "torch_floor_s": 5.0, "ours_s": 4.0}
    sweep = dict.fromkeys(
        ["plots_true_s", "plots_false_s", "plots_true_marginal_s", "plots_false_marginal_s"], 0.4
    )
    sweep.update(plots_true_wall_s=10.0, plots_false_wall_s=8.0)
    report = {"machine": "m", "repeats": 3, "data": "d", "smoke": False, "workloads": {}}
    table = markdown({**report, "cnn_floor": {}, "startup": startup, "sweep": sweep})
    assert "ours, the difference (median of pairs): 4.00 s (budget <= 2.0 s)" in table
    assert "each job past the first: 0.40 s with plots (budget <= 1.0 s)" in table


def test_the_sweep_figures_are_medians_of_rounds_that_time_all_four_sweeps(monkeypatch):
    """Each round times one job and eight, with plots and without; a job past the first costs
    (eight's wall - training - one's wall + one's training) / 7, and a round's outlier drops out."""
    marginals = {"true": iter([0.3, 0.9, 0.5]), "false": iter([0.1, 0.2, 0.15])}
    timed = []

    def fake_sweep(jobs: int, plots: str) -> tuple[float, float]:
        timed.append((jobs, plots))
        return (2.0, 0.5) if jobs == 1 else (2.0 + 1.0 + 7 * next(marginals[plots]), 1.0 + 0.5)

    monkeypatch.setattr(processes, "timed_sweep", fake_sweep)
    sweep = processes.sweep_overhead(jobs=8, repeats=3)
    assert timed == [(1, "true"), (8, "true"), (1, "false"), (8, "false")] * 3
    assert sweep["plots_true_marginal_s"] == pytest.approx(0.5)
    assert sweep["plots_false_marginal_s"] == pytest.approx(0.15)
    assert sweep["plots_true_wall_s"] == pytest.approx(3.0 + 7 * 0.5)
    assert sweep["plots_true_marginal_s_rounds"] == pytest.approx([0.3, 0.9, 0.5])


def test_the_compile_run_times_whole_seed_runs_both_ways(monkeypatch, tmp_path):
    # Compiling here would take minutes; the test checks the runs and the report, not torch.
    monkeypatch.setenv("TORCH_COMPILE_DISABLE", "1")
    main(["--compile-run", "--samples", "256", "--compile-epochs", "2", "--repeats", "1",
          "--output", str(tmp_path)])  # fmt: skip
    report = json.loads((tmp_path / "compile-run.json").read_text())
    assert report["experiment"] == "seed000_mnist_mlp" and report["batch_size"] == 256
    for setting, result in report["settings"].items():
        assert f"device.compile={setting}" in result["overrides"]
        assert "trainer.epochs=2" in result["overrides"]
        assert 0 < result["train_time_s"] < result["wall_s"]
        assert result["later_epoch_s"] is not None
    table = (tmp_path / "compile-run.md").read_text()
    assert "| false |" in table and "| true |" in table and "pays for itself" in table


def test_compiling_pays_back_once_its_faster_epochs_repay_the_first():
    def settings(first_off, later_off, first_on, later_on):
        return {
            "settings": {
                "false": {"first_epoch_s": first_off, "later_epoch_s": later_off},
                "true": {"first_epoch_s": first_on, "later_epoch_s": later_on},
            }
        }

    assert pays_back(settings(1.0, 1.0, 5.0, 0.5)) == "after about 9 epochs"
    assert pays_back(settings(1.0, 1.0, 5.0, 1.0)).startswith("never")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is here: gpu-check would run")
def test_gpu_check_says_in_one_line_that_there_is_no_gpu_and_exits_0(capsys):
    from multiclass.bench.gpu_check import main

    assert main([]) == 0
    assert capsys.readouterr().out == (
        "gpu-check: no CUDA GPU here (torch.cuda.is_available() is False): nothing to check\n"
    )
