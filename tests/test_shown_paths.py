"""The lines a run logs name its files relative to the current directory, as a person typed
them, though Hydra and the run hold them absolute: a log line holds on any machine."""

import logging

from multiclass.config import compose_config
from multiclass.lifecycle.run import execute
from multiclass.records.artifacts import shown_path
from tests.conftest import QUIET

TINY = ["dataset.limit=100"]


def test_a_path_under_the_current_directory_is_shown_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert shown_path(tmp_path / "outputs" / "x") == "outputs/x"
    assert shown_path("outputs/x") == "outputs/x"
    elsewhere = tmp_path.parent / "elsewhere" / "x"
    assert shown_path(elsewhere) == str(elsewhere)


def test_a_run_and_its_resume_log_their_directory_as_typed(train, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "outputs" / "r"
    with caplog.at_level(logging.INFO, logger="multiclass"):
        train(*TINY, "trainer.epochs=1", run_dir=run_dir)
        again = [f"resume={run_dir}", *TINY, "trainer.epochs=2"]
        execute(compose_config(*QUIET, *again), run_dir, again)
    lines = [record.getMessage() for record in caplog.records]
    assert "resuming after epoch 1 from outputs/r/last.pt" in lines
    tested = [line for line in lines if line.startswith("test_acc")]
    assert len(tested) == 2 and all(line.endswith("  -> outputs/r") for line in tested)
