"""The step's events and the trainer options built on them: gradient clipping, gradient
accumulation and a moving average of the weights; callbacks placed by their order; Ctrl-C
and SIGTERM as a request that training takes at a safe point."""

import signal
from pathlib import Path

import pytest
import torch

from multiclass.callbacks import Callback, Callbacks, RunState
from multiclass.lifecycle.stopping import StopSignals
from tests.conftest import read_summary

# 79 training samples of digits, on one thread: SGD steps by the gradient itself.
SMALL = ["dataset.limit=88", "optimizer=sgd", "optimizer.lr=0.5", "device.num_threads=1"]


class Probe(Callback):
    """Records, at the events a test sets it to, what the step's listeners see."""

    seen: list = []  # noqa: RUF012 (one list a test, reset by `probe`)

    def __init__(self, order: int = 0) -> None:
        self.order = order


class GradientNorms(Probe):
    def on_before_optimizer_step(self, run: RunState) -> None:
        grads = [p.grad for p in run.built.task.trained.parameters() if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item()
        Probe.seen.append((norm, max(g.abs().max().item() for g in grads)))


class StepWeights(Probe):
    def on_after_optimizer_step(self, run: RunState) -> None:
        state = run.built.task.trained.state_dict()
        Probe.seen.append({name: tensor.clone() for name, tensor in state.items()})


class SignalAtStep(Probe):
    """Sends this process SIGTERM in the seventh step, and again once the run has ended."""

    def on_train_batch_end(self, run: RunState, batch: torch.Tensor, loss: torch.Tensor) -> None:
        Probe.seen.append(len(batch))
        if len(Probe.seen) == 7:
            signal.raise_signal(signal.SIGTERM)

    def on_run_end(self, run: RunState) -> None:
        signal.raise_signal(signal.SIGTERM)  # while finishing: changes nothing


def probe(kind: type[Probe], order: int = 0) -> list[str]:
    Probe.seen = []
    target = f"+callbacks.probe._target_=tests.test_step_events.{kind.__name__}"
    return [target, f"+callbacks.probe.order={order}"]


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "model.pt", weights_only=True)["state_dict"]


@pytest.mark.parametrize(("option", "bound", "column"), [("norm", 0.05, 0), ("value", 0.002, 1)])
def test_clipped_gradients_never_exceed_the_bound(train, option, bound, column) -> None:
    train(*SMALL, "trainer.epochs=2", *probe(GradientNorms))
    assert max(seen[column] for seen in Probe.seen) > 2 * bound  # unclipped, they do
    clipped = train(
        *SMALL, "trainer.epochs=2", f"trainer.gradient_clip_{option}={bound}", *probe(GradientNorms)
    )
    assert clipped.status == "completed"
    assert len(Probe.seen) == 2 * 2  # 79 samples in batches of 64: 2 steps an epoch
    assert max(seen[column] for seen in Probe.seen) <= bound * (1 + 1e-6)


def test_accumulating_k_batches_is_one_batch_of_k_times_their_size(train, tmp_path) -> None:
    # 79 samples: batches of 8, 3 a step, are steps of 24, 24, 24 and 7 (an uneven last group).
    common = [*SMALL, "trainer.epochs=3"]
    one = train(*common, "trainer.batch_size=24", run_dir=tmp_path / "one")
    accumulated = train(
        *common,
        "trainer.batch_size=8",
        "trainer.accumulate_grad_batches=3",
        run_dir=tmp_path / "accumulated",
    )
    assert accumulated.summary["split_sizes"]["train"] == 79
    apart = train(*common, "trainer.batch_size=8", run_dir=tmp_path / "apart")
    theirs, mine = weights(tmp_path / "one"), weights(tmp_path / "accumulated")
    for name, tensor in mine.items():
        assert torch.allclose(tensor, theirs[name], rtol=0, atol=1e-6), name
    distinct = weights(tmp_path / "apart")  # the same batches, a step each: other weights
    assert any(not torch.allclose(t, theirs[n], atol=1e-3) for n, t in distinct.items())
    assert one.status == apart.status == "completed"


