"""``peestore backup / restore / export / import / diagram``: the data tools."""
from __future__ import annotations

import argparse
import os
import sys

import peewee

from ._main import UsageError, arg, command, int_range, printable
from ..audit._actor import MAX_REASON
from ..db._dialect import dialect_of
from ..errors import PeestoreError

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, Tuple

_MAX_ACTOR = 200  # AuditLog.actor's max_length


class _Progress:
    """One self-overwriting status line on stderr, only when stderr is a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.shown = False
        self.enabled = bool(getattr(sys.stderr, "isatty", lambda: False)())

    def show(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\r{self.label}: {printable(text)}\x1b[K")
            sys.stderr.flush()
            self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


_SQLITE_SCHEMES = ("sqlite", "sqliteext", "sqlite+pool", "sqliteext+pool")


def _url(args: argparse.Namespace) -> Tuple[str, str]:
    """The database URL the command uses, and where it comes from (for messages)."""
    from ..db._connect import DEFAULT_URL

    if args.db is not None:
        return args.db, "from --db"
    env = os.environ.get("PEESTORE_DATABASE_URL")
    if env:
        return env, "from $PEESTORE_DATABASE_URL"
    return DEFAULT_URL, "the default"


def _check_arguments(args: argparse.Namespace, url: str, source: str) -> None:
    """Usage errors found before anything is opened: a SQLite URL with a host, an
    ``--actor`` that is no name, an input that is not a regular file."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in _SQLITE_SCHEMES and rest.split("/", 1)[0]:
        message = (f"the SQLite URL {url!r} ({source}) names a host; a SQLite URL has "
                   f"three slashes before a relative path (sqlite:///data/app.db) and "
                   f"four before an absolute one (sqlite:////var/lib/app.db)")
        if args.db is not None:
            raise UsageError(message)
        raise PeestoreError(message)
    actor = getattr(args, "actor", None)
    if actor is not None:
        from ..rest._headers import clean_name

        name = actor.strip()
        if not name:
            raise UsageError("--actor needs a name: the audit log blames it for the changes")
        if len(name) > _MAX_ACTOR:
            raise UsageError(f"--actor is over {_MAX_ACTOR} characters")
        try:
            args.actor = clean_name(name, "--actor")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    src = getattr(args, "src", None)
    if src:
        from ..tools._files import check_input

        check_input(src, "the data")


def _connect(args: argparse.Namespace) -> peewee.Database:
    """The database of ``--db``, which must exist; every data command opens it here.

    A SQLite database that is not an existing file is refused (naming it)
    rather than created empty, whatever the URL's form (a path, a ``file:``
    URI, an empty path or ``:memory:``), so a mistyped ``--db`` cannot export,
    restore or prune an empty database and report success.  An input that is
    not a regular file is refused before it is opened (a FIFO would block).
    An output (``OUT``, ``-o``) is refused when its folder does not exist, when
    it exists and is not a regular file (a device, a FIFO), or when it is the
    live database or one of its ``-wal``/``-shm``/``-journal`` files, before
    anything is written.  Temporary files that a killed peestore left beside
    the database or the output are removed (``peestore.tools._files``).
    """
    import peestore
    from ..tools._files import check_output, database_file, remove_stale

    url, source = _url(args)
    _check_arguments(args, url, source)
    db = peestore.connect(args.db, create_tables=False)  # opens no connection yet
    if dialect_of(db).has_file:
        path = database_file(db)
        if path is None:
            raise PeestoreError(f"{url} ({source}) names no database file (SQLite would "
                                f"use a new, empty database in memory); name an existing "
                                f"one with --db sqlite:///path/to/file.db")
        if not os.path.isfile(path):
            raise PeestoreError(f"no database at {os.path.abspath(path)} ({source}); "
                                f"name an existing one with --db URL")
        path = os.path.abspath(path)
        remove_stale(os.path.dirname(path), database_name=os.path.basename(path))
    out = getattr(args, "out", None) or getattr(args, "output", None)
    if out:
        folder = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(folder):
            raise PeestoreError(f"no folder {folder} to write {out} into; create it first")
        check_output(out, database=db, what=f"the {args.command}")
        remove_stale(folder)
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
@arg("out", metavar="OUT.sqlite", help="the backup file to write (with --keep: a folder)")
@arg("--keep", type=int_range(1, 10000), metavar="N",
     help="rotate: write a checked backup-YYYYmmddTHHMMSSZ.sqlite into the folder OUT "
          "and keep the newest N there")
