# The reference for benchmarks/run.py: peestore's demo models on vention-storage 0.5.1
# (SQLModel + FastAPI), served by uvicorn.  It runs in a virtualenv of its own, OUTSIDE
# the repo; vention-storage 0.5.1 declares Requires-Python <3.11, so pip needs
# --ignore-requires-python on Python 3.11 (the package itself runs fine there):
#
#   python3 -m venv /work/refvenv
#   /work/refvenv/bin/pip install --ignore-requires-python vention-storage==0.5.1 uvicorn
#   /work/refvenv/bin/python benchmarks/reference_app.py --db /tmp/ref.db --port 0
#
# pip brings the rest (fastapi 0.116, starlette 0.48, sqlmodel 0.0.24, SQLAlchemy 2.0,
# pydantic 2, python-multipart, poetry-dynamic-versioning, h11).  Plain uvicorn: h11 and
# asyncio, no httptools/uvloop, as vention-storage itself depends on it.
# Nothing in peestore or its tests imports this file; ruff checks it like the others.
"""peestore's demo models (Machine, Recipe, OperatorLog) on vention-storage 0.5.1.

    /work/refvenv/bin/python benchmarks/reference_app.py --db PATH [--port 0]
        [--no-seed] [--max-records N] [--pragmas vention|peestore] [--max-seconds S]

Built with vention's own ``bootstrap`` (one ``ModelAccessor`` and CRUD router per
model plus its ``/db`` router), served by one uvicorn process on 127.0.0.1, log
level warning, no access log.  Prints exactly one line
``listening http://127.0.0.1:PORT`` (flushed) once uvicorn accepts connections;
``--port 0`` binds a free port.  Stops by itself after ``--max-seconds`` (default
3600; 0 = never) or on SIGINT/SIGTERM.

Request shapes (vention-storage 0.5.1, read from its source)::

    create   POST /machines/   headers: Content-Type: application/json, X-User: NAME
             body {"name": "m-1", "serial": "S-1"}   (optional: status, location,
             max_speed_rpm; created_at is set by the server)
             -> 200 OK (not 201), the row as JSON with "id"; no Location header.
             No X-User -> 400 {"detail": "Missing X-User header"}.
             Duplicate name/serial (IntegrityError) -> 422 (not 409).
    read     GET /machines/{id}            -> 200 row JSON; 404 {"detail": "Not found"}
    list     GET /machines/                -> 200 JSON array of EVERY row.  The only
             query parameter is include_deleted=true|false: no limit, no offset, no
             filters, no ordering, no total header; unknown parameters such as
             ?limit=100 are ignored silently (still 200, every row).  To time "a
             list of 100", the table must hold exactly 100 rows.
    others   PUT /machines/{id} (upsert: 200 update, 201 create), DELETE /machines/{id}
             -> {"status": "deleted"}, POST /machines/{id}/restore; the same for
             /recipes/ and /operator_logs/; GET /db/health, /db/audit, /db/export.zip,
             /db/backup.sqlite, /db/diagram.svg, POST /db/restore; /docs, /openapi.json.

The collection routes end in a slash: ``/machines`` (no slash) is a 307 redirect to
``/machines/``.  X-User is needed on every write, never on a read.  HTTP/1.1
keep-alive works (one connection for thousands of requests); uvicorn closes a
connection left idle for 5 s (its timeout_keep_alive default).  Startup takes
about 1.5 s (imports), so wait for the ``listening`` line.

How it differs from peestore's demo, because vention-storage has no other way:

* Every model is audited: vention has no per-model opt-out, so OperatorLog writes
  also add an ``auditlog`` row (peestore's demo does not audit OperatorLog).
* Recipe is soft-deleted (it has ``deleted_at``), like the demo.
* JSON keys of the foreign keys are ``machine_id`` (peestore: ``machine``).
* The demo's checks are vention lifecycle hooks (``before_insert``/``before_update``)
  that raise HTTPException(422) naming the field; SQLModel table models do no
  pydantic validation of a request body, so types are not checked.
* ``--max-records N`` is vention's per-model record limit (default here: none, as
  in peestore; vention's bootstrap default is 5).  With a limit, every create first
  loads ALL rows of the table to count them, so creates slow down as it grows.
* ``--pragmas vention`` (default) keeps vention's SQLite as shipped: rollback journal,
  synchronous=FULL, foreign_keys=ON.  ``--pragmas peestore`` adds peestore's defaults
  (WAL, synchronous=NORMAL, busy_timeout=5000) for a like-for-like storage layer.
* The database is seeded as the demo is (press-1, two recipes, a log line) when
  empty, unless ``--no-seed``: so a fresh database starts with 1 machine.
"""
import argparse
import asyncio
import datetime
import socket
import sys
from typing import Any, Optional

