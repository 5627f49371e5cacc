"""What the commands share: a --help that shows the whole docstring, and bad input as one line
on stderr and exit status 1, never a traceback."""

import argparse
import sys
from collections.abc import Callable
from typing import TypeVar

from multiclass.errors import UserError

Args = TypeVar("Args")
Result = TypeVar("Result")


def command_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """A command's parser whose --help shows its docstring whole, paragraphs as written: the
    first line alone stops mid-sentence, and argparse's own wrapping would merge paragraphs."""
    return argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def exit_on_error(action: Callable[[Args], Result], args: Args) -> Result:
    """`action(args)`'s result; bad input (a UserError, a file the system refused) is one
    line and exit status 1."""
    try:
        return action(args)
    except (UserError, OSError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        sys.exit(1)
