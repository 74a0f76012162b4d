"""Every private name of peewee, playhouse, bottle and waitress that peestore uses.

A private name is one with a leading underscore, or an attribute the
dependency's documentation does not describe.  (peewee documents
``Model._meta`` and the ``__sql__`` protocol, and uses ``Model.__data__`` in
its recipes: those count as public.)

peestore builds on its dependencies' public APIs; where one does not reach
(the speed of the write path, the server's channel), the private name is used
here and only here, behind a small function or constant with a docstring that
says what it is for.  At import, ``check()`` makes sure each one exists in
the installed versions and raises ``ConfigurationError`` naming the
dependency and its version otherwise, so an upgrade that removes one fails at
start, with a message, not in the middle of a write.

The waitress names are checked when the server is first made (``check_waitress``):
a process that only uses the models never imports waitress.
"""
from __future__ import annotations

import functools
import json
import socket
import threading
import time
import weakref

import peewee

from .errors import ConfigurationError

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple
    # screen(method, path, host, environ) -> None or (body_limit, setting, refusal)
    Screen = Callable[[str, str, Optional[str], Callable[[], Dict[str, Any]]], Any]

__all__ = [
    "check", "check_waitress",
    # model classes and fields
    "field_names", "auto_increment", "composite_key", "has_foreign_keys", "field_defaults",
    "field_named", "fields_by_column", "target_field", "datetime_formats",
    # databases and SQL
    "render", "last_insert_id", "returns_by_default", "quote_name", "parameter",
    "locks_rows", "connection_params", "set_sqlite_pragmas", "sqlite_pragmas",
    "opens_with_sqlite3", "pool_limits", "close_pooled", "ConnectHook", "detach_connection",
    "attach_connection", "exception_wrapper",
    # model instances
    "LOADED", "dirty_names", "pk_condition", "prune_fields", "populate_relations",
    "normalize_data",
    # queries
    "query_where", "set_query_where", "update_values", "set_update_values", "insert_data",
    "insert_columns", "on_conflict", "chainable", "ExecuteHook",
    # playhouse.signals
    "signal_receivers", "set_signal_receivers",
    # bottle
    "mounted_apps", "mounts",
    # waitress
    "server_channel", "use_channel", "server_addresses", "stop_server", "StreamWatch",
]


# -- peewee: model classes and fields --------------------------------------------------
# ``Model._meta`` is documented, with ``database``, ``table_name``,
# ``primary_key``, ``fields``, ``sorted_fields`` and ``schema``; these are not.

def field_names(model: type) -> List[str]:
    """The names of ``model``'s fields, in table order (``sorted_field_names``)."""
    return model._meta.sorted_field_names


def auto_increment(model: type) -> bool:
    """Whether ``model``'s key is given by the database (``auto_increment``)."""
    return bool(model._meta.auto_increment)


def composite_key(model: type) -> bool:
    """Whether ``model``'s primary key spans several columns (``composite_key``)."""
    return bool(model._meta.composite_key)


def has_foreign_keys(model: type) -> bool:
    """Whether ``model`` has a foreign key field (``refs``)."""
    return bool(model._meta.refs)


def field_defaults(model: type) -> Dict[peewee.Field, Any]:
    """``{field: default}`` for each field of ``model`` with a default (``defaults``)."""
    return model._meta.defaults


def field_named(model: type, name: str) -> peewee.Field:
    """The field of ``model`` with this name or column name (``combined``)."""
    return model._meta.combined[name]


def fields_by_column(model: type) -> Dict[str, peewee.Field]:
    """``{column name: field}`` of ``model`` (``columns``)."""
    return dict(model._meta.columns)


def target_field(field: peewee.ForeignKeyField) -> peewee.Field:
    """The field a foreign key refers to (``rel_field``)."""
    return field.rel_field


def datetime_formats(field: peewee.Field) -> List[str]:
    """The formats a ``DateTimeField`` parses its text with (``formats``)."""
    return list(field.formats)


# -- peewee: databases and SQL ---------------------------------------------------------

def render(db: peewee.Database, query: peewee.Node) -> Tuple[str, list]:
    """``query``'s SQL and parameters in ``db``'s dialect, whatever it is bound to
    (``Database.get_sql_context``)."""
    return db.get_sql_context().sql(query).query()


