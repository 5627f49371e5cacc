"""multiclass-bench as a smoke test on tiny synthetic data: it runs, and it benchmarks the
model it says it does. Its numbers are measured by running it, not here."""

import json

import pytest
import torch
from hydra.utils import instantiate

from multiclass.commands.bench import Workload, build_model, framework_overrides, main
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
        assert list(workload["contestants"]) == ["seed-style", "minimal", "framework"]
        for row in workload["contestants"].values():
            assert row["seconds"] > 0 and row["peak_rss_mb"] > 0
    assert report["cnn_floor"]["flops_per_sample"] > 0
    table = (tmp_path / "bench.md").read_text()
    assert table.startswith("Smoke run")
    assert table.count("| framework |") == 3
