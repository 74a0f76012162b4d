"""Peak memory of an export and a backup, over the process' idle memory.

    python benchmarks/data_memory.py [--rows 100000] [--backup-mb 200] [--json]

Builds two demo databases in a temporary folder: one with ``--rows``
machines for the export, one of about ``--backup-mb`` MB (operator log
lines) for the backup.  Each measurement then runs in a fresh process:
it opens the database, reads its resident memory (idle), resets the
kernel's high-water mark, runs ``peestore.export_csv`` or
``peestore.backup`` (or the floor: ``csv`` + ``zipfile`` over a raw
``sqlite3`` cursor, and ``sqlite3``'s own backup API) and reports the peak
over idle.  Linux only (``/proc/self/status``, ``/proc/self/clear_refs``).
"""
import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def build(folder: str, rows: int, backup_mb: int) -> None:
    """The two databases, made with the demo's tables and raw inserts (fast)."""
    import peestore
    from peestore.demo import MODELS

    for name in ("export.db", "backup.db"):
        peestore.connect("sqlite:///" + os.path.join(folder, name), models=MODELS).close()
    conn = sqlite3.connect(os.path.join(folder, "export.db"))
    with conn:
        conn.executemany(
            "INSERT INTO machine (name, serial, status, location, max_speed_rpm, created_at)"
            " VALUES (?, ?, 'idle', 'hall B', 2000.0, '2026-11-28 12:00:00.000000')",
            (("machine-%d" % i, "SN-%07d" % i) for i in range(rows)))
    conn.close()
    conn = sqlite3.connect(os.path.join(folder, "backup.db"))
    line = "x" * 1000
    # About 1,420 bytes a row with its page overhead and indexes.
    count = backup_mb * 1024 * 1024 // 1420
    with conn:
        conn.executemany(
            "INSERT INTO operatorlog (operator, level, message, created_at)"
            " VALUES ('bench', 'info', ?, '2026-11-28 12:00:00.000000')",
            ((line + str(i),) for i in range(count)))
    conn.close()


def measure(kind: str, folder: str) -> int:
    """Run one operation in this process; its peak memory over idle, in kB."""
    if kind.startswith("peestore"):
        import peestore
        from peestore.demo import MODELS

        name = "export.db" if kind.endswith("export") else "backup.db"
        db = peestore.connect("sqlite:///" + os.path.join(folder, name), models=MODELS)
        db.connect(reuse_if_open=True)
        idle = _status("VmRSS")
        _reset_peak()
        if kind.endswith("export"):
            peestore.export_csv(os.path.join(folder, "peestore-export.zip"))
        else:
            peestore.backup(os.path.join(folder, "peestore-backup.db"))
        return _status("VmHWM") - idle
    import csv
    import io
    import zipfile

    name = "export.db" if kind.endswith("export") else "backup.db"
    conn = sqlite3.connect(os.path.join(folder, name))
    idle = _status("VmRSS")
    _reset_peak()
    if kind.endswith("export"):
        with zipfile.ZipFile(os.path.join(folder, "floor-export.zip"), "w",
                             zipfile.ZIP_DEFLATED) as archive:
            tables = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")]
            for table in tables:
                with archive.open(table + ".csv", "w") as raw:
                    text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
                    cursor = conn.execute('SELECT * FROM "%s"' % table)
                    writer = csv.writer(text)
                    writer.writerow([d[0] for d in cursor.description])
                    for row in cursor:
                        writer.writerow(row)
                    text.flush()
                    text.detach()
    else:
        dest = sqlite3.connect(os.path.join(folder, "floor-backup.db"))
        conn.backup(dest, pages=1024)
        dest.close()
    return _status("VmHWM") - idle


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100000)
    parser.add_argument("--backup-mb", type=int, default=200)
    parser.add_argument("--dir", help="folder for the temporary databases")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(measure(args.measure, args.dir))
        return 0
    figures = {"rows": args.rows}
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        build(folder, args.rows, args.backup_mb)
        figures["db_mb"] = round(os.path.getsize(os.path.join(folder, "backup.db")) / 2 ** 20)
        for kind in ("peestore_export", "floor_export", "peestore_backup", "floor_backup"):
            out = subprocess.run([sys.executable, __file__, "--measure", kind, "--dir", folder],
                                 check=True, stdout=subprocess.PIPE, text=True).stdout
            figures[kind + "_kb"] = int(out.strip().splitlines()[-1])
    if args.json:
        print(json.dumps(figures))
    else:
        print("export of %d rows: peestore +%.1f MB, floor +%.1f MB over idle" % (
            args.rows, figures["peestore_export_kb"] / 1024, figures["floor_export_kb"] / 1024))
        print("backup of %d MB: peestore +%.1f MB, floor +%.1f MB over idle" % (
            figures["db_mb"], figures["peestore_backup_kb"] / 1024,
            figures["floor_backup_kb"] / 1024))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