def last_insert_id(db: peewee.Database, cursor: Any) -> Any:
    """The key a one-row INSERT just made, as ``Model.insert().execute()`` returns it."""
    return db.last_insert_id(cursor, peewee.Insert.SIMPLE)


def returns_by_default(db: peewee.Database) -> bool:
    """Whether ``db`` was made with ``returning_clause=True`` (its inserts return keys)."""
    return bool(db.returning_clause)


def quote_name(db: peewee.Database, name: str) -> str:
    """``name`` as an identifier in ``db``'s SQL (``quote``)."""
    return name.join(db.quote)


def parameter(db: peewee.Database) -> str:
    """The placeholder of a bound parameter in ``db``'s SQL (``param``)."""
    return db.param


def locks_rows(db: peewee.Database) -> bool:
    """Whether ``db`` has ``SELECT ... FOR UPDATE`` (``for_update``)."""
    return bool(db.for_update)


# -- peewee: model instances ----------------------------------------------------

#: The keyword peewee passes to a model's constructor for a row read from the
#: database (its defaults are not applied then): ``LOADED in kwargs``.
LOADED = "__no_default__"


def dirty_names(instance: peewee.Model) -> Set[str]:
    """The names of the fields set since the row was loaded or saved (``_dirty``)."""
    return instance._dirty


def pk_condition(instance: peewee.Model) -> peewee.Expression:
    """``primary_key == instance's key`` (``Model._pk_expr``)."""
    return instance._pk_expr()


def prune_fields(instance: peewee.Model, data: Dict[str, Any], only: Iterable[Any]
                 ) -> Dict[str, Any]:
    """``data`` narrowed to the fields ``only`` names, as ``save(only=...)`` does."""
    return instance._prune_fields(data, only)


def populate_relations(instance: peewee.Model, data: Dict[str, Any]) -> None:
    """Fill in foreign keys to related instances saved since they were assigned, as
    ``save()`` does (``Model._populate_unsaved_relations``)."""
    instance._populate_unsaved_relations(data)


def normalize_data(model: type, data: Any, kwargs: Dict[str, Any]) -> Any:
    """``Model.update``/``insert`` arguments as ``{field: value}`` (``_normalize_data``)."""
    return model._normalize_data(data, kwargs)


# -- peewee: queries ---------------------------------------------------------------

def query_where(query: peewee.Query) -> Any:
    """A query's WHERE expression, or None (``Query._where``)."""
    return query._where


def set_query_where(query: peewee.Query, where: Any) -> None:
    """Replace a query's WHERE expression in place (a clone peestore just made)."""
    query._where = where


def query_ordering(query: peewee.Query) -> Tuple[Any, Any, Any]:
    """A write query's ``order_by``, ``limit`` and ``offset`` (``_order_by``...)."""
    return query._order_by or (), query._limit, query._offset


def set_query_ordering(query: peewee.Query, order_by: Any, limit: Any, offset: Any) -> None:
    """Replace a write query's ``order_by``, ``limit`` and ``offset`` in place."""
    query._order_by, query._limit, query._offset = order_by or None, limit, offset


def update_values(query: peewee.ModelUpdate) -> Dict[Any, Any]:
    """An UPDATE's ``{field: value or expression}`` (``_update``)."""
    return query._update


def set_update_values(query: peewee.ModelUpdate, values: Dict[Any, Any]) -> None:
    """Replace an UPDATE's values in place."""
    query._update = values


def insert_data(query: peewee.ModelInsert) -> Any:
    """An INSERT's rows: a dict, a list of dicts or tuples, or a query (``_insert``)."""
    return query._insert


def insert_columns(query: peewee.ModelInsert) -> Any:
    """An INSERT's explicit columns, or None (``_columns``)."""
    return query._columns


def on_conflict(query: peewee.ModelInsert) -> Any:
    """An INSERT's ON CONFLICT clause, or None (``_on_conflict``)."""
    return query._on_conflict


#: peewee's decorator for a query method that returns a changed copy (``Node.copy``).
chainable = peewee.Node.copy


