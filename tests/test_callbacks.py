"""The callbacks group: the default list writes every file of a run, minimal leaves out the
pictures and layer statistics, and a user's own callback (docs/examples) joins from a config
folder; something that is not a callback is one line."""

import csv
import sys
from pathlib import Path

import pytest

from multiclass.callbacks import Callback
from multiclass.config import compose_config
from multiclass.lifecycle.run import execute
from tests.conftest import QUIET, read_summary

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
TINY = ["trainer.progress=false", "dataset=blobs", "trainer.epochs=2"]


def test_minimal_keeps_the_runs_record_and_draws_nothing(tmp_path):
    outcome = execute(compose_config(*TINY, "callbacks=minimal"), tmp_path)
    assert outcome.status == "completed"
    written = {path.name for path in tmp_path.iterdir()}
    assert {"metrics.csv", "best.pt", "last.pt", "model.pt", "summary.json"} <= written
    assert not [name for name in written if name.endswith(".png") or name == "layers.csv"]
    default = execute(compose_config(*TINY), tmp_path / "default")
    assert default.summary["weights_sha256"] == outcome.summary["weights_sha256"]


def test_a_users_callback_from_their_config_folder_runs_with_the_defaults(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.delitem(sys.modules, "my_callbacks", raising=False)
    search = f"hydra.searchpath=[file://{EXAMPLES / 'conf'}]"
    outcome = execute(compose_config(*TINY, search, "callbacks=with_mistakes"), tmp_path)
    assert outcome.status == "completed"
    with open(tmp_path / "mistakes.csv") as file:
        rows = list(csv.DictReader(file))
    wrong = 1 - outcome.summary["test_acc"]
    assert len(rows) == pytest.approx(wrong * outcome.summary["split_sizes"]["test"])
    assert all(row["label"] != row["predicted"] for row in rows)
    confidence = [float(row["confidence"]) for row in rows]
    assert confidence == sorted(confidence, reverse=True)
    assert (tmp_path / "curves.png").exists()  # the default callbacks ran too


def test_something_that_is_not_a_callback_is_one_line(tmp_path):
    cfg = compose_config(*QUIET, *TINY, "+callbacks.odd._target_=collections.OrderedDict")
    outcome = execute(cfg, tmp_path)
    assert outcome.status == "failed"
    assert outcome.summary["error"] == (
        "callbacks.odd is a OrderedDict, not a multiclass.callbacks.Callback"
    )


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("bad_callbacks.Boom", "no module named 'bad_callbacks': install it or put its folder on"),
        (f"{__name__}.Missing", f"{__name__} has no 'Missing'"),
    ],
)
def test_a_callback_that_cannot_be_imported_is_one_line_as_a_model_is(tmp_path, target, why):
    cfg = compose_config(*QUIET, *TINY, f"+callbacks.boom._target_={target}")
    outcome = execute(cfg, tmp_path)
    assert outcome.status == "failed"
    assert outcome.summary["error"].startswith(
        f"callbacks.boom._target_ {target} cannot be imported: {why}"
    )


def test_a_callback_its_options_do_not_fit_names_its_key(tmp_path):
    cfg = compose_config(
        *QUIET, *TINY, f"+callbacks.odd._target_={__name__}.Counter", "+callbacks.odd.step=2"
    )
    outcome = execute(cfg, tmp_path)
    assert outcome.status == "failed"
    assert outcome.summary["error"] == (
        "cannot build callbacks.odd (callbacks.odd.step=2): TypeError: Counter.__init__() got an"
        " unexpected keyword argument 'step'"
    )


class Counter(Callback):
    """Counts the epochs it is told of; takes no option."""

    def __init__(self) -> None:
        self.epochs = 0

    def on_epoch_end(self, run, row, improved) -> None:
        self.epochs += 1


def test_a_picture_that_fails_is_one_line_in_the_record_and_fails_the_sweep(
    tmp_path, monkeypatch, caplog
):
    from omegaconf import OmegaConf

    from multiclass.commands.train import SweepReport
    from multiclass.reporting import plots

    def broken(*args, **kwargs):
        raise ValueError("no ink")

    drawn = execute(compose_config(*TINY), tmp_path / "sweep" / "0")
    monkeypatch.setattr(plots, "curves", broken)
    undrawn = execute(compose_config(*TINY), tmp_path / "sweep" / "1")
    assert (drawn.exit_code, undrawn.status, undrawn.exit_code) == (0, "completed", 1)
    summary = read_summary(tmp_path / "sweep" / "1")
    assert summary["undrawn"] == ["curves.png not drawn: ValueError: no ink"]
    assert read_summary(tmp_path / "sweep" / "0")["undrawn"] is None
    # The sweep's report, whichever process ran the job, exits 1 for it (and says so).
    sweep = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "sweep")}}, "plots": False})
    with pytest.raises(SystemExit) as ended:
        SweepReport().on_multirun_end(sweep)
    assert ended.value.code == 1
    assert "error: pictures of 1 job(s) were not drawn (above)" in caplog.text
