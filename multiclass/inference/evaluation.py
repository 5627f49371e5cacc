"""A saved model tested again: on its run's own test split, rebuilt from config.yaml, or on
another data set given as overrides of the dataset node. Classes meet by name, so a model of
ten digits can be tested on two of them."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from multiclass.calibration import expected_calibration_error
from multiclass.datasets import Split, Splits
from multiclass.datasets.table_file import table
from multiclass.engine import Examples, evaluate
from multiclass.errors import UserError, one_line
from multiclass.inference.trained import CHECKPOINT, TrainedRun, builds
from multiclass.records.artifacts import weights_sha256, write_json
from multiclass.reporting import plots

DEFAULT_NAME = "test"


@dataclass(frozen=True)
class EvalReport:
    """What eval.json holds, and where it went."""

    content: dict[str, Any]
    out_dir: Path

    def line(self) -> str:
        c = self.content
        return (
            f"accuracy {c['accuracy']:.4f}  loss {c['loss']:.4f}  ({c['dataset']}, {c['split']}"
            f" split, {c['num_samples']} samples, {c['checkpoint']}) -> {self.out_dir}"
        )


def evaluate_run(run: TrainedRun, overrides: Sequence[str], name: str | None = None) -> EvalReport:
    """Test `run`'s model on the data set its config and `overrides` describe; write
    eval/<name>/eval.json and confusion_matrix.png into the run directory."""
    out_dir = run.run_dir / "eval" / checked_name(name or default_name(overrides, run.checkpoint))
    splits = build_splits(dataset_config(run.config, overrides), run)
    if splits.input_shape != run.input_shape:
        raise UserError(
            f"this data set's inputs have shape {splits.input_shape}; the model takes"
            f" {run.input_shape}"
        )
    test = splits.test
    if overrides and all(o.split("=")[0] == "dataset.classes" for o in overrides):
        test = own_test_samples(run, splits.class_names)
    labels = model_labels(splits.class_names, run.class_names)[test.y]
    data = Examples(test.x, labels, run.head.encode(labels))
    tested = evaluate(run.task, data, run.batch_size)
    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"{splits.name}, {splits.evaluated_on} set: accuracy {tested.acc:.4f}"
    plots.confusion_matrix(
        labels.numpy(),
        tested.predictions.numpy(),
        run.class_names,
        title,
        out_dir / "confusion_matrix.png",
    )
    content = {
        "accuracy": tested.acc,
        "loss": tested.loss,
        "macro_f1": tested.macro_f1,
        "balanced_acc": tested.balanced_acc,
        "ece": expected_calibration_error(tested.probabilities, labels),
        "temperature": run.temperature,  # trainer.calibrate's, applied; 1.0: none
        "num_samples": len(data),
        "dataset": splits.name,
        "split": splits.evaluated_on,
        "class_names": splits.class_names,
        "overrides": list(overrides),
        "checkpoint": run.checkpoint.name,
        "weights_sha256": weights_sha256(run.task.model),
    }
    write_json(out_dir / "eval.json", content)
    return EvalReport(content, out_dir)


def own_test_samples(run: TrainedRun, class_names: list[str]) -> Split:
    """The run's own test samples of these classes, labelled by their index in `class_names`.
    Not a split drawn afresh after choosing classes: where the data set has no official test
    split, that one would hold samples the model was trained on."""
    own_node = OmegaConf.create(OmegaConf.to_container(run.config.dataset, resolve=True))
    own = build_splits(own_node, run)
    names = [own.class_names[label] for label in own.test.y.tolist()]
    keep = [i for i, name in enumerate(names) if name in class_names]
    labels = torch.tensor([class_names.index(names[i]) for i in keep], dtype=torch.int64)
    return Split(own.test.x[keep], labels)


def dataset_config(run_config: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """The run's dataset node with `overrides` applied: `dataset=NAME` switches to that option
    of the group (composed with the run's seed), `dataset.KEY=VALUE` sets one of its keys."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as error:
        raise UserError(" ".join(str(error).split())) from None
    node = OmegaConf.create(OmegaConf.to_container(run_config.dataset, resolve=True))
    for override in sorted(parsed, key=lambda o: o.key_or_group != "dataset"):  # group first
        if override.type != OverrideType.CHANGE or override.is_sweep_override():
            raise UserError(f"{override.input_line}: give one value, as KEY=VALUE")
        key = override.key_or_group.removeprefix("dataset.")
        if override.key_or_group == "dataset":
            node = group_option(str(override.value()), run_config.get("seed", 0))
        elif key != override.key_or_group and key in node and key != "_target_":
            node[key] = override.value()
        else:
            raise UserError(
                f"{override.input_line}: give dataset=NAME or dataset.KEY=VALUE, KEY one of"
                f" {', '.join(k for k in node if k != '_target_')}"
            )
    return node


def group_option(name: str, seed: int) -> DictConfig:
    """The dataset group's option `name`, resolved as the run's config was."""
    from multiclass.config import compose_config

    try:
        composed = compose_config(f"dataset={name}", f"seed={seed}")
    except HydraException as error:  # no such option: Hydra lists them, then its search path
        text = " ".join(str(error).split())
        raise UserError(text.split(" Config search path")[0]) from None
    return OmegaConf.create(OmegaConf.to_container(composed.dataset, resolve=True))


def build_splits(node: DictConfig, run: TrainedRun) -> Splits:
    """The data set `node` describes; what its builder rejects is one line, as in training. A
    table is transformed by the run's saved transform (preprocess.pkl), never refitted on the
    file tested: the model knows its features only as training transformed them."""
    saved = run.table_transform
    try:
        if saved is not None and builds(node, table):
            return instantiate(node, _partial_=True)(preprocess=saved)
        return instantiate(node)
    except Exception as error:  # Hydra wraps what the builder raised, UserError included
        raise UserError(one_line(error)) from None


def model_labels(data_names: list[str], model_names: list[str]) -> torch.Tensor:
    """For each class of the data (by index), the model's index of the class of that name."""
    unknown = [name for name in data_names if name not in model_names]
    if unknown:
        raise UserError(
            f"the model does not know class {unknown[0]!r} of this data set; it knows"
            f" {', '.join(model_names)}"
        )
    return torch.tensor([model_names.index(name) for name in data_names])


def default_name(overrides: Sequence[str], checkpoint: Path) -> str:
    """`test` for the run's own test split, else the overrides in a file-name-safe form
    (dataset.classes=[3,8] gives classes=3,8); a checkpoint other than model.pt adds its name,
    so that testing best.pt does not overwrite what model.pt scored."""
    parts = [re.sub(r"^dataset\.|[\[\]'\" ]", "", override) for override in overrides]
    name = "__".join(re.sub(r"[^\w.=,+-]+", "-", part) for part in parts)[:120] or DEFAULT_NAME
    return name if checkpoint.name == CHECKPOINT else f"{name}__{checkpoint.stem}"


def checked_name(name: str) -> str:
    if not re.fullmatch(r"[\w.=,+-]+", name) or set(name) == {"."}:
        raise UserError(f"--name {name!r}: give a plain folder name (letters, digits, ._=,+-)")
    return name
