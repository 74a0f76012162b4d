"""The floor: the demo's machine routes in raw ``sqlite3`` + Bottle + waitress, no ORM.

    python benchmarks/floor.py --db floor.db [--port 0] [--threads 4]

What a careful engineer would write by hand for the same three requests the
benchmark sends to ``peestore demo``: create a machine (the row and its audit
entry in one transaction), read one by id, list a page.  The tables are the
demo's own, made with the same SQL; the pragmas are peestore's defaults.
Each waitress thread keeps one connection open for its lifetime (the
cheapest way to use sqlite3 from threads).  Prints
``listening http://127.0.0.1:PORT`` once it accepts connections.
"""
import argparse
import datetime
import json
import sqlite3
import sys
import threading

import bottle

SCHEMA = [
    'CREATE TABLE IF NOT EXISTS "audit_log" ("id" INTEGER NOT NULL PRIMARY KEY, '
    '"timestamp" DATETIME NOT NULL, "component" VARCHAR(100) NOT NULL, '
    '"record_id" VARCHAR(100) NOT NULL, "operation" VARCHAR(20) NOT NULL, '
    '"actor" VARCHAR(200) NOT NULL, "before" TEXT, "after" TEXT)',
    'CREATE INDEX IF NOT EXISTS "auditlog_timestamp" ON "audit_log" ("timestamp")',
    'CREATE INDEX IF NOT EXISTS "auditlog_component" ON "audit_log" ("component")',
    'CREATE INDEX IF NOT EXISTS "auditlog_record_id" ON "audit_log" ("record_id")',
    'CREATE TABLE IF NOT EXISTS "machine" ("id" INTEGER NOT NULL PRIMARY KEY, '
    '"name" VARCHAR(100) NOT NULL, "serial" VARCHAR(50) NOT NULL, '
    '"status" VARCHAR(20) NOT NULL, "location" VARCHAR(100), '
    '"max_speed_rpm" REAL NOT NULL, "created_at" DATETIME NOT NULL)',
    'CREATE UNIQUE INDEX IF NOT EXISTS "machine_name" ON "machine" ("name")',
    'CREATE UNIQUE INDEX IF NOT EXISTS "machine_serial" ON "machine" ("serial")',
]
PRAGMAS = ["PRAGMA journal_mode=wal", "PRAGMA synchronous=normal",
           "PRAGMA foreign_keys=1", "PRAGMA busy_timeout=5000"]
COLUMNS = ("id", "name", "serial", "status", "location", "max_speed_rpm", "created_at")
SELECT = "SELECT %s FROM machine" % ", ".join('"%s"' % c for c in COLUMNS)
FIELDS = {"name": str, "serial": str, "status": str, "location": (str, type(None)),
          "max_speed_rpm": (int, float)}
STATUSES = ("idle", "running", "stopped", "fault")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None).isoformat(" ")


def _row(values: tuple) -> dict:
    row = dict(zip(COLUMNS, values))
    row["created_at"] = row["created_at"].replace(" ", "T")
    return row


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def make_app(path: str) -> bottle.Bottle:
    """The floor app on the SQLite file ``path``."""
    setup = sqlite3.connect(path)
    for statement in PRAGMAS + SCHEMA:
        setup.execute(statement)
    if setup.execute("SELECT COUNT(*) FROM machine").fetchone()[0] == 0:
        # The demo's seed row, so both serve the same ids.
        setup.execute('INSERT INTO machine VALUES (1, ?, ?, ?, ?, ?, ?)',
                      ("press-1", "PX-0001", "idle", "hall A", 2400.0, _now()))
        setup.commit()
    setup.close()
    local = threading.local()

    def conn() -> sqlite3.Connection:
        connection = getattr(local, "conn", None)
        if connection is None:
            connection = sqlite3.connect(path, isolation_level=None,
                                         check_same_thread=False)
            for pragma in PRAGMAS[1:]:
                connection.execute(pragma)
            local.conn = connection
        return connection

    app = bottle.Bottle()

    def fail(status: int, detail: object) -> bottle.HTTPResponse:
        return bottle.HTTPResponse(_dumps({"detail": detail}), status,
                                   {"Content-Type": "application/json"})

    @app.post("/machines/")
    def create() -> str:
        actor = bottle.request.get_header("X-User")
        if not actor:
            return fail(400, "send an X-User header")
        try:
            data = json.loads(bottle.request.body.read() or b"null")
        except ValueError:
            return fail(400, "malformed JSON")
        if not isinstance(data, dict):
            return fail(400, "expected a JSON object")
        errors = {k: "unknown field" for k in data if k not in FIELDS}
        errors.update({k: "wrong type" for k, t in FIELDS.items()
                       if k in data and not isinstance(data[k], t)})
        errors.update({k: "required" for k in ("name", "serial") if k not in data})
        if data.get("status", "idle") not in STATUSES:
            errors["status"] = "not a choice"
        if errors:
            return fail(422, errors)
        values = (data["name"], data["serial"], data.get("status", "idle"),
                  data.get("location"), float(data.get("max_speed_rpm", 3000.0)),
                  _now())
        db = conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            cursor = db.execute(
                'INSERT INTO machine ("name", "serial", "status", "location", '
                '"max_speed_rpm", "created_at") VALUES (?, ?, ?, ?, ?, ?)', values)
            row = _row((cursor.lastrowid,) + values)
            body = _dumps(row)
            db.execute(
                'INSERT INTO audit_log ("timestamp", "component", "record_id", '
                '"operation", "actor", "before", "after") VALUES (?, ?, ?, ?, ?, ?, ?)',
                (_now(), "machines", str(row["id"]),
                 "create", actor, None, body))
            db.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            db.execute("ROLLBACK")
            return fail(409, str(exc))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        bottle.response.status = 201
        bottle.response.content_type = "application/json"
        bottle.response.set_header("Location", "/machines/%d" % row["id"])
        return body

    @app.get("/machines/<id:int>")
    def get(id: int) -> str:
        found = conn().execute(SELECT + " WHERE id = ?", (id,)).fetchone()
        if found is None:
            return fail(404, "no machines with id %d" % id)
        bottle.response.content_type = "application/json"
        return _dumps(_row(found))

    @app.get("/machines/")
    def page() -> str:
        try:
            limit = int(bottle.request.query.get("limit", "100"))
            offset = int(bottle.request.query.get("offset", "0"))
        except ValueError:
            return fail(422, "limit and offset are integers")
        db = conn()
        rows = db.execute(SELECT + " ORDER BY id LIMIT ? OFFSET ?", (limit, offset)).fetchall()
        if len(rows) < limit:
            total = offset + len(rows)
        else:
            total = db.execute("SELECT COUNT(*) FROM machine").fetchone()[0]
        bottle.response.content_type = "application/json"
        bottle.response.set_header("X-Total-Count", str(total))
        return _dumps([_row(r) for r in rows])

    return app


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--peestore-server", action="store_true",
                        help="serve with peestore.rest._server.make_server (its waitress channel)")
    args = parser.parse_args(argv)
    if args.peestore_server:
        from peestore.rest._server import make_server as create_server
    else:
        from waitress.server import create_server

    server = create_server(make_app(args.db), host="127.0.0.1", port=args.port,
                           threads=args.threads)
    print("listening http://127.0.0.1:%s" % server.effective_port, flush=True)
    try:
        server.run()
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