class ExecuteHook:
    """Put this before a peewee write query class to take over its execution:
    ``execute()`` calls ``run_audited(database)``, which may call
    ``run_plain(database)`` to run the statement as peewee would
    (``BaseQuery._execute``)."""

    def _execute(self, database: peewee.Database) -> Any:
        return self.run_audited(database)

    def run_plain(self, database: peewee.Database) -> Any:
        return super()._execute(database)

    def run_audited(self, database: peewee.Database) -> Any:
        raise NotImplementedError


# -- peewee: databases and pools ------------------------------------------------------

def connection_params(db: peewee.Database) -> Dict[str, Any]:
    """The keyword arguments ``db`` passes to its driver's ``connect`` (``connect_params``)."""
    return getattr(db, "connect_params", None) or {}


def set_sqlite_pragmas(db: peewee.SqliteDatabase, pragmas: Dict[str, Any]) -> None:
    """Replace the pragmas ``db`` runs on each new connection (``_pragmas``)."""
    db._pragmas = list(pragmas.items())


def sqlite_pragmas(db: peewee.SqliteDatabase) -> Dict[str, Any]:
    """The pragmas ``db`` runs on each new connection."""
    return dict(db._pragmas or ())


def opens_with_sqlite3(db: peewee.Database, own_modules: Iterable[str]) -> bool:
    """Whether ``db`` opens its connections with ``sqlite3.connect`` (which takes a
    ``factory``), not with a driver of its own (APSW, sqlcipher): the nearest
    class defining ``_connect`` is peewee's ``SqliteDatabase``, skipping the
    pools' (which call the database's own) and those of ``own_modules``."""
    skip = ("playhouse.pool",) + tuple(own_modules)
    for klass in type(db).__mro__:
        if "_connect" in vars(klass):
            if klass.__module__ in skip:
                continue
            return klass is peewee.SqliteDatabase
    return False


def pool_limits(db: peewee.Database) -> Tuple[Any, Any]:
    """A ``playhouse.pool`` database's ``(max_connections, stale_timeout)``."""
    return db._max_connections, db._stale_timeout


def close_pooled(db: peewee.Database, conn: Any) -> None:
    """Close a connection checked out of ``db``'s pool, and forget it there."""
    db._close(conn, close_conn=True)


class ConnectHook:
    """Put this before a ``playhouse.pool`` database class to offer it a connection
    before it goes to its pool: ``reuse_connection()`` returns one or None
    (peewee's ``Database._connect``)."""

    def _connect(self) -> Any:
        conn = self.reuse_connection()
        return conn if conn is not None else super()._connect()

    def reuse_connection(self) -> Any:
        return None


def detach_connection(db: peewee.Database) -> Any:
    """This thread's open connection to ``db``, now closed for peewee but not
    closed; None (nothing done) when it has none or it is in a transaction or a
    ``connection_context``.  (peewee's per-thread ``_state``.)"""
    state = db._state
    conn = state.conn
    if (state.closed or conn is None or state.transactions or state.ctx
            or conn.in_transaction):
        return None
    # What reset() does; its lists are empty already.
    state.conn, state.closed = None, True
    return conn


def attach_connection(db: peewee.Database, conn: Any) -> None:
    """Make ``conn`` this thread's open connection to ``db`` (closed for peewee now)."""
    state = db._state
    # What set_connection() does, without new lists: detach_connection left them empty.
    state.conn, state.closed = conn, False


# -- bottle ---------------------------------------------------------------------------

def mounted_apps(app: Any) -> List[Any]:
    """The apps mounted into a Bottle ``app`` (see ``mounts``)."""
    return [mounted for mounted, _ in mounts(app)]


def mounts(app: Any) -> List[Tuple[Any, str]]:
    """``(mounted app, prefix)`` for each app mounted into a Bottle ``app``: the prefix
    is what a request path has in front of the mounted app's route rules.

    bottle 0.13 merges a mounted Bottle app's routes into the parent (each
    keeps its own ``app``, its rule rewritten with the prefix: prefix ``""``);
    bottle 0.12 (and 0.13 for a plain WSGI app) routes to it through one route
    whose ``mountpoint`` config names it and its prefix.
    """
    found = []
    for route in getattr(app, "routes", None) or ():
        owner = getattr(route, "app", None)
        if owner is not None and owner is not app:
            found.append((owner, ""))
        config = getattr(route, "config", None) or {}
        target = config.get("mountpoint.target")
        prefix = config.get("mountpoint.prefix")
        if target is None:
            mountpoint = config.get("mountpoint")
            if isinstance(mountpoint, dict):
                target, prefix = mountpoint.get("target"), mountpoint.get("prefix")
        if target is not None:
            segments = [p for p in str(prefix or "").split("/") if p]
            found.append((target, "/" + "/".join(segments) if segments else ""))
    return found


