"""bench.md: the measurements as a table, then the other frameworks beside ours, the CNN's floor
and the whole-process times. Text only; the command writes it."""

import statistics
from typing import Any

from multiclass.bench.contestants import RIVALS_INSTALL
from multiclass.bench.processes import FLOOR_SCRIPT


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = statistics.median(run["seconds"] for run in runs)
    accuracies = [run["test_acc"] for run in runs if run["test_acc"] is not None]
    summary = {
        "seconds": seconds,
        "all_seconds": [run["seconds"] for run in runs],
        "peak_rss_mb": statistics.median(run["peak_rss_mb"] for run in runs),
        "test_acc": statistics.median(accuracies) if accuracies else None,
        "settings": runs[0].get("settings", "-"),  # the threads and variables it ran with
    }
    if "fit_seconds" in runs[0]:  # other frameworks' whole fit call, set-up included
        summary["fit_seconds"] = statistics.median(run["fit_seconds"] for run in runs)
    return summary


RIVAL_NAMES = {"lightning": ("Lightning", "`trainer.fit`"), "fastai": ("fastai", "`learn.fit`")}


def rivals_line(name: str, result: dict[str, Any]) -> str | None:
    """framework / each other framework's epoch time, and their whole fit calls' time."""
    contestants = result["contestants"]
    present = [rival for rival in RIVAL_NAMES if rival in contestants]
    if not present:
        return None
    framework = contestants["framework"]["seconds"]
    ratios = ", ".join(
        f"framework / {RIVAL_NAMES[r][0]} = {framework / contestants[r]['seconds']:.2f}"
        for r in present
    )
    fits = ", ".join(f"{RIVAL_NAMES[r][1]} {contestants[r]['fit_seconds']:.2f} s" for r in present)
    return f"- {name}: {ratios} (target <= 0.5); whole fit call, set-up included: {fits}."


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: the table, then the CNN's floor and the whole-process times."""
    lines = [
        f"Machine: {report['machine']}; {report['repeats']} repeats, medians; "
        f"data: {report['data']}. Each contestant in a fresh process, in the environment the"
        " bench started with; the peers at torch's defaults, the framework at its own.",
        "",
        "| workload | contestant | s / epoch | spread (s) | samples / s | peak RSS MB | test acc "
        "| framework / this | ran with |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, result in report["workloads"].items():
        framework = result["contestants"]["framework"]["seconds"]
        for contestant, row in result["contestants"].items():
            accuracy = "-" if row["test_acc"] is None else f"{row['test_acc']:.4f}"
            spread = f"{min(row['all_seconds']):.2f}-{max(row['all_seconds']):.2f}"
            lines.append(
                f"| {name} | {contestant} | {row['seconds']:.2f} | {spread} | "
                f"{result['samples'] / row['seconds']:,.0f} | {row['peak_rss_mb']:,.0f} | "
                f"{accuracy} | {framework / row['seconds']:.2f} | {row['settings']} |"
            )
    lines.append("")
    for name, result in report["workloads"].items():
        line = rivals_line(name, result)
        if line:
            lines.append(line)
    if report.get("skipped"):
        lines.append(skipped_line(report["skipped"]))
    floor, cnn = report["cnn_floor"], report["workloads"].get("cnn-b256")
    if cnn:
        reached = cnn["samples"] / cnn["contestants"]["framework"]["seconds"]
        lines.append(
            f"- CNN: {floor['flops_per_sample'] / 1e6:.1f} MFLOP per training sample (torch's "
            f"FlopCounterMode), matrix multiply {floor['matmul_gflops']:.1f} GFLOP/s here: floor "
            f"{floor['floor_samples_per_s']:,.0f} samples/s; the framework reaches {reached:,.0f}"
            f" ({reached / floor['floor_samples_per_s']:.0%} of it)."
        )
    if "startup" in report:
        startup, sweep = report["startup"], report["sweep"]
        lines += [
            f"- `multiclass-train trainer.epochs=1` (default data set), whole process: "
            f'{startup["framework_s"]:.2f} s; the floor, `python -c "{FLOOR_SCRIPT}"`: '
            f"{startup['torch_floor_s']:.2f} s; ours, the difference (median of pairs): "
            f"{startup['ours_s']:.2f} s (budget <= 2.0 s).",
            f"- 8-job sweep of tiny runs (medians of the rounds), (wall - training) / 8: "
            f"{sweep['plots_true_s']:.2f} s "
            f"per job with plots, {sweep['plots_false_s']:.2f} s with `plots=false` (walls "
            f"{sweep['plots_true_wall_s']:.1f} s and {sweep['plots_false_wall_s']:.1f} s); each "
            f"job past the first: {sweep['plots_true_marginal_s']:.2f} s with plots (budget <= "
            f"1.0 s), {sweep['plots_false_marginal_s']:.2f} s without.",
        ]
    if report["smoke"]:
        lines.insert(0, "Smoke run: contestants in one process, not a measurement.")
    return "\n".join(lines) + "\n"


def skipped_line(skipped: tuple[str, ...] | list[str]) -> str:
    return f"- Skipped {', '.join(skipped)}: not installed ({RIVALS_INSTALL})."
