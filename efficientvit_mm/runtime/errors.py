"""How the tools report problems a user can fix: one short message, no
traceback, a non-zero exit status."""
import sys
from typing import Callable

from ..errors import UserError


def print_user_error(prog: str, err: BaseException) -> None:
    """``<prog>: error: <message>`` on stderr."""
    print(f'{prog}: error: {err}', file=sys.stderr)


def exit_on_user_error(prog: str, main: Callable, *args) -> None:
    """Run ``main(*args)`` as a command and exit: with its status when it
    returns an int, 0 for any other result, 1 after a :class:`UserError`
    (printed in one line)."""
    try:
        result = main(*args)
    except UserError as err:
        print_user_error(prog, err)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)
