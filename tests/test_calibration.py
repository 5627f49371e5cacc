"""Calibration: ECE by hand, the temperature of every head, a run calibrated with
trainer.calibrate=temperature (its ECE falls, its accuracy stays), the temperature kept by
model.pt for load_run, multiclass-eval and multiclass-predict, reproduced by a resume and a
rerun, and refused without a validation split."""

import csv
import io
import json
import math

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image
from torch import nn

from multiclass.calibration import expected_calibration_error, fit_temperature, reliability
from multiclass.commands import predict
from multiclass.commands.rerun import rerun_config
from multiclass.config import compose_config, trainer_settings
from multiclass.errors import UserError
from multiclass.heads import head_for
from multiclass.inference import load_run
from multiclass.inference.evaluation import evaluate_run
from multiclass.inference.inputs import read_inputs
from multiclass.lifecycle.calibrate import check_calibratable
from multiclass.lifecycle.run import execute
from multiclass.records.compare import compare_runs
from tests.conftest import QUIET, read_summary, run_cli

# A small training set trained long with a high lr: a model sure of itself beyond its accuracy.
OVERCONFIDENT = (
    "dataset.limit=200",
    "dataset.val_fraction=0.5",
    "optimizer.lr=0.01",
    "model.hidden=[256,256]",
    "trainer.epochs=60",
)
CALIBRATE = "trainer.calibrate=temperature"


def test_ece_of_hand_made_probabilities():
    probabilities = torch.tensor([[0.9, 0.1], [0.05, 0.95], [0.62, 0.38], [0.97, 0.03], [1.0, 0.0]])
    labels = torch.tensor([0, 0, 0, 0, 1])
    # Bins of 1/15: 0.9 -> bin 13 (right), 0.95 and 0.97 -> bin 14 (one right: accuracy 0.5,
    # confidence 0.96), 0.62 -> bin 9 (right), 1.0 -> its own bin (wrong).
    expected = (abs(1 - 0.9) + 2 * abs(0.5 - 0.96) + abs(1 - 0.62) + abs(0 - 1.0)) / 5
    assert expected_calibration_error(probabilities, labels) == pytest.approx(expected, abs=1e-6)
    binned = reliability(probabilities, labels)
    assert binned.counts.tolist() == [0] * 9 + [1, 0, 0, 0, 1, 2, 1]
    assert binned.accuracy[14] == 0.5 and binned.confidence[14] == pytest.approx(0.96)
    # One bin below 1: accuracy 3/4, confidence 0.86; confidence 1 wrong in its own.
    one = expected_calibration_error(probabilities, labels, bins=1)
    assert one == pytest.approx((4 * abs(0.75 - 0.86) + 1) / 5, abs=1e-6)


def sampled(width: int, seed: int = 0, n: int = 20_000):
    """Logits z and labels drawn from softmax(z) (sigmoid(z) for one unit); z small enough that
    3 z stays where float32's sigmoid keeps its logit (BCE's probabilities lose it near 1)."""
    generator = torch.Generator().manual_seed(seed)
    z = (torch.randn(n, width, generator=generator) * 1.5).clamp(-3, 3)
    if width == 1:
        return z, torch.bernoulli(z[:, 0].sigmoid(), generator=generator).long()
    return z, torch.multinomial(z.softmax(1), 1, generator=generator)[:, 0]


@pytest.mark.parametrize(
    "criterion", [nn.CrossEntropyLoss(), nn.NLLLoss(), nn.BCEWithLogitsLoss(), nn.BCELoss()]
)
@pytest.mark.parametrize("classes", [2, 4])
def test_logits_scaled_by_three_fit_a_temperature_of_three(criterion, classes):
    head = head_for(criterion, classes)
    z, labels = sampled(head.width)
    outputs = head.output_layer()(3 * z)
    temperature = fit_temperature(outputs, labels, head)
    if head.independent and classes > 2:
        # k independent units are not the softmax that drew the labels: no T of 3 to find,
        # but sigmoid outputs fit the temperature their logits fit.
        logits = head_for(nn.BCEWithLogitsLoss(), classes)
        assert temperature == pytest.approx(fit_temperature(3 * z, labels, logits), rel=1e-4)
    else:
        assert temperature == pytest.approx(3, rel=0.05)
    tempered = head.probabilities(head.tempered(outputs, temperature))
    scaled = z * 3 / temperature
    own = scaled.sigmoid() if head.independent else scaled.softmax(1)
    own = torch.cat([1 - own, own], 1) if head.width == 1 else own
    assert torch.allclose(tempered, own, atol=1e-5)
    assert torch.equal(head.predict(head.tempered(outputs, temperature)), head.predict(outputs))
    if not head.independent or classes == 2:
        before = expected_calibration_error(head.probabilities(outputs), labels)
        assert expected_calibration_error(tempered, labels) < before / 3


def test_the_fit_is_the_same_every_time_and_temperature_one_changes_nothing():
    head = head_for(nn.CrossEntropyLoss(), 4)
    z, labels = sampled(4, n=2000)
    assert fit_temperature(z, labels, head) == fit_temperature(z.clone(), labels, head)
    assert head.tempered(z, 1.0) is z


@pytest.fixture(scope="module")
def calibrated_runs(tmp_path_factory):
    """The over-confident model trained twice, without and with trainer.calibrate."""
    root = tmp_path_factory.mktemp("calibration")
    runs = {}
    for name, extra in (("plain", ()), ("calibrated", (CALIBRATE,))):
        cfg = compose_config(*QUIET, *OVERCONFIDENT, *extra)
        assert execute(cfg, root / name).status == "completed"
        runs[name] = root / name
    return runs


