"""Hyperparameter search (hydra/sweeper=optuna_search): Hydra's sweep syntax as optuna
distributions, the study's bookkeeping in-process, a search continued across commands, and
pruning (hydra.sweeper.pruner)."""

import csv
import json
import logging
import math
import sys
from types import SimpleNamespace

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from multiclass.commands.train import SweepReport, main
from multiclass.config import CONFIG_DIR
from multiclass.datasets.synthetic import write_idx_dataset
from multiclass.errors import UserError
from tests.conftest import CPU, QUIET, run_cli

optuna = pytest.importorskip("optuna")

from optuna.distributions import (  # noqa: E402
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState  # noqa: E402

from multiclass.sweeps.search import (  # noqa: E402
    OptunaSearch,
    SearchError,
    parse_search_space,
    tell,
    trials_done,
)

PARSER = OverridesParser.create()


def space(*overrides):
    return parse_search_space(overrides, PARSER)


def command(capfd, monkeypatch, cwd, *args):
    """`python -m multiclass <args> device=cpu` in `cwd` as `run_cli` runs it (its environment
    without HYDRA_FULL_ERROR), in this process: its exit status and what it wrote on stderr."""
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setattr(sys, "argv", ["multiclass-train", *args, CPU])
    GlobalHydra.instance().clear()
    capfd.readouterr()  # what came before is not the command's
    try:
        main()
        code = 0
    except SystemExit as ended:
        code = 0 if ended.code is None else ended.code
    return code, capfd.readouterr().err


def searcher(storage, direction="maximize", sampler=None, pruner="none"):
    return OptunaSearch(
        direction, "s", storage, n_trials=3, n_jobs=1, sampler=sampler, params=None, pruner=pruner
    )


@pytest.mark.parametrize(
    ("sweep", "distribution"),
    [
        ("tag(log, interval(1e-4, 1e-1))", FloatDistribution(1e-4, 0.1, log=True)),
        ("interval(0, 0.5)", FloatDistribution(0.0, 0.5)),
        ("tag(int, log, interval(16, 1024))", IntDistribution(16, 1024, log=True)),
        ("range(1, 4)", IntDistribution(1, 3)),  # Hydra's range: stop excluded
        ("shuffle(range(8, 0, -2))", IntDistribution(2, 8, step=2)),
        ("range(0, 1, 0.25)", FloatDistribution(0.0, 0.75, step=0.25)),
        ("choice(16, 64, 256)", CategoricalDistribution([16, 64, 256])),
        ("relu,tanh", CategoricalDistribution(["relu", "tanh"])),
    ],
)
def test_hydra_sweep_syntax_becomes_an_optuna_distribution(sweep, distribution):
    assert space(f"key={sweep}").distributions == {"key": distribution}


def test_each_choice_comes_back_from_its_override_as_it_was_written():
    written = "choice('a b', 'x,y', [1,2], true, 0.5)"
    param = space(f"key={written}").params["key"]
    expected = PARSER.parse_override(f"key={written}").value().list
    for choice, value in zip(param.distribution.choices, expected, strict=True):
        assert PARSER.parse_override(param.override("key", choice)).value() == value


def test_the_command_line_pins_a_searched_key_and_the_rest_pass_as_typed():
    parsed = space("model.depth=range(1, 4)", "model.width=8,16", "model.depth=2", "+x='a b'")
    assert list(parsed.params) == ["model.width"]
    assert parsed.fixed == ("model.depth=2", "+x='a b'")
    assert parsed.overrides({"model.width": 16}) == ["model.width=16", *parsed.fixed]


def test_an_empty_range_is_refused():
    with pytest.raises(SearchError, match="no values"):
        space("key=range(4, 1)")


def test_the_shipped_search_composes_and_searches_keys_the_config_has():
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", ["hparams_search=mnist_mlp"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSearchSweeper") and sweeper.direction == "maximize"
    assert cfg.hydra.sweep.dir == "outputs/search/mnist_mlp"
    assert cfg.dataset._target_ == "multiclass.datasets.images.mnist"
    params = space(*(f"{key}={value}" for key, value in sweeper.params.items())).params
    assert set(params) == set(sweeper.params) and len(params) == 5
    for key in params:
        assert OmegaConf.select(cfg, key, default="missing") != "missing", key