@_database_errors
def run_backup(args: argparse.Namespace) -> int:
    from ..tools._backup import backup

    if args.keep is not None:
        return _rotate(args)
    _connect(args)
    progress = _Progress("backup")

    def step(remaining: int, total: int) -> None:
        done = total - remaining
        progress.show(f"{100 * done // max(total, 1)}% ({done}/{total} pages)")

    path = backup(args.out, progress=step)
    progress.done()
    print(f"backed up to {path} ({os.path.getsize(str(path))} bytes)")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from ..tools._rotate import backup_rotating

    folder, args.out = args.out, None
    if not os.path.isdir(folder):
        raise PeestoreError(f"no folder {folder} to keep backups in; create it first")
    _connect(args)
    path = backup_rotating(folder, keep=args.keep)
    print(f"backed up to {path} ({os.path.getsize(str(path))} bytes), checked; keeping "
          f"the newest {args.keep}")
    return 0


def _reason(text: str) -> str:
    """``--reason``: a text of 1 to ``MAX_REASON`` characters, else a usage error."""
    if not text.strip() or len(text) > MAX_REASON:
        raise argparse.ArgumentTypeError("must be a text of 1 to %d characters" % MAX_REASON)
    return text


@command("restore", "replace the SQLite database with a backup file, after checking it")
@arg("src", metavar="IN.sqlite", help="the backup file to restore")
@arg("--dry-run", action="store_true", help="only check the file; change nothing")
@arg("--no-integrity-check", action="store_true",
     help="trust the file's contents: skip PRAGMA integrity_check and the checks of its "
          "rows (the schema is checked all the same)")
@arg("--reason", type=_reason, metavar="TEXT",
     help="the reason for the change, kept in the restore's audit entry")
@_database_errors
def run_restore(args: argparse.Namespace) -> int:
    from ..audit._actor import actor
    from ..tools._restore import restore

    db = _connect(args)
    with actor("cli", reason=args.reason):  # the restore's own audit entry
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
@arg("--reason", type=_reason, metavar="TEXT",
     help="the reason for the change, kept in the import's audit entries (required when "
          "a model has Meta.require_reason)")
@arg("--app", metavar="MODULE[:ATTR]",
     help=_APP_HELP % ", checks and hooks: without it rows are checked by column types only")
@_database_errors
def run_import(args: argparse.Namespace) -> int:
    from ..audit._actor import actor
    from ..tools._import import load_zip

    models = _app_models(args)
    _connect(args)
    step = _rows_progress("import")
    with actor(args.actor, reason=args.reason):
        result = load_zip(args.src, mode="replace" if args.replace else "append",
                          progress=step, models=models)
    step.done()
    # Table names and reasons come from the file: escaped for the terminal.
    for table, rows in result.imported.items():
        print(printable(f"{table}: {rows} rows"))
    for table, why in result.skipped.items():
        print(printable(f"{table}: skipped ({why})"))
    if result.unchecked:
        hint = "" if args.app else "; give --app MODULE to apply the app's models and hooks"
        print(printable(f"note: {', '.join(result.unchecked)} checked by column types only "
                        f"(no model: no choices, no hooks){hint}"))
    return 0


@command("diagram", "draw the database schema as SVG")
@arg("-o", "--output", metavar="OUT.svg", help="write to this file (default: stdout)")
@_database_errors
def run_diagram(args: argparse.Namespace) -> int:
    from ..tools._diagram import diagram_svg

    _connect(args)
    svg = diagram_svg()
    if args.output:
        from ..tools._files import temp_file

        # Written beside the output and renamed into place: never half a file.
        fd, tmp = temp_file(os.path.dirname(os.path.abspath(args.output)), "diagram", ".svg")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(svg)
            os.replace(tmp, args.output)
        except BaseException:
            os.unlink(tmp)
            raise
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(printable(svg, keep="\n"))  # names from the database
    return 0
