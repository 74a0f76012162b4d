"""What peestore writes to the disk: bytes per create, and bytes per audit entry.

    python benchmarks/device_wear.py [--rows 2000] [--dir .]

Flash (an SD card, eMMC) wears with what is written to it, so this counts
what reaches the storage layer, not what the program asked for:

- **bytes written per create**: ``write_bytes`` of ``/proc/self/io`` (bytes
  this process sent towards the disk, counted when page-cache pages are
  dirtied) around ``--rows`` audited creates, each its own transaction (a row
  and its audit entry), through the model API and through the REST API (the
  demo app's WSGI callable, in-process), with ``synchronous=normal`` and
  ``full``; ``wchar`` (bytes passed to ``write()``) beside it.  WAL
  checkpoints are included: the run ends with one.
- **bytes per audit entry**: the file size a create adds with its audit entry
  against the same model with ``Meta.audited = False``, after a checkpoint.
- **pruning**: the file size after writing ``--rows`` more entries behind a
  ``prune_audit(keep_rows=...)``: SQLite reuses the freed pages.

Run it on the disk the app uses (``--dir``): a tmpfs counts nothing.
"""
import argparse
import io
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from peewee import CharField, DoubleField  # noqa: E402

import peestore  # noqa: E402


class Reading(peestore.BaseAuditedModel):
    sensor = CharField(max_length=40)
    value = DoubleField()


class Plain(peestore.BaseAuditedModel):
    sensor = CharField(max_length=40)
    value = DoubleField()

    class Meta:
        audited = False


def proc_io() -> dict:
    with open("/proc/self/io") as f:
        return {k: int(v) for k, v in (line.split(": ") for line in f)}


def checkpoint(db) -> None:
    db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def model_creates(folder: str, synchronous: str, rows: int, batch: int = 1) -> dict:
    """write_bytes and wchar per audited create through the model API, ``batch`` rows
    per transaction (``create_many``)."""
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        db = peestore.connect("sqlite:///%s/wear.db" % tmp, models=[Reading],
                              pragmas={"synchronous": synchronous})
        Reading.create(sensor="warm-up", value=0.0)
        checkpoint(db)
        before = proc_io()
        for start in range(0, rows, batch):
            values = [{"sensor": "temperature-%d" % (i % 8), "value": 20.0 + i / 100}
                      for i in range(start, min(start + batch, rows))]
            if batch == 1:
                Reading.create(**values[0])
            else:
                Reading.create_many(values)
        checkpoint(db)
        after = proc_io()
        db.close()
    return {k: (after[k] - before[k]) / rows for k in ("write_bytes", "wchar")}


def rest_creates(folder: str, synchronous: str, rows: int) -> dict:
    """write_bytes and wchar per ``POST /machines/`` of the demo app (in-process WSGI)."""
    from peestore.demo import make_app

    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        app = make_app("sqlite:///%s/wear.db?synchronous=%s" % (tmp, synchronous))
        db = peestore.database.obj

        def post(i: int) -> None:
            body = json.dumps({"name": "m-%d" % i, "serial": "s-%d" % i,
                               "location": "hall 1"}).encode()
            environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/machines/",
                       "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
                       "wsgi.url_scheme": "http", "HTTP_HOST": "127.0.0.1",
                       "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
                       "HTTP_X_USER": "bench", "wsgi.input": io.BytesIO(body),
                       "wsgi.errors": sys.stderr}
            status = []
            b"".join(app(environ, lambda s, h, e=None: status.append(s)))
            assert status[0].startswith("201"), status

        post(-1)
        checkpoint(db)
        before = proc_io()
        for i in range(rows):
            post(i)
        checkpoint(db)
        after = proc_io()
        db.close()
    return {k: (after[k] - before[k]) / rows for k in ("write_bytes", "wchar")}


def file_bytes(db, path: str) -> int:
    checkpoint(db)
    return os.path.getsize(path)


def audit_sizing(folder: str, rows: int) -> dict:
    """Bytes per audit entry on disk, and the file size before and after pruning."""
    out = {}
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        for model in (Reading, Plain):
            path = os.path.join(tmp, "%s.db" % model.__name__)
            db = peestore.connect("sqlite:///%s" % path, models=[model])
            start = file_bytes(db, path)
            for i in range(rows):
                model.create(sensor="temperature-%d" % (i % 8), value=20.0 + i / 100)
            out[model.__name__] = (file_bytes(db, path) - start) / rows
            if model is Reading:
                full = file_bytes(db, path)
                peestore.prune_audit(keep_rows=rows // 10)
                for i in range(rows // 2):
                    Reading.update(value=Reading.value + 1).where(
                        Reading.id == 1 + i % rows).execute()
                out["after_prune_and_more"] = file_bytes(db, path)
                out["before_prune"] = full
            db.close()
    return {"bytes_per_audited_create": out["Reading"],
            "bytes_per_unaudited_create": out["Plain"],
            "bytes_per_audit_entry": out["Reading"] - out["Plain"],
            "file_before_prune": out["before_prune"],
            "file_after_prune_and_half_as_many_writes": out["after_prune_and_more"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--dir", default=".", help="a folder on the disk to measure")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if not os.path.exists("/proc/self/io"):
        sys.exit("device_wear.py needs Linux's /proc/self/io")
    figures = {"rows": args.rows}
    for synchronous in ("normal", "full"):
        figures["model_" + synchronous] = model_creates(args.dir, synchronous, args.rows)
        figures["rest_" + synchronous] = rest_creates(args.dir, synchronous, args.rows)
        figures["batch_" + synchronous] = model_creates(args.dir, synchronous, args.rows,
                                                        batch=100)
    figures["audit"] = audit_sizing(args.dir, args.rows)
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    print("bytes per audited create (a row and its audit entry, one transaction), "
          "%d creates, folder %s" % (args.rows, os.path.abspath(args.dir)))
    print("%-44s %12s %12s" % ("", "write_bytes", "wchar"))
    labels = {"model": "Model.create", "rest": "POST (demo app)",
              "batch": "create_many(100 rows), per row"}
    for kind in ("model", "rest", "batch"):
        for synchronous in ("normal", "full"):
            f = figures["%s_%s" % (kind, synchronous)]
            print("%-44s %12.0f %12.0f" % ("%s, synchronous=%s" % (labels[kind], synchronous),
                                           f["write_bytes"], f["wchar"]))
    a = figures["audit"]
    print("file bytes per create: audited %.0f, unaudited %.0f -> %.0f per audit entry"
          % (a["bytes_per_audited_create"], a["bytes_per_unaudited_create"],
             a["bytes_per_audit_entry"]))
    print("file after %d creates: %d bytes; after prune_audit(keep_rows=%d) and %d updates: "
          "%d bytes" % (args.rows, a["file_before_prune"], args.rows // 10, args.rows // 2,
                        a["file_after_prune_and_half_as_many_writes"]))


if __name__ == "__main__":
    main()
