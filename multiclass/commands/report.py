"""multiclass-report: placeholder until the sweep report lands (this commit's work in progress)."""


def main() -> None:
    raise SystemExit("multiclass-report: not built yet")