def test_the_moving_average_is_the_hand_computed_one_and_what_the_run_tests(
    train, tmp_path
) -> None:
    decay = 0.9
    run = train(
        *SMALL,
        "trainer.epochs=2",
        "trainer.batch_size=16",
        f"trainer.ema={decay}",
        *probe(StepWeights, order=-50),
        run_dir=tmp_path / "ema",
    )
    steps = Probe.seen
    assert len(steps) == 2 * 5
    expected = dict(steps[0])  # the first step's weights, then the average of those after
    for step in steps[1:]:
        expected = {name: decay * expected[name] + (1 - decay) * step[name] for name in step}
    saved = weights(tmp_path / "ema")
    for name, tensor in expected.items():
        assert torch.allclose(saved[name], tensor, rtol=0, atol=1e-6), name
    last = torch.load(tmp_path / "ema" / "last.pt", weights_only=True)
    trained = last["model"]  # last.pt holds both: the trained weights, and their average
    assert all(torch.equal(trained[name], steps[-1][name]) for name in trained)
    assert int(last["average"]["n_averaged"]) == len(steps)
    assert run.status == "completed"


def test_callbacks_are_called_by_their_order_whatever_the_lists_order(train, tmp_path) -> None:
    # Early stopping listed after checkpoints: last.pt still knows that training stopped.
    target = "multiclass.callbacks.early_stopping.EarlyStopping"
    late = ["~callbacks.early_stopping", f"+callbacks.early_stopping._target_={target}"]
    stops = ["trainer.epochs=5", "trainer.early_stopping.patience=1"]
    stops.append("trainer.early_stopping.min_delta=1")
    run = train(*SMALL, *stops, *late, run_dir=tmp_path / "run")
    assert run.summary["stopped_early"] and run.summary["epochs"] == 2
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["stopped_early"]

    class Named(Callback):
        def __init__(self, order: int) -> None:
            self.order = order

    listed = [Named(100), Named(0), Named(-10), Named(0)]
    assert [c.order for c in Callbacks(listed).callbacks] == [-10, 0, 0, 100]
    assert Callbacks(listed).callbacks[1] is listed[1]  # ties keep the list's order


def test_sigterm_ends_the_run_after_the_step_and_a_second_signal_changes_nothing(
    train, tmp_path
) -> None:
    run = train(
        *SMALL,
        "trainer.epochs=3",
        "trainer.batch_size=16",
        *probe(SignalAtStep),
        run_dir=tmp_path / "run",
    )
    assert (run.status, run.exit_code) == ("interrupted", 128 + signal.SIGTERM)
    assert len(Probe.seen) == 7  # the step in which it came was the last
    summary = read_summary(tmp_path / "run")
    assert (summary["status"], summary["error"]) == ("interrupted", "interrupted by SIGTERM")
    assert summary["epochs"] == 1  # 5 batches an epoch: the first was recorded whole
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["epoch"] == 1


def test_a_stop_is_taken_once_and_ctrl_c_again_before_it_stops_at_once() -> None:
    stop = StopSignals()
    assert stop.agreed() is None
    stop.handle(signal.SIGTERM, None)
    stop.handle(signal.SIGTERM, None)  # a second SIGTERM: still the same request
    with pytest.raises(KeyboardInterrupt):
        stop.handle(signal.SIGINT, None)  # Ctrl-C again before a safe point took it
    assert stop.agreed() == signal.SIGTERM
    stop.handle(signal.SIGINT, None)  # finishing: changes nothing
    assert (stop.signum, stop.taken) == (signal.SIGTERM, True)


def test_a_signal_no_safe_point_took_takes_effect_after_the_run() -> None:
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        with StopSignals().installed() as stop:
            signal.raise_signal(signal.SIGTERM)
            assert stop.signum == signal.SIGTERM and received == []  # noted, not acted on
        assert received == [signal.SIGTERM]  # once the handlers are restored
        with StopSignals().installed() as stop:
            signal.raise_signal(signal.SIGTERM)
            stop.agreed()  # taken by the loop: the run ended on it
        assert received == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)