# -- playhouse.signals -------------------------------------------------------------

def signal_receivers(signal: Any) -> Any:
    """What a ``playhouse.signals.Signal`` has connected, to give back to
    ``set_signal_receivers`` (``_receivers``, ``_receiver_list``)."""
    return set(signal._receivers), list(signal._receiver_list)


def set_signal_receivers(signal: Any, receivers: Any) -> None:
    """Make a signal's receivers exactly what ``signal_receivers`` returned."""
    signal._receivers, signal._receiver_list = set(receivers[0]), list(receivers[1])


#: peewee's context manager that turns a driver's exception into peewee's own.
exception_wrapper = peewee.__exception_wrapper__


# -- waitress (imported when the first server is made) -------------------------------

# Unsent bytes of a running task's answer at which the main loop helps send.
_HELP_AT = 256 * 1024
# Seconds a connection closed after an error answer keeps dropping what its
# client still sends, so the client reads the answer rather than a reset.
_LINGER = 10


def server_channel(header_timeout: Optional[float] = None,
                   screen: Optional[Screen] = None) -> type:
    """waitress' ``HTTPChannel`` as peestore serves with it (``QuietChannel`` below),
    with a deadline for request headers and a ``screen`` of requests.

    ``header_timeout``: seconds a connection may take to send a request's
    line and headers, counted from when it opens or its last answer was
    sent; past it the connection is closed (an idle keep-alive connection
    too).  None: no deadline.

    ``screen(method, path, host, environ)`` is called in the server's loop
    once a request's headers are in and before its body is read (``path`` as
    the app's ``PATH_INFO`` will be, ``host`` its ``Host`` header or None,
    ``environ()`` builds the request's WSGI environ without a body).  It
    returns None, or ``(body_limit, setting, refusal)``: the most bytes this
    request's body may have (waitress' ``max_request_body_size`` stays the
    upper bound; ``setting`` names the limit in the 413), and None or
    ``(status line, headers, body bytes)`` to answer instead of reading the
    body (the connection is then closed).
    """
    base = _quiet_channel()
    if header_timeout is None and screen is None:
        return base
    return type("PeestoreChannel", (base,), {"header_timeout": header_timeout,
                                             "screen": staticmethod(screen) if screen
                                             else None})


