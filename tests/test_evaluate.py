"""multiclass-eval: a saved model tested again on its own test split or on another data set
whose classes it knows by name, writing eval/<name>/ in its run directory."""

import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from multiclass.commands import evaluate
from multiclass.config import compose_config
from multiclass.lifecycle.run import execute
from multiclass.records.checkpoint import load_classifier
from tests.conftest import QUIET

TRAINED_ON = ["dataset.classes=[0,1,2,3,8]", "dataset.limit=300", "trainer.epochs=3"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """Five of the digits: the model's class 3 is digit 3, its class 4 is digit 8."""
    path = tmp_path_factory.mktemp("digits")
    assert execute(compose_config(*QUIET, *TRAINED_ON), path).status == "completed"
    return path


def run_eval(capsys, *args: str) -> tuple[int, str, str]:
    """multiclass-eval in-process: exit status, stdout, stderr."""
    try:
        evaluate.main(list(args))
        status = 0
    except SystemExit as exit_status:
        status = exit_status.code
    out, err = capsys.readouterr()
    return status, out, err


def test_its_own_test_split_gives_the_runs_own_figures(run_dir, capsys):
    status, out, _ = run_eval(capsys, str(run_dir))
    assert status == 0
    report = json.loads((run_dir / "eval" / "test" / "eval.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert report["accuracy"] == summary["test_acc"]
    assert report["macro_f1"] == summary["test_macro_f1"]
    assert report["balanced_acc"] == summary["test_balanced_acc"]
    assert report["loss"] == pytest.approx(summary["test_loss"], rel=1e-6)
    assert report["num_samples"] == summary["split_sizes"]["test"]
    assert (report["checkpoint"], report["overrides"]) == ("model.pt", [])
    assert report["weights_sha256"] == summary["weights_sha256"]
    assert (run_dir / "eval" / "test" / "confusion_matrix.png").stat().st_size > 0
    assert not list(run_dir.rglob(".*.tmp"))
    assert out.count("\n") == 1 and out.startswith(f"accuracy {summary['test_acc']:.4f}")


def test_a_subset_of_classes_is_matched_by_name(run_dir, capsys):
    status, _, _ = run_eval(capsys, str(run_dir), "dataset.classes=[8,3]")
    assert status == 0
    report = json.loads((run_dir / "eval" / "classes=8,3" / "eval.json").read_text())

    # Independently: the 8s and 3s of the run's own test split (never trained on), and the
    # model's predictions by class name.
    own = instantiate(compose_config(*QUIET, *TRAINED_ON).dataset)
    keep = [i for i, label in enumerate(own.test.y.tolist()) if own.class_names[label] in "83"]
    model, head, saved = load_classifier(run_dir / "model.pt")
    with torch.no_grad():
        predicted = [saved["class_names"][i] for i in head.predict(model(own.test.x[keep]))]
    truth = [own.class_names[own.test.y[i]] for i in keep]
    accuracy = sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)
    assert report["accuracy"] == pytest.approx(accuracy)
    assert report["num_samples"] == len(truth) and report["class_names"] == ["8", "3"]


def test_a_chosen_name_and_a_class_the_model_does_not_know(run_dir, capsys):
    status, _, _ = run_eval(capsys, str(run_dir), "dataset.val_fraction=0.2", "--name", "v")
    assert status == 0 and (run_dir / "eval" / "v" / "eval.json").exists()
    status, _, err = run_eval(capsys, str(run_dir), "dataset.classes=[3,9]")
    known = "it knows 0, 1, 2, 3, 8"
    assert (status, err) == (
        1,
        f"error: the model does not know class '9' of this data set; {known}\n",
    )


def test_another_option_of_the_dataset_group_is_tested_with_the_classes_it_shares(
    train, tmp_path, capsys
):
    """A model of the four blobs (classes 0-3), tested on the two moons (classes 0 and 1,
    2-D points too): the moons' test split, drawn with the run's seed, by class name."""
    run_dir = tmp_path / "blobs"
    trained = train("dataset=blobs", "trainer.epochs=3", "seed=2", run_dir=run_dir)
    assert trained.status == "completed"
    status, out, err = run_eval(capsys, str(run_dir), "dataset=moons")
    assert status == 0, err
    report = json.loads((run_dir / "eval" / "dataset=moons" / "eval.json").read_text())

    moons = instantiate(compose_config("dataset=moons", "seed=2").dataset)
    model, head, saved = load_classifier(run_dir / "model.pt")
    labels = torch.tensor([saved["class_names"].index(moons.class_names[y]) for y in moons.test.y])
    with torch.no_grad():
        predicted = head.predict(model(moons.test.x))
    assert (report["dataset"], report["class_names"]) == ("moons", ["0", "1"])
    assert report["num_samples"] == len(moons.test) != trained.summary["split_sizes"]["test"]
    assert report["accuracy"] == pytest.approx((predicted == labels).float().mean().item())
    assert out.startswith(f"accuracy {report['accuracy']:.4f}") and "(moons, test split" in out


BAD_INPUTS = {
    ("dataset=blobs",): "this data set's inputs have shape (2,); the model takes (1, 8, 8)",
    ("dataset=nope",): "Could not find 'dataset/nope'",
    ("dataset.colour=red",): "dataset.colour=red: give dataset=NAME or dataset.KEY=VALUE",
    ("seed=1",): "seed=1: give dataset=NAME or dataset.KEY=VALUE",
    ("dataset.limit=1,2",): "give one value",
    ("dataset.classes=[0,42]",): "dataset.classes: no class 42",
    ("--name", "../up"): "--name '../up': give a plain folder name",
}


def test_bad_input_is_one_line_and_writes_nothing(run_dir, tmp_path, capsys):
    before = sorted(run_dir.rglob("*"))
    for args, message in BAD_INPUTS.items():
        status, out, err = run_eval(capsys, str(run_dir), *args)
        assert (status, out) == (1, "") and err.count("\n") == 1 and message in err, args
    status, _, err = run_eval(capsys, str(tmp_path / "nowhere"))
    assert status == 1 and "not a run directory" in err
    assert sorted(run_dir.rglob("*")) == before
