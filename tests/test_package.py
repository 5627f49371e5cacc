"""The installable package: the wheel `pip wheel .` builds (offline) carries every module and
config, and once installed runs from any folder on its own files, not the checkout's."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("multiclass", "hydra_plugins")
# What the build reads; copied, so that the build leaves no build/ in the checkout (nor ships
# a stale file from one).
BUILD_INPUTS = ("pyproject.toml", "README.md", "conf", *PACKAGES)


def pip(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", *args, "--no-deps", "--no-index", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = tmp_path_factory.mktemp("wheel")
    source = built / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(ROOT / name, source / name)
    pip("wheel", str(source), "--no-build-isolation", "--wheel-dir", str(built))
    (found,) = built.glob("*.whl")
    return found


@pytest.fixture(scope="module")
def site(wheel: Path) -> Path:
    """The wheel installed into a folder of its own, as `pip install` would into a venv."""
    target = wheel.parent / "site"
    pip("install", "--target", str(target), str(wheel))
    return target


def installed(site: Path, *command: str, cwd: Path) -> subprocess.CompletedProcess:
    """`command` run in `cwd` with the installed package first on the path."""
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONWARNINGS": "ignore"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_wheel_holds_every_module_and_config(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for n in PACKAGES for p in (ROOT / n).rglob("*.py")}
    configs = {f"multiclass/{p.relative_to(ROOT).as_posix()}" for p in ROOT.glob("conf/**/*.yaml")}
    assert "multiclass/conf/train.yaml" in configs and len(configs) > 40
    assert sorted(modules - names) == [] and sorted(configs - names) == []
    assert not [name for name in names if name.startswith(("conf/", "docs/", "tests/"))]


def test_the_installed_package_runs_from_any_folder(site, tmp_path):
    where = installed(
        site,
        sys.executable,
        "-c",
        "import importlib.metadata as m, multiclass, hydra_plugins.multiclass_search as s;"
        "from multiclass.config import CONFIG_DIR;"
        "from hydra.core.plugins import Plugins; from hydra.plugins.sweeper import Sweeper;"
        "[e.load() for e in m.distribution('multiclass').entry_points];"  # every console script
        "print(multiclass.__file__, s.__file__, CONFIG_DIR,"
        " *sorted(p.__name__ for p in Plugins.instance().discover(Sweeper)))",
        cwd=tmp_path,
    )
    assert where.returncode == 0, where.stderr
    assert where.stdout.split() == [
        str(site / "multiclass" / "__init__.py"),  # not the checkout's, nor an editable install's
        str(site / "hydra_plugins" / "multiclass_search" / "__init__.py"),
        str(site / "multiclass" / "conf"),
        "BasicSweeper",
        "OptunaSearchSweeper",  # Hydra finds our sweeper plugin in the installed namespace
    ]

    train = str(site / "bin" / "multiclass-train")
    tiny = ("trainer.epochs=1", "dataset.limit=90", "plots=false", "device=cpu")
    tiny += ("hydra.run.dir=run",)
    done = installed(site, train, *tiny, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "completed"

    helped = installed(site, train, "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "model: cnn, linear, mlp" in helped.stdout and "seed000_blobs" in helped.stdout
