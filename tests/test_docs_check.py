"""docs/checks/docs_check.py: what it reads from a page, how it matches a shown line, and one
real block of README run again (the rest: `make docs-check`)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def docs_check():
    spec = importlib.util.spec_from_file_location("docs_check", ROOT / "docs/checks/docs_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PAGE = """Text.

<!-- docs-check: skip too slow -->
```
$ sleep 600
```

<!-- docs-check: file data/hello.txt -->
```
hello 0.5
```

```
$ cat data/hello.txt
hello 0.5
$ python -c "
print('[2026-01-01 10:00:00,000][INFO] test_acc 0.9500  (1.23 s)  -> /somewhere/run')
"
[...][INFO] test_acc 0.9500  (9.87 s)  -> .../run
$ ls no-such-file > /dev/null 2>&1
$ echo $?
2
```
"""


def test_a_page_gives_its_sessions_files_and_markers(docs_check, tmp_path):
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    skipped, written, session = docs_check.read_blocks(page)
    assert skipped.marker == ("skip", "too slow")
    assert written.marker == ("file", "data/hello.txt") and written.body == "hello 0.5\n"
    assert [command.shown for command in session.commands] == [
        ["hello 0.5"],
        ["[...][INFO] test_acc 0.9500  (9.87 s)  -> .../run"],
        [],
        ["2"],
    ]
    assert session.commands[1].text.count("\n") == 2  # the open quote carried the lines on


def test_a_shown_line_matches_only_its_own_figures(docs_check):
    shown = [
        "[2026-11-23 17:03:28,836][INFO] test_acc 0.9500  test_loss 0.1935  (0.02 s)  -> .../x"
    ]
    printed = [
        "noise",
        "[2026-12-06 01:02:03,004][INFO] test_acc 0.9500  test_loss 0.1935  (3.40 s)  -> /a/x",
    ]
    assert docs_check.compare(shown, printed) == (shown, None)
    changed = [printed[1].replace("0.1935", "0.1936")]
    assert docs_check.compare(shown, changed) == (shown, shown[0])
    assert docs_check.compare(["b", "a"], ["a", "b"])[1] == "a"  # in the order shown


def test_a_tables_padding_may_move_but_not_vanish(docs_check):
    """A column shifts when a cell shown as `...` (a time) prints wider; the figures stay."""
    shown = ["  best_val_acc   +0.0250   [+0.0041, +0.0459]    0.0356  paired t"]
    wider = ["  best_val_acc   +0.0250   [+0.0041, +0.0459]      0.0356  paired t"]
    assert docs_check.compare(shown, wider) == (shown, None)
    joined = ["  best_val_acc   +0.0250   [+0.0041, +0.0459] 0.0356  paired t"]
    assert docs_check.compare(shown, joined)[1] == shown[0]


def test_update_takes_the_printed_figures_and_keeps_the_elisions(docs_check):
    shown = [
        "[...][INFO] epoch 3/3  val_acc 0.9200  (9.94 s)  -> .../outputs/2026-11-23/17-03-18-504571"
    ]
    printed = [
        "[2026-12-07 00:01:02,003][INFO] epoch 3/3  val_acc 0.9249  (12.5 s)"
        "  -> /x/outputs/2026-12-07/00-01-02-123456"
    ]
    lines, lost = docs_check.compare(shown, printed, update=True)
    assert lost is None
    assert lines == [
        "[...][INFO] epoch 3/3  val_acc 0.9249  (12.5 s)  -> .../outputs/2026-12-07/00-01-02-123456"
    ]
    epochs = [
        "[x][INFO] epoch 1/3  val_acc 0.5000  (1.0 s)  -> /x/outputs/2026-12-07/00-01-02-1",
        *printed,
    ]
    assert docs_check.compare(shown, epochs, update=True)[0] == lines  # epoch 3, not epoch 1
    other_words = ["[2026-12-07 00:01:02,003][INFO] epoch 3/3  val_loss 0.9249  (12.5 s)  -> /x"]
    assert docs_check.compare(shown, other_words, update=True) == (shown, shown[0])


def test_a_page_runs_in_its_scratch_folder_and_a_changed_figure_fails(
    docs_check, tmp_path, monkeypatch
):
    monkeypatch.setattr(docs_check, "SCRATCH", tmp_path / "scratch")
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    assert docs_check.check([page], only=None, timeout=60) == 0
    page.write_text(PAGE.replace("test_acc 0.9500  (9", "test_acc 0.9400  (9"))
    assert docs_check.check([page], only=None, timeout=60) == 1


def test_readme_error_lines_print_as_shown(docs_check, tmp_path, monkeypatch):
    """One real block, fast: the two bad-input runs and their exit codes."""
    monkeypatch.setattr(docs_check, "SCRATCH", tmp_path)
    assert docs_check.check([ROOT / "README.md"], only=["trainer.epochs=0"], timeout=120) == 0


def test_a_page_that_shows_a_path_of_a_machine_fails(docs_check, tmp_path, monkeypatch):
    monkeypatch.setattr(docs_check, "SCRATCH", tmp_path / "scratch")
    page = tmp_path / "page.md"
    page.write_text("Runs go to `outputs/x`, data to `../shared/data`, see docs/work/x.\n")
    assert docs_check.machine_paths(page) == []
    shown = "[...][INFO] test_acc 0.95  -> /home/me/repo/outputs/x\n$ ls file:///tmp/a /work/b\n"
    page.write_text(shown)
    found = [line.split("  ")[1] for line in docs_check.machine_paths(page)]
    assert found == ["/home/me/repo/outputs/x", "/tmp/a", "/work/b"]
    assert docs_check.check([page], only=None, timeout=60) == 3


def test_no_page_shows_a_path_of_a_machine(docs_check):
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert [path for page in pages for path in docs_check.machine_paths(page)] == []


def test_dir_in_a_command_is_the_data_root(docs_check, tmp_path, monkeypatch):
    monkeypatch.setattr(docs_check, "SCRATCH", tmp_path / "scratch")
    data = tmp_path / "data"
    (data / "MNIST").mkdir(parents=True)
    page = tmp_path / "page.md"
    page.write_text("```\n$ ls DIR/\nMNIST\n```\n")
    assert docs_check.check([page], only=None, timeout=60, data_root=data) == 0
