"""dataset=table: a CSV or Parquet file, standardised and one-hot encoded with statistics of the
training split alone, the fitted transform saved with the model and applied at prediction."""

import hashlib
import io
import logging
import pickle
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import multiclass
from multiclass.commands.predict import predictions_csv
from multiclass.datasets.splits import row_splits
from multiclass.datasets.table_file import table, transform_rows
from multiclass.engine import Examples, evaluate
from multiclass.errors import UserError
from multiclass.inference.evaluation import evaluate_run
from multiclass.records.preprocess import TransformerUnpickler

COLOURS = ["red", "green", "blue"]
CLASSES = ["emu", "cat", "dog"]  # in order of first appearance, not sorted


def animals(count: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Three classes told apart by `size` (a class-wise mean) and mostly by `colour`."""
    rng = np.random.default_rng(seed)
    label = np.array(CLASSES * (count // 3))
    index = np.array([CLASSES.index(c) for c in label])
    return pd.DataFrame(
        {
            "size": 10 * index + rng.normal(size=count) + shift,
            "noise": rng.normal(size=count),
            "colour": np.where(rng.random(count) < 0.9, np.array(COLOURS)[index], "red"),
            "label": label,
        }
    )


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "animals.csv"
    animals(90, seed=0).to_csv(path, index=False)
    return path


@pytest.fixture
def test_file(tmp_path: Path) -> Path:
    """Test rows far from the training rows (size + 100), and a colour training never saw."""
    path = tmp_path / "animals_test.csv"
    frame = animals(30, seed=1, shift=100.0)
    frame.loc[0, "colour"] = "purple"
    frame.to_csv(path, index=False)
    return path


def test_a_csv_trains_and_its_classes_are_the_sorted_target_values(train, csv_file, tmp_path):
    run_dir = tmp_path / "csv-run"
    overrides = ["dataset=table", f"dataset.path={csv_file}", "dataset.target=label"]
    outcome = train(*overrides, "trainer.epochs=2", run_dir=run_dir)

    summary = outcome.summary
    assert outcome.status == "completed"
    assert summary["dataset"] == "animals" and summary["num_classes"] == 3
    assert summary["input_shape"] == [2 + len(COLOURS)]  # size, noise, three one-hot colours
    assert summary["split_sizes"] == {"train": 64, "val": 8, "test": 18}
    assert multiclass.load_run(run_dir).class_names == ["cat", "dog", "emu"]


def test_statistics_come_from_the_training_split_alone(csv_file, test_file):
    splits = table(str(csv_file), "label", test_path=str(test_file), seed=0)

    size = splits.train.x[:, 0]
    assert size.mean().item() == pytest.approx(0, abs=1e-5)
    assert size.std(unbiased=False).item() == pytest.approx(1, abs=1e-5)
    fitted_with_val = torch.cat([size, splits.val.x[:, 0]])
    assert abs(fitted_with_val.mean().item()) > 1e-3  # validation rows were not in the fit
    assert splits.test.x[:, 0].mean() > 5  # test rows (size + 100) scaled by training's std
    scaler = splits.preprocess.named_transformers_["numeric"][-1]
    assert scaler.mean_[0] < 20  # not pulled towards the test file's sizes


def test_text_columns_are_one_hot_and_an_unseen_value_encodes_as_zeros(csv_file, test_file):
    splits = table(str(csv_file), "label", test_path=str(test_file))

    one_hot = splits.train.x[:, 2:]
    assert one_hot.shape[1] == 3
    assert set(one_hot.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(one_hot.sum(dim=1), torch.ones(len(one_hot)))
    assert splits.test.x[0, 2:].sum() == 0  # "purple"
    assert torch.equal(splits.test.x[1:, 2:].sum(dim=1), torch.ones(len(splits.test) - 1))


def test_classes_by_name_limit_and_a_seeded_stratified_split(csv_file):
    splits = table(str(csv_file), "label", classes=["emu", "dog"], limit=40, val_fraction=0.25)

    assert splits.class_names == ["emu", "dog"]
    assert (len(splits.train), len(splits.val), len(splits.test)) == (30, 10, 12)
    assert torch.bincount(splits.test.y).tolist() == [6, 6]  # stratified
    again = table(str(csv_file), "label", classes=["emu", "dog"], limit=40, val_fraction=0.25)
    other = table(str(csv_file), "label", classes=["emu", "dog"], limit=40, seed=1)
    assert torch.equal(splits.train.x, again.train.x)
    assert not torch.equal(splits.test.x, other.test.x)


def test_numeric_class_values_sort_by_value(tmp_path):
    path = tmp_path / "numbers.csv"
    pd.DataFrame({"x": range(12), "y": [10, 2, 1] * 4}).to_csv(path, index=False)

    splits = table(str(path), "y", val_fraction=0, test_fraction=0.25)
    assert splits.class_names == ["1", "2", "10"]


def test_parquet_gives_the_csvs_splits(csv_file, tmp_path):
    pytest.importorskip("pyarrow", reason="needs the [parquet] extra")
    parquet = tmp_path / "animals.parquet"
    pd.read_csv(csv_file).to_parquet(parquet)

    from_csv, from_parquet = table(str(csv_file), "label"), table(str(parquet), "label")
    assert torch.equal(from_csv.train.x, from_parquet.train.x)
    assert torch.equal(from_csv.test.y, from_parquet.test.y)


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    parquet = write(tmp_path / "animals.parquet", b"PAR1")  # never read: pyarrow is asked first
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now fails

    with pytest.raises(UserError, match=r"pip install 'multiclass\[parquet\]'"):
        table(parquet, "label")


def test_the_saved_transform_gives_the_runs_own_predictions(train, csv_file, test_file, tmp_path):
    run_dir = tmp_path / "table-run"
    overrides = [f"dataset.path={csv_file}", f"dataset.test_path={test_file}"]
    outcome = train(
        "dataset=table", *overrides, "dataset.target=label", "trainer.epochs=3", run_dir=run_dir
    )
    assert outcome.status == "completed"

    content = torch.load(run_dir / "model.pt", weights_only=True)
    saved = (run_dir / "preprocess.pkl").read_bytes()
    assert content["preprocess_sha256"] == hashlib.sha256(saved).hexdigest()
    run = multiclass.load_run(run_dir)
    rows = pd.read_csv(test_file)
    predicted = run.predict(rows)  # a DataFrame: transformed by the saved transform
    in_run = run.predict(table(str(csv_file), "label", test_path=str(test_file)).test.x)
    assert np.array_equal(predicted, in_run)
    labels = rows["label"].map({name: i for i, name in enumerate(run.class_names)}).to_numpy()
    assert (predicted == labels).mean() == pytest.approx(outcome.summary["test_acc"])

    args = Namespace(run_dir=run_dir, inputs=[test_file], invert="auto", checkpoint="model.pt")
    text, count = predictions_csv(args)
    lines = pd.read_csv(io.StringIO(text))
    assert count == len(rows) and lines["input"][0] == f"{test_file}:2"
    assert lines["predicted"].tolist() == [run.class_names[i] for i in predicted]


def test_a_changed_or_code_running_preprocess_file_is_refused(train, csv_file, tmp_path):
    run_dir = tmp_path / "table-run"
    train("dataset=table", f"dataset.path={csv_file}", "dataset.target=label", run_dir=run_dir)
    evil = pickle.dumps(Namespace)  # any global but scikit-learn's and numpy's classes

    (run_dir / "preprocess.pkl").write_bytes(evil)
    with pytest.raises(UserError, match="not the file this run's model was saved with"):
        multiclass.load_run(run_dir)
    with pytest.raises(pickle.UnpicklingError, match=r"argparse\.Namespace"):
        TransformerUnpickler(io.BytesIO(evil)).load()
    with pytest.raises(pickle.UnpicklingError, match=r"(posix|os)\.system"):
        TransformerUnpickler(io.BytesIO(b"cos\nsystem\n(S'true'\ntR.")).load()


def with_gaps(path: Path, whole_sizes: bool = False) -> Path:
    """animals.csv with two sizes and three colours missing; `whole_sizes`: sizes rounded to
    whole numbers, so that some repeat and one is the most frequent."""
    frame = animals(90, seed=0)
    if whole_sizes:
        frame["size"] = frame["size"].round()
    frame.loc[[3, 7], "size"] = np.nan
    frame.loc[[7, 9, 11], "colour"] = None
    frame.to_csv(path, index=False)
    return path


def test_missing_values_are_refused_by_default(tmp_path):
    path = with_gaps(tmp_path / "gaps.csv")

    with pytest.raises(UserError) as refused:
        table(str(path), "label")
    message = str(refused.value)
    assert "missing values in size (2), colour (3); 4 of 90 rows affected" in message
    assert "dataset.impute=mean" in message and "\n" not in message


def split_rows(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Which rows of `frame` each split holds, as `table` splits them by default."""
    names = sorted(frame["label"].unique())
    labels = torch.tensor(frame["label"].map(names.index).to_numpy())
    rows = row_splits("gaps", labels, names)
    return {"train": rows.train.x.numpy(), "val": rows.val.x.numpy(), "test": rows.test.x.numpy()}


@pytest.mark.parametrize("strategy", ["mean", "most_frequent"])
def test_gaps_are_filled_with_the_training_splits_mean_or_most_frequent_value(tmp_path, strategy):
    """Worked out with pandas on the training rows alone: a missing size is their mean (or most
    frequent size), standardised like the others; a missing colour is their most frequent."""
    path = with_gaps(tmp_path / "gaps.csv", whole_sizes=True)
    frame = pd.read_csv(path)
    rows = split_rows(frame)
    assert frame.loc[rows["train"], ["size", "colour"]].isna().any().all()  # gaps to fill there

    training = frame.loc[rows["train"]]
    sizes, colours = training["size"].dropna(), training["colour"].dropna()
    counts, colour_counts = sizes.value_counts(), colours.value_counts()
    assert (counts == counts.max()).sum() == 1 or strategy == "mean"  # one most frequent size
    assert (colour_counts == colour_counts.max()).sum() == 1  # and one most frequent colour
    fill = sizes.mean() if strategy == "mean" else counts.idxmax()
    filled = training["size"].fillna(fill)
    centre, scale = filled.mean(), filled.std(ddof=0)  # what standardising them uses
    categories = sorted(colours.unique())  # one-hot columns in sorted order

    splits = table(str(path), "label", impute=strategy)
    for name, split in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
        part = frame.loc[rows[name]]
        expected_size = (part["size"].fillna(fill).to_numpy() - centre) / scale
        assert np.allclose(split.x[:, 0].numpy(), expected_size, atol=1e-5), name
        colour = part["colour"].fillna(colour_counts.idxmax())
        expected_colour = np.array([[c == category for category in categories] for c in colour])
        assert np.array_equal(split.x[:, 2:].numpy(), expected_colour.astype(np.float32)), name


def test_a_run_with_imputation_predicts_rows_with_gaps(train, tmp_path):
    path = with_gaps(tmp_path / "gaps.csv")
    run_dir = tmp_path / "imputed"
    overrides = ["dataset=table", f"dataset.path={path}", "dataset.target=label"]
    assert train(*overrides, "dataset.impute=mean", run_dir=run_dir).status == "completed"

    predicted = multiclass.load_run(run_dir).predict_proba(pd.read_csv(path))
    assert np.isfinite(predicted).all() and predicted.shape == (90, 3)


def test_a_run_without_imputation_refuses_rows_with_gaps(train, csv_file, tmp_path):
    run_dir = tmp_path / "strict"
    train("dataset=table", f"dataset.path={csv_file}", "dataset.target=label", run_dir=run_dir)

    with pytest.raises(UserError, match=r"missing values in size \(2\), colour \(3\).*without"):
        multiclass.load_run(run_dir).predict(pd.read_csv(with_gaps(tmp_path / "gaps.csv")))


def write(path: Path, text: str | bytes) -> str:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


TWO_ROWS = "a,b\n1,x\n2,y\n"


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        (TWO_ROWS, {"target": "c"}, r"dataset.target: no column 'c' in .*; its columns: a, b"),
        ("a,b\n1,x\n2,x\n", {"target": "b"}, r"'b' in .* has one class \('x'\): .* two classes"),
        (
            "a,b\n1,x\nz,y\n",
            {"target": "b", "numeric": ["a"]},
            r"'a' in dataset.numeric holds text in 1 of 2 cells \(first: 'z' in row 2\): more",
        ),
        (
            TWO_ROWS,
            {"target": "b", "numeric": ["q"]},
            r"dataset.numeric: q is not a feature column",
        ),
        (TWO_ROWS, {"target": "b", "features": ["a", "q"]}, r"no column q; its columns: a, b"),
        (TWO_ROWS, {"target": "b", "impute": "median"}, r"dataset.impute must be one of mean"),
        ("a,b\n1,x\n,y\n", {"target": "a"}, r"1 of 2 rows have no 'a'"),
        (b"a,b\n\xff\xfe,\x00\x81\n", {"target": "b"}, r"not a readable CSV file \(.*codec"),
        ("", {"target": "b"}, r"not a readable CSV file \(No columns to parse"),
    ],
)
def test_bad_tables_get_one_line(tmp_path, content, options, message):
    path = write(tmp_path / "bad.csv", content)
    with pytest.raises(UserError, match=message) as refused:
        table(path, **options)
    assert "\n" not in str(refused.value)