import uvicorn
from fastapi import FastAPI, HTTPException
from sqlalchemy import Text, event
from sqlmodel import Field, Session, SQLModel
from storage import database
from storage.accessor import ModelAccessor
from storage.bootstrap import bootstrap

STATUSES = ("idle", "running", "stopped", "fault")
LEVELS = ("info", "warning", "error")
PRAGMAS = {
    "vention": [],
    "peestore": ["PRAGMA journal_mode=wal", "PRAGMA synchronous=normal",
                 "PRAGMA busy_timeout=5000"],
}


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class Machine(SQLModel, table=True):
    """A machine on the shop floor."""

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    serial: str = Field(max_length=50, unique=True)
    status: str = Field(default="idle", max_length=20)
    location: Optional[str] = Field(default=None, max_length=100)
    max_speed_rpm: float = Field(default=3000.0)
    created_at: datetime.datetime = Field(default_factory=_utcnow)


class Recipe(SQLModel, table=True):
    """A set of process parameters for one machine (soft-deleted)."""

    id: Optional[int] = Field(default=None, primary_key=True)
    machine_id: int = Field(foreign_key="machine.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=100)
    speed_rpm: float = Field(default=1000.0)
    temperature_c: Optional[float] = Field(default=None)
    duration_s: int = Field(default=60)
    active: bool = Field(default=True)
    notes: Optional[str] = Field(default=None, sa_type=Text)
    deleted_at: Optional[datetime.datetime] = Field(default=None, index=True)


class OperatorLog(SQLModel, table=True):
    """What an operator did or saw, by machine."""

    id: Optional[int] = Field(default=None, primary_key=True)
    machine_id: Optional[int] = Field(default=None, foreign_key="machine.id",
                                      ondelete="SET NULL", index=True)
    operator: str = Field(max_length=100)
    level: str = Field(default="info", max_length=10)
    message: str = Field(sa_type=Text)
    created_at: datetime.datetime = Field(default_factory=_utcnow, index=True)


machines = ModelAccessor(Machine, "machines")
recipes = ModelAccessor(Recipe, "recipes")
operator_logs = ModelAccessor(OperatorLog, "operator_logs")
ACCESSORS = [machines, recipes, operator_logs]


def _reject(message: str, errors: dict) -> None:
    raise HTTPException(status_code=422, detail={"message": message, "errors": errors})


@machines.before_insert()
@machines.before_update()
def check_machine(session: Session, instance: Machine) -> None:
    if not instance.name or not str(instance.name).strip():
        _reject("a machine needs a name", {"name": "may not be blank"})
    if instance.status not in STATUSES:
        _reject("invalid status", {"status": "must be one of %s" % ", ".join(STATUSES)})
    if instance.max_speed_rpm is not None and instance.max_speed_rpm <= 0:
        _reject("max_speed_rpm must be positive", {"max_speed_rpm": "must be greater than 0"})


@recipes.before_insert()
@recipes.before_update()
def check_recipe(session: Session, instance: Recipe) -> None:
    errors = {}
    machine = session.get(Machine, instance.machine_id) if instance.machine_id else None
    if machine is None:
        errors["machine_id"] = "no such machine"
    elif not 0 <= instance.speed_rpm <= machine.max_speed_rpm:
        errors["speed_rpm"] = "must be between 0 and the machine's max_speed_rpm (%g)" \
            % machine.max_speed_rpm
    if instance.temperature_c is not None and not -40 <= instance.temperature_c <= 400:
        errors["temperature_c"] = "must be between -40 and 400"
    if instance.duration_s is not None and instance.duration_s <= 0:
        errors["duration_s"] = "must be greater than 0"
    if errors:
        _reject("invalid recipe: %s" % ", ".join(sorted(errors)), errors)


@operator_logs.before_insert()
def check_log(session: Session, instance: OperatorLog) -> None:
    if not instance.message or not str(instance.message).strip():
        _reject("a log line needs a message", {"message": "may not be blank"})
    if instance.level not in LEVELS:
        _reject("invalid level", {"level": "must be one of %s" % ", ".join(LEVELS)})


def seed() -> None:
    """The demo's first machine, two recipes and a log line, when the database is empty."""
    if machines.all(include_deleted=True):
        return
    with database.transaction():
        press = machines.insert(Machine(name="press-1", serial="PX-0001", location="hall A",
                                        max_speed_rpm=2400.0), actor="demo")
        recipes.insert(Recipe(machine_id=press.id, name="steel 2mm", speed_rpm=1200.0,
                              temperature_c=20.0, duration_s=45), actor="demo")
        recipes.insert(Recipe(machine_id=press.id, name="aluminium 1mm", speed_rpm=1800.0,
                              duration_s=30), actor="demo")
        operator_logs.insert(OperatorLog(machine_id=press.id, operator="demo",
                                         message="machine commissioned"), actor="demo")


def make_app(path: str, *, max_records: Optional[int] = None, pragmas: str = "vention",
             seeded: bool = True) -> FastAPI:
    """The reference app on the SQLite file ``path`` (call once per process)."""
    database.set_database_url("sqlite:///" + path)
    engine = database.get_engine()
    extra = PRAGMAS[pragmas]
    if extra:
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                for pragma in extra:
                    cursor.execute(pragma)
            finally:
                cursor.close()

    app = FastAPI(title="vention-storage 0.5.1 reference (peestore demo models)")
    bootstrap(app, accessors=ACCESSORS, create_tables=True,
              max_records_per_model=max_records, enable_db_router=True)
    if seeded:
        seed()
    return app


async def _serve(server: uvicorn.Server, sock: socket.socket, max_seconds: float) -> None:
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    if server.started:
        print("listening http://127.0.0.1:%d" % sock.getsockname()[1], flush=True)
        if max_seconds > 0:
            asyncio.get_running_loop().call_later(
                max_seconds, setattr, server, "should_exit", True)
    await task


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True, help="the SQLite file")
    parser.add_argument("--port", type=int, default=0, help="0 = a free port")
    parser.add_argument("--no-seed", action="store_true",
                        help="do not add the demo's first machine, recipes and log line")
    parser.add_argument("--max-records", type=int, default=None,
                        help="vention's per-model record limit (default: none)")
    parser.add_argument("--pragmas", choices=sorted(PRAGMAS), default="vention",
                        help="vention: SQLite as vention ships it; peestore: + WAL, "
                             "synchronous=NORMAL, busy_timeout")
    parser.add_argument("--max-seconds", type=float, default=3600.0,
                        help="stop by itself after this long (0 = never)")
    args = parser.parse_args(argv)

    app = make_app(args.db, max_records=args.max_records, pragmas=args.pragmas,
                   seeded=not args.no_seed)
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only when the
    # listening socket says TCP; without it every keep-alive request waits ~40 ms
    # (Nagle against delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    config = uvicorn.Config(app, log_level="warning", access_log=False, workers=1,
                            lifespan="off")
    server = uvicorn.Server(config)
    try:
        asyncio.run(_serve(server, sock, args.max_seconds))
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
