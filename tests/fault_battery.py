"""The fault battery: kill a training run with SIGKILL at many moments (random times, the
first and the last epoch, and while last.pt or best.pt is being written), and check each
time that the run directory is readable, `multiclass-report` describes it, and
`multiclass-resume` ends with the weights of the uninterrupted run.

Not part of the suite (it takes a few minutes): `python tests/fault_battery.py [--kills 24]`.
It prints one line per kill and the count survived; exit status 1 if any was not."""

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# 180 single-sample steps an epoch (about 0.3 s): kills land inside epochs and writes.
EPOCHS = 4
RUN = ["dataset.limit=200", "trainer.batch_size=1", "model.dropout=0.2", f"trainer.epochs={EPOCHS}"]
RUN += ["model.width=1024"]  # 1M weights: a checkpoint write lasts long enough to land in
QUIET = ["trainer.progress=false"]
MOMENTS = ("random", "first epoch", "last epoch", "writing last.pt", "writing best.pt")


def multiclass(*args: str, cwd: Path, module: str = "multiclass") -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", module, *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


def epochs_done(run_dir: Path) -> int:
    try:
        return max(0, len((run_dir / "metrics.csv").read_text().splitlines()) - 1)
    except OSError:
        return 0


def writing(run_dir: Path, name: str) -> bool:
    """A temporary file of `name` exists: write_atomic is writing it now."""
    return any(run_dir.glob(f".{name}.*.tmp"))


def due(moment: str, run_dir: Path, after: tuple[int, float], since: float | None) -> bool:
    """Whether `moment` has come; `after`: (epochs, seconds) to wait first, `since`: when
    that many epochs were done."""
    if moment == "first epoch":
        return (run_dir / "summary.json").exists() and epochs_done(run_dir) == 0
    if moment == "last epoch":
        return epochs_done(run_dir) == EPOCHS - 1
    if since is None:
        return False
    if moment == "random":
        return time.monotonic() - since >= after[1]
    return writing(run_dir, moment.removeprefix("writing "))


def kill_at(moment: str, run_dir: Path, after: tuple[int, float]) -> bool:
    """Start a run and SIGKILL it at `moment`; False if the run ended first."""
    args = [*QUIET, *RUN, f"hydra.run.dir={run_dir}"]
    process = subprocess.Popen(
        [sys.executable, "-m", "multiclass", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    since = None
    while process.poll() is None:
        started = (run_dir / "summary.json").exists() and epochs_done(run_dir) >= after[0]
        if since is None and started:
            since = time.monotonic()
        if due(moment, run_dir, after, since):
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.0005)
    return False


def check(run_dir: Path, expected: str, cwd: Path) -> str | None:
    """None when the killed run is readable, reported and resumes to `expected`; else why."""
    summary = json.loads((run_dir / "summary.json").read_text())  # readable, never torn
    if summary["status"] != "running":
        return f"summary.json says {summary['status']}"
    report = multiclass(str(run_dir), "--out", str(cwd / "report"), cwd=cwd,
                        module="multiclass.commands.report")  # fmt: skip
    if report.returncode != 0 or "killed" not in report.stdout + report.stderr:
        return f"multiclass-report: {report.returncode} {report.stderr[-300:]}"
    resumed = multiclass(str(run_dir), cwd=cwd, module="multiclass.commands.resume")
    if resumed.returncode != 0:
        return f"multiclass-resume: {resumed.returncode} {resumed.stderr[-300:]}"
    got = json.loads((run_dir / "summary.json").read_text())["weights_sha256"]
    return None if got == expected else f"weights {got[:12]} != {expected[:12]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    chooser = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as scratch:
        cwd = Path(scratch)
        straight = multiclass(*QUIET, *RUN, "hydra.run.dir=straight", cwd=cwd)
        assert straight.returncode == 0, straight.stderr
        done = json.loads((cwd / "straight" / "summary.json").read_text())
        expected, epoch_seconds = done["weights_sha256"], done["train_time_s"] / EPOCHS
        survived = 0
        for kill in range(args.kills):
            moment = MOMENTS[kill % len(MOMENTS)]
            # after a random count of epochs, and a random share of the next epoch's time
            after = (chooser.randrange(EPOCHS), chooser.uniform(0, epoch_seconds))
            run_dir = cwd / f"kill{kill}"
            if not kill_at(moment, run_dir, after):
                print(f"{kill:2d} {moment}: the run ended before the kill; not counted")
                continue
            epochs = epochs_done(run_dir)
            problem = check(run_dir, expected, cwd)
            survived += problem is None
            when = f"{moment} ({after[1]:.2f} s into epoch {after[0] + 1})"
            when = when if moment == "random" else moment
            when += f", after {epochs} epoch(s)"
            verdict = "ok" if problem is None else f"FAILED: {problem}"
            print(f"{kill:2d} {when}: {verdict}")
            shutil.rmtree(run_dir)
        print(f"{survived} of {args.kills} kills survived")
        sys.exit(0 if survived == args.kills else 1)


if __name__ == "__main__":
    main()
