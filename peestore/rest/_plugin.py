"""``RestPlugin``: the Bottle plugin (API v2), and ``bootstrap``.

``setup`` adds the routes; ``apply`` wraps every route of the app, the
user's own included, so that each request

- passes the restore gate (held shared until the response is sent),
- gets a database connection that is closed again at the end (peewee opens
  it on the first query, so a route that does not query opens none); on a
  ``sqlite://`` URL's pool the thread keeps it for its next request instead
  (``peestore.parking``),
- runs as its actor (the identity's name, else the ``X-User`` header), and
- answers every error as JSON ``{"detail": ...}``,

and refuses, before anything runs, a request whose ``Host`` header is not a
name of the server (``peestore.rest._hosts``, DNS rebinding) and a
state-changing request that a browser sends from another site
(``peestore.rest._origin``).

Route options (Bottle route config) the plugin reads:
``peestore_write=True`` (a write: needs ``X-User`` when there is no
``authenticate``), ``peestore_auth=False`` (no authentication for this
route, e.g. a login page) and ``peestore_upload=True`` (the route takes a
body up to ``max_upload_bytes``, not ``max_body_bytes``, and peestore's
server checks its headers with ``refuse_early`` before reading the body).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

import bottle
import peewee

from ..audit._actor import MAX_REASON, enter_actor, leave_actor
from ..db._connect import connect, database
from ..errors import ConfigurationError
from ..db._gate import gate
from ..db._pool import park, unpark
from ._data_routes import add_data_routes, body_limit
from ._db_routes import add_db_routes
from ._fields import ModelInfo
from ._headers import challenge, text_header
from ._hosts import HostCheck
from ._origin import SAFE_METHODS, cross_site
from ._responses import error, from_exception, install_error_pages
from ._routes import ModelRoutes

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, FrozenSet, Iterable, Optional, Sequence, Union
    Identity = Any
    Authenticate = Callable[[bottle.BaseRequest], Optional[Identity]]

__all__ = ["RestPlugin", "bootstrap", "identity_name", "identity_roles"]

log = logging.getLogger("peestore.rest")


_WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
_MAX_ACTOR = 200  # AuditLog.actor's max_length
_UPLOADS = ("/db/restore", "/db/import")  # the plugin's own upload routes (admin only)
_NEEDS_USER = "send an X-User header: the name the audit log blames for this change"


def identity_name(identity: Identity) -> Optional[str]:
    """The ``name`` of an identity (a mapping or an object with a ``name`` attribute)."""
    name = identity.get("name") if isinstance(identity, Mapping) else \
        getattr(identity, "name", None)
    return str(name) if name not in (None, "") else None


def identity_roles(identity: Identity) -> FrozenSet[str]:
    """The ``roles`` of an identity, as a set of strings (a lone string is one role)."""
    roles = identity.get("roles") if isinstance(identity, Mapping) else \
        getattr(identity, "roles", None)
    if not roles:
        return frozenset()
    if isinstance(roles, str):
        return frozenset((roles,))
    return frozenset(str(role) for role in roles)


class _Streamed:
    """A response body iterator that keeps the request's connection and gate
    until it is exhausted or closed (an export streamed row by row)."""

    def __init__(self, iterable: Any, release: Callable[[], None]) -> None:
        self._iterable = iterable
        self._iterator = iter(iterable)
        self._release = release

    def __iter__(self) -> _Streamed:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._iterator)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        release, self._release = self._release, None
        if release is None:
            return
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                close()
        finally:
            release()


def _is_stream(value: Any) -> bool:
    return hasattr(value, "__next__") and not hasattr(value, "read")


def _cross_site_refusal(environ: Mapping[str, Any]) -> Optional[bottle.HTTPResponse]:
    """The 403 for a state-changing request a browser sends from another site, or None."""
    refused = cross_site(environ)
    if refused is None:
        return None
    return error(403, "cross-site request refused: %s; nothing was changed" % refused)


class RestPlugin:
    """Bottle plugin: a REST API per model, ``/db`` routes, JSON errors, per-request
    connections and actors.  See SPEC section 6 and docs/rest.md.

    ``authenticate(request)`` returns an identity or None (401).  An identity
    is a mapping with ``name`` and ``roles``, or an object with ``.name`` and
    ``.roles``; its name is the actor, and ``/db/restore``, ``/db/import``,
    ``/db/export.zip`` and ``/db/backup.sqlite`` need the ``admin`` role
    (403 otherwise).
    ``restore_wait`` is how many seconds ``POST /db/restore`` waits for the
    requests in flight before it answers 503 with nothing changed.
    ``console`` adds the operator console's pages under ``/db/console/``
    (docs/console.md); its code loads on the first request to one of them.
    ``GET /db/changes`` (docs/live.md) sends a heartbeat comment every
    ``heartbeat`` seconds and keeps at most ``max_streams`` streams open;
    on waitress each open stream adds a worker thread while it is open.

    ``allowed_hosts`` lists the names the server answers to in a request's
    ``Host`` header (any port); another is a 400 before anything else (DNS
    rebinding, docs/security.md).  None: any IP address, ``localhost``, the
    host name, its ``.local`` name and its fully qualified name; ``"*"`` in
    the list: any.

    On an upload route, peestore's server (``peestore.serve``, ``make_server``)
    also calls ``authenticate`` once with the request's headers alone, before
    it reads the body (``refuse_early``): ``authenticate`` must decide from the
    headers, and is called again with the whole request.
    """

    name = "peestore"
    api = 2

    def __init__(self, models: Iterable[type] = (), prefix: str = "",
                 max_records: Optional[int] = None, db_routes: bool = True,
                 authenticate: Optional[Authenticate] = None,
                 max_body_bytes: int = 1 << 20, max_upload_bytes: int = 256 << 20,
                 restore_wait: float = 10, console: bool = True, heartbeat: float = 15,
                 max_streams: int = 8,
                 allowed_hosts: Optional[Iterable[str]] = None) -> None:
        self.models = list(models)
        components: Dict[str, type] = {}
        for model in self.models:
            if not (isinstance(model, type) and issubclass(model, peewee.Model)
                    and hasattr(model._meta, "component")):
                raise ConfigurationError("RestPlugin(models=...) takes BaseAuditedModel "
                                         "subclasses, got %r" % (model,))
            other = components.setdefault(model._meta.component, model)
            if other is not model:
                raise ConfigurationError(
                    "%s and %s both have component %r; give one a Meta.component"
                    % (other.__name__, model.__name__, model._meta.component))
        prefix = (prefix or "").strip()
        if prefix and not prefix.startswith("/"):
            prefix = "/" + prefix
        self.prefix = prefix.rstrip("/")
        if max_records is not None and (not isinstance(max_records, int) or max_records < 0):
            raise ConfigurationError("max_records must be None or a whole number >= 0, got %r"
                                     % (max_records,))
        self.max_records = max_records
        self.db_routes = bool(db_routes)
        if authenticate is not None and not callable(authenticate):
            raise ConfigurationError("authenticate must be a function(request) -> identity")
        self.authenticate = authenticate
        self._challenge = challenge(authenticate)
        for label, value in (("max_body_bytes", max_body_bytes),
                             ("max_upload_bytes", max_upload_bytes)):
            if not isinstance(value, int) or value < 1:
                raise ConfigurationError("%s must be a positive number of bytes, got %r"
                                         % (label, value))
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        if isinstance(restore_wait, bool) or not isinstance(restore_wait, (int, float)) \
                or not 0 <= restore_wait < float("inf"):
            raise ConfigurationError("restore_wait must be a number of seconds >= 0, got %r"
                                     % (restore_wait,))
        # Seconds POST /db/restore waits for the requests in flight (503 after).
        self.restore_wait = float(restore_wait)
        # GET /db/changes (peestore.rest._changes): seconds between heartbeat
        # comments, and how many streams may be open at once.
        if isinstance(heartbeat, bool) or not isinstance(heartbeat, (int, float)) \
                or not 0 < heartbeat <= 3600:
            raise ConfigurationError("heartbeat must be a number of seconds > 0 and <= 3600, "
                                     "got %r" % (heartbeat,))
        self.heartbeat = float(heartbeat)
        if isinstance(max_streams, bool) or not isinstance(max_streams, int) \
                or not 0 <= max_streams <= 1000:
            raise ConfigurationError("max_streams must be a whole number from 0 to 1000, "
                                     "got %r" % (max_streams,))
        self.max_streams = max_streams
        self.infos = [ModelInfo(model) for model in self.models]
        self.console = bool(console)
        if self.console:
            for component in components:
                if component in CONSOLE_PAGES:
                    raise ConfigurationError(
                        "component %r has the name of an operator console page "
                        "(/db/console/%s); give the model another Meta.component, or "
                        "install RestPlugin(console=False)" % (component, component))
        # The Host headers the plugin answers (DNS rebinding); None: the machine's names.
        self.hosts = HostCheck(allowed_hosts)
        self.app: Optional[bottle.Bottle] = None
        self.route_keys: set = set()

    @property
    def max_request_body_size(self) -> int:
        """The value for waitress' ``max_request_body_size``: one more than the largest
        body the plugin takes (waitress refuses a body of that many bytes or more).

        The largest is an upload of ``max_upload_bytes`` with its multipart form
        (``body_limit``), or a JSON body of ``max_body_bytes``.
        ``peestore.server.make_server`` passes it on by itself.
        """
        return max(body_limit(self.max_upload_bytes), self.max_body_bytes) + 1

    def _unauthorized(self, response: Optional[bottle.HTTPResponse] = None
                      ) -> bottle.HTTPResponse:
        """A 401 (``response``, or a new one) with the challenge ``authenticate`` names."""
        if response is None:
            response = error(401, "authentication required")
        if self._challenge is not None and "WWW-Authenticate" not in response.headers:
            response.set_header("WWW-Authenticate", self._challenge)
        return response

    # -- the API other route modules use ------------------------------------

    def route_path(self, path: str) -> str:
        """``path`` under the plugin's prefix (``/db/health`` -> ``/api/db/health``)."""
        return self.prefix + path

    def max_records_for(self, model: type) -> Optional[int]:
        """The row limit of ``model`` (``max_records``), or None."""
        return self.max_records

    def identity(self) -> Optional[Identity]:
        """The identity ``authenticate`` returned for the current request, or None."""
        return bottle.request.environ.get("peestore.identity")

    def require_admin(self) -> None:
        """401/403 unless the request's identity has the ``admin`` role.

        Does nothing when no ``authenticate`` is set.
        """
        if self.authenticate is None:
            return
        identity = self.identity()
        if identity is None:
            raise self._unauthorized()
        if "admin" not in identity_roles(identity):
            raise error(403, "%s needs the admin role" % bottle.request.path)

    def refuse_host(self, environ: Mapping[str, Any]) -> Optional[bottle.HTTPResponse]:
        """The 400 for a request whose ``Host`` is not one of ``allowed_hosts``, or None."""
        refused = self.hosts.refusal(environ.get("HTTP_HOST"))
        return None if refused is None else error(400, refused)

    def refuse_early(self, environ: Dict[str, Any], config: Mapping[str, Any]
                     ) -> Optional[bottle.HTTPResponse]:
        """The answer an upload request gets from its headers alone, or None to read
        its body: 400 when its ``Host`` is not one of ``allowed_hosts``, 403
        when a browser sends it from another site
        (``peestore.rest._origin``), 401 when ``authenticate`` finds no
        identity, 403 without the ``admin`` role on the plugin's own upload
        routes, 400 without a usable ``X-User`` when there is no
        ``authenticate``.

        Called by peestore's server in its network thread, before the body is
        read (``environ`` has an empty ``wsgi.input``), so that nobody the route
        would refuse can make the server buffer an upload.  ``config`` is the
        route's config.
        """
        refused = self.refuse_host(environ) or _cross_site_refusal(environ)
        if refused is not None:
            return refused
        authenticate = self.authenticate if config.get("peestore_auth", True) else None
        try:
            if authenticate is None:
                if self.authenticate is None and config.get("peestore_write"):
                    name = text_header(environ, "X-User")
                    if name is None:
                        return error(400, _NEEDS_USER)
                    if len(name) > _MAX_ACTOR:
                        return error(400, "the actor name is over %d characters" % _MAX_ACTOR)
                return None
            # bottle.request too, for an authenticate that reads it rather than
            # its argument (a thread-local: this thread serves no route).
            request = bottle.request
            request.bind(environ)
            db = database.obj
            opened = db is not None and db.is_closed()
            try:
                identity = authenticate(request)
            finally:
                request.bind({})
                # A connection authenticate opened in this thread is not kept.
                if opened and not db.is_closed():
                    db.close()
            if not identity:
                return self._unauthorized()
            if config.get("peestore_upload") == "admin" and \
                    "admin" not in identity_roles(identity):
                return error(403, "%s needs the admin role" % environ.get("PATH_INFO", ""))
            return None
        except bottle.HTTPResponse as response:
            if isinstance(response, bottle.HTTPError):
                if response.status_code >= 500:
                    log.error("authenticate failed on %s: %r", environ.get("PATH_INFO"),
                              response.exception)
                    return error(500, "internal server error")
                response = error(response.status_code, response.body
                                 if isinstance(response.body, str) and response.body
                                 else response.status_line[4:])
            return self._unauthorized(response) if response.status_code == 401 else response
        except Exception:
            log.exception("authenticate failed on %s", environ.get("PATH_INFO"))
            return error(500, "internal server error")

    # -- Bottle plugin API v2 ------------------------------------------------

    def setup(self, app: bottle.Bottle) -> None:
        """Add the model routes, the /db routes and /openapi.json to ``app``."""
        for other in app.plugins:
            if getattr(other, "name", None) == self.name:
                raise bottle.PluginError("a peestore RestPlugin is already installed on "
                                         "this app")
        self.app = app
        install_error_pages(app)
        for info in self.infos:
            ModelRoutes(info, self).add_to(app)
        if self.db_routes:
            add_db_routes(app, self)
            first = len(app.routes)
            add_data_routes(app, self)
            uploads = {self.route_path(path) for path in _UPLOADS}
            for route in app.routes[first:]:
                if route.method in _WRITE_METHODS:
                    route.config.setdefault("peestore_write", True)
                if route.method == "POST" and route.rule in uploads:
                    route.config["peestore_upload"] = "admin"
        _add_openapi_route(app, self)
        if self.console:
            _add_console_routes(app, self)
        # Before any mount() rewrites the rules: what /openapi.json describes.
        self.route_keys = {(route.method, route.rule) for route in app.routes}

    def apply(self, callback: Callable, route: bottle.Route) -> Callable:
        """Wrap one route: gate, connection, actor, authentication, JSON errors."""
        config = route.config
        authenticate = self.authenticate if config.get("peestore_auth", True) else None
        needs_user = bool(config.get("peestore_write")) and self.authenticate is None
        request = bottle.request
        enter, leave = gate.enter_shared, gate.leave_shared
        proxy = database
        safe = route.method in SAFE_METHODS

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            refused = self.hosts.refusal(request.environ.get("HTTP_HOST"))
            if refused is not None:
                return error(400, refused)
            if not safe:
                refused = _cross_site_refusal(request.environ)
                if refused is not None:
                    return refused
            enter()
            db = proxy.obj
            # This thread's connection from its last request (see peestore.parking),
            # else a new one opened on the first query.
            opened_here = db is not None and (unpark(db) or db.is_closed())
            released = []

            def release() -> None:
                if released:
                    return
                released.append(True)
                try:
                    if opened_here and not db.is_closed() and not park(db):
                        db.close()
                except peewee.PeeweeException:
                    log.exception("could not close the request's database connection")
                finally:
                    leave()

            streaming = False
            try:
                if db is None:
                    raise ConfigurationError("no database: call peestore.connect() or "
                                             "peestore.bootstrap() before serving")
                name = None
                environ = request.environ
                if authenticate is not None:
                    identity = authenticate(request)
                    if not identity:
                        return self._unauthorized()
                    environ["peestore.identity"] = identity
                    name = identity_name(identity)
                    if name is None:
                        raise ConfigurationError("authenticate() returned an identity "
                                                 "without a name: %r" % (identity,))
                else:
                    name = text_header(environ, "X-User")
                    if name is None and needs_user:
                        return error(400, _NEEDS_USER)
                if name is not None and len(name) > _MAX_ACTOR:
                    return error(400, "the actor name is over %d characters" % _MAX_ACTOR)
                reason = None
                if "HTTP_X_REASON" in environ:
                    reason = text_header(environ, "X-Reason")
                    if reason is not None and len(reason) > MAX_REASON:
                        return error(400, "the X-Reason header is over %d characters"
                                     % MAX_REASON)
                if name is None and reason is None:
                    result = callback(*args, **kwargs)
                else:
                    token = enter_actor(name, reason)
                    try:
                        result = callback(*args, **kwargs)
                    finally:
                        leave_actor(token)
                if _is_stream(result):
                    streaming = True
                    return _Streamed(result, release)
                if isinstance(result, bottle.HTTPResponse) and not isinstance(
                        result, bottle.HTTPError) and _is_stream(result.body):
                    streaming = True
                    result.body = _Streamed(result.body, release)
                return result
            except bottle.HTTPError as exc:
                response = from_exception(exc)
                return self._unauthorized(response) if response.status_code == 401 \
                    else response
            except bottle.HTTPResponse as response:
                if _is_stream(response.body):
                    streaming = True
                    response.body = _Streamed(response.body, release)
                raise
            except Exception as exc:
                return from_exception(exc)
            finally:
                if not streaming:
                    release()

        return wrapper

    def close(self) -> None:
        """Close the connections worker threads keep between requests."""
        db = database.obj
        if db is not None:
            from ..db._pool import close_parked

            close_parked(db)