def test_a_search_that_cannot_start_is_one_line_and_exit_status_1(tmp_path):
    """A direction against trainer.monitor: raised to Hydra, it was three lines, the last
    Hydra's HYDRA_FULL_ERROR hint; refused before any trial, the sweep's folder stays empty.
    The file's one command run as a process: its exit status and stderr are the process's."""
    wrong = ["hydra/sweeper=optuna_search", "hydra.sweeper.direction=minimize", "model.depth=1,2"]
    result = run_cli("-m", *wrong, "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: hydra.sweeper.direction=minimize with trainer.monitor=val_acc would search for"
        " the worst model: set hydra.sweeper.direction=maximize"
    )
    assert not any((tmp_path / "sweep").rglob("*"))


def test_a_job_without_a_finite_objective_fails_its_trial_and_no_other():
    study = optuna.create_study(direction="maximize")
    outcomes = [(JobStatus.COMPLETED, 0.9), (JobStatus.COMPLETED, None)]
    outcomes += [(JobStatus.COMPLETED, math.nan), (JobStatus.FAILED, RuntimeError("boom"))]
    for status, value in outcomes:
        tell(study, study.ask(), JobReturn(status=status, _return_value=value))
    states = [trial.state for trial in study.trials]
    assert states == [TrialState.COMPLETE] + [TrialState.FAIL] * 3
    assert trials_done(study) == 4 and study.best_value == 0.9


@pytest.mark.parametrize("pruner", ["none", "median"])
def test_trials_a_killed_command_left_running_are_failed_and_not_counted(tmp_path, pruner):
    storage = f"sqlite:///{tmp_path}/new/folder/study.db"
    killed = searcher(storage, pruner=pruner).start()  # creates the folder and the study
    killed.tell(killed.ask(), 0.5)
    running = killed.ask()  # the command dies here: trial 1 stays RUNNING
    running.report(0.1, 1)  # with a pruner, its job had reported an epoch

    study = searcher(storage, pruner=pruner).start()
    assert [trial.state for trial in study.trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert trials_done(study) == 1
    with pytest.raises(SearchError, match="created to maximize"):
        searcher(storage, direction="minimize").start()


def test_a_continued_study_does_not_draw_its_first_trials_again(tmp_path):
    sampler = OmegaConf.create({"_target_": "optuna.samplers.TPESampler", "seed": 0})
    distributions = space("x=interval(0, 1)").distributions
    draws = []
    for _ in range(2):  # two commands, each with a fresh sampler seeded from the config
        study = searcher(f"sqlite:///{tmp_path}/study.db", sampler=sampler).start()
        for _ in range(2):
            trial = study.ask(distributions)
            study.tell(trial, 0.0)
            draws.append(trial.params["x"])
    assert len(set(draws)) == 4


def test_a_complete_study_says_so_with_its_best_trial_and_the_sweep_exits_0(tmp_path, caplog):
    """Its trials ran elsewhere (a shared study.db, an earlier sweep folder): this sweep's
    folder holds no job, so there is no report to make, and nothing failed."""
    storage = f"sqlite:///{tmp_path}/study.db"
    study = searcher(storage).start()
    for value in (0.5, 0.9, 0.7):
        study.tell(study.ask({"x": FloatDistribution(0, 1)}), value)
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "sweep")}}})
    (tmp_path / "sweep").mkdir()  # as OutputCheck leaves it
    search = searcher(storage)
    search.hydra_context, search.config = SimpleNamespace(config_loader=None), config
    search.launcher = None  # a launch would fail: nothing is to run

    caplog.set_level(logging.INFO)
    search.sweep(["x=interval(0, 1)"])
    SweepReport().on_multirun_end(config)  # returns: no sys.exit
    best_x = study.trials[1].params["x"]
    assert f"study s in {storage} is complete: 3 of 3 trials done, nothing to run" in caplog.text
    assert f"study s: 3 complete; best trial 1: 0.9000  (x={best_x:.3g})" in caplog.text
    assert list((tmp_path / "sweep").iterdir()) == []


