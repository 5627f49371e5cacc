"""`make gpu-check`: where a CUDA GPU exists, the bench's workloads on it in fp32, bf16, fp16
and compiled, and whether two deterministic runs give the same weights; where none exists, one
line saying so, and exit status 0. Our own machines have no GPU: what this prints on one has
not been seen by us (docs/performance.md says what has been measured where)."""

import argparse
import sys
import tempfile
from pathlib import Path

from multiclass.bench.contestants import run_framework
from multiclass.bench.workloads import prepare_data, workloads

VARIANTS = ("framework", "framework+bf16", "framework+fp16", "framework+compile")
HEADER = "| workload | variant | s / epoch | test acc |\n| --- | --- | ---: | ---: |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu-check", description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, help="a folder holding MNIST/raw")
    parser.add_argument("--samples", type=int, default=60_000, help="training images per epoch")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("gpu-check: no CUDA GPU here (torch.cuda.is_available() is False): nothing to check")
        return 0
    print(f"gpu-check on {torch.cuda.get_device_name()}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as scratch:
        root, data = prepare_data(args.data_root, args.samples, Path(scratch))
        print(f"data: {data}\n\n{HEADER}")
        chosen = workloads(args.samples, cnn_steps=20, variants=False)
        for workload in chosen:
            for variant in VARIANTS:
                result = run_framework(workload, root, variant, device="cuda")
                accuracy = "-" if result["test_acc"] is None else f"{result['test_acc']:.4f}"
                print(f"| {workload.name} | {variant} | {result['seconds']:.3f} | {accuracy} |")
        return check_determinism(chosen[1], root)  # mlp-b256


def check_determinism(workload, root: Path) -> int:
    """Two fp32 runs of one workload with device.deterministic=true (the default): exit status
    1 when their weights differ."""
    first, second = (run_framework(workload, root, "framework", "cuda") for _ in range(2))
    same = first["weights_sha256"] == second["weights_sha256"]
    print(f"\n{workload.name} twice, deterministic: weights {'identical' if same else 'DIFFER'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