def _add_openapi_route(app: bottle.Bottle, plugin: RestPlugin) -> None:
    """Add ``GET /openapi.json``; ``peestore.rest.openapi`` loads on its first request,
    so a device nobody asks for the document never holds that code."""
    callbacks: list = []

    def openapi() -> str:
        if not callbacks:
            from ._openapi import openapi_callback

            callbacks.append(openapi_callback(plugin))
        return callbacks[0]()

    app.route(plugin.route_path("/openapi.json"), "GET", openapi, name="peestore.openapi")


#: The console's own pages under /db/console/: no component may take these names.
CONSOLE_PAGES = ("audit", "diagram", "data", "static")


def _add_console_routes(app: bottle.Bottle, plugin: RestPlugin) -> None:
    """Add the operator console's pages (``GET /db/console/...``).

    Each callback loads ``peestore.console._routes`` on its first call, so an
    app whose console nobody opens never holds its code.  The pages do their
    own authentication (``peestore_auth=False``): a 401 there is a page that
    explains, not JSON.
    """
    pages: list = []

    def page(name: str) -> Callable[..., Any]:
        def callback(**kwargs: Any) -> Any:
            if not pages:
                from ..console._routes import Console

                pages.append(Console(plugin))
            return getattr(pages[0], name)(**kwargs)
        return callback

    base = plugin.route_path("/db/console")
    for path, name in (("", "home_redirect"), ("/", "home"), ("/audit", "audit"),
                       ("/diagram", "diagram"), ("/data", "data"),
                       ("/static/<name>", "static"), ("/<component>", "table"),
                       ("/<component>/new", "new"), ("/<component>/<id>", "record")):
        app.route(base + path, "GET", page(name), name="peestore.console." + name,
                  peestore_auth=False)


def bootstrap(app: Optional[bottle.Bottle] = None, *, models: Sequence[type],
              database_url: Union[str, peewee.Database, None] = None,
              create_tables: bool = True, max_records_per_model: Optional[int] = None,
              enable_db_routes: bool = True, enable_console: bool = True,
              allowed_hosts: Optional[Iterable[str]] = None) -> bottle.Bottle:
    """``connect`` plus ``install(RestPlugin(...))`` in one call; returns the app.

    ``allowed_hosts`` is ``RestPlugin``'s: the ``Host`` names it answers.
    """
    models = list(models)
    connect(database_url, models=models, create_tables=create_tables)
    if app is None:
        app = bottle.Bottle()
    app.install(RestPlugin(models=models, max_records=max_records_per_model,
                           db_routes=enable_db_routes, console=enable_console,
                           allowed_hosts=allowed_hosts))
    return app
