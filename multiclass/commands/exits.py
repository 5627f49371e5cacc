"""What the commands share: bad input is one line on stderr and
exit status 1, never a traceback."""

import sys
from collections.abc import Callable
from typing import TypeVar

from multiclass.errors import UserError

Args = TypeVar("Args")


def exit_on_error(action: Callable[[Args], object], args: Args) -> None:
    try:
        action(args)
    except (UserError, OSError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        sys.exit(1)
