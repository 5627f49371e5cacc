"""multiclass-export: a run's model as ONNX (checked by onnxruntime) or TorchScript (loaded by a
Python that has only torch), with a bundle that says how to prepare inputs and read outputs;
a model that cannot be exported, and bad input, are one line with nothing written."""

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from multiclass.commands.export import main
from multiclass.config import compose_config
from multiclass.errors import UserError
from multiclass.export import torchscript_format
from multiclass.export.bundle import BUNDLE, README
from multiclass.export.exporting import export_run
from multiclass.inference import load_run
from multiclass.lifecycle.run import execute
from tests.conftest import QUIET, files_of
from tests.test_image_folder import draw_folder
from tests.test_table_dataset import animals

BRANCHY = '''
    """A user's model whose forward branches on the data: no exporter can record that."""
    import math

    from torch import nn


    class Branchy(nn.Module):
        def __init__(self, input_shape, num_outputs):
            super().__init__()
            self.layer = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_outputs))

        def forward(self, x):
            if x.sum() > 0:
                return self.layer(x)
            return -self.layer(x)
'''


def trained(folder: Path, *overrides: str) -> Path:
    """A run of one epoch in `folder`, trained in-process."""
    execute(compose_config(*QUIET, "trainer.epochs=1", *overrides), folder)
    return folder


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained(tmp_path_factory.mktemp("digits") / "run", "dataset=digits")


def onnx_extra() -> None:
    for name in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(name)


def test_onnx_matches_torch_and_the_readme_snippet_runs(digits_run, tmp_path, monkeypatch):
    onnx_extra()
    exported = export_run(digits_run, "onnx")

    assert exported.out_dir == digits_run / "export" / "onnx"
    assert exported.files == [README, BUNDLE, "model.onnx"]
    check = exported.check
    assert check.holds and check.samples == 360 and check.same_predictions == 360
    assert check.max_difference <= 1e-4 and check.probability_difference <= 1e-4
    bundle = json.loads((exported.out_dir / BUNDLE).read_text())
    assert bundle["class_names"] == [str(i) for i in range(10)]
    assert bundle["input"] == {
        "name": "input",
        "shape": ["N", 1, 8, 8],
        "dtype": "float32",
        "layout": "NCHW",
    }
    assert bundle["temperature"] == 1.0
    assert bundle["preprocessing"]["divide_by"] == 16  # digits' pixels are 0..16
    assert bundle["outputs"]["probabilities"] == "softmax(outputs / T)"
    # README.txt runs as Python: its snippet predicts a batch of 2 (a dynamic batch).
    monkeypatch.chdir(exported.out_dir)
    scope: dict = {}
    exec((exported.out_dir / README).read_text(), scope)
    assert scope["probabilities"].shape == (2, 10)
    assert np.allclose(scope["probabilities"], load_run(digits_run).predict_proba(scope["x"]))


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_loads_in_a_python_without_multiclass(digits_run, tmp_path, capsys):
    out = tmp_path / "shipped"
    main([str(digits_run), "--format", "torchscript", "--out", str(out)])

    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"torchscript: {README}, {BUNDLE}, model.ts -> {out}"
    assert printed[1].startswith("torchscript check ok (torch ")
    assert "a fresh Python without multiclass, test split, 360 samples" in printed[1]
    assert printed[1].endswith("same predictions 360/360")
    loaded = torch.jit.load(str(out / "model.ts"))
    x = torch.rand(5, 1, 8, 8)  # any batch size, not the 2 traced
    assert torch.allclose(loaded(x), load_run(digits_run).outputs(x), atol=1e-6)


def test_a_loader_that_imports_multiclass_fails_the_check(digits_run, tmp_path, monkeypatch):
    leaky = "import multiclass\n" + torchscript_format.LOADER
    monkeypatch.setattr(torchscript_format, "LOADER", leaky)
    out = tmp_path / "shipped"
    with pytest.raises(UserError, match=r"^torchscript: loading model\.ts imported multiclass$"):
        export_run(digits_run, "torchscript", out)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_an_export_that_computes_otherwise_fails_its_check_and_is_not_kept(
    digits_run, tmp_path, monkeypatch
):
    real = torchscript_format.outputs_elsewhere

    def off_by_a_little(*args, **kwargs):
        return real(*args, **kwargs) + 1e-3

    monkeypatch.setattr(torchscript_format, "outputs_elsewhere", off_by_a_little)
    out = tmp_path / "shipped"
    failed = r"^torchscript check FAILED .* outputs (9\.99e-04|1\.00e-03)"
    with pytest.raises(UserError, match=failed):
        export_run(digits_run, "torchscript", out)
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("loss", [["loss=nll"], ["loss=bce", "dataset.classes=[0,1]"]])
def test_a_calibrated_runs_probabilities_follow_from_the_bundles_rule(loss, tmp_path):
    onnx_extra()
    run_dir = trained(tmp_path / "run", "dataset=digits", "trainer.calibrate=temperature", *loss)
    exported = export_run(run_dir, "onnx")

    bundle = json.loads((exported.out_dir / BUNDLE).read_text())
    assert bundle["temperature"] == load_run(run_dir).temperature != 1.0
    # The rule's NumPy code, with the temperature, gives the run's own tempered probabilities.
    assert exported.check.holds and exported.check.probability_difference <= 1e-4


