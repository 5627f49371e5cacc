"""multiclass-reproduce: rerun the seeds' experiments (conf/experiment/*.yaml) on the data here,
over several seeds, and tabulate each seed's reported figure beside the one measured.

Each experiment's `reproduces` node names its figures (`train_acc`, `test_loss`, ... as in
summary.json); an experiment whose data cannot be had here gets "not run here" instead.
"""

import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from multiclass.commands.exits import command_parser
from multiclass.config import CONFIG_DIR, compose_config
from multiclass.errors import one_line


def experiment_names() -> list[str]:
    """The experiments with a `reproduces` node: the others (seed000_vanishing, a sweep to
    look at) have no figure to check."""
    paths = (CONFIG_DIR / "experiment").glob("*.yaml")
    return sorted(path.stem for path in paths if OmegaConf.load(path).get("reproduces"))


def data_options(cfg: DictConfig, data_root: Path) -> dict[str, Any]:
    """Where an experiment's data set reads files: from `data_root`, offline."""
    return {"root": str(data_root.resolve()), "download": False} if "root" in cfg.dataset else {}


def as_overrides(options: dict[str, Any]) -> list[str]:
    return [f"dataset.{key}={value}" for key, value in options.items()]


def missing_data(cfg: DictConfig, options: dict[str, Any]) -> str | None:
    """Why the experiment's data cannot be loaded here, or None when it can."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        instantiate(cfg.dataset, **options)
    except InstantiationException as error:
        return one_line(error).split(":")[0]
    return None


def run_experiment(name: str, seeds: list[int], overrides: list[str], sweep_dir: Path) -> None:
    """One Hydra sweep over the seeds; its jobs land in sweep_dir/0, 1, ..."""
    shutil.rmtree(sweep_dir, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "multiclass",
        "-m",
        f"experiment={name}",
        f"seed={','.join(str(s) for s in seeds)}",
        f"hydra.sweep.dir={sweep_dir}",
        "trainer.progress=false",
        *overrides,
    ]
    subprocess.run(command, check=False)


def collect(sweep_dir: Path, figures: list[str]) -> dict[str, Any]:
    """The `figures` of every completed job in a sweep, each with its mean and range."""
    summaries = [json.loads(path.read_text()) for path in sorted(sweep_dir.glob("*/summary.json"))]
    completed = [s for s in summaries if s["status"] == "completed"]
    measured = {}
    for metric in figures:
        values = [s[metric] for s in completed]
        if values:
            measured[metric] = {
                "mean": statistics.fmean(values),
                "min": min(values),
                "max": max(values),
                "values": values,
            }
    return {"seeds": sorted(s["seed"] for s in completed), "measured": measured}


def describe(result: dict[str, Any]) -> str:
    parts = []
    for metric, m in result["measured"].items():
        parts.append(f"{metric} {m['mean']:.4f} ({m['min']:.4f}-{m['max']:.4f})")
    return "; ".join(parts)


def markdown(results: dict[str, dict[str, Any]], data_root: Path) -> str:
    lines = [
        "| experiment | seed | the seed's figure | measured here: mean (min-max) | seeds "
        "| command |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, result in results.items():
        command = f"`multiclass-train experiment={name}"
        if result.get("data_overrides"):
            command += f" dataset.root={data_root} dataset.download=false"
        command += "`"
        measured = result.get("not_run") or describe(result) or "no completed run"
        seeds = ",".join(str(s) for s in result.get("seeds", [])) or "-"
        lines.append(
            f"| `{name}` | {result['seed']} | {result['reported']} | {measured} | {seeds} "
            f"| {command} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = command_parser("multiclass-reproduce", __doc__)
    parser.add_argument(
        "--data-root",
        type=Path,
        default=Path("data"),
        help="the folder holding MNIST/raw and FashionMNIST/raw",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="+", help="these experiments only")
    parser.add_argument("--output", type=Path, default=Path("outputs/reproduce"))
    parser.add_argument("--no-run", action="store_true", help="tabulate the runs already there")
    args = parser.parse_args(argv)

    results: dict[str, dict[str, Any]] = {}
    for name in args.only or experiment_names():
        cfg = compose_config(f"experiment={name}")
        expected, options = cfg.reproduces, data_options(cfg, args.data_root)
        overrides = as_overrides(options)
        result: dict[str, Any] = {
            "seed": expected.seed,
            "reported": expected.reported,
            "data_overrides": bool(overrides),
        }
        missing = missing_data(cfg, options)
        if missing:
            result["not_run"] = f"not run here: no data offline ({missing})"
        else:
            if not args.no_run:
                run_experiment(name, args.seeds, overrides, args.output / name)
            result.update(collect(args.output / name, list(expected.figures)))
        results[name] = result
    args.output.mkdir(parents=True, exist_ok=True)
    table = markdown(results, args.data_root)
    (args.output / "results.md").write_text(table)
    (args.output / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table)


if __name__ == "__main__":
    main()
