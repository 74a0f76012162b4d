"""What hostile backups cost a restore's dry run, and what checking the rows costs.

Part 1 makes the demo's database, backs it up and alters copies of the
backup as an attacker would; each is dry-run in a fresh process, which
prints the answer and its peak memory over its own idle (VmHWM):

- a view ``SELECT 1 WHERE 1 IN (1, 1, ...)`` of ``--view-mb`` MB;
- ``--tables`` extra schema objects (tables, each with an index);
- a CHECK with a long IN list added to a model's table (writable_schema);
- SQLite alone reading that view file's ``sqlite_master`` on a hardened
  connection, without and (Python 3.11+) with a 1 MiB statement limit.

Part 2 fills the demo's models and audit log to about ``--mb`` MB and
prints the time and peak memory of a dry run with the row checks
(``integrity_check=True``) and without them (``False``), and of the row
checks alone.

    python benchmarks/restore_hostile.py [--view-mb 12] [--tables 20000] [--mb 100]
"""
import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)


def hwm_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def child(live, path, mode):
    """Run one measurement in this (fresh) process; print a JSON line."""
    import peestore
    from peestore.demo import MODELS
    from peestore.db._hardening import limit_statements, open_sqlite

    peestore.connect("sqlite:///%s" % live, models=MODELS)
    before = hwm_mb()
    start = time.perf_counter()
    try:
        if mode.startswith("sqlite"):
            conn = open_sqlite(path)
            if mode == "sqlite-limit":
                limit_statements(conn, 1 << 20)
            conn.execute("SELECT type, name, length(sql) FROM sqlite_master").fetchall()
            conn.close()
            answer = "read"
        elif mode == "contents":
            from peestore.tools import _restore

            conn = open_sqlite(path)
            live_schema, owned = _restore._live_schema(peestore.database.obj)
            problem = _restore._content_problem(path, conn, peestore.database.obj, owned)
            conn.close()
            answer = problem or "ok"
        else:
            result = peestore.restore(path, dry_run=True, integrity_check=(mode == "checked"))
            answer = "accepted (%d bytes)" % result["bytes"]
    except Exception as exc:  # the figure is the point: report whatever happened
        answer = "%s: %s" % (type(exc).__name__, str(exc)[:110])
    print(json.dumps({"answer": answer, "seconds": time.perf_counter() - start,
                      "peak_mb": hwm_mb() - before}))


def measure(live, path, mode):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", live, path,
                          mode], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=900)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"answer": "failed: " + out.stdout[-200:], "seconds": 0, "peak_mb": 0}


def altered(base, path, statements, writable=False):
    shutil.copy(base, path)
    conn = sqlite3.connect(path, isolation_level=None)
    if writable:
        conn.execute("PRAGMA writable_schema=ON")
    conn.execute("BEGIN")
    for sql in statements:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.close()
    return path


def show(label, path, figure):
    size = os.path.getsize(path) / 1e6 if path else 0
    print("%-44s %7.1f MB file  %+8.1f MB peak  %6.2f s  %s" % (
        label, size, figure["peak_mb"], figure["seconds"], figure["answer"]))


