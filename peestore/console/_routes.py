"""The console's pages: each one a bottle template filled on the server, whose
script (``static/console.js``) then loads and changes the data through the
plugin's JSON routes.

What a page needs to build its forms (each field's kind, whether it is
required or read-only, its choices and length) is in the page itself, as
JSON in a ``data-`` attribute, worked out once per model from the plugin's
``ModelInfo``: no second request, and no OpenAPI document to build.
"""
from __future__ import annotations

import hashlib
import json
import os

import bottle
import peewee

from ..audit._log import OPERATIONS
from ..model._values import STRING, to_json_value
from ..rest._filters import operators_for
from ..rest._headers import challenge
from ..rest._plugin import identity_name, identity_roles

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, Optional, Tuple

__all__ = ["Console"]

_HERE = os.path.dirname(os.path.abspath(__file__))
_STATIC_TYPES = {"console.js": "text/javascript; charset=utf-8",
                 "console.css": "text/css; charset=utf-8"}
_HTML = "text/html; charset=utf-8"
# Only this server's own script, style and pictures; no frames, no plug-ins.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _attr_json(value: Any) -> str:
    """``value`` as JSON text for a ``data-`` attribute (the template escapes it)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _field(info: Any, field: peewee.Field) -> Dict[str, Any]:
    kind = info.kinds[field.name]
    out: Dict[str, Any] = {"name": field.name, "kind": kind}
    label = field.verbose_name or field.help_text
    if label:
        out["help"] = str(label)
    if field.name in info.required:
        out["required"] = True
    if field.name in info.read_only:
        out["read_only"] = True
    if field.null:
        out["null"] = True
    max_length = getattr(field, "max_length", None)
    if kind == STRING:
        if max_length:
            out["max_length"] = max_length
        elif not field.choices:
            out["long"] = True  # a text without a length (TextField): several lines
    if field.choices:
        out["choices"] = [to_json_value(c[0] if isinstance(c, (tuple, list)) else c)
                          for c in field.choices]
    default = field.default
    if callable(default):
        out["auto"] = True   # the app fills it in when it is left out
    elif default is not None:
        out["default"] = to_json_value(default)
    if isinstance(field, peewee.ForeignKeyField):
        meta = field.rel_model._meta
        out["fk"] = getattr(meta, "component", None)
    out["ops"] = list(operators_for(kind))
    return out


def _model_meta(info: Any) -> Dict[str, Any]:
    """What the pages of one component know of its model."""
    return {"component": info.component, "model": info.model.__name__,
            "pk": info.pk.name, "soft_delete": info.soft_delete, "audited": info.audited,
            "require_reason": bool(getattr(info.model._meta, "require_reason", False)),
            "fields": [_field(info, field) for field in info.fields]}


class Console:
    """The console's route callbacks for one ``RestPlugin``."""

    def __init__(self, plugin: Any) -> None:
        self.plugin = plugin
        self.infos = {info.component: info for info in plugin.infos}
        self.metas = {info.component: _attr_json(_model_meta(info)) for info in plugin.infos}
        self.components = _attr_json([{"name": info.component, "pk": info.pk.name,
                                       "model": info.model.__name__}
                                      for info in plugin.infos])
        self.challenge = challenge(plugin.authenticate)
        self.static_files: Dict[str, Tuple[bytes, str]] = {}
        for name in _STATIC_TYPES:
            with open(os.path.join(_HERE, "static", name), "rb") as f:
                data = f.read()
            self.static_files[name] = (data, hashlib.sha1(data).hexdigest()[:16])
        self.templates: Dict[str, bottle.SimpleTemplate] = {}

    # -- helpers -------------------------------------------------------------

    def _template(self, name: str) -> bottle.SimpleTemplate:
        template = self.templates.get(name)
        if template is None:
            template = self.templates[name] = bottle.SimpleTemplate(
                name=name, lookup=[os.path.join(_HERE, "templates")])
        return template

    def _root(self) -> str:
        """The URL path the plugin's routes are under: its prefix, after the mount
        point or the proxy's ``SCRIPT_NAME`` the request came through."""
        full = bottle.request.fullpath
        mark = self.plugin.prefix + "/db/console"
        at = full.find(mark)
        return (full[:at] if at >= 0 else "") + self.plugin.prefix

    def _identity(self) -> Tuple[str, bool]:
        """(the identity's name, whether it is an admin): ``("", True)`` without
        ``authenticate`` (the page asks the operator's name); a 401 page when
        ``authenticate`` answers no identity."""
        authenticate = self.plugin.authenticate
        if authenticate is None:
            return "", True
        try:
            identity = authenticate(bottle.request)
        except bottle.HTTPError as exc:   # authenticate may refuse with its own answer
            if exc.status_code not in (401, 403):
                raise
            identity = None
            if exc.status_code == 403:
                raise self._message(403, "Not allowed", "The machine app refuses this "
                                    "browser: %s" % (exc.body or "no reason given"),
                                    "", False) from None
        if not identity:
            headers = {"WWW-Authenticate": self.challenge} if self.challenge else {}
            raise self._message(
                401, "Sign in needed",
                "This console uses the machine app's sign-in, and your browser sent no "
                "credentials it accepts. Reload the page to sign in again; if that does "
                "not help, ask whoever runs this machine app for an account.",
                "", False, headers, ("Sign in again", bottle.request.fullpath))
        return identity_name(identity) or "", "admin" in identity_roles(identity)

    def _page(self, template: str, title: str, status: int = 200, user: str = "",
              admin: bool = True, headers: Optional[Dict[str, str]] = None,
              **values: Any) -> bottle.HTTPResponse:
        root = self._root()
        static = root + "/db/console/static/"
        js, css = (static + name + "?v=" + self.static_files[name][1]
                   for name in ("console.js", "console.css"))
        html = self._template(template).render(
            title=title, root=root, home=root + "/db/console/", js=js, css=css,
            page=template, user=user, auth="1" if self.plugin.authenticate else "0",
            admin="1" if admin else "0", db="1" if self.plugin.db_routes else "0",
            components=self.components, meta=values.pop("meta", ""),
            record_id=values.pop("record_id", ""), **values)
        response = bottle.HTTPResponse(html, status, dict(_HEADERS, **(headers or {})))
        response.set_header("Content-Type", _HTML)
        return response

    def _message(self, status: int, title: str, text: str, user: str = "",
                 admin: bool = True, headers: Optional[Dict[str, str]] = None,
                 link: Optional[Tuple[str, str]] = None) -> bottle.HTTPResponse:
        """A page that explains an error (401, 403, 404)."""
        return self._page("message", title, status, user, admin, headers,
                          status_code=status, text=text, link=link)

    def _not_found(self, what: str, user: str, admin: bool,
                   link: Optional[Tuple[str, str]] = None) -> bottle.HTTPResponse:
        return self._message(404, "Not found", what, user, admin, link=link)

    def _info(self, component: str, user: str, admin: bool) -> Any:
        info = self.infos.get(component)
        if info is None:
            known = ", ".join(sorted(self.infos)) or "none"
            raise self._not_found("There is no component called %r here. The components "
                                  "are: %s." % (component, known), user, admin)
        return info

    def _needs_db_routes(self, what: str, user: str, admin: bool) -> None:
        if not self.plugin.db_routes:
            raise self._not_found("The %s page needs the /db routes, which this app turns "
                                  "off (RestPlugin(db_routes=False))." % what, user, admin)

    # -- the pages -----------------------------------------------------------

    def home_redirect(self) -> bottle.HTTPResponse:
        return bottle.HTTPResponse(status=302, headers={
            "Location": self._root() + "/db/console/", "Cache-Control": "no-store"})

    def home(self) -> bottle.HTTPResponse:
        user, admin = self._identity()
        return self._page("home", "Home", user=user, admin=admin,
                          models=[(i.component, i.model.__name__) for i in self.infos.values()])

    def table(self, component: str) -> bottle.HTTPResponse:
        user, admin = self._identity()
        self._info(component, user, admin)
        return self._page("table", component, user=user, admin=admin,
                          component=component, meta=self.metas[component])

    def new(self, component: str) -> bottle.HTTPResponse:
        user, admin = self._identity()
        info = self._info(component, user, admin)
        return self._page("new", "New " + info.component, user=user, admin=admin,
                          component=component, meta=self.metas[component])

    def record(self, component: str, id: str) -> bottle.HTTPResponse:
        user, admin = self._identity()
        info = self._info(component, user, admin)
        pk = info.parse_pk(id)
        missing = pk is None or not info.model.select(info.pk).with_deleted().where(
            info.pk == pk).exists()
        if missing:
            raise self._not_found("There is no %s record with id %r." % (component, id),
                                  user, admin, ("Back to " + component,
                                                self._root() + "/db/console/" + component))
        return self._page("record", "%s %s" % (component, id), user=user, admin=admin,
                          component=component, meta=self.metas[component], record_id=id)

    def audit(self) -> bottle.HTTPResponse:
        user, admin = self._identity()
        self._needs_db_routes("audit log", user, admin)
        return self._page("audit", "Audit log", user=user, admin=admin,
                          operations=OPERATIONS,
                          names=[info.component for info in self.infos.values()])

    def diagram(self) -> bottle.HTTPResponse:
        user, admin = self._identity()
        self._needs_db_routes("diagram", user, admin)
        return self._page("diagram", "Diagram", user=user, admin=admin)

    def data(self) -> bottle.HTTPResponse:
        user, admin = self._identity()
        self._needs_db_routes("data tools", user, admin)
        if not admin:
            raise self._message(
                403, "Admin only",
                "Backup, restore, export and import need the admin role, and %s does not "
                "have it. Ask whoever runs this machine app to give it to you, or to do it."
                % (user or "this identity"), user, admin)
        return self._page("data", "Data tools", user=user, admin=admin)

    def static(self, name: str) -> bottle.HTTPResponse:
        """The script and the style: cached for good under their ``?v=`` version."""
        found = self.static_files.get(name)
        if found is None:
            return self._not_found("There is no console file called %r." % name, "", False)
        data, version = found
        etag = '"%s"' % version
        request = bottle.request
        headers = {"ETag": etag, "X-Content-Type-Options": "nosniff",
                   "Cache-Control": "public, max-age=31536000, immutable"
                   if request.query.get("v") == version else "no-cache"}
        match = request.environ.get("HTTP_IF_NONE_MATCH", "")
        if etag in [tag.strip() for tag in match.split(",")]:
            return bottle.HTTPResponse(status=304, headers=headers)
        response = bottle.HTTPResponse(data, 200, headers)
        response.set_header("Content-Type", _STATIC_TYPES[name])
        return response