SEARCH = ["-m", "hparams_search=mnist_mlp", "dataset.root=data", "dataset.download=false"]
SEARCH += ["trainer.epochs=1", "callbacks=minimal", "plots=false", "trainer.progress=false"]


@pytest.fixture
def sweep_dir(tmp_path):
    """Where the shipped MNIST search keeps its study and trials, run in tmp_path on tiny
    synthetic MNIST."""
    write_idx_dataset(tmp_path / "data" / "MNIST" / "raw", num_train=200, num_test=40)
    return tmp_path / "outputs" / "search" / "mnist_mlp"


def search(sweep_dir, capfd, monkeypatch, *overrides):
    """Run the search as its command line would, in this process; returns its log and the
    study it left."""
    code, log = command(capfd, monkeypatch, sweep_dir.parents[2], *SEARCH, *overrides)
    assert code == 0 and "Traceback" not in log, log
    assert "study mnist_mlp: " in log, log  # it got to the end
    storage = f"sqlite:///{sweep_dir}/study.db"
    return log, optuna.load_study(study_name="mnist_mlp", storage=storage)


def job_dirs(sweep_dir):
    return sorted(int(path.name) for path in sweep_dir.iterdir() if path.is_dir())


# optuna warns of the enqueued dropout 1.5 and lr 1e30, outside the search's space, as the test
# means them (run_cli's PYTHONWARNINGS=ignore kept the warnings off the command's stderr).
@pytest.mark.filterwarnings("ignore:Fixed parameter:UserWarning")
def test_the_same_command_continues_the_study_and_failed_trials_do_not_stop_it(
    sweep_dir, capfd, monkeypatch
):
    _, study = search(sweep_dir, capfd, monkeypatch, "hydra.sweeper.n_trials=3")
    assert [trial.number for trial in study.trials] == job_dirs(sweep_dir) == [0, 1, 2]
    assert {trial.state for trial in study.trials} == {TrialState.COMPLETE}
    first = {n: (sweep_dir / str(n) / "summary.json").read_text() for n in range(3)}
    # optuna runs enqueued params first: trial 3's run fails with a one-line error and trial
    # 4's diverges (Adam at lr 1e30); the app returns None for each, and the search goes on
    # to trial 5.
    study.enqueue_trial({"model.dropout": 1.5})
    study.enqueue_trial({"optimizer.lr": 1e30})

    log, study = search(sweep_dir, capfd, monkeypatch, "hydra.sweeper.n_trials=6")
    assert [trial.number for trial in study.trials] == job_dirs(sweep_dir) == [0, 1, 2, 3, 4, 5]
    states = [trial.state for trial in study.trials][3:]
    assert states == [TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    assert "trial 3 failed: the run did not complete" in log
    assert "error: model.dropout" in (sweep_dir / "3" / "train.log").read_text()
    assert "trial 4 failed: the run did not complete" in log
    assert json.loads((sweep_dir / "4" / "summary.json").read_text())["status"] == "diverged"
    assert yaml.safe_load((sweep_dir / "4" / "config.yaml").read_text())["optimizer"]["lr"] == 1e30
    assert all((sweep_dir / str(n) / "summary.json").read_text() == first[n] for n in range(3))
    assert len({json.dumps(trial.params) for trial in study.trials}) == 6  # no repeats
    # The same command once more says the study is complete (in-process: the test above).


# A search over a deliberately bad learning rate (1e-5: chance level after its epochs on
# digits) and a good one, its trials drawn by a seeded random sampler, run in-process (the basic
# launcher), as a command line would run it. Two epochs: a pruned trial stops after the first.
LR_SEARCH = ["-m", "hydra/sweeper=optuna_search", "hydra.sweeper.n_trials=5"]
LR_SEARCH += ["+hydra.sweeper.sampler={_target_:optuna.samplers.RandomSampler,seed:0}"]
LR_SEARCH += ["optimizer.lr=choice(0.00001,0.01)", "dataset=digits", "trainer.epochs=2"]
LR_SEARCH += ["callbacks=minimal", *QUIET]
BAD_LR = 1e-5


def search_in_process(tmp_path, monkeypatch, name, *overrides):
    """The search as `multiclass-train` runs it, in this process, into tmp_path/name; the
    study it left."""
    storage = f"sqlite:///{tmp_path}/{name}/study.db"
    args = [*LR_SEARCH, f"hydra.sweeper.storage={storage}", f"hydra.sweep.dir={name}"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["multiclass-train", *args, *overrides])
    GlobalHydra.instance().clear()
    main()  # the sweep report's sys.exit(1) would fail the test: a pruned job is no failure
    return optuna.load_study(study_name="search", storage=storage)


def test_a_median_pruner_prunes_the_bad_learning_rate_and_finds_the_same_best_trial(
    tmp_path, monkeypatch
):
    plain = search_in_process(tmp_path, monkeypatch, "plain")
    pruning = ["hydra.sweeper.pruner=median", "hydra.sweeper.pruner_options={n_startup_trials:1}"]
    pruned = search_in_process(tmp_path, monkeypatch, "pruned", *pruning)

    assert {trial.state for trial in plain.trials} == {TrialState.COMPLETE}
    assert len(pruned.trials) == 5  # pruned trials count toward n_trials
    assert [t.params for t in pruned.trials] == [t.params for t in plain.trials]
    bad = [t.number for t in plain.trials if t.params["optimizer.lr"] == BAD_LR]
    assert bad and bad[0] > 0  # the first trial completes: the median needs one
    assert [t.number for t in pruned.trials if t.state == TrialState.PRUNED] == bad
    best = (plain.best_trial.number, plain.best_trial.params, plain.best_value)
    assert (pruned.best_trial.number, pruned.best_trial.params, pruned.best_value) == best

    sweep = tmp_path / "pruned"
    with open(sweep / "sweep.csv") as table:
        statuses = {int(row["job"]): row["status"] for row in csv.DictReader(table)}
    assert statuses == {n: "pruned" if n in bad else "completed" for n in range(5)}
    for number in bad:  # stopped after epoch 1, its record whole: the epoch, last.pt, config
        summary = json.loads((sweep / str(number) / "summary.json").read_text())
        assert summary["status"] == "pruned" and summary["epochs"] == 1
        assert pruned.trials[number].intermediate_values == {1: summary["best_score"]}
        assert len((sweep / str(number) / "metrics.csv").read_text().splitlines()) == 2
        assert (sweep / str(number) / "last.pt").is_file()
        assert (sweep / str(number) / "config.yaml").is_file()
        assert not (sweep / str(number) / "model.pt").exists()  # not tested


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        (
            ["hydra.sweeper.pruner=median"],
            "error: hydra.sweeper.pruner=median: pruning stops a search's trials, and this command"
            " runs no search: add hydra/sweeper=optuna_search (or an hparams_search config) and -m",
        ),
        (
            ["hydra/sweeper=optuna_search", "hydra.sweeper.pruner=mean"],
            "error: hydra.sweeper.pruner must be one of median, hyperband, none, got 'mean'",
        ),
        (
            ["hydra/sweeper=search", "hydra.sweeper.pruner=median"],  # the short name
            "error: hydra.sweeper.pruner=median needs hydra.sweeper.storage: the jobs report their"
            " epochs to the study through it (e.g. sqlite:///outputs/search/study.db)",
        ),
    ],
)
def test_bad_pruning_is_one_line_and_exit_status_1_before_any_trial(
    tmp_path, capfd, monkeypatch, overrides, error
):
    """Hydra itself refused a pruner without the search in five lines and its HYDRA_FULL_ERROR
    hint: the key its basic sweeper does not have. The command in this process: its
    SystemExit's status and its stderr, as test_a_search_that_cannot_start_... sees them in
    a process of its own."""
    args = ["-m", *overrides, "model.depth=1,2", "hydra.sweep.dir=sweep"]
    assert command(capfd, monkeypatch, tmp_path, *args) == (1, error + "\n")
    assert not any((tmp_path / "sweep").rglob("*"))


def test_pruner_options_optuna_does_not_take_are_named_before_any_trial(tmp_path):
    with pytest.raises(UserError, match=r"pruner_options \(n_startup=1\) for .*=median: "):
        OptunaSearch(
            "maximize", "s", f"sqlite:///{tmp_path}/s.db", n_trials=3, n_jobs=1, sampler=None,
            params=None, pruner="median", pruner_options={"n_startup": 1},
        )  # fmt: skip