@functools.cache
def _quiet_channel() -> type:
    """waitress' ``HTTPChannel``, without the main loop's busy wait on a running task.

    A worker thread sends its answer itself (``write_soon`` flushes under the
    channel's ``outbuf_lock``).  Meanwhile the main loop sees bytes in the
    buffer, calls the channel writable, finds the lock taken, sends nothing
    and asks again at once: a busy loop that holds the GIL the worker needs
    to finish (2-10x the CPU per request with 4 clients at once).  Here a
    channel with a running task is writable only once its unsent answer
    reaches ``_HELP_AT`` (a slow client; the worker keeps trying to send, and
    waits only at waitress' far higher ``outbuf_high_watermark``).  When the
    task ends, the worker wakes the loop (``service`` pulls the trigger),
    which sends whatever is left.

    Its errors are JSON (``_json_error_task``), and a connection that waitress'
    ``channel_timeout`` ends is closed even when its client has stopped
    reading: waitress marks an idle channel ``will_close`` and closes it when
    the socket turns writable, which it never does while the client's
    receive window stays full, so the connection and the answer it holds
    (a backup download's file and slot) would stay until the client left.
    The channel checks its own timeouts on each turn of the loop (at least
    once a second) rather than at waitress' ``cleanup_interval``.

    After an error answer that closes the connection (a 401 or 413 given
    before the body was read), the channel does not close at once: a client
    still sending its body would get a reset and lose the answer.  It sends
    the answer, shuts its side down and reads and drops what still comes, for
    ``_LINGER`` seconds at most and no more than the request's body could
    hold (its ``Content-Length`` up to the server's limit; a chunked body's
    own limit), before it closes.
    """
    check_waitress()
    from waitress.channel import HTTPChannel
    from waitress.parser import HTTPRequestParser

    class QuietChannel(HTTPChannel):
        error_task_class = _json_error_task()
        header_timeout: Optional[float] = None
        screen: Optional[Screen] = None
        waiting_since: Optional[float] = None  # waiting for a request's headers since
        linger_after = 0  # after an error answer: bytes to drop when closing (see above)
        lingering_until: Optional[float] = None
        streaming: Any = None  # the request answered with an event stream (StreamWatch)

        def parser_class(self, adj: Any) -> Any:  # waitress: self.parser_class(self.adj)
            if self.screen is None:
                return HTTPRequestParser(adj)
            return _screened_parser()(adj, self)

        def readable(self) -> bool:
            if self.streaming is not None and self._streaming():
                # Read while the stream runs, so that a client that hangs up is
                # seen (waitress reads nothing while a request is answered).
                return not (self.will_close or self.close_when_flushed)
            if self.lingering_until is not None:
                if not self.connected or time.time() > self.lingering_until:
                    HTTPChannel.handle_close(self)
                    return False
                return True
            if self.requests:
                self.waiting_since = None  # a request is being answered
            elif not (self.will_close or self.close_when_flushed) and self._expired():
                self.will_close = True  # closed by handle_write, or by writable below
                return False
            return super().readable()

        def _expired(self) -> bool:
            now = time.time()
            if now - self.last_activity > self.adj.channel_timeout:
                return True
            if self.header_timeout is None:
                return False
            request = self.request
            if self.total_outbufs_len or (request is not None and request.headers_finished):
                self.waiting_since = None  # answering, or reading a body
                return False
            if self.waiting_since is None:
                self.waiting_since = now
                return False
            return now - self.waiting_since > self.header_timeout

        def _streaming(self) -> bool:
            requests = self.requests
            if requests and requests[0] is self.streaming:
                return True
            self.streaming = None  # answered: a keep-alive connection reads as usual
            return False

        def received(self, data: bytes) -> bool:
            if self.streaming is not None and self._streaming():
                return False  # an event stream's client has nothing more to say: dropped
            if self.lingering_until is not None:
                # Dropped: the answer is sent.
                self.linger_after -= len(data)
                if self.linger_after < 0:
                    HTTPChannel.handle_close(self)
                return False
            return super().received(data)

        def handle_close(self) -> None:
            if self.linger_after and self.lingering_until is None and self.connected \
                    and not self.total_outbufs_len:
                try:
                    self.socket.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                else:
                    self.lingering_until = time.time() + _LINGER
                    self.will_close = self.close_when_flushed = False
                    return
            super().handle_close()

        def writable(self) -> bool:
            if self.lingering_until is not None:
                return False
            if self.will_close or self.close_when_flushed:
                if self.will_close and not self.requests and self.total_outbufs_len \
                        and self.last_activity < time.time() - self.adj.channel_timeout:
                    # Timed out with unsent bytes: see above.
                    self.handle_close()
                    return False
                return True
            pending = self.total_outbufs_len
            if not pending:
                return False
            return not self.requests or pending >= _HELP_AT

    return QuietChannel


class _RequestLimits:
    """waitress' settings (``Adjustments``) for one request, with its own body limit."""

    def __init__(self, adj: Any, body_limit: int, setting: str) -> None:
        self._adj = adj
        self.max_request_body_size = body_limit
        self.body_limit_setting = setting

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adj, name)


class _Refusal:
    """An answer a ``screen`` gave for a request, in place of reading its body."""

    code = 0

    def __init__(self, answer: Tuple[str, List[Tuple[str, str]], bytes]) -> None:
        self.answer = answer
        self.code = int(answer[0].split()[0])

    def to_response(self, *args: Any) -> Tuple[str, List[Tuple[str, str]], bytes]:
        status, headers, body = self.answer
        return status, list(headers), body


