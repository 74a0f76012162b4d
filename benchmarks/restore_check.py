"""What restore's schema check and hardened connections cost.

Builds a SQLite database with ``--models`` audited models (five columns,
a unique index, a foreign key each) and ``--rows`` rows per model, backs it
up, and prints the median of ``--repeat`` runs of:

- the schema comparison alone (``peestore.tools._restore.schema_problems``),
- a dry-run restore (copy + SHA-256 + header + schema + integrity_check),
- a full restore (the same, the swap and the audit entry),
- opening and closing a hardened connection vs a plain ``sqlite3`` one,
- 10,000 ``SELECT 1`` on a hardened connection vs a plain one.

    python benchmarks/restore_check.py [--models 10] [--rows 2000] [--repeat 5]
"""
import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import peewee  # noqa: E402

import peestore  # noqa: E402
from peestore.db._hardening import DEFENSIVE_AVAILABLE, open_sqlite  # noqa: E402
from peestore.tools._restore import schema_problems  # noqa: E402


def make_models(count):
    models = []
    parent = None
    for i in range(count):
        attrs = {
            "name": peewee.CharField(unique=True),
            "speed": peewee.FloatField(default=1.0),
            "note": peewee.TextField(null=True),
            "at": peewee.DateTimeField(null=True, index=True),
            "Meta": type("Meta", (), {"table_name": "bench_%d" % i}),
        }
        if parent is not None:
            attrs["parent"] = peewee.ForeignKeyField(parent, null=True, on_delete="CASCADE")
        model = type("Bench%d" % i, (peestore.BaseAuditedModel,), attrs)
        models.append(model)
        parent = model
    return models


def median_ms(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        models = make_models(args.models)
        db = peestore.connect("sqlite:///%s" % os.path.join(tmp, "live.db"), models=models)
        with db.connection_context():
            for model in models:
                model.insert_many([{"name": "%s-%d" % (model.__name__, i), "speed": i}
                                   for i in range(args.rows)]).execute()
        backup = os.path.join(tmp, "backup.sqlite")
        peestore.backup(backup)
        size = os.path.getsize(backup)

        def check_schema():
            conn = open_sqlite(backup)
            try:
                assert schema_problems(conn, db) == []
            finally:
                conn.close()

        print("python %s, SQLite %s, defensive mode %s" % (
            sys.version.split()[0], sqlite3.sqlite_version,
            "on" if DEFENSIVE_AVAILABLE else "not available"))
        print("database: %d models, %d rows each, %.1f MB" % (
            args.models, args.rows, size / 1e6))
        print("schema check alone:            %8.2f ms" % median_ms(check_schema, args.repeat))
        print("dry-run restore:               %8.2f ms" % median_ms(
            lambda: peestore.restore(backup, dry_run=True), args.repeat))
        print("restore (swap + audit entry):  %8.2f ms" % median_ms(
            lambda: peestore.restore(backup), args.repeat))
        db.close()

        path = os.path.join(tmp, "live.db")
        for label, opener in (("plain", sqlite3.connect), ("hardened", open_sqlite)):
            print("open + close, %-8s          %8.1f us" % (label, median_ms(
                lambda opener=opener: [opener(path).close() for _ in range(1000)],
                args.repeat)))
        for label, opener in (("plain", sqlite3.connect), ("hardened", open_sqlite)):
            conn = opener(path)
            print("10,000 SELECT 1, %-8s       %8.2f ms" % (label, median_ms(
                lambda conn=conn: [conn.execute("SELECT 1").fetchone() for _ in range(10000)],
                args.repeat)))
            conn.close()

if __name__ == "__main__":
    main()