def hostile(tmp, args):
    import peestore
    from peestore.demo import MODELS, seed

    live = os.path.join(tmp, "live.db")
    db = peestore.connect("sqlite:///%s" % live, models=MODELS)
    seed()
    base = os.path.join(tmp, "base.sqlite")
    peestore.backup(base)
    db.close()
    items = int(args.view_mb * 1e6 / 2)
    view = altered(base, os.path.join(tmp, "view.sqlite"), [
        "CREATE VIEW v AS SELECT 1 WHERE 1 IN (%s)" % ",".join(["1"] * items)])
    tables = altered(base, os.path.join(tmp, "tables.sqlite"), [
        sql for i in range(args.tables) for sql in (
            "CREATE TABLE extra_%d (id INTEGER PRIMARY KEY, a TEXT, b REAL)" % i,
            "CREATE INDEX extra_%d_a ON extra_%d (a)" % (i, i))][:args.tables])
    conn = sqlite3.connect(base)
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'recipe'").fetchone()[0]
    conn.close()
    check = os.path.join(tmp, "check.sqlite")
    shutil.copy(base, check)
    conn = sqlite3.connect(check, isolation_level=None)
    conn.execute("PRAGMA writable_schema=ON")
    conn.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'recipe'", (
        sql[:-1] + ", CHECK (speed_rpm IN (%s)))" % ",".join(["1"] * (items // 4)),))
    conn.close()

    print("python %s, SQLite %s" % (sys.version.split()[0], sqlite3.sqlite_version))
    show("dry run, the good backup", base, measure(live, base, "checked"))
    show("dry run, a %g MB view" % args.view_mb, view, measure(live, view, "checked"))
    show("dry run, %d extra tables and indexes" % args.tables, tables,
         measure(live, tables, "checked"))
    show("dry run, a %g MB CHECK in recipe" % (args.view_mb / 4), check,
         measure(live, check, "checked"))
    show("SQLite alone reads the view file's schema", view, measure(live, view, "sqlite"))
    if hasattr(sqlite3.Connection, "setlimit"):
        show("... with a 1 MiB statement limit", view, measure(live, view, "sqlite-limit"))


def filled(tmp, megabytes):
    """The demo's database with about ``megabytes`` MB of rows and audit entries."""
    import peestore
    from peestore.demo import MODELS

    live = os.path.join(tmp, "big.db")
    db = peestore.connect("sqlite:///%s" % live, models=MODELS)
    db.close()
    conn = sqlite3.connect(live, isolation_level=None)
    conn.execute("BEGIN")
    machines = 200
    conn.executemany("INSERT INTO machine (name, serial, status, location, max_speed_rpm, "
                     "created_at) VALUES (?, ?, 'idle', 'hall A', 3000.0, "
                     "'2024-05-01 10:00:00.123456')",
                     [("press-%d" % i, "PX-%05d" % i) for i in range(machines)])
    rows = int(megabytes * 1e6 / 420)
    after = json.dumps({"id": 1, "machine": 3, "name": "steel 2mm", "speed_rpm": 1200.0,
                        "temperature_c": 20.0, "duration_s": 45, "active": True,
                        "notes": "checked by the night shift", "deleted_at": None},
                       separators=(",", ":"))
    for start in range(0, rows, 10000):
        batch = range(start, min(rows, start + 10000))
        conn.executemany("INSERT INTO recipe (machine_id, name, speed_rpm, temperature_c, "
                         "duration_s, active, notes) VALUES (?, ?, 1200.5, 20.0, 45, 1, "
                         "'checked by the night shift')",
                         [(i % machines + 1, "recipe %d" % i) for i in batch])
        conn.executemany("INSERT INTO audit_log (timestamp, component, record_id, operation, "
                         "actor, before, after) VALUES ('2024-05-01 10:00:00.123456', "
                         "'recipes', ?, 'update', 'operator', ?, ?)",
                         [(str(i), after, after) for i in batch])
    conn.execute("COMMIT")
    conn.close()
    return live


def contents(tmp, args):
    import peestore

    live = filled(tmp, args.mb)
    copy = os.path.join(tmp, "big-backup.sqlite")
    db = peestore.connect("sqlite:///%s" % live)
    peestore.backup(copy)
    db.close()
    print("a backup of %.0f MB (%s rows in recipe and as many audit entries):" % (
        os.path.getsize(copy) / 1e6, format(int(args.mb * 1e6 / 420), ",")))
    show("dry run, integrity_check=False", copy, measure(live, copy, "trusted"))
    show("dry run, integrity_check=True (rows checked)", copy, measure(live, copy, "checked"))
    show("the row checks alone", copy, measure(live, copy, "contents"))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(*sys.argv[2:5])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--view-mb", type=float, default=12.0)
    parser.add_argument("--tables", type=int, default=20000)
    parser.add_argument("--mb", type=float, default=100.0)
    parser.add_argument("--dir", help="work in this folder (default: a temporary one)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(dir=args.dir)
    try:
        hostile(tmp, args)
        contents(tmp, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
