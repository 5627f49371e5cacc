"""Every multiclass-* command's command line, in-process: --help exits 0 in whole sentences,
overrides may follow an option, a usage error names what is really required, and a run whose
config.yaml is damaged is one line that changes nothing."""

import re
import sys
from importlib.metadata import distribution
from pathlib import Path

import pytest

from multiclass.commands import evaluate, predict, rerun, resume
from tests.conftest import files_of

SCRIPTS = {
    entry.name: entry
    for entry in distribution("multiclass").entry_points
    if entry.group == "console_scripts"
}


def description(help_text: str) -> list[str]:
    """The paragraphs between argparse's usage and its first list of arguments."""
    body = help_text.split("\n\n", 1)[1]
    body = re.split(r"\n\n(?:positional arguments|options):\n", body)[0]
    return [" ".join(paragraph.split()) for paragraph in body.split("\n\n")]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_command_prints_its_help_in_whole_sentences_and_exits_0(script, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    with pytest.raises(SystemExit) as ended:
        SCRIPTS[script].load()()
    assert ended.value.code in (0, None)
    out = capsys.readouterr().out
    if not out.startswith("usage:"):  # the Hydra app: its header, then the config groups
        assert out.startswith(f"{script}: train and test one classifier configuration")
        assert "== Configuration groups ==" in out
        return
    assert out.startswith(f"usage: {script} ")
    for paragraph in description(out):
        assert paragraph.endswith("."), f"{script} --help stops mid-sentence: ...{paragraph[-60:]}"


@pytest.mark.parametrize(
    ("command", "argv", "key", "expected"),
    [
        (rerun, ["RUN", "--out", "NEW", "optimizer.lr=0.01"], "overrides", ["optimizer.lr=0.01"]),
        (rerun, ["RUN", "a=1", "--out", "NEW", "b=2"], "overrides", ["a=1", "b=2"]),
        (evaluate, ["RUN", "--name", "x", "dataset=mnist"], "overrides", ["dataset=mnist"]),
        (predict, ["RUN", "a.png", "--out", "p.csv", "b.png"], "inputs", ["a.png", "b.png"]),
        (resume, ["DIR", "trainer.epochs=5"], "overrides", ["trainer.epochs=5"]),
    ],
)
def test_overrides_and_inputs_may_follow_an_option(command, argv, key, expected):
    args = command.parse_args(argv)
    assert [str(value) for value in getattr(args, key)] == expected


@pytest.mark.parametrize(
    ("command", "required"),
    [(rerun, "run_dir"), (evaluate, "run_dir"), (predict, "run_dir, inputs"), (resume, "DIR")],
)
def test_no_arguments_names_what_is_required_and_no_more(command, required, capsys):
    with pytest.raises(SystemExit) as ended:
        command.main([])
    assert ended.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.endswith(f"error: the following arguments are required: {required}")


def damaged(tmp_path: Path, sweep: bool) -> tuple[Path, Path]:
    """A completed run, or a sweep's job 0, whose config.yaml is not YAML: (target, config)."""
    target = tmp_path / "target"
    run_dir = target / "0" if sweep else target
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("dataset: [digits\nmodel: mlp\n")
    (run_dir / "summary.json").write_text('{"status": "completed"}\n')
    if sweep:
        (target / "multirun.yaml").write_text("hydra: {overrides: {hydra: [], task: []}}\n")
    return target, run_dir / "config.yaml"


@pytest.mark.parametrize(
    ("command", "sweep"),
    [(rerun, False), (resume, False), (resume, True)],
    ids=["rerun", "resume", "resume a sweep"],
)
def test_a_damaged_config_is_one_line_naming_it_and_changes_nothing(
    command, sweep, tmp_path, monkeypatch, capsys
):
    target, config = damaged(tmp_path, sweep)
    before = files_of(target)
    monkeypatch.setattr(sys, "argv", ["multiclass"])  # resume hands its own on to Hydra
    with pytest.raises(SystemExit) as ended:
        command.main(
            [str(target), "--out", str(tmp_path / "new")] if command is rerun else [str(target)]
        )
    assert ended.value.code == 1
    out, err = capsys.readouterr()
    assert err.startswith(f"error: {config}: not a readable config") and not out
    assert err.count("\n") == 1 and "Traceback" not in err
    assert files_of(target) == before and sorted(tmp_path.iterdir()) == [target]
