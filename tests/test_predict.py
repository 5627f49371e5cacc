"""Using a trained model: Head.probabilities for every loss, multiclass.load_run, and
multiclass-predict on images and CSV rows, with one-line errors for what cannot be used."""

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image, ImageDraw, ImageOps

import multiclass
from multiclass.commands import predict
from multiclass.config import CONFIG_DIR, compose_config
from multiclass.engine import Examples, evaluate
from multiclass.errors import UserError
from multiclass.heads import build_loss
from multiclass.inference.inputs import read_image
from multiclass.lifecycle.run import execute
from tests.conftest import QUIET

LOSSES = ["cross_entropy", "cross_entropy_one_hot", "nll", "bce_with_logits", "bce"]


def expected_probabilities(loss: str, raw: torch.Tensor) -> torch.Tensor:
    """Each loss's probabilities from the last linear layer's outputs, written out apart from
    the code: softmax for the softmax losses, a sigmoid per unit for the BCE ones."""
    if not loss.startswith("bce"):
        return raw.softmax(dim=1)
    p = raw.sigmoid()
    return torch.cat([1 - p, p], dim=1) if raw.shape[1] == 1 else p


@pytest.mark.parametrize("classes", [2, 4])
@pytest.mark.parametrize("loss", LOSSES)
def test_probabilities_follow_each_losss_rule(loss, classes):
    cfg = OmegaConf.load(CONFIG_DIR / "loss" / f"{loss.removesuffix('_one_hot')}.yaml")
    cfg.one_hot = loss.endswith("one_hot")
    _, head = build_loss(cfg, classes)
    raw = torch.randn(500, head.width, generator=torch.Generator().manual_seed(0)) * 3
    outputs = head.output_layer()(raw)  # what the model emits: logits, log-softmax or sigmoid
    probabilities = head.probabilities(outputs)

    assert probabilities.shape == (500, classes)
    assert torch.allclose(probabilities, expected_probabilities(loss, raw), atol=1e-6)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    sums = probabilities.sum(dim=1)
    independent_units = loss.startswith("bce") and classes > 2
    assert torch.allclose(sums, torch.ones(500), atol=1e-5) != independent_units
    assert torch.equal(probabilities.argmax(dim=1), head.predict(outputs))


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    """A tiny model of the ten 8x8 digits: images with one channel."""
    run_dir = tmp_path_factory.mktemp("digits")
    cfg = compose_config(*QUIET, "dataset.limit=300", "trainer.epochs=2")
    assert execute(cfg, run_dir).status == "completed"
    return run_dir


@pytest.fixture(scope="module")
def blobs_run(tmp_path_factory) -> Path:
    """Two of the 2-D blobs on a single-logit head: feature rows and the [1 - p, p] rule."""
    run_dir = tmp_path_factory.mktemp("blobs")
    overrides = ["dataset=blobs", "dataset.classes=[0,2]", "loss=bce_with_logits"]
    cfg = compose_config(*QUIET, *overrides, "trainer.epochs=10")
    assert execute(cfg, run_dir).status == "completed"
    return run_dir


def draw_digit(path: Path) -> Path:
    """A zero drawn dark on white paper, larger and wider than the model's 8x8 inputs."""
    image = Image.new("L", (80, 64), color=255)
    ImageDraw.Draw(image).ellipse((22, 6, 58, 58), outline=0, width=7)
    image.save(path)
    return path


