"""Hyperparameter search (hydra/sweeper=optuna_search): Hydra's sweep syntax as optuna
distributions, the study's bookkeeping in-process, and a search continued across commands."""

import json
import logging
import math
from types import SimpleNamespace

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from multiclass.commands.train import SweepReport
from multiclass.config import CONFIG_DIR
from multiclass.datasets.synthetic import write_idx_dataset
from tests.conftest import run_cli

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


def searcher(storage, direction="maximize", sampler=None):
    return OptunaSearch(direction, "s", storage, n_trials=3, n_jobs=1, sampler=sampler, params=None)


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
    Hydra's HYDRA_FULL_ERROR hint; refused before any trial, the sweep's folder stays empty."""
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


def test_trials_a_killed_command_left_running_are_failed_and_not_counted(tmp_path):
    storage = f"sqlite:///{tmp_path}/new/folder/study.db"
    killed = searcher(storage).start()  # creates the folder and the study
    killed.tell(killed.ask(), 0.5)
    killed.ask()  # the command dies here: trial 1 stays RUNNING

    study = searcher(storage).start()
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
SEARCH += ["trainer.epochs=1", "plots=false", "trainer.progress=false"]


@pytest.fixture
def sweep_dir(tmp_path):
    """Where the shipped MNIST search keeps its study and trials, run in tmp_path on tiny
    synthetic MNIST."""
    write_idx_dataset(tmp_path / "data" / "MNIST" / "raw", num_train=200, num_test=40)
    return tmp_path / "outputs" / "search" / "mnist_mlp"


def search(sweep_dir, *overrides):
    """Run the search; returns its log and the study it left."""
    result = run_cli(*SEARCH, *overrides, cwd=sweep_dir.parents[2])
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "study mnist_mlp: " in result.stderr, result.stderr  # it got to the end
    storage = f"sqlite:///{sweep_dir}/study.db"
    return result.stderr, optuna.load_study(study_name="mnist_mlp", storage=storage)


def job_dirs(sweep_dir):
    return sorted(int(path.name) for path in sweep_dir.iterdir() if path.is_dir())


def test_the_same_command_continues_the_study_and_failed_trials_do_not_stop_it(sweep_dir):
    _, study = search(sweep_dir, "hydra.sweeper.n_trials=3")
    assert [trial.number for trial in study.trials] == job_dirs(sweep_dir) == [0, 1, 2]
    assert {trial.state for trial in study.trials} == {TrialState.COMPLETE}
    first = {n: (sweep_dir / str(n) / "summary.json").read_text() for n in range(3)}
    # optuna runs enqueued params first: trial 3's run fails with a one-line error and trial
    # 4's diverges (Adam at lr 1e30); the app returns None for each, and the search goes on
    # to trial 5.
    study.enqueue_trial({"model.dropout": 1.5})
    study.enqueue_trial({"optimizer.lr": 1e30})

    log, study = search(sweep_dir, "hydra.sweeper.n_trials=6")
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
