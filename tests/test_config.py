"""Every option of every config group composes and builds; wrong types fail at composition."""

import functools
import re

import pytest
import torch
from hydra.errors import ConfigCompositionException, InstantiationException
from hydra.utils import instantiate
from omegaconf.errors import ConfigKeyError

from multiclass.config import CONFIG_DIR, compose_config, trainer_settings
from multiclass.datasets import Splits
from multiclass.datasets.synthetic import write_idx_dataset
from multiclass.errors import UserError
from multiclass.heads import build_loss
from multiclass.models import build_classifier
from multiclass.optimizers import build_optimizer, has_fused
from multiclass.validation import check_config
from tests.test_image_folder import draw_folder
from tests.test_table_dataset import animals


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))


def test_the_groups_hold_the_documented_options():
    assert options("dataset") == [
        "blobs",
        "digits",
        "fashion_mnist",
        "image_folder",
        "mnist",
        "moons",
        "table",
        "toy",
        "xor",
    ]
    assert options("model") == ["cnn", "linear", "mlp", "timm", "torchvision"]
    assert options("augment") == ["flip_crop", "none", "trivial_augment"]
    assert options("loss") == ["bce", "bce_with_logits", "cross_entropy", "nll"]
    assert options("optimizer") == ["adam", "adamw", "sgd"]
    assert options("scheduler") == ["cosine", "none", "onecycle", "step"]
    assert options("device") == ["auto", "cpu", "cuda"]
    assert options("logger") == ["mlflow", "none", "tensorboard"]


def own_data(tmp_path) -> dict[str, list[str]]:
    """What the data sets that read a user's files need: a CSV, a folder of PNGs."""
    table = tmp_path / "animals.csv"
    animals(90, seed=0).to_csv(table, index=False)
    folder = draw_folder(tmp_path / "colours")
    return {
        "table": [f"dataset.path={table}", "dataset.target=label"],
        "image_folder": [f"dataset.root={folder}", "dataset.image_size=8"],
    }


@pytest.mark.parametrize("name", options("dataset"))
def test_every_dataset_builds_splits(name, tmp_path):
    for folder in ("MNIST", "FashionMNIST"):
        write_idx_dataset(tmp_path / folder / "raw", num_train=60, num_test=20)
    overrides = [f"dataset={name}", *own_data(tmp_path).get(name, [])]
    if "mnist" in name:
        overrides += [f"dataset.root={tmp_path}", "dataset.download=false"]
    splits = instantiate(compose_config(*overrides).dataset)
    assert isinstance(splits, Splits)
    assert splits.num_classes >= 2
    stored_as_pixels = "mnist" in name or name == "image_folder"
    assert splits.train.x.dtype == (torch.uint8 if stored_as_pixels else torch.float32)
    assert splits.train.x.shape[1:] == splits.test.x.shape[1:]
    assert len(splits.train) > 0 and len(splits.test) > 0


@pytest.mark.parametrize("model", options("model"))
@pytest.mark.parametrize("loss", options("loss"))
def test_every_model_and_loss_build_a_network_of_the_right_width(model, loss):
    if model == "timm":
        pytest.importorskip("timm", reason="needs the [timm] extra")
    cfg = compose_config(f"model={model}", f"loss={loss}")
    criterion, head = build_loss(cfg.loss, num_classes=3)
    network = build_classifier(cfg.model, (1, 8, 8), head)
    outputs = network(torch.rand(5, 1, 8, 8))
    assert outputs.shape == (5, head.width)
    assert criterion(outputs, head.encode(torch.tensor([0, 1, 2, 0, 1]))).isfinite()


@pytest.mark.parametrize("name", options("optimizer"))
def test_every_optimizer_gets_fused_kernels_on_the_cpu_unless_told_not_to(name):
    cfg = compose_config(f"optimizer={name}")
    cpu = torch.device("cpu")
    optimizer = build_optimizer(
        instantiate(cfg.optimizer), [torch.nn.Parameter(torch.zeros(2))], cpu
    )
    assert isinstance(optimizer, torch.optim.Optimizer)
    assert optimizer.param_groups[0]["lr"] == cfg.optimizer.lr
    assert optimizer.param_groups[0]["fused"] is True
    plain = instantiate(compose_config(f"optimizer={name}", "optimizer.fused=false").optimizer)
    assert (
        build_optimizer(plain, [torch.nn.Parameter(torch.zeros(2))], cpu).defaults["fused"] is False
    )