def read_predictions(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_a_drawn_png_is_predicted_through_the_cli_and_the_api(digits_run, tmp_path):
    png = draw_digit(tmp_path / "zero.png")
    out = tmp_path / "predictions.csv"
    predict.main([str(digits_run), str(png), "--out", str(out)])

    (row,) = read_predictions(out.read_text())
    names = [str(c) for c in range(10)]
    assert list(row) == ["input", "predicted", *(f"p_{name}" for name in names)]
    probabilities = np.array([float(row[f"p_{name}"]) for name in names])
    assert probabilities.sum() == pytest.approx(1, abs=1e-5)
    assert row["input"] == str(png) and row["predicted"] == names[probabilities.argmax()]

    run = multiclass.load_run(digits_run)
    image = read_image(png, run.input_shape, invert="auto")
    assert torch.equal(image, read_image(png, run.input_shape, invert="yes"))  # paper inverted
    assert image.shape == (1, 8, 8) and image.min() == 0 and image.max() == 1
    assert image[0, 0, 0] == 0  # the white paper became the dark background
    assert run.class_names[run.predict(image)[0]] == row["predicted"]
    assert np.allclose(run.predict_proba(image)[0], probabilities, atol=1e-5)


def test_a_digit_on_a_transparent_background_is_read_as_on_white_paper(digits_run, tmp_path):
    """As a drawing program saves it: black strokes, the rest transparent (and black)."""
    paper = draw_digit(tmp_path / "paper.png")
    strokes = ImageOps.invert(Image.open(paper))  # 255 where the pen drew
    clear = Image.new("RGBA", strokes.size, (0, 0, 0, 0))
    clear.putalpha(strokes)
    clear.save(tmp_path / "clear.png")
    run = multiclass.load_run(digits_run)
    on_paper = read_image(paper, run.input_shape, invert="auto")
    assert torch.equal(read_image(tmp_path / "clear.png", run.input_shape, "auto"), on_paper)


def test_predict_proba_agrees_with_predict_and_with_the_engine(digits_run):
    run = multiclass.load_run(digits_run)
    test = instantiate(run.config.dataset).test
    probabilities = run.predict_proba(test.x)
    predicted = run.predict(test.x)

    assert probabilities.shape == (len(test), 10)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert np.array_equal(probabilities.argmax(axis=1), predicted)
    tested = evaluate(run.task, Examples.of(test, run.head), batch_size=64)
    assert np.array_equal(tested.predictions.numpy(), predicted)
    assert np.array_equal(run.predict(test.x[0]), predicted[:1])  # one input, unbatched


def test_csv_rows_are_predicted_with_or_without_a_header(blobs_run, tmp_path, capsys):
    points = [[-10.0, -4.0], [-6.0, -3.0], [-9.5, -4.5]]
    with_header = tmp_path / "with_header.csv"
    with_header.write_text("x0,x1\n" + "".join(f"{a},{b}\n" for a, b in points))
    bare = tmp_path / "bare.csv"
    bare.write_text(f"{points[1][0]},{points[1][1]}\n")
    predict.main([str(blobs_run), str(with_header), str(bare)])  # to stdout

    rows = read_predictions(capsys.readouterr().out)
    assert [r["input"] for r in rows] == [
        f"{with_header}:2",
        f"{with_header}:3",
        f"{with_header}:4",
        f"{bare}:1",
    ]
    run = multiclass.load_run(blobs_run)
    assert run.class_names == ["0", "2"] and list(rows[0])[2:] == ["p_0", "p_2"]
    expected = run.predict_proba(np.array([*points, points[1]], dtype=np.float32))
    found = np.array([[float(r["p_0"]), float(r["p_2"])] for r in rows])
    assert np.allclose(found, expected, atol=1e-5)
    assert np.allclose(found.sum(axis=1), 1, atol=1e-5)
    assert [r["predicted"] for r in rows] == [run.class_names[i] for i in expected.argmax(axis=1)]


def evil_checkpoint(path: Path, marker: Path) -> None:
    """A pickle that would run a shell command when loaded without weights_only."""

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    torch.save({"state_dict": Exploit()}, path)


def evil_builder(path: Path, marker: Path) -> None:
    """Plain data only, but its loss names a function Hydra would call: os.system."""
    content = torch.load(path, weights_only=True)
    content["loss"] = {"_target_": "os.system", "command": f"touch {marker}"}
    torch.save(content, path)


def cut_in_half(path: Path, marker: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


BROKEN_RUNS = {
    "no run": (lambda path, marker: path.parent.joinpath("config.yaml").unlink(), "no config.yaml"),
    "no model.pt": (lambda path, marker: path.unlink(), "no model.pt"),
    "truncated": (cut_in_half, "truncated"),
    "code in the pickle": (evil_checkpoint, "refused"),
    "code in a builder": (evil_builder, "refused, its loss would be built by 'os.system'"),
}


@pytest.mark.parametrize("case", list(BROKEN_RUNS))
def test_a_broken_run_is_one_line_and_runs_no_code(digits_run, tmp_path, capsys, case):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("config.yaml", "model.pt"):
        (run_dir / name).write_bytes((digits_run / name).read_bytes())
    marker = tmp_path / "exploited"
    breaks, message = BROKEN_RUNS[case]
    breaks(run_dir / "model.pt", marker)
    out = tmp_path / "out.csv"

    with pytest.raises(SystemExit) as exit_status:
        predict.main([str(run_dir), str(draw_digit(tmp_path / "d.png")), "--out", str(out)])
    assert exit_status.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1 and message in error
    assert not marker.exists() and not out.exists()
    with pytest.raises(UserError, match=message):
        multiclass.load_run(run_dir)


def test_bad_inputs_are_one_line_and_write_nothing(digits_run, blobs_run, tmp_path, capsys):
    unreadable = tmp_path / "broken.png"
    unreadable.write_bytes(b"\x89PNG not really")
    three_columns = tmp_path / "wide.csv"
    three_columns.write_text("1,2,3\n")
    good = draw_digit(tmp_path / "zero.png")
    cases = {
        (digits_run, good, unreadable): f"{unreadable}: not a readable PNG or JPEG image",
        (digits_run, tmp_path / "none.png"): "no such file",
        (blobs_run, three_columns): "wide.csv:1: 3 columns, but the model takes 2 features",
        (blobs_run, good): "this model takes inputs of shape (2,): give CSV files",
        (digits_run, three_columns): "images of shape (1, 8, 8): give PNG or JPEG files",
    }
    out = tmp_path / "out.csv"
    for paths, message in cases.items():
        with pytest.raises(SystemExit) as exit_status:
            predict.main([*map(str, paths), "--out", str(out)])
        error = capsys.readouterr().err
        assert exit_status.value.code == 1 and error.count("\n") == 1 and message in error
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(UserError, match=r"inputs of shape \(3, 8, 8\): the model takes"):
        multiclass.load_run(digits_run).predict(np.zeros((3, 8, 8)))


def test_the_installed_command_prints_csv(digits_run, tmp_path):
    script = Path(sys.executable).with_name("multiclass-predict")
    png = draw_digit(tmp_path / "zero.png")
    done = subprocess.run(
        [str(script), str(digits_run), str(png), "--invert", "auto"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == 0, done.stderr
    (row,) = read_predictions(done.stdout)
    assert row["input"] == str(png) and row["predicted"] in [str(c) for c in range(10)]
