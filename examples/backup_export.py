"""Nightly data care for a controller: a backup, a CSV export and a schema diagram.

    python examples/backup_export.py [sqlite:///machine.db] [out-folder]

Keeps the last seven backups; restore one with ``peestore restore IN.sqlite``
(or ``POST /db/restore``) after checking it with ``--dry-run``.
"""
import datetime
import pathlib
import sys

import peestore


def main(url: str = "sqlite:///machine.db", folder: str = "backups") -> None:
    peestore.connect(url, create_tables=False)
    out = pathlib.Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")

    def progress(remaining: int, total: int) -> None:
        print(f"\rbackup {100 * (total - remaining) // max(total, 1)}%", end="", flush=True)

    if url.startswith("sqlite"):  # backup and restore are SQLite's; use pg_dump elsewhere
        copy = peestore.backup(out / f"backup-{stamp}.sqlite", progress=progress)
        print(f"\rbackup written: {copy}")
        # The copy is checked exactly as a restore would check it.
        print("backup verified:", peestore.restore(copy, dry_run=True))
        for old in sorted(out.glob("backup-*.sqlite"))[:-7]:
            old.unlink()
    zip_path = peestore.export_csv(out / f"export-{stamp}.zip")
    print(f"CSV export written: {zip_path}")
    (out / "schema.svg").write_text(peestore.diagram_svg(), encoding="utf-8")
    print(f"schema diagram written: {out / 'schema.svg'}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
