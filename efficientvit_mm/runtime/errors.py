"""How the tools report problems a user can fix: a short message (a line
or two; lists of missing files are the longest, and :data:`MAX_LINES` is
the most ever printed), no traceback, a non-zero exit status.

The one engine for it. :func:`as_user_error` recognises, besides
:class:`~efficientvit_mm.errors.UserError` itself, the errors of the
toolboxes that mean a fixable problem: a model argument that does not
exist (``backbon=``), a ``type=`` that is not registered, a bad argument
value found while the model is built, a full disk, a collective operation
of a distributed job that timed out. ``--debug`` (or ``EVIT_DEBUG=1`` in the
environment) prints the traceback too.
"""
import os
import re
import sys
import traceback
from typing import Callable, Optional

from ..errors import PreflightError, UserError

DEBUG_ENV = 'EVIT_DEBUG'
MAX_LINES = 20
INTERRUPTED = 130  # the exit status of a command stopped by Ctrl-C

# mmengine's registry prefixes the errors of a build with the class
_BUILT_CLASS = re.compile(r'class `(\w+)` in [\w/.\-]+\.py: ')
_UNKNOWN_ARG = re.compile(
    r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'")
# mmpretrain's Swin (WindowMSA) on a map smaller than its window
_SMALL_MAP = re.compile(r'input shape \((\d+), (\d+)\) is smaller than the '
                        r'window size \((\d+)\)')
_NOT_REGISTERED = re.compile(r"'?(\w+) is not in the (\S+) registry")


def enable_debug() -> None:
    """Show tracebacks, in this process and the ones it starts."""
    os.environ[DEBUG_ENV] = '1'


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, '') not in ('', '0')


def message_of(err: BaseException) -> str:
    """The text of ``err`` without the wrapping that hides it: the
    registry's 'class `X` in file.py: ' prefixes (the innermost class is
    kept) and a DataLoader worker's copy of the original traceback."""
    text = str(err)
    if '\nOriginal Traceback' in text:  # re-raised from a worker process
        cls = type(err)
        for name in (f'{cls.__module__}.{cls.__qualname__}: ',
                     f'{cls.__qualname__}: '):
            if name in text:
                text = text.rsplit(name, 1)[1]
                break
    classes = _BUILT_CLASS.findall(text)
    if classes:
        text = f'{classes[-1]}: ' + _BUILT_CLASS.sub('', text)
    return text.strip()


def _arguments_of(name: str) -> list:
    import inspect

    from .config import registered_class
    cls = registered_class(name)
    if cls is None:
        return []
    names = []
    for klass in getattr(cls, '__mro__', [cls]):
        init = getattr(klass, '__init__', None)
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            continue
        names += [
            p.name for p in params
            if p.name != 'self' and p.kind in (p.POSITIONAL_OR_KEYWORD,
                                               p.KEYWORD_ONLY)
        ]
    return names


def _unknown_argument(text: str) -> Optional[UserError]:
    from .spelling import nearest
    found = _UNKNOWN_ARG.search(text)
    if not found:
        return None
    cls, arg = found.groups()
    guess = nearest(arg, _arguments_of(cls), max_distance=3)
    hint = f"; did you mean '{guess}'?" if guess else \
        ': remove it or check the spelling'
    return PreflightError(
        f"the config gives {cls} an argument '{arg}' it does not take{hint}")


def _unregistered_type(text: str) -> Optional[UserError]:
    from .spelling import nearest
    found = _NOT_REGISTERED.search(text)
    if not found:
        return None
    name, where = found.groups()
    scope, _, kind = where.partition('::')
    from .config import registries
    known = [
        key for reg in registries() if reg.name == kind
        for key in reg.module_dict
    ]
    guess = nearest(name, known, max_distance=3)
    hint = f"; did you mean type='{guess}'?" if guess else \
        ' (is the module that registers it imported? custom_imports)'
    return PreflightError(
        f"type='{name}' is not a registered {kind or where} name{hint}")


def build_error(err: BaseException) -> Optional[UserError]:
    """The user error an exception raised while building the Runner, the
    model or the datasets from a config means, or None for a bug."""
    text = str(err)
    if isinstance(err, TypeError):
        return _unknown_argument(text)
    if isinstance(err, KeyError):
        return _unregistered_type(text)
    if isinstance(err, ValueError) and _BUILT_CLASS.search(text):
        return PreflightError(message_of(err))
    return None


def as_user_error(err: BaseException) -> Optional[UserError]:
    """``err`` as a problem the user can fix, or None (a bug: traceback)."""
    if isinstance(err, UserError):
        return err
    from ..checkpoint.io import DISK_FULL, write_fix
    if isinstance(err, OSError) and err.errno in DISK_FULL:
        fix = write_fix(err)
        return UserError(
            f'could not write {err.filename}: {fix}' if err.filename else fix)
    if isinstance(err, RuntimeError):
        from .dist import explain_collective_failure
        return explain_collective_failure(err)
    if isinstance(err, AssertionError):
        found = _SMALL_MAP.search(str(err))
        if found:
            h, w, win = found.groups()
            return UserError(
                f"a {h}x{w} stage map is smaller than Swin's {win}x{win} "
                'window: pad it (--cfg-options model.backbone.'
                'pad_small_map=True) or give a larger --shape')
    return None


def clip_lines(text: str, limit: int = MAX_LINES) -> str:
    lines = text.splitlines() or ['']
    if len(lines) <= limit:
        return text
    return '\n'.join(lines[:limit - 1] +
                     [f'... ({len(lines) - limit + 1} '
                      'more lines)'])


def print_warning(prog: str, message: str) -> None:
    """``<prog>: warning: <message>`` on stderr."""
    print(f'{prog}: warning: {message}', file=sys.stderr, flush=True)


def print_user_error(prog: str, err: BaseException) -> None:
    """``<prog>: error: <message>`` on stderr, at most MAX_LINES lines."""
    print(clip_lines(f'{prog}: error: {message_of(err)}'), file=sys.stderr)


def report(prog: str, err: BaseException,
           on_interrupt: Optional[Callable[[], str]] = None) -> int:
    """Print ``err`` as a short message and return the exit status, or
    re-raise it when it is a bug (its traceback is what helps)."""
    if isinstance(err, KeyboardInterrupt):
        hint = on_interrupt() if on_interrupt else ''
        print(
            clip_lines(f'{prog}: interrupted (Ctrl-C). {hint}'.rstrip()),
            file=sys.stderr)
        return INTERRUPTED
    user = as_user_error(err) if isinstance(err, Exception) else None
    if user is None:
        raise err
    if debug_enabled():
        traceback.print_exception(type(err), err, err.__traceback__)
    print_user_error(prog, user)
    return 1


def exit_on_user_error(prog: str, main: Callable, *args) -> None:
    """Run ``main(*args)`` as a command and exit: with its status when it
    returns an int, 0 for any other result, 1 after a problem the user can
    fix (printed in a few lines), 130 after Ctrl-C."""
    try:
        result = main(*args)
    except (Exception, KeyboardInterrupt) as err:
        sys.exit(report(prog, err))
    sys.exit(result if isinstance(result, int) else 0)