@functools.cache
def _screened_parser() -> type:
    """waitress' request parser that asks the channel's ``screen`` about each request
    once its headers are in (``parse_header``), before any of its body is read."""
    from waitress.parser import HTTPRequestParser
    from waitress.task import WSGITask

    class ScreenedParser(HTTPRequestParser):
        refusal: Optional[_Refusal] = None

        def __init__(self, adj: Any, channel: Any) -> None:
            super().__init__(adj)
            self.channel = channel

        def parse_header(self, header_plus: bytes) -> None:
            super().parse_header(header_plus)
            judged = self.channel.screen(self.command.upper(), self._path_info(),
                                         self.headers.get("HOST"), self._environ)
            if judged is None:
                return
            limit, setting, refusal = judged
            if limit is not None and limit < self.adj.max_request_body_size:
                # waitress compares every body with adj.max_request_body_size.
                self.adj = _RequestLimits(self.adj, limit, setting)
            if refusal is not None:
                self.refusal = _Refusal(refusal)

        def received(self, data: bytes) -> int:
            consumed = super().received(data)
            if self.refusal is not None and self.headers_finished \
                    and self.error is not self.refusal:
                self.error = self.refusal
                self.completed = True
            if self.error is not None:
                self.expect_continue = False  # no "100 Continue": the body is not wanted
            return consumed

        def _path_info(self) -> str:
            # As waitress' WSGITask.get_environment makes PATH_INFO.
            path = self.path
            if path.startswith("/"):
                path = "/" + path.lstrip("/")
            prefix = self.channel.server.adj.url_prefix
            if prefix:
                if path == prefix:
                    return ""
                if path.startswith(prefix + "/"):
                    return path[len(prefix):]
            return path

        def _environ(self) -> Dict[str, Any]:
            import io

            environ = dict(WSGITask(self.channel, self).get_environment())
            environ["wsgi.input"] = io.BytesIO()
            return environ

    return ScreenedParser


class _JsonError:
    """One of waitress' own error answers (an ``Error`` of ``waitress.utilities``),
    given as JSON ``{"detail": ...}`` like every other answer of the API."""

    def __init__(self, error: Any, body_limit: int,
                 setting: str = "max_request_body_size") -> None:
        self.error = error
        self.body_limit = body_limit
        self.setting = setting

    def to_response(self, *args: Any) -> Tuple[str, list, Any]:
        # waitress' own answer first: its status line, and its body's type
        # (text before waitress 3, bytes since).
        status, _, original = self.error.to_response(*args)
        code = self.error.code
        if code == 413:
            where = "the server's" if self.setting == "max_request_body_size" else \
                "this route's"
            detail = ("request body over %s limit of %d bytes (%s)"
                      % (where, self.body_limit - 1, self.setting))
        elif code == 500:
            # The app failed; the body may hold a traceback (expose_tracebacks).
            detail = "internal server error"
        else:
            detail = "%s: %s" % (self.error.reason, self.error.body)
        body = json.dumps({"detail": detail})  # ASCII: any waitress can send it
        if isinstance(original, bytes):
            body = body.encode("ascii")
        return status, [("Content-Type", "application/json")], body


@functools.cache
def _json_error_task() -> type:
    """waitress' ``ErrorTask``, answering JSON: its 4xx for a request it refuses
    before the app sees it (a body over ``max_request_body_size``, a malformed
    request), a screen's refusal as the screen gave it, and its 500 when the app
    itself fails."""
    from waitress.task import ErrorTask

    class JsonErrorTask(ErrorTask):
        def execute(self) -> None:
            # What the client may still send: its Content-Length (up to the
            # server's limit), else (chunked) up to its request's own limit.
            request = self.request
            length = getattr(request, "content_length", 0)
            if length > 0:
                drop = min(length, self.channel.adj.max_request_body_size)
            else:
                drop = getattr(request, "adj", self.channel.adj).max_request_body_size
            self.channel.linger_after = drop
            error = self.request.error
            if not isinstance(error, _Refusal):
                adj = getattr(self.request, "adj", None) or self.channel.adj
                self.request.error = _JsonError(
                    error, adj.max_request_body_size,
                    getattr(adj, "body_limit_setting", "max_request_body_size"))
            super().execute()

    return JsonErrorTask


