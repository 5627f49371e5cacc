"""The seeds' experiments as configs: each keeps its seed's architecture and settings and runs
a step on tiny data (none runs to completion here); multiclass-reproduce tabulates runs."""

import json

import pytest
import torch

from multiclass.commands.reproduce import (
    as_overrides,
    collect,
    data_options,
    experiment_names,
    main,
    markdown,
    missing_data,
)
from multiclass.config import compose_config
from multiclass.datasets.synthetic import write_idx_dataset
from tests.conftest import read_summary

# The linear layers each seed's network has, as (in, out).
SEED_ARCHITECTURES = {
    "seed000_blobs": [(2, 4), (4, 8), (8, 4)],
    "seed000_mnist_mlp": [(784, 256), (256, 128), (128, 64), (64, 10)],
    "seed001_mnist_softmax": [(784, 10)],
    "seed001_xor": [(2, 10), (10, 10), (10, 10), (10, 1)],
    "seed002_mnist012_cnn": [(2304, 3)],
    "seed002_mnist01_bce": [(2304, 1)],
    "seed002_mnist01_ce": [(2304, 2)],
    "seed002_mnist01_ce_onehot": [(2304, 2)],
    "seed003_toy": [(4, 3)],
    "seed004_mnist01_mlp": [(784, 32), (32, 1)],
    "seed004_fashion_mlp32": [(784, 32), (32, 10)],
    "seed004_fashion_mlp256": [(784, 256), (256, 10)],
    "seed004_fashion_mlp4096": [(784, 4096), (4096, 10)],
    "seed004_fashion_mlp4x256": [(784, 256), (256, 256), (256, 256), (256, 256), (256, 10)],
    "seed004_fashion_cnn": [(1024, 10)],
}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for folder in ("MNIST", "FashionMNIST"):
        write_idx_dataset(root / folder / "raw", num_train=300, num_test=60)
    return root


def test_every_experiment_is_listed():
    assert experiment_names() == sorted(SEED_ARCHITECTURES)


@pytest.mark.parametrize("name", sorted(SEED_ARCHITECTURES))
def test_each_experiment_runs_a_step_with_its_seeds_network(name, train, tmp_path, data_root):
    options = data_options(compose_config(f"experiment={name}"), data_root)
    overrides = [f"experiment={name}", "trainer.epochs=1", *as_overrides(options)]
    if any(o.startswith("dataset.root") for o in overrides):
        overrides.append("dataset.limit=200")
    outcome = train(*overrides, run_dir=tmp_path / "run")
    assert outcome.status == "completed", outcome.summary.get("error")
    assert outcome.summary["epochs"] == 1
    assert set(compose_config(*overrides).reproduces.figures) <= set(outcome.summary)
    state = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["state_dict"]
    linear = [
        tuple(t.shape[::-1]) for k, t in state.items() if k.endswith("weight") and t.dim() == 2
    ]
    assert linear == SEED_ARCHITECTURES[name]


def test_an_experiment_sets_the_seeds_values_and_the_command_line_still_wins():
    cfg = compose_config("experiment=seed000_mnist_mlp")
    assert (cfg.trainer.epochs, cfg.trainer.batch_size, cfg.optimizer.lr) == (20, 32, 0.01)
    assert cfg.optimizer._target_ == "torch.optim.Adam" and cfg.dataset.val_fraction == 0
    assert compose_config("experiment=seed000_mnist_mlp", "trainer.epochs=2").trainer.epochs == 2


def test_results_are_tabulated_over_seeds(train, tmp_path):
    sweep = tmp_path / "sweep"
    runs = [
        train(
            "experiment=seed003_toy", "trainer.epochs=20", f"seed={seed}", run_dir=sweep / str(seed)
        )
        for seed in (0, 1)
    ]
    losses = [run.summary["train_loss"] for run in runs]
    result = collect(sweep, ["train_loss"])
    assert result["seeds"] == [0, 1]
    assert result["measured"]["train_loss"]["mean"] == pytest.approx(sum(losses) / 2)
    assert result["measured"]["train_loss"]["min"] == min(losses)
    table = markdown(
        {"seed003_toy": {"seed": "003", "reported": "final cost 0.242", **result}}, tmp_path
    )
    assert f"train_loss {sum(losses) / 2:.4f}" in table and "| 0,1 |" in table


def test_an_experiment_without_its_data_is_not_run(tmp_path, data_root):
    cfg = compose_config("experiment=seed004_fashion_mlp32")
    assert as_overrides(data_options(cfg, tmp_path)) == [
        f"dataset.root={tmp_path.resolve()}",
        "dataset.download=False",
    ]
    assert missing_data(cfg, data_options(cfg, tmp_path)).startswith("FashionMNIST not found")
    assert missing_data(cfg, data_options(cfg, data_root)) is None
    assert data_options(compose_config("experiment=seed003_toy"), tmp_path) == {}


def test_multiclass_reproduce_runs_an_experiment_and_tabulates_it_beside_the_seeds_figure(
    tmp_path, capsys, monkeypatch
):
    """The command end to end on seed003_toy (8 rows, 1001 full-batch epochs of a millisecond)
    for seed 0: a Hydra sweep in a process of its own, then the measured train_loss beside the
    seed's; an experiment whose data is not here is listed as not run."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # the sweep's own process: on the CPU too
    out = tmp_path / "reproduce"
    arguments = ["--only", "seed003_toy", "seed004_fashion_mlp32", "--seeds", "0"]
    main([*arguments, "--data-root", str(tmp_path / "no-data"), "--output", str(out)])

    job = read_summary(out / "seed003_toy" / "0")
    assert (job["status"], job["seed"], job["epochs"]) == ("completed", 0, 1001)
    results = json.loads((out / "results.json").read_text())
    toy, expected = results["seed003_toy"], compose_config("experiment=seed003_toy").reproduces
    assert (toy["seed"], toy["reported"], toy["seeds"]) == (expected.seed, expected.reported, [0])
    measured = toy["measured"]["train_loss"]
    assert measured["values"] == [job["train_loss"]] and measured["mean"] == job["train_loss"]
    assert measured["mean"] == pytest.approx(expected.figures.train_loss, abs=0.015)
    fashion = results["seed004_fashion_mlp32"]
    assert fashion["not_run"].startswith("not run here: no data offline (FashionMNIST not found")
    assert not (out / "seed004_fashion_mlp32").exists()

    table = (out / "results.md").read_text()
    assert capsys.readouterr().out == table + "\n"
    (toy_row,) = [line for line in table.splitlines() if line.startswith("| `seed003_toy`")]
    mean = f"{job['train_loss']:.4f}"
    assert f"| train_loss {mean} ({mean}-{mean}) | 0 |" in toy_row
