"""Nightly data care for a controller: a backup, a CSV export and a schema diagram.

    python examples/backup_export.py [--db URL] [--out FOLDER]

The database is peestore's default, as for every ``peestore`` command:
``$PEESTORE_DATABASE_URL``, else ``sqlite:///peestore.db`` in the current
folder (``examples/machine_app.py`` and ``peestore demo`` make it).  The
files go to ``FOLDER`` (default ``backups``), which keeps the last seven
backups; restore one with ``peestore restore IN.sqlite`` (or
``POST /db/restore``) after checking it with ``--dry-run``.
"""
import argparse
import datetime
import os
import pathlib
import sys

import peewee

import peestore


def care(db: peewee.Database, out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")

    def progress(remaining: int, total: int) -> None:
        print(f"\rbackup {100 * (total - remaining) // max(total, 1)}%", end="", flush=True)

    # Backup and restore are SQLite's; use pg_dump or mariadb-dump elsewhere.
    if isinstance(db, peewee.SqliteDatabase):
        copy = peestore.backup(out / f"backup-{stamp}.sqlite", progress=progress)
        print(f"\rbackup written: {copy}")
        # The copy is checked exactly as a restore would check it.
        checked = peestore.restore(copy, dry_run=True)
        print(f"backup verified: {checked['bytes']} bytes, a valid backup")
        for old in sorted(out.glob("backup-*.sqlite"))[:-7]:
            old.unlink()
    zip_path = peestore.export_csv(out / f"export-{stamp}.zip")
    print(f"CSV export written: {zip_path}")
    (out / "schema.svg").write_text(peestore.diagram_svg(), encoding="utf-8")
    print(f"schema diagram written: {out / 'schema.svg'}")


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the usage block
        self.exit(2, "%s: error: %s (see --help)\n" % (self.prog, message))


def main() -> int:
    parser = Parser(prog="backup_export.py", description=__doc__.splitlines()[0])
    parser.add_argument("--db", metavar="URL", default=None,
                        help="database URL (default: $PEESTORE_DATABASE_URL, "
                             "else sqlite:///peestore.db)")
    parser.add_argument("--out", metavar="FOLDER", default="backups",
                        help="where the files go (default: backups)")
    args = parser.parse_args()
    try:
        db = peestore.connect(args.db, create_tables=False)   # opens no file yet
        if isinstance(db, peewee.SqliteDatabase) and not os.path.isfile(db.database):
            # Opening it would create an empty database, and back that up.
            print("backup_export.py: error: no database at %s; run examples/machine_app.py "
                  "(or peestore demo) here first, or give --db URL"
                  % os.path.abspath(db.database), file=sys.stderr)
            return 1
        care(db, pathlib.Path(args.out))
    except (peestore.PeestoreError, peewee.PeeweeException, OSError) as exc:
        print("backup_export.py: error: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