class StreamWatch:
    """What a long answer (an event stream) needs to know of its waitress connection."""

    def __init__(self, environ: Dict[str, Any]) -> None:
        check = environ.get("waitress.client_disconnected")
        channel = getattr(check, "__self__", None)
        self._check = check
        self._channel = channel if hasattr(channel, "total_outbufs_len") else None
        if self._channel is not None and hasattr(channel, "streaming") and channel.requests:
            # peestore's channel: read while answering, so a hang-up is seen at once.
            channel.streaming = channel.requests[0]

    def gone(self) -> bool:
        """True once the client has hung up (as far as the server has seen)."""
        if self._channel is not None:
            return not self._channel.connected
        return bool(self._check()) if callable(self._check) else False

    def unsent(self) -> int:
        """Bytes written for the client that it has not taken yet (0 when unknown)."""
        return self._channel.total_outbufs_len if self._channel is not None else 0

    def hold_thread(self) -> Callable[[], None]:
        """Give waitress one more worker thread while this stream holds its own; the
        function returned takes it back (a no-op when the server is not waitress).

        The extra threads exist only while streams are open: an idle one would
        still cost memory once requests had run on it (its malloc arena).
        """
        server = getattr(self._channel, "server", None)
        dispatcher = getattr(server, "task_dispatcher", None)
        if not all(hasattr(dispatcher, name) for name in (
                "set_thread_count", "threads", "stop_count")):
            return lambda: None
        base = server.adj.threads
        with _stream_threads_lock:
            running = len(dispatcher.threads) - dispatcher.stop_count
            if running < base:  # shutting down
                return lambda: None
            _stream_threads[dispatcher] = _stream_threads.get(dispatcher, 0) + 1
            dispatcher.set_thread_count(running + 1)
        released = []

        def release() -> None:
            with _stream_threads_lock:
                if released:
                    return
                released.append(True)
                held = _stream_threads[dispatcher] = _stream_threads[dispatcher] - 1
                # Only ever fewer: after shutdown (no thread running) none is started.
                if len(dispatcher.threads) - dispatcher.stop_count > base + held:
                    dispatcher.set_thread_count(base + held)
        return release


# waitress task dispatcher -> threads added for the streams open on its server.
_stream_threads: Any = weakref.WeakKeyDictionary()
_stream_threads_lock = threading.Lock()


def use_channel(server: Any, channel: type) -> None:
    """Make every listening socket of a waitress server use ``channel``."""
    import waitress
    import waitress.server

    # What the other functions here read of a server, checked on the first one.
    _require("waitress", waitress, server, ("trigger",))
    if not hasattr(server, "effective_listen"):
        _require("waitress", waitress, server, ("effective_host", "effective_port"))
    # One listening socket: the server itself; several: a MultiSocketServer
    # whose map holds one server per socket.
    for listener in [server] + list(getattr(server, "map", {}).values()):
        if isinstance(listener, waitress.server.BaseWSGIServer):
            listener.channel_class = channel


def server_addresses(server: Any) -> List[Tuple[Any, Any]]:
    """``(host, port)`` of each socket a waitress server listens on (a Unix socket's
    host is ``"unix"`` and its port its path)."""
    listening = getattr(server, "effective_listen", None)
    if not listening:
        listening = [(server.effective_host, server.effective_port)]
    return list(listening)


def stop_server(server: Any, timeout: float = 5.0) -> None:
    """Stop a running waitress server from another thread, quietly.

    The worker threads end first (each finishes its request; waitress'
    ``task_dispatcher.shutdown``) while the loop still runs, so none of them
    wakes a loop that is gone; then the loop closes every socket of its map
    (connections, listening sockets, its trigger) and, with nothing left to
    watch, returns from ``run()``.
    """
    from waitress.channel import HTTPChannel

    server.task_dispatcher.shutdown(cancel_pending=True, timeout=timeout)
    # A MultiSocketServer's map is ``map``; a single server's is ``_map``.
    mapping = getattr(server, "map", None)
    if not isinstance(mapping, dict):
        mapping = server._map

    def close_all() -> None:
        for member in list(mapping.values()):
            try:
                if isinstance(member, HTTPChannel):
                    member.handle_close()  # gives back what its answer holds
                else:
                    member.close()
            except OSError:
                pass
        mapping.clear()

    trigger = getattr(server, "trigger", None)
    if trigger is None:  # a MultiSocketServer: any listener's trigger wakes the loop
        trigger = next((m.trigger for m in mapping.values() if hasattr(m, "trigger")), None)
    try:
        if trigger is None:
            raise OSError
        trigger.pull_trigger(close_all)
    except OSError:  # the loop has stopped already: close from here
        close_all()