def test_missing_and_unreadable_files_get_one_line(tmp_path):
    with pytest.raises(UserError, match=r"nothere.csv: no such file"):
        table(str(tmp_path / "nothere.csv"), "b")
    with pytest.raises(UserError, match=r"dataset=table needs dataset.path"):
        table(None, "b")


def test_an_unreadable_parquet_file_gets_one_line(tmp_path):
    pytest.importorskip("pyarrow", reason="needs the [parquet] extra")
    garbage = write(tmp_path / "bad.parquet", b"PAR1 this is not parquet")
    with pytest.raises(UserError, match=r"bad.parquet: not a readable Parquet file") as refused:
        table(garbage, "b")
    assert "\n" not in str(refused.value)


def test_a_bad_table_fails_the_run_in_one_line(train, tmp_path):
    path = write(tmp_path / "t.csv", "a,b\n1,x\n2,y\n")
    outcome = train("dataset=table", f"dataset.path={path}", "dataset.target=label")

    assert outcome.status == "failed"
    assert outcome.summary["error"] == (
        f"dataset.target: no column 'label' in {path}; its columns: a, b"
    )


def with_a_typo(path: Path) -> Path:
    """animals.csv with one size written with a decimal comma: pandas reads the column as text."""
    frame = animals(90, seed=0)
    frame["size"] = frame["size"].astype(object)
    frame.loc[4, "size"] = "12,5"
    frame.to_csv(path, index=False)
    return path


