"""trainer.calibrate in a run: after training, before the test, one temperature fitted on the
validation split with the weights that are tested, which the test, its pictures and model.pt
then carry (multiclass.calibration); and each run's ECE in its summary."""

import logging
from dataclasses import replace
from typing import Any

import torch

from multiclass.calibration import expected_calibration_error, fit_temperature
from multiclass.config import TrainerSettings
from multiclass.datasets import Splits
from multiclass.engine import Evaluation, Examples, evaluate
from multiclass.errors import UserError
from multiclass.lifecycle.build import Built

log = logging.getLogger("multiclass")


def check_calibratable(settings: TrainerSettings, splits: Splits) -> None:
    """A data set built without a held-out validation split cannot calibrate: said before any
    training (check_config refuses the data sets whose config says so before anything runs)."""
    if settings.calibrate is None:
        return
    if splits.val is None or splits.evaluated_on == "train":
        raise UserError(
            f"trainer.calibrate={settings.calibrate} needs a validation split held out of"
            f" training: dataset {splits.name} has none"
        )


def calibrated(built: Built, settings: TrainerSettings, summary: dict[str, Any]) -> Built:
    """`built` with its task's temperature fitted on the validation split (trainer.calibrate=
    temperature), and the temperature in `summary`; `built` as it is when calibrate is off."""
    if settings.calibrate is None:
        return built
    val = Examples.of(built.splits.val, built.task.head)
    checked = evaluate(replace(built.task, temperature=1.0), val, settings.eval_batch_size)
    temperature = fit_temperature(checked.outputs, val.labels, built.task.head)
    summary["temperature"] = temperature
    return replace(built, task=replace(built.task, temperature=temperature))


def record_calibration(
    summary: dict[str, Any],
    tested: Evaluation,
    test: Examples,
    built: Built,
    settings: TrainerSettings,
) -> None:
    """summary.json's test_ece (of the probabilities tested, tempered when calibrated) and,
    with a temperature, the model's own test_ece_uncalibrated and test_loss_uncalibrated,
    said in one line."""
    summary["test_ece"] = expected_calibration_error(tested.probabilities, test.labels)
    if settings.calibrate is None:
        return
    task = built.task
    own = task.head.probabilities(tested.outputs)
    summary["test_ece_uncalibrated"] = expected_calibration_error(own, test.labels)
    with torch.no_grad():
        loss = task.criterion(tested.outputs.to(test.targets.device), test.targets)
    summary["test_loss_uncalibrated"] = loss.item()
    log.info(
        "temperature %.4f (fitted on %d validation samples)  test_ece %.4f -> %.4f"
        "  test_loss %.4f -> %.4f",
        task.temperature,
        len(built.splits.val),
        summary["test_ece_uncalibrated"],
        summary["test_ece"],
        summary["test_loss_uncalibrated"],
        tested.loss,
    )