def test_an_optimizer_without_fused_kernels_is_built_as_configured():
    make = functools.partial(torch.optim.Adagrad, lr=0.1, fused=None)
    assert not has_fused(make, torch.device("meta"))
    rprop = build_optimizer(
        functools.partial(torch.optim.Rprop),
        [torch.nn.Parameter(torch.ones(2))],
        torch.device("cpu"),
    )
    assert isinstance(rprop, torch.optim.Rprop)


@pytest.mark.parametrize("name", options("device"))
def test_every_device_option_builds_or_says_it_is_missing(name):
    cfg = compose_config(f"device={name}")
    if name == "cuda" and not torch.cuda.is_available():
        with pytest.raises(InstantiationException) as failure:
            instantiate(cfg.device)
        assert isinstance(failure.value.__cause__, UserError)
        assert "device.kind=cuda was asked for" in str(failure.value.__cause__)
        return
    runtime = instantiate(cfg.device)
    assert runtime.device.type in ("cpu", "cuda", "mps")
    assert torch.are_deterministic_algorithms_enabled()


def test_trainer_settings_default_and_override():
    settings = trainer_settings(compose_config("trainer.epochs=3", "trainer.batch_size=7"))
    assert (settings.epochs, settings.batch_size, settings.progress) == (3, 7, True)


@pytest.mark.parametrize(
    "override", ["trainer.epochs=abc", "seed=one", "trainer.progress=maybe", "plots=3.5"]
)
def test_wrong_types_are_one_line_naming_the_key(override):
    key = override.split("=")[0]
    with pytest.raises(UserError, match=f"^{re.escape(key)} must be "):
        check_config(compose_config(override))


@pytest.mark.parametrize("override", ["model=transformer", "trainer.epoch=3", "model.widht=8"])
def test_unknown_options_and_keys_fail_at_composition(override):
    with pytest.raises((ConfigCompositionException, ConfigKeyError)):
        compose_config(override)


def test_each_job_sets_the_threads_its_launcher_granted(monkeypatch):
    from multiclass.device.runtime import prepare, threads_per_job

    for name in ("OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK"):
        monkeypatch.delenv(name, raising=False)
    cores = threads_per_job()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as joblib's loky sets it: cores // n_jobs
        prepare("cpu")
        assert torch.get_num_threads() == 1
        prepare("cpu", num_threads=2)  # a value in the config wins
        assert torch.get_num_threads() == 2
        monkeypatch.delenv("OMP_NUM_THREADS")
        monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
        assert threads_per_job() == 1
        monkeypatch.setenv("SLURM_CPUS_PER_TASK", "999")  # never more than this process's cores
        assert threads_per_job() == cores
        monkeypatch.delenv("SLURM_CPUS_PER_TASK")
        torch.set_num_threads(1)  # what a reused worker's last job left behind
        prepare("cpu")
        assert torch.get_num_threads() == cores
    finally:
        torch.set_num_threads(cores)


FAULTS_SCRIPT = """
import json, resource, torch
from multiclass.device.runtime import keep_freed_memory

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(10_000_000)  # 40 MB made, touched and freed at once
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

default = [faults() for _ in range(4)]
kept = keep_freed_memory()
print(json.dumps({"kept": kept, "default": default, "after": [faults() for _ in range(16)]}))
"""


def test_freed_cpu_memory_is_reused_not_faulted_in_again():
    """A tensor of 40 MB made and freed again and again: torch's default faults in about
    10,000 fresh pages every time; with malloc keeping freed memory, once the heap has settled
    (a few steps) none. In a fresh process: the suite's own heap has seen everything."""
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", FAULTS_SCRIPT], capture_output=True, text=True, check=True
    )
    measured = json.loads(done.stdout)
    if not measured["kept"]:
        pytest.skip("the C library is not glibc")
    assert min(measured["default"]) > 5_000, measured
    assert max(measured["after"][-4:]) < 1_000, measured


def test_deterministic_mode_is_switched_both_ways():
    from multiclass.device.runtime import prepare

    try:
        prepare("cpu", deterministic=False)
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        prepare("cpu")
    assert torch.are_deterministic_algorithms_enabled()
