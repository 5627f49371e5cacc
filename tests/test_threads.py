"""How a run computes on the CPU: nothing set at import, OpenMP's wait policy set by a command
before torch loads it (the user's choice wins), and the thread count chosen from the work of a
training step (the user's choice wins)."""

import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from multiclass.bench.workloads import build_model
from multiclass.device import openmp
from multiclass.device.runtime import SMALL_STEP, prepare, threads_for_step, threads_per_job
from multiclass.models.work import multiply_adds_per_sample

# Imports every module of the package (the peers' bench contestants aside: they import other
# frameworks), then prints what changed process-wide.
IMPORT_ALL = """
import json, os, pkgutil, signal, importlib, logging, torch
before = dict(os.environ), torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
root = list(logging.getLogger().handlers), logging.getLogger().level
import multiclass
for module in pkgutil.walk_packages(multiclass.__path__, "multiclass."):
    if module.name not in ("multiclass.bench.lightning", "multiclass.bench.fastai",
                           "multiclass.__main__"):
        importlib.import_module(module.name)
multiclass.load_run
after = dict(os.environ), torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
changed = sorted(k for k in set(before[0]) | set(after[0]) if before[0].get(k) != after[0].get(k))
print(json.dumps({
    "environ": changed,
    "threads": [before[1], after[1]],
    "deterministic": [before[2], after[2]],
    "signals": [handlers == (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))],
    "logging": [root == (list(logging.getLogger().handlers), logging.getLogger().level)],
}))
"""


def test_importing_the_package_changes_nothing_process_wide():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    changed = json.loads(done.stdout.strip().splitlines()[-1])
    assert changed["environ"] == []
    assert changed["threads"][0] == changed["threads"][1]
    assert changed["deterministic"] == [False, False]
    assert changed["signals"] == [True] and changed["logging"] == [True]


def test_the_train_command_sets_passive_waiting_before_torch_loads():
    """Set by the command as it starts, before any import of torch (OpenMP reads it once)."""
    script = (
        "import os, sys; sys.argv = ['multiclass-train', '--cfg', 'job'];"
        "from multiclass.commands.train import main\n"
        "try: main()\nexcept SystemExit: pass\n"
        "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip().splitlines()[-1] == "PASSIVE False", done.stderr[-2000:]


@pytest.mark.parametrize(
    "users", [{"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "1000"}, {"PATH": "/bin"}]
)
def test_a_wait_policy_the_user_chose_wins_and_what_we_set_can_be_taken_off(users):
    environ = dict(users)
    openmp.set_wait_policy(environ)
    if "PATH" in users:  # no choice of the user's: passive, and named as ours
        assert environ["OMP_WAIT_POLICY"] == "PASSIVE"
        assert environ[openmp.SET_BY_US] == "OMP_WAIT_POLICY"
    else:
        assert environ == users
    assert openmp.users_environment(environ) == users


def test_multiply_adds_are_counted_by_hand_and_change_nothing():
    mlp = build_model("mlp")  # 784-256-128-64-10
    assert multiply_adds_per_sample(mlp, (1, 28, 28)) == 784 * 256 + 256 * 128 + 128 * 64 + 64 * 10
    conv = nn.Sequential(nn.Conv2d(3, 8, 3, groups=1), nn.Conv2d(8, 8, 3, groups=4, padding=1))
    conv.train()
    weights = [p.clone() for p in conv.parameters()]
    state = torch.get_rng_state()
    # 8 outputs of 6x6, each 3 channels x 3x3; then 8 of 6x6, each 2 channels (a group) x 3x3.
    assert multiply_adds_per_sample(conv, (3, 8, 8)) == 8 * 36 * 27 + 8 * 36 * 18
    assert conv.training and torch.equal(state, torch.get_rng_state())
    assert all(torch.equal(a, b) for a, b in zip(weights, conv.parameters(), strict=True))


def test_a_small_step_trains_on_one_thread_a_large_one_on_every_granted_core(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert threads_for_step(SMALL_STEP - 1) == 1
    assert threads_for_step(SMALL_STEP) == threads_per_job()
    mlp = multiply_adds_per_sample(build_model("mlp"), (1, 28, 28))
    cnn = multiply_adds_per_sample(build_model("cnn"), (1, 28, 28))
    assert mlp * 32 < SMALL_STEP <= mlp * 256 < cnn * 256  # the bench's workloads' sides
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's (or a launcher's): it wins
    assert threads_for_step(10 * SMALL_STEP) == 1


def test_device_num_threads_wins_over_the_rule(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = torch.get_num_threads()
    try:
        assert prepare("cpu").settle_threads(0) == 1
        assert prepare("cpu", num_threads=2).settle_threads(0) == 2
        assert prepare("cpu", num_threads=1).settle_threads(10 * SMALL_STEP) == 1
    finally:
        torch.set_num_threads(cores)


def test_a_default_run_records_the_threads_it_trained_with(monkeypatch, train):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    outcome = train("trainer.epochs=1")  # digits' MLP at batch 64: a small step
    assert outcome.summary["num_threads"] == 1
