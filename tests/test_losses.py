"""Every loss trains on two and on k classes and reports its true accuracy (seed 002 shows a
library whose metric did not match the head and reported a constant, wrong accuracy)."""

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from multiclass.config import compose_config
from multiclass.heads import build_loss
from multiclass.records.checkpoint import load_classifier

BLOBS = [
    "dataset=blobs",
    "dataset.n_samples=400",
    "dataset.cluster_std=1.0",
    "trainer.epochs=10",
    "trainer.batch_size=16",
    "optimizer.lr=0.03",
]
CLASSES = {2: "dataset.classes=[0,2]", 4: "dataset.classes=null"}


def expected_predictions(loss: str, outputs: torch.Tensor) -> torch.Tensor:
    """The prediction rule each head must follow, written out independently of the code."""
    if outputs.shape[1] == 1:
        threshold = 0.5 if loss == "bce" else 0.0
        return (outputs[:, 0] > threshold).long()
    return outputs.argmax(dim=1)


@pytest.mark.parametrize("classes", [2, 4])
@pytest.mark.parametrize(
    "loss", ["cross_entropy", "nll", "bce", "bce_with_logits", "cross_entropy_one_hot"]
)
def test_each_loss_trains_and_reports_its_true_accuracy(train, tmp_path, loss, classes):
    loss_overrides = (
        ["loss=cross_entropy", "loss.one_hot=true"]
        if loss == "cross_entropy_one_hot"
        else [f"loss={loss}"]
    )
    overrides = [*BLOBS, CLASSES[classes], *loss_overrides]
    outcome = train(*overrides, run_dir=tmp_path / "run")
    assert outcome.status == "completed"

    model, _, saved = load_classifier(tmp_path / "run" / "model.pt")
    test = instantiate(compose_config(*overrides).dataset).test
    with torch.no_grad():
        outputs = model(test.x)
    binary_head = classes == 2 and loss.startswith("bce")
    assert outputs.shape[1] == (1 if binary_head else classes)
    if loss == "bce":
        assert ((outputs >= 0) & (outputs <= 1)).all()
    if loss == "nll":
        assert torch.allclose(outputs.exp().sum(dim=1), torch.ones(len(outputs)), atol=1e-5)

    accuracy = (expected_predictions(loss, outputs) == test.y).float().mean().item()
    assert outcome.summary["test_acc"] == pytest.approx(accuracy)
    assert accuracy >= 0.9
    assert saved["class_names"] == (["0", "2"] if classes == 2 else ["0", "1", "2", "3"])


WEIGHT = torch.tensor([1.0, 2.0, 1.0, 1.0])
# Each parameter, and the test loss torch's own function gives with it and without it.
PARAMETERS = {
    "pos_weight": (
        ["loss=bce_with_logits", "dataset.classes=[0,2]", "loss.pos_weight=[3.0]"],
        lambda out, y: F.binary_cross_entropy_with_logits(
            out[:, 0], y.float(), pos_weight=torch.tensor([3.0])
        ),
        lambda out, y: F.binary_cross_entropy_with_logits(out[:, 0], y.float()),
    ),
    "label_smoothing": (
        ["loss=cross_entropy", "loss.label_smoothing=0.1"],
        lambda out, y: F.cross_entropy(out, y, label_smoothing=0.1),
        lambda out, y: F.cross_entropy(out, y),
    ),
    "cross_entropy_weight": (
        ["loss=cross_entropy", "loss.weight=[1.0,2.0,1.0,1.0]"],
        lambda out, y: F.cross_entropy(out, y, weight=WEIGHT),
        lambda out, y: F.cross_entropy(out, y),
    ),
    "nll_weight": (
        ["loss=nll", "loss.weight=[1.0,2.0,1.0,1.0]"],
        lambda out, y: F.nll_loss(out, y, weight=WEIGHT),
        lambda out, y: F.nll_loss(out, y),
    ),
}


@pytest.mark.parametrize("parameter", list(PARAMETERS))
def test_the_torch_losses_own_parameters_pass_through(train, tmp_path, parameter):
    """The reported test loss is torch's loss with the parameter (the whole test split is one
    evaluation batch), which differs from the loss without it on these outputs."""
    options, with_it, without_it = PARAMETERS[parameter]
    outcome = train(*BLOBS, *options, run_dir=tmp_path / "run")
    assert outcome.status == "completed", outcome.summary.get("error")

    model, _, _ = load_classifier(tmp_path / "run" / "model.pt")
    test = instantiate(compose_config(*BLOBS, *options).dataset).test
    assert len(test) <= compose_config().trainer.eval_batch_size
    with torch.no_grad():
        outputs = model(test.x)
    expected, plain = with_it(outputs, test.y).item(), without_it(outputs, test.y).item()
    assert abs(expected - plain) > 1e-3 * expected  # the parameter changes the figure
    assert outcome.summary["test_loss"] == pytest.approx(expected, rel=1e-5)
    assert outcome.summary["test_acc"] >= 0.9


def test_list_parameters_become_float_tensors():
    cfg = compose_config("loss=bce_with_logits", "loss.pos_weight=[3.0]")
    criterion, head = build_loss(cfg.loss, num_classes=2)
    assert torch.equal(criterion.pos_weight, torch.tensor([3.0]))
    assert (head.width, head.targets, head.threshold) == (1, "binary", 0.0)