def test_a_few_text_cells_in_a_numeric_column_are_missing_values_named_in_a_warning(
    tmp_path, caplog
):
    path = with_a_typo(tmp_path / "typo.csv")
    warning = (
        f"warning: {path}: column 'size' is numeric but for 1 of 90 cells (first: '12,5' in"
        " row 5): read as missing values"
    )

    with caplog.at_level(logging.WARNING, logger="multiclass"):
        with pytest.raises(UserError, match=r"missing values in size \(1\); 1 of 90 rows"):
            table(str(path), "label")
        assert warning in caplog.messages
        splits = table(str(path), "label", impute="mean")
    assert splits.input_shape == (2 + len(COLOURS),)  # size stays one number, not 89 categories


def test_a_category_unseen_in_training_is_named_in_a_warning(train, csv_file, tmp_path, caplog):
    run_dir = tmp_path / "table-run"
    train("dataset=table", f"dataset.path={csv_file}", "dataset.target=label", run_dir=run_dir)
    rows = pd.read_csv(csv_file).head(3)
    rows.loc[[1, 2], "colour"] = ["purple", "mauve"]
    new = tmp_path / "new.csv"
    rows.to_csv(new, index=False)
    args = Namespace(run_dir=run_dir, inputs=[new], invert="auto", checkpoint="model.pt")

    with caplog.at_level(logging.WARNING, logger="multiclass"):
        text, count = predictions_csv(args)
    assert count == 3 and text.count("\n") == 4  # the header and the three rows
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        f"warning: {new}: column 'colour' holds values training never saw, in 2 of 3 rows"
        " ('purple', 'mauve'): one-hot encoded as all zeros, as no category"
    ]


def test_another_file_is_evaluated_with_the_runs_saved_transform(train, csv_file, tmp_path):
    run_dir = tmp_path / "table-run"
    overrides = ["dataset=table", f"dataset.path={csv_file}", "dataset.target=label"]
    assert train(*overrides, "trainer.epochs=3", run_dir=run_dir).status == "completed"
    other, other_test = tmp_path / "other.csv", tmp_path / "other_test.csv"
    animals(60, seed=2, shift=50.0).to_csv(other, index=False)  # a refit would undo the shift
    animals(30, seed=3, shift=50.0).to_csv(other_test, index=False)
    run = multiclass.load_run(run_dir)

    report = evaluate_run(run, [f"dataset.path={other}", f"dataset.test_path={other_test}"])
    rows = pd.read_csv(other_test)
    labels = torch.tensor(rows["label"].map(run.class_names.index).to_numpy())
    x = transform_rows(run.preprocess, rows, other_test)  # the transform fitted in training
    expected = evaluate(run.task, Examples(x, labels, run.head.encode(labels)), run.batch_size)
    assert report.content["num_samples"] == 30
    assert report.content["loss"] == pytest.approx(expected.loss, rel=1e-5)
    assert report.content["accuracy"] == pytest.approx(expected.acc)