def test_an_image_folder_run_says_how_to_decode_a_file(tmp_path, monkeypatch):
    onnx_extra()
    import onnxruntime
    from PIL import Image

    folder = draw_folder(tmp_path / "colours")  # 12x10 PNGs, resized to 8x8
    image_data = ["dataset=image_folder", f"dataset.root={folder}", "dataset.image_size=8"]
    image_data += ["dataset.storage=disk", f"dataset.cache_dir={tmp_path / 'cache'}"]
    run_dir = trained(tmp_path / "run", *image_data, "model=cnn", "dataset.progress=false")
    exported = export_run(run_dir, "onnx")

    assert exported.check.holds and exported.check.samples == 6
    bundle = json.loads((exported.out_dir / BUNDLE).read_text())
    steps = bundle["preprocessing"]
    assert (steps["channels"], steps["size"], steps["divide_by"]) == (3, [8, 8], 255)
    # The steps applied by hand to a file give what the run predicts for it.
    path = folder / "red" / "0.png"
    image = Image.open(path).convert("RGB").resize((8, 8), Image.Resampling.BILINEAR)
    x = (np.asarray(image, dtype=np.float32) / 255).transpose(2, 0, 1)[None]
    session = onnxruntime.InferenceSession(str(exported.out_dir / "model.onnx"))
    outputs = session.run(None, {"input": x})[0]
    from multiclass.inference.inputs import read_inputs

    run = load_run(run_dir)
    own = run.outputs(read_inputs([path], run.input_shape, "no", run.preprocess).x)
    assert np.allclose(outputs, own.numpy(), atol=1e-5)


def test_a_table_run_ships_its_transform_and_its_numbers(tmp_path):
    onnx_extra()
    csv_file = tmp_path / "animals.csv"
    animals(90, seed=0).to_csv(csv_file, index=False)
    table = ["dataset=table", f"dataset.path={csv_file}", "dataset.target=label"]
    run_dir = trained(tmp_path / "run", *table)
    exported = export_run(run_dir, "onnx")

    assert exported.check.holds
    assert "preprocess.pkl" in exported.files
    steps = json.loads((exported.out_dir / BUNDLE).read_text())["preprocessing"]
    transform = load_run(run_dir).table_transform
    frame = animals(6, seed=3)
    # The bundle's numbers, applied without scikit-learn, give the fitted transform's features.
    size = steps["numeric"][0]
    assert size["column"] == "size"
    by_hand = [(frame[n["column"]] - n["mean"]) / n["scale"] for n in steps["numeric"]]
    colour = steps["text"][0]
    by_hand += [(frame[colour["column"]] == c).astype(float) for c in colour["categories"]]
    assert np.allclose(np.stack(by_hand, axis=1), transform.transform(frame))
    assert len(steps["features"]) == 5


def test_a_model_with_data_dependent_control_flow_is_one_line_per_format(
    tmp_path, monkeypatch, capsys
):
    (tmp_path / "branchy_models.py").write_text(textwrap.dedent(BRANCHY))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "branchy_models", raising=False)
    model = ["dataset=blobs", "~model", "+model._target_=branchy_models.Branchy"]
    run_dir = trained(tmp_path / "run", *model)
    before = files_of(run_dir)
    expected = {
        "onnx": "GuardOnDataDependentSymNode: Could not guard on data-dependent expression",
        "torchscript": "TracerWarning: Converting a tensor to a Python boolean",
    }
    for fmt, why in expected.items():
        if fmt == "onnx":
            onnx_extra()
        with pytest.raises(SystemExit) as exited:
            main([str(run_dir), "--format", fmt])
        assert exited.value.code == 1
        line = capsys.readouterr().err
        assert line.startswith(f"error: {fmt} export failed: {why}")
        assert line.endswith("branchy_models.py:14: if x.sum() > 0:)\n")
        assert line.count("\n") == 1 and len(line) < 400  # not the exporter's pages
        assert files_of(run_dir) == before  # no export/, no staging folder
    sys.modules.pop("branchy_models", None)


@pytest.mark.parametrize("case", ["no model.pt", "not a run", "no onnxruntime", "not an export"])
def test_bad_input_is_one_line_and_writes_nothing(case, digits_run, tmp_path, monkeypatch, capsys):
    run_dir, fmt, extra = digits_run, "torchscript", []
    if case == "no model.pt":
        run_dir = tmp_path / "copy"
        run_dir.mkdir()
        (run_dir / "config.yaml").write_bytes((digits_run / "config.yaml").read_bytes())
    elif case == "not a run":
        run_dir = tmp_path
    elif case == "no onnxruntime":
        monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
        fmt = "onnx"
    else:
        (tmp_path / "notes.txt").write_text("mine")
        extra = ["--out", str(tmp_path)]
    before, before_run = files_of(tmp_path), files_of(digits_run)
    with pytest.raises(SystemExit) as exited:
        main([str(run_dir), "--format", fmt, *extra])

    assert exited.value.code == 1
    line = capsys.readouterr().err
    assert line.count("\n") == 1
    assert {
        "no model.pt": f"error: {run_dir}: not a finished run directory (no model.pt)\n",
        "not a run": f"error: {run_dir}: not a finished run directory (no config.yaml)\n",
        "no onnxruntime": "error: --format onnx needs onnx, onnxscript, onnxruntime;"
        " onnxruntime is not installed: pip install multiclass[export]\n",
        "not an export": f"error: --out {tmp_path}: a folder that holds files but no"
        f" {BUNDLE}: not an export\n",
    }[case] == line
    assert files_of(tmp_path) == before and files_of(digits_run) == before_run


def test_an_unknown_format_is_refused_by_the_parser(digits_run, capsys):
    with pytest.raises(SystemExit) as exited:
        main([str(digits_run), "--format", "tflite"])
    assert exited.value.code == 2
    assert "argument --format: invalid choice: 'tflite'" in capsys.readouterr().err
