"""``GET /db/health``, ``GET /db/audit`` and (``peestore.rest._changes``) ``GET /db/changes``."""
from __future__ import annotations

import logging
import time

import bottle
import peewee

from ..audit._log import OPERATIONS, AuditLog
from ..db._dialect import dialect_of
from ..db._connect import get_database
from ..model._values import dumps, from_json_value
from ._fields import check_text
from ._filters import check_length, parse_int_param, query_params, shown
from ._responses import JSON, error, json_response

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["add_db_routes", "health", "audit", "AUDIT_PARAMS", "backend_name", "disk_report"]

log = logging.getLogger("peestore.rest")

AUDIT_PARAMS = ("component", "record_id", "actor", "operation", "since", "until",
                "limit", "offset")


def backend_name(db: peewee.Database) -> str:
    """``sqlite``, ``postgresql``, ``mysql`` or the class name."""
    name = dialect_of(db).name
    return name if name != "other" else type(db).__name__


def health() -> Any:
    """GET /db/health: 200 when a real ``SELECT 1`` answers, else 503."""
    db = get_database()
    started = time.perf_counter()
    try:
        db.execute_sql("SELECT 1").fetchone()
    except Exception as exc:  # any failure to answer is "unhealthy", never a 500
        log.warning("health check failed: %s", exc)
        return json_response({"status": "error", "database": backend_name(db),
                              "detail": "the database did not answer (%s)"
                                        % type(exc).__name__}, 503)
    elapsed = (time.perf_counter() - started) * 1000.0
    bottle.response.content_type = JSON
    disk, warnings = disk_report(db)
    return dumps({"status": "ok", "database": backend_name(db),
                  "latency_ms": round(elapsed, 3), "disk": disk, "warnings": warnings})


def disk_report(db: peewee.Database) -> Any:
    """``(disk, warnings)`` for ``/db/health``: the free space of a SQLite file's disk
    and its sizes (None for a server database), and "low disk" while it is under
    twice ``min_free_bytes``."""
    from ..db._space import DiskSpace, disk_space, file_sizes, human

    path = db.database if dialect_of(db).has_file else None
    space = disk_space(db)
    if space is None:
        if not path or str(path) == ":memory:" or str(path).startswith("file:"):
            return None, []
        import os

        space = DiskSpace(os.path.dirname(os.path.abspath(str(path))), 0)
    free = space.measure()
    database_bytes, wal_bytes = file_sizes(str(path))
    writable = free is None or free >= space.min_free
    disk = {"free_bytes": free, "min_free_bytes": space.min_free,
            "database_bytes": database_bytes, "wal_bytes": wal_bytes,
            "low": space.low() or not writable, "writable": writable}
    warnings = []
    if not writable:
        warnings.append("disk full: %s free, under min_free_bytes (%s): writes are refused "
                        "until space is freed" % (human(free), human(space.min_free)))
    elif disk["low"]:
        warnings.append("low disk: %s free; writes stop under %s"
                        % (human(free), human(space.min_free)))
    return disk, warnings


def audit() -> str:
    """GET /db/audit: audit entries, newest first, filtered; X-Total-Count."""
    query = query_params()
    for name, value in query.allitems():
        if name not in AUDIT_PARAMS:
            raise error(400, "unknown query parameter %s; use %s"
                        % (shown(name), ", ".join(AUDIT_PARAMS)))
        check_length(name, value)
    where = []
    for name in ("component", "record_id", "actor"):
        if name in query:
            try:
                check_text(query[name])
            except ValueError as exc:
                raise error(400, "query parameter %s: %s" % (name, exc)) from None
            where.append(getattr(AuditLog, name) == query[name])
    if "operation" in query:
        operation = query["operation"]
        if operation not in OPERATIONS:
            raise error(400, "query parameter operation: %r is not one of %s"
                        % (operation, ", ".join(OPERATIONS)))
        where.append(AuditLog.operation == operation)
    for name in ("since", "until"):
        if name in query:
            try:
                when = from_json_value(AuditLog.timestamp, query[name])
            except ValueError:
                raise error(400, "query parameter %s: expected an ISO 8601 date and time "
                            "(UTC unless it has an offset), got %r"
                            % (name, query[name])) from None
            where.append(AuditLog.timestamp >= when if name == "since"
                         else AuditLog.timestamp <= when)
    limit = parse_int_param("limit", query["limit"], 1, 1000) if "limit" in query else 100
    offset = parse_int_param("offset", query["offset"]) if "offset" in query else 0
    select = AuditLog.select()
    if where:
        select = select.where(*where)
    entries = list(select.order_by(AuditLog.id.desc()).limit(limit).offset(offset))
    count = len(entries)
    if count < limit and (count or not offset):
        total = offset + count
    else:
        counter = AuditLog.select(peewee.fn.COUNT(peewee.SQL("*")))
        total = (counter.where(*where) if where else counter).scalar()
    response = bottle.response
    response.content_type = JSON
    response.set_header("X-Total-Count", str(total))
    return dumps([entry.to_dict(with_changed=True) for entry in entries])


def verify(plugin: Any) -> str:
    """GET /db/audit/verify: the hash chain checked (``peestore.verify_audit``); admin
    only when the plugin has ``authenticate``.  ``head_id`` and ``head_hash`` name
    a head saved earlier that must still be in the chain."""
    plugin.require_admin()
    query = query_params()
    for name in query:
        if name not in ("head_id", "head_hash"):
            raise error(400, "unknown query parameter %s; use head_id and head_hash"
                        % shown(name))
    expect = None
    if "head_id" in query or "head_hash" in query:
        if "head_id" not in query or "head_hash" not in query:
            raise error(400, "give both head_id and head_hash (a head verify answered)")
        digest = query["head_hash"].strip().lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise error(400, "query parameter head_hash: expected 64 hexadecimal digits")
        expect = {"id": parse_int_param("head_id", query["head_id"], 1), "hash": digest}
    from ..audit._verify import verify_audit

    bottle.response.content_type = JSON
    return dumps(verify_audit(expect_head=expect))


def backups(plugin: Any) -> str:
    """GET /db/backups: the rotating backups of ``serve(backup_dir=...)``, newest
    first (empty when the server keeps none); admin only when the plugin has
    ``authenticate``."""
    plugin.require_admin()
    for name in query_params():
        raise error(400, "unknown query parameter %r; /db/backups takes none" % name)
    from ..tools._rotate import list_backups, serving

    directory = serving["directory"]
    bottle.response.content_type = JSON
    return dumps(list_backups(directory) if directory is not None else [])


def add_db_routes(app: bottle.Bottle, plugin: Any) -> None:
    """Add ``/db/health``, ``/db/audit``, ``/db/audit/verify``, ``/db/backups`` and
    ``/db/changes`` under the plugin's prefix."""
    app.route(plugin.route_path("/db/health"), "GET", health, name="peestore.db.health")
    app.route(plugin.route_path("/db/audit"), "GET", audit, name="peestore.db.audit")
    app.route(plugin.route_path("/db/audit/verify"), "GET", lambda: verify(plugin),
              name="peestore.db.audit.verify")
    app.route(plugin.route_path("/db/backups"), "GET", lambda: backups(plugin),
              name="peestore.db.backups")

    def changes() -> Any:
        from ._changes import changes as stream

        return stream(plugin)

    app.route(plugin.route_path("/db/changes"), "GET", changes, name="peestore.db.changes")
