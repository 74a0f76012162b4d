"""JSON responses and errors: every answer of the REST API is JSON, errors included.

Errors have the shape ``{"detail": "message"}``; a 422 adds
``"errors": {"field": "message"}``.  Handlers raise :func:`error` (an
``HTTPResponse`` that Bottle sends as it is); the plugin turns everything
else (``bottle.HTTPError``, peestore's and peewee's exceptions, bugs) into
the same shape.
"""
from __future__ import annotations

import json
import logging

import bottle
import peewee

from ..errors import BusyError, DiskFullError, RestoreError, TooLargeError, ValidationError
from ..model._values import dumps

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, Optional

__all__ = ["JSON", "error", "json_response", "from_exception", "json_error_page",
           "install_error_pages", "is_unique_violation"]

log = logging.getLogger("peestore.rest")

JSON = "application/json"


def error(status: int, detail: str, errors: Optional[Dict[str, str]] = None,
          headers: Optional[Dict[str, str]] = None) -> bottle.HTTPResponse:
    """A JSON error response, ready to ``raise`` (or return) from a callback."""
    body: Dict[str, Any] = {"detail": detail}
    if errors:
        body["errors"] = errors
    text = dumps(body)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate the client sent (a field name, say), echoed back:
        # escaped, as UTF-8 cannot carry it.
        text = json.dumps(body, separators=(",", ":"))
    response = bottle.HTTPResponse(text, status, headers)
    response.set_header("Content-Type", JSON)
    return response


def json_response(body: Any, status: int = 200,
                  headers: Optional[Dict[str, str]] = None) -> bottle.HTTPResponse:
    """``body`` (JSON-safe, or JSON text already) as a response."""
    text = body if isinstance(body, str) else dumps(body)
    response = bottle.HTTPResponse(text, status, headers)
    response.set_header("Content-Type", JSON)
    return response


def is_unique_violation(exc: peewee.IntegrityError) -> bool:
    """True when ``exc`` is a unique (or primary key) conflict, on any backend."""
    for candidate in _causes(exc):
        if getattr(candidate, "pgcode", None) == "23505":     # PostgreSQL unique_violation
            return True
        args = getattr(candidate, "args", ())
        if args and args[0] in (1062, 1586):                   # MySQL ER_DUP_ENTRY(_WITH_KEY_NAME)
            return True
        text = str(candidate)
        if "UNIQUE constraint failed" in text or "duplicate key" in text.lower() \
                or "Duplicate entry" in text:
            return True
    return False


def _causes(exc: BaseException) -> list:
    # peewee re-raises the driver's exception as its own, keeping the
    # original as the first argument and as the cause.
    found = [exc]
    if exc.args and isinstance(exc.args[0], BaseException):
        found.append(exc.args[0])
    for linked in (exc.__cause__, exc.__context__):
        if linked is not None:
            found.append(linked)
    return found


def _constraint_message(exc: Exception) -> str:
    # The driver's own message, first line only: it names the constraint but
    # carries no SQL text or values beyond what the client sent.
    for candidate in _causes(exc):
        args = getattr(candidate, "args", ())
        texts = [a for a in args if isinstance(a, str) and a.strip()]
        if texts:
            return texts[-1].strip().splitlines()[0]
    return "constraint failed"


_BUSY = ("database is locked", "database is busy", "database table is locked",
         "lock wait timeout", "deadlock", "could not obtain lock", "lock timeout")


def is_busy(exc: BaseException) -> bool:
    """Whether a database error means "locked by another writer, try again"."""
    text = str(exc).lower()
    return any(marker in text for marker in _BUSY)


def from_exception(exc: BaseException) -> bottle.HTTPResponse:
    """The JSON response for an exception a callback raised."""
    if isinstance(exc, bottle.HTTPError):
        return _from_http_error(exc)
    if isinstance(exc, ValidationError):
        return error(422, str(exc) or "invalid data", exc.errors)
    if isinstance(exc, json.JSONDecodeError):
        # A route's bottle.request.json on a malformed body: bottle 0.13 answers
        # 400 itself, bottle 0.12 lets the parser's error through.
        return error(400, "malformed JSON: %s" % exc)
    if isinstance(exc, RestoreError):
        return error(422, str(exc) or "invalid backup file")
    if isinstance(exc, BusyError):
        response = error(503, str(exc) or "the database is busy; nothing was changed, "
                         "try again")
        response.set_header("Retry-After", str(max(1, int(exc.retry_after))))
        return response
    if isinstance(exc, TooLargeError):
        return error(413, str(exc) or "too large")
    if isinstance(exc, DiskFullError):
        return error(507, str(exc))
    if isinstance(exc, (peewee.OperationalError, OSError)):
        from ..db._space import full_error, is_disk_full

        if is_disk_full(exc):  # not through a unit of work: an upload, an export
            from ..db._connect import database

            return error(507, str(full_error(exc, database.obj, what="the request")))
    if isinstance(exc, peewee.IntegrityError):
        if is_unique_violation(exc):
            return error(409, "conflict: %s" % _constraint_message(exc))
        return error(422, "constraint failed: %s" % _constraint_message(exc))
    if isinstance(exc, peewee.DataError):
        return error(422, "invalid value: %s" % _constraint_message(exc))
    if isinstance(exc, peewee.OperationalError) and is_busy(exc):
        # Not the client's fault and not a bug: another writer held the lock
        # past the wait limit (SQLite busy_timeout, a server's lock timeout).
        log.warning("%s %s: database busy: %s", bottle.request.method, bottle.request.path, exc)
        response = error(503, "the database is busy with other writes; nothing was "
                         "changed, try again")
        response.set_header("Retry-After", "1")
        return response
    log.error("unhandled error in %s %s", bottle.request.method, bottle.request.path,
              exc_info=(type(exc), exc, exc.__traceback__))
    return error(500, "internal server error")


def _from_http_error(exc: bottle.HTTPError) -> bottle.HTTPResponse:
    status = exc.status_code
    if status >= 500:
        detail = "internal server error" if status == 500 else exc.status_line[4:]
        if exc.exception is not None:
            log.error("error in %s %s: %r", bottle.request.method, bottle.request.path,
                      exc.exception)
    else:
        detail = exc.body if isinstance(exc.body, str) and exc.body else exc.status_line[4:]
    response = error(status, detail)
    for name, value in exc.headerlist:
        if name.lower() != "content-type":
            response.add_header(name, value)
    return response


def json_error_page(res: bottle.HTTPError) -> str:
    """A Bottle ``default_error_handler`` that answers JSON (404, 405, uncaught 500)."""
    bottle.response.content_type = JSON
    status = res.status_code
    if status >= 500:
        detail = "internal server error" if status == 500 else res.status_line[4:]
    else:
        detail = res.body if isinstance(res.body, str) and res.body else res.status_line[4:]
    return dumps({"detail": detail})


def install_error_pages(app: bottle.Bottle) -> None:
    """Make ``app``'s own errors (unknown URL, wrong method...) JSON.

    ``RestPlugin.setup`` does this for its app; call it on a parent app that
    you ``mount()`` a peestore app into with a trailing-slash prefix, since
    Bottle then routes (and answers 404s) in the parent.
    """
    app.default_error_handler = json_error_page