def test_calibration_lowers_ece_and_keeps_the_accuracy(calibrated_runs):
    plain = read_summary(calibrated_runs["plain"])
    calibrated = read_summary(calibrated_runs["calibrated"])
    assert calibrated["weights_sha256"] == plain["weights_sha256"]
    assert calibrated["test_acc"] == plain["test_acc"]
    assert calibrated["test_ece_uncalibrated"] == plain["test_ece"]
    assert calibrated["temperature"] > 1.5  # over-confident: softened
    assert calibrated["test_ece"] < 0.8 * calibrated["test_ece_uncalibrated"]
    assert calibrated["test_loss"] < calibrated["test_loss_uncalibrated"] == plain["test_loss"]
    assert "temperature" not in plain and "test_ece_uncalibrated" not in plain
    stored = torch.load(calibrated_runs["calibrated"] / "model.pt", weights_only=True)
    assert stored["temperature"] == calibrated["temperature"]
    assert "temperature" not in torch.load(calibrated_runs["plain"] / "model.pt")


def test_load_run_eval_and_predict_apply_the_temperature(calibrated_runs, tmp_path, capsys):
    run_dir = calibrated_runs["calibrated"]
    summary = read_summary(run_dir)
    run, plain = load_run(run_dir), load_run(calibrated_runs["plain"])
    assert run.temperature == summary["temperature"] and plain.temperature == 1.0
    x = torch.rand(5, 1, 8, 8)
    assert np.array_equal(run.predict(x), plain.predict(x))
    probabilities = run.predict_proba(x)
    assert not np.allclose(probabilities, plain.predict_proba(x), atol=1e-3)
    tempered = run.head.probabilities(run.outputs(x) / run.temperature).numpy()
    assert np.allclose(probabilities, tempered, atol=1e-6)

    report = evaluate_run(run, [])
    assert report.content["accuracy"] == summary["test_acc"]
    assert report.content["loss"] == pytest.approx(summary["test_loss"], rel=1e-6)
    assert report.content["ece"] == pytest.approx(summary["test_ece"], abs=1e-6)
    assert report.content["temperature"] == summary["temperature"]

    paths = []
    for index, image in enumerate(x):
        pixels = (image[0].numpy() * 255).round().astype(np.uint8)
        paths.append(tmp_path / f"{index}.png")
        Image.fromarray(pixels).save(paths[-1])
    predict.main([str(run_dir), *map(str, paths), "--invert", "no"])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    shown = np.array([[float(row[f"p_{name}"]) for name in run.class_names] for row in rows])
    inputs = read_inputs(paths, run.input_shape, "no")
    assert np.allclose(shown, run.predict_proba(inputs.x), atol=1e-5)
    assert [row["predicted"] for row in rows] == [
        run.class_names[i] for i in plain.predict(inputs.x)
    ]


def test_a_resume_and_a_rerun_fit_the_same_temperature(calibrated_runs, tmp_path):
    whole = read_summary(calibrated_runs["calibrated"])
    half = [*OVERCONFIDENT[:-1], "trainer.epochs=30", CALIBRATE]
    run_dir = tmp_path / "resumed"
    assert execute(compose_config(*QUIET, *half), run_dir).status == "completed"
    resumed = [f"resume={run_dir}", "trainer.epochs=60"]
    assert execute(compose_config(*QUIET, *resumed), run_dir, resumed).status == "completed"
    assert read_summary(run_dir)["temperature"] == whole["temperature"]

    again = rerun_config(calibrated_runs["calibrated"], [])
    assert execute(again, tmp_path / "rerun").status == "completed"
    assert read_summary(tmp_path / "rerun")["temperature"] == whole["temperature"]
    assert compare_runs(calibrated_runs["calibrated"], tmp_path / "rerun").reproduced


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["dataset.val_fraction=0"], "dataset.val_fraction=0 keeps none"),
        (["dataset=xor"], "dataset.eval_on_train=true"),
    ],
)
def test_calibration_without_a_validation_split_is_refused_before_anything(
    train, tmp_path, overrides, words
):
    outcome = train(CALIBRATE, *overrides, run_dir=tmp_path / "refused")
    assert outcome.status == "failed"
    assert outcome.summary["error"].startswith("trainer.calibrate=temperature needs")
    assert words in outcome.summary["error"]
    assert not (tmp_path / "refused").exists()


def test_a_data_set_built_without_a_validation_split_is_refused_before_training():
    cfg = compose_config(CALIBRATE)
    splits = instantiate(cfg.dataset, val_fraction=0)  # as a data set of one's own may build
    with pytest.raises(UserError, match=r"trainer\.calibrate=temperature needs a validation"):
        check_calibratable(trainer_settings(cfg), splits)
    check_calibratable(trainer_settings(cfg), instantiate(cfg.dataset))


def test_the_command_line_refuses_it_in_one_line(tmp_path):
    result = run_cli(CALIBRATE, "dataset=toy", "trainer.progress=false", cwd=tmp_path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "trainer.calibrate=temperature" in errors[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "outputs").exists()  # refused before Hydra made the run's folder


def test_every_run_reports_ece_and_draws_its_reliability_diagram(train, tmp_path):
    run_dir = tmp_path / "drawn"
    assert train("trainer.epochs=2", "plots=true", run_dir=run_dir).status == "completed"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert 0 <= summary["test_ece"] <= 1 and not math.isnan(summary["test_ece"])
    assert (run_dir / "reliability.png").stat().st_size > 10_000
    assert train("trainer.epochs=1", run_dir=tmp_path / "quiet").status == "completed"
    assert not (tmp_path / "quiet" / "reliability.png").exists()
