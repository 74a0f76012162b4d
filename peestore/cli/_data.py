"""``peestore backup / restore / export / import / diagram``: the data tools."""
from __future__ import annotations

import argparse
import os
import sys

import peewee

from ._main import arg, command
from ..db._dialect import dialect_of
from ..errors import PeestoreError

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable


class _Progress:
    """One self-overwriting status line on stderr, only when stderr is a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.shown = False
        self.enabled = bool(getattr(sys.stderr, "isatty", lambda: False)())

    def show(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\r{self.label}: {text}\x1b[K")
            sys.stderr.flush()
            self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _connect(args: argparse.Namespace) -> peewee.Database:
    """The database of ``--db``, which must exist; every data command opens it here.

    A SQLite file that is not there is refused (naming it) rather than created
    empty, so a mistyped ``--db`` cannot export, restore or prune an empty
    database and report success.  An output folder (``OUT``, ``-o``) that does
    not exist is refused too, by its name, before anything is written.
    """
    import peestore

    db = peestore.connect(args.db, create_tables=False)  # opens no connection yet
    if dialect_of(db).has_file:
        path = str(db.database or "")
        if path and path != ":memory:" and not path.startswith("file:") \
                and not os.path.isfile(path):
            source = "from --db" if args.db else (
                "from $PEESTORE_DATABASE_URL" if os.environ.get("PEESTORE_DATABASE_URL")
                else "the default")
            raise PeestoreError(f"no database at {os.path.abspath(path)} ({source}); "
                                f"name an existing one with --db URL")
    out = getattr(args, "out", None) or getattr(args, "output", None)
    if out:
        folder = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(folder):
            raise PeestoreError(f"no folder {folder} to write {out} into; create it first")
    return db


def _database_errors(fn: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """Report a database error as one line (exit status 1), like peestore's own errors."""
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except peewee.PeeweeException as exc:
            raise PeestoreError(f"database error: {exc}") from None
    run.__doc__ = fn.__doc__
    return run


@command("backup", "copy the SQLite database to a file while it stays in use")
@arg("out", metavar="OUT.sqlite", help="the backup file to write")
@_database_errors
def run_backup(args: argparse.Namespace) -> int:
    from ..tools._backup import backup

    _connect(args)
    progress = _Progress("backup")

    def step(remaining: int, total: int) -> None:
        done = total - remaining
        progress.show(f"{100 * done // max(total, 1)}% ({done}/{total} pages)")

    path = backup(args.out, progress=step)
    progress.done()
    print(f"backed up to {path} ({os.path.getsize(str(path))} bytes)")
    return 0


@command("restore", "replace the SQLite database with a backup file, after checking it")
@arg("src", metavar="IN.sqlite", help="the backup file to restore")
@arg("--dry-run", action="store_true", help="only check the file; change nothing")
@arg("--no-integrity-check", action="store_true",
     help="trust the file's contents: skip PRAGMA integrity_check and the checks of its "
          "rows (the schema is checked all the same)")
@_database_errors
def run_restore(args: argparse.Namespace) -> int:
    from ..audit._actor import actor
    from ..tools._restore import restore

    db = _connect(args)
    with actor("cli"):  # the restore's own audit entry
        result = restore(args.src, integrity_check=not args.no_integrity_check,
                         dry_run=args.dry_run)
    if result["restored"]:
        kept = os.path.abspath(str(db.database)) + ".pre-restore"
        print(f"restored {args.src} ({result['bytes']} bytes); the previous database is "
              f"kept as {kept}")
    else:
        print(f"dry run: {args.src} is a valid backup ({result['bytes']} bytes); "
              f"nothing changed")
    return 0


def _rows_progress(label: str) -> Any:
    progress = _Progress(label)

    def step(table: str, rows: int) -> None:
        progress.show(f"{table}: {rows} rows")
    step.done = progress.done  # type: ignore[attr-defined]
    return step


_APP_HELP = ("MODULE[:ATTR] of the app whose models apply (their component names%s); "
             "the module is imported first")


def _app_models(args: argparse.Namespace) -> Any:
    if not args.app:
        return None
    from ._appmodels import app_models

    return app_models(args.app)


@command("export", "write every table to a zip of CSV files")
@arg("out", metavar="OUT.zip", help="the zip file to write")
@arg("--table", action="append", metavar="TABLE", dest="tables",
     help="export only this table, by table or component name (repeatable; default: "
          "every table)")
@arg("--app", metavar="MODULE[:ATTR]", help=_APP_HELP % "")
@_database_errors
def run_export(args: argparse.Namespace) -> int:
    from ..tools._export import write_export

    models = _app_models(args)
    _connect(args)
    step = _rows_progress("export")
    path = write_export(args.out, tables=args.tables, progress=step, models=models)
    step.done()
    print(f"exported to {path} ({os.path.getsize(str(path))} bytes)")
    return 0


@command("import", "load a zip of CSV files as export writes it (all or nothing)")
@arg("src", metavar="IN.zip", help="the zip file to import")
@arg("--replace", action="store_true",
     help="delete the rows of the tables in the zip first (default: append)")
@arg("--actor", default="cli", help="who the audit log blames (default: cli)")
@arg("--app", metavar="MODULE[:ATTR]",
     help=_APP_HELP % ", checks and hooks: without it rows are checked by column types only")
@_database_errors
def run_import(args: argparse.Namespace) -> int:
    from ..audit._actor import actor
    from ..tools._import import load_zip

    models = _app_models(args)
    _connect(args)
    step = _rows_progress("import")
    with actor(args.actor):
        result = load_zip(args.src, mode="replace" if args.replace else "append",
                          progress=step, models=models)
    step.done()
    for table, rows in result.imported.items():
        print(f"{table}: {rows} rows")
    for table, why in result.skipped.items():
        print(f"{table}: skipped ({why})")
    if result.unchecked:
        hint = "" if args.app else "; give --app MODULE to apply the app's models and hooks"
        print(f"note: {', '.join(result.unchecked)} checked by column types only (no model: "
              f"no choices, no hooks){hint}")
    return 0


@command("diagram", "draw the database schema as SVG")
@arg("-o", "--output", metavar="OUT.svg", help="write to this file (default: stdout)")
@_database_errors
def run_diagram(args: argparse.Namespace) -> int:
    from ..tools._diagram import diagram_svg

    _connect(args)
    svg = diagram_svg()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(svg)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(svg)
    return 0
