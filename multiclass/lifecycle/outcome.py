"""How a run ended, as the command line reports it: a status, its exit code, and the summary.
Torch-free: the command line receives it from the process that trained."""

from dataclasses import dataclass
from typing import Any

EXIT_CODES = {"completed": 0, "failed": 1, "diverged": 2, "interrupted": 130}


@dataclass(frozen=True)
class Outcome:
    status: str
    summary: dict[str, Any]

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]