def check_waitress() -> None:
    """Raise ``ConfigurationError`` unless every private waitress name used here exists."""
    import waitress
    import waitress.channel
    import waitress.parser
    import waitress.server
    import waitress.task
    import waitress.utilities

    _require("waitress", waitress, waitress.channel.HTTPChannel, (
        "error_task_class", "last_activity", "will_close", "close_when_flushed",
        "total_outbufs_len", "handle_close", "writable", "readable", "parser_class",
        "request", "connected", "check_client_disconnected"))
    _require("waitress", waitress, waitress.parser.HTTPRequestParser, (
        "parse_header", "received", "headers_finished", "completed", "error",
        "expect_continue"))
    _require("waitress", waitress, waitress.task, ("ErrorTask", "WSGITask"))
    _require("waitress", waitress, waitress.task.WSGITask, ("get_environment",))
    _require("waitress", waitress, waitress.utilities.Error, ("to_response", "code", "reason"))
    _require("waitress", waitress, waitress.server, ("BaseWSGIServer",))
    _require("waitress", waitress, waitress.server.BaseWSGIServer, ("channel_class",))
    _require("waitress", waitress, waitress.task.ThreadedTaskDispatcher, ("shutdown",))


# -- the check ---------------------------------------------------------------------

def _version(module: Any) -> str:
    version = getattr(module, "__version__", None)
    if version is None:
        try:
            from importlib.metadata import version as installed

            version = installed(module.__name__)
        except Exception:  # not installed as a distribution
            version = "unknown"
    return str(version)


def _require(dependency: str, module: Any, owner: Any, names: Iterable[str]) -> None:
    missing = [name for name in names if not hasattr(owner, name)]
    if missing:
        raise ConfigurationError(
            "peestore needs %s of %s %s, which lacks %s; install a version in the range "
            "peestore declares (pip install 'peestore' resolves it)" % (
                getattr(owner, "__name__", owner), dependency, _version(module),
                ", ".join(missing)))


def check() -> None:
    """Raise ``ConfigurationError`` unless every private peewee name used here exists."""
    _require("peewee", peewee, peewee.Model, ("_pk_expr", "_prune_fields",
                                              "_populate_unsaved_relations",
                                              "_normalize_data", "_pk"))
    _require("peewee", peewee, peewee, ("__exception_wrapper__", "ROW"))
    _require("peewee", peewee, peewee.Insert, ("SIMPLE",))
    _require("peewee", peewee, peewee.Database, ("get_sql_context", "quote", "param",
                                                 "for_update", "returning_clause"))
    _require("peewee", peewee, peewee.DateTimeField, ("formats",))
    _require("peewee", peewee, peewee.Node, ("copy",))
    _require("peewee", peewee, peewee.ROW, ("TUPLE",))
    for query_class in (peewee.ModelUpdate, peewee.ModelDelete, peewee.ModelInsert):
        _require("peewee", peewee, query_class, ("_execute",))

    class _Probe(peewee.Model):
        pass

    class _Child(peewee.Model):
        parent = peewee.ForeignKeyField(_Probe)

    _require("peewee", peewee, _Child.parent, ("rel_field",))

    _require("peewee", peewee, _Probe._meta, ("sorted_field_names", "auto_increment",
                                              "composite_key", "refs", "defaults", "combined",
                                              "columns"))
    for kwargs in ({}, {LOADED: True}):
        probe = _Probe(**kwargs)
        _require("peewee", peewee, probe, ("_dirty",))
    query = _Probe.insert({})
    _require("peewee", peewee, query, ("_insert", "_columns", "_on_conflict", "_where"))
    _require("peewee", peewee, _Probe.update({}), ("_update", "_where"))
    from playhouse.pool import PooledSqliteDatabase
    from playhouse.signals import Signal

    _require("peewee (playhouse.pool)", peewee, PooledSqliteDatabase, ("_connect", "_close"))
    probe_db = PooledSqliteDatabase(":memory:")
    _require("peewee (playhouse.pool)", peewee, probe_db, ("_max_connections", "_stale_timeout",
                                                           "_state", "_pragmas"))
    _require("peewee", peewee, probe_db._state, ("conn", "closed", "transactions", "ctx"))

    _require("peewee (playhouse.signals)", peewee, Signal(), ("_receivers", "_receiver_list"))


check()
