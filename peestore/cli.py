"""The ``peestore`` command line: one sub-command per function of the library."""
from __future__ import annotations

import argparse
import sys

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Optional

__all__ = ["main", "build_parser", "command", "arg"]

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


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL", default=None,
                        help="database URL (default: $PEESTORE_DATABASE_URL, "
                             "else sqlite:///peestore.db)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered sub-command."""
    from . import __version__, commands  # noqa: F401  (registers the sub-commands)

    parser = argparse.ArgumentParser(
        prog="peestore",
        description="peestore: audited storage, REST API and data tools for machine apps.")
    parser.add_argument("--version", action="version", version="peestore " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, fn) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if getattr(fn, "needs_db", True):
            _add_db(p)
        for args, kwargs in getattr(fn, "arguments", ()):
            p.add_argument(*args, **kwargs)
        p.set_defaults(run=fn)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; returns the exit status (1 on error, 2 on usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    import peewee

    from .errors import PeestoreError
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("peestore: interrupted", file=sys.stderr)
        return 1
    except (PeestoreError, peewee.PeeweeException, OSError, ValueError) as exc:
        print("peestore %s: error: %s" % (args.command, str(exc).splitlines()[0] if str(exc)
                                           else type(exc).__name__), file=sys.stderr)
        return 1
