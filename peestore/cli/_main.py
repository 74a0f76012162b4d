"""The ``peestore`` command line: one sub-command per function of the library."""
from __future__ import annotations

import argparse
import math
import sys

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, NoReturn, Optional

__all__ = ["main", "build_parser", "COMMAND_MODULES", "command", "arg", "int_range",
           "float_range", "MAX_INT64", "PORT", "THREADS", "UsageError", "printable",
           "printable_json"]

#: The largest whole number the databases store (a signed 64-bit integer).
MAX_INT64 = 2 ** 63 - 1

# name -> (help, add_arguments(parser), run(args) -> exit status)
COMMANDS: Dict[str, tuple] = {}


def command(name: str, help: str) -> Callable:
    """Register ``run(args)`` as sub-command ``name``; its ``arguments`` attribute adds options."""
    def decorator(fn: Callable) -> Callable:
        COMMANDS[name] = (help, fn)
        return fn
    return decorator


def arg(*args, **kwargs) -> Callable:
    """Add one ``argparse`` option to a sub-command (decorator, stacks)."""
    def decorator(fn: Callable) -> Callable:
        fn.arguments = [(args, kwargs)] + list(getattr(fn, "arguments", []))
        return fn
    return decorator


def int_range(low: int, high: int) -> Callable[[str], int]:
    """An ``argparse`` type: a whole number from ``low`` to ``high``, else a usage error."""
    def whole_number(text: str) -> int:
        # A number longer than any allowed one is refused before int() reads it
        # (int() of a long digit string is quadratic on older Pythons).
        if len(text.strip()) > len(str(high)) + 2:
            raise argparse.ArgumentTypeError(
                "must be a whole number from %d to %d" % (low, high))
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError("not a whole number: %r" % text) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                "must be a whole number from %d to %d, got %d" % (low, high, value))
        return value
    return whole_number


def float_range(low: float, high: float) -> Callable[[str], float]:
    """An ``argparse`` type: a finite number from ``low`` to ``high``, else a usage error."""
    def number(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError("not a number: %r" % text) from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(
                "must be a number from %g to %g, got %s" % (low, high, text.strip()))
        return value
    return number


class UsageError(Exception):
    """An argument that parses but cannot be used (a ``--db`` URL with a host on
    SQLite, an empty ``--actor``): reported like argparse's own, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse's parser, with usage errors on one line (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, "%s: error: %s (see %s --help)\n" % (self.prog, message, self.prog))


#: ``--port``: a TCP port; 0 asks for any free one (the start line names it).
PORT = int_range(0, 65535)
#: ``--threads``: a sanity bound, not a tuning limit: each waitress worker is a
#: thread with its own stack and database connection, and a controller that
#: needs more than 1000 of them needs a different design, not a bigger number.
THREADS = int_range(1, 1000)


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL", default=None,
                        help="database URL (default: $PEESTORE_DATABASE_URL, "
                             "else sqlite:///peestore.db)")


#: Each sub-command's module: running one imports only its own (a server started
#: with ``peestore serve`` or ``demo`` does not hold the code of the data tools).
COMMAND_MODULES = {"audit": "_audit", "backup": "_data", "restore": "_data",
                   "export": "_data", "import": "_data", "diagram": "_data",
                   "demo": "_demo", "prune-audit": "_prune", "publish": "_publish",
                   "serve": "_serve"}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered sub-command."""
    return _parser(None)


def _parser(only: Optional[str]) -> argparse.ArgumentParser:
    """The argument parser with every sub-command, or with ``only`` that one."""
    import importlib

    from .. import __version__
    # Importing a command's module registers it.
    for module in sorted(set(COMMAND_MODULES.values()) if only is None
                         else {COMMAND_MODULES[only]}):
        importlib.import_module("." + module, __package__)

    parser = _Parser(
        prog="peestore",
        description="peestore: audited storage, REST API and data tools for machine apps.")
    parser.add_argument("--version", action="version", version="peestore " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, fn) in COMMANDS.items():
        if only is not None and name != only:
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        if getattr(fn, "needs_db", True):
            _add_db(p)
        for args, kwargs in getattr(fn, "arguments", ()):
            p.add_argument(*args, **kwargs)
        p.set_defaults(run=fn)
    return parser


def _escape(char: str) -> str:
    code = ord(char)
    return "\\x%02x" % code if code < 0x100 else "\\u%04x" % code if code < 0x10000 \
        else "\\U%08x" % code


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return "\\u%04x" % code
    code -= 0x10000
    return "\\u%04x\\u%04x" % (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))


# What is not printable ASCII: only these characters need their category looked up.
_NOT_ASCII = None


def _escaped(text: str, keep: str, escape: Callable[[str], str]) -> str:
    global _NOT_ASCII
    import re
    import unicodedata

    if _NOT_ASCII is None:
        _NOT_ASCII = re.compile("[^\x20-\x7e]")

    def one(match: Any) -> str:
        char = match.group()
        if char in keep or unicodedata.category(char) not in ("Cc", "Cf"):
            return char
        return escape(char)
    return _NOT_ASCII.sub(one, text)


def printable(text: str, keep: str = "") -> str:
    """``text`` with every control or format character (Unicode categories Cc and Cf)
    but those in ``keep`` written as its escape (``\\x1b``, ``\\u202e``): stored
    data printed on a terminal cannot move the cursor, recolour or reorder what
    it shows."""
    if text.isprintable():  # the common case: nothing to escape (spaces included)
        return text
    return _escaped(text, keep, _escape)


def printable_json(text: str) -> str:
    """JSON text with its control and format characters as ``\\uXXXX`` escapes: the
    same JSON, safe on a terminal."""
    return _escaped(text, "\n", _json_escape)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return printable(text.splitlines()[0] if text else type(exc).__name__)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; returns the exit status (1 on error, 2 on usage error).

    Every error is one line on stderr, never a traceback.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser(argv[0] if argv and argv[0] in COMMAND_MODULES else None)
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    import peewee

    from ..errors import PeestoreError
    prefix = "peestore %s: error: " % args.command
    try:
        return int(args.run(args) or 0)
    except UsageError as exc:
        print("%s%s (see peestore %s --help)" % (prefix, _first_line(exc), args.command),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("peestore: interrupted", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (``peestore audit | head``): nothing to report, and
        # stdout must not be flushed again into the closed pipe at exit.
        import os

        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is not a file (tests capture it)
            pass
        return 1
    except (PeestoreError, peewee.PeeweeException, OSError, ValueError) as exc:
        print(prefix + _first_line(exc), file=sys.stderr)
        return 1
    except Exception as exc:  # anything else is peestore's bug: still one line
        print(prefix + "unexpected %s: %s (this is a bug in peestore; please report it "
              "with the command you ran)" % (type(exc).__name__, _first_line(exc)),
              file=sys.stderr)
        return 1
