"""multiclass-bench: the framework's training speed beside the loops people write by hand.

The command: its options, the order of the measurements, and the report's files (bench.md and
bench.json, or compile-run.md and .json, storage.md and .json, threads.md and .json);
`multiclass-bench worker ...` is the fresh process that runs one contestant
(multiclass.bench.contestants.measure starts it).
"""

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from multiclass.bench import compile_run, data_on_disk, threads
from multiclass.bench.contestants import installed_rivals, measure, worker
from multiclass.bench.machine import cnn_floor, machine
from multiclass.bench.processes import startup_seconds, sweep_overhead
from multiclass.bench.report import markdown, skipped_line, summarise
from multiclass.bench.workloads import Workload, prepare_data, workloads
from multiclass.device import openmp
from multiclass.records.artifacts import write_atomic, write_json


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement; `args.smoke` runs the contestants in this process and skips the
    compile, bf16 and fp16 variants and the whole-process timings: a check that it works."""
    run_one = worker if args.smoke else measure
    rivals, skipped = installed_rivals()
    if skipped:
        print(skipped_line(skipped)[2:], file=sys.stderr)
    with tempfile.TemporaryDirectory() as scratch:
        root, data = prepare_data(args.data_root, args.samples, Path(scratch))
        report: dict[str, Any] = {
            "machine": machine(),
            "repeats": args.repeats,
            "data": data,
            "smoke": args.smoke,
            "skipped": list(skipped),
            "workloads": {},
        }
        for workload in workloads(args.samples, args.cnn_steps, not args.smoke, rivals):
            if args.workloads is not None and workload.name not in args.workloads:
                continue
            runs: dict[str, list] = {c: [] for c in workload.contestants}
            for repeat in range(args.repeats):
                for contestant in workload.contestants:
                    runs[contestant].append(run_one(contestant, workload, root))
                    print(
                        f"{workload.name} {contestant} #{repeat + 1}: "
                        f"{runs[contestant][-1]['seconds']:.2f} s",
                        file=sys.stderr,
                    )
            report["workloads"][workload.name] = {
                "samples": workload.samples,
                "batch_size": workload.batch_size,
                "contestants": {c: summarise(r) for c, r in runs.items()},
            }
    report["cnn_floor"] = cnn_floor(256)
    if not (args.smoke or args.no_processes):
        report["startup"] = startup_seconds(args.repeats)
        report["sweep"] = sweep_overhead(repeats=args.repeats)
    return report


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        contestant, workload, root = argv[1], Workload(**json.loads(argv[2])), Path(argv[3])
        if contestant.startswith("framework"):  # as multiclass-train does, before torch loads
            openmp.set_wait_policy()
        print(json.dumps(worker(contestant, workload, root)))
        return
    parser = build_parser()
    args = parser.parse_args(argv)
    if min(args.repeats, args.samples, args.compile_epochs) < 1:
        parser.error("--repeats, --samples and --compile-epochs must be positive")
    if args.compile_run:
        write_report(
            compile_run.compile_run(args), compile_run.markdown, args.output, "compile-run"
        )
    elif args.threads:
        with tempfile.TemporaryDirectory() as scratch:
            root, _ = prepare_data(args.data_root, args.samples, Path(scratch))
            report = threads.thread_matrix(args, root)
        write_report(report, threads.markdown, args.output, "threads")
    elif args.storage:
        report = data_on_disk.storage_bench(args)
        write_report(report, data_on_disk.markdown, args.output, "storage")
    else:
        write_report(benchmark(args), markdown, args.output, "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="multiclass-bench", description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, help="a folder holding MNIST/raw")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=60_000, help="training images per epoch")
    parser.add_argument("--cnn-steps", type=int, default=20, help="CNN steps of 256 per epoch")
    parser.add_argument("--output", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--smoke", action="store_true", help="a quick check that it runs")
    parser.add_argument(
        "--workloads",
        nargs="*",
        help="only these of mlp-b32 mlp-b256 cnn-b256; with no names, only the process timings",
    )
    parser.add_argument(
        "--no-processes",
        action="store_true",
        help="skip the whole-process timings (start-up, sweep, the default run under load)",
    )
    parser.add_argument(
        "--compile-run",
        action="store_true",
        help="instead, time whole seed runs with device.compile=false and true",
    )
    parser.add_argument("--compile-epochs", type=int, default=20, help="epochs of --compile-run")
    parser.add_argument(
        "--storage",
        action="store_true",
        help="instead, dataset.storage=disk against memory: epoch times on MNIST, and peak"
        " memory on image folders of 5,000 and 50,000 images",
    )
    parser.add_argument(
        "--threads",
        action="store_true",
        help="instead, the framework (and the minimal loop) under every thread count and"
        " OpenMP wait policy, quiet and beside two busy loops a core",
    )
    parser.add_argument(
        "--timeout", type=float, default=60, help="--threads: seconds before a run is cut"
    )
    return parser


def write_report(
    report: dict[str, Any], to_markdown: Callable[[dict[str, Any]], str], output: Path, name: str
) -> None:
    """`name`.json and `name`.md in `output`; the Markdown also on the screen."""
    output.mkdir(parents=True, exist_ok=True)
    write_json(output / f"{name}.json", report)
    write_atomic(output / f"{name}.md", to_markdown(report))
    print(to_markdown(report))


if __name__ == "__main__":
    main()
