"""The REST routes of one model: list, get, create, replace, patch, delete,
restore, history and revert (SPEC section 6).

``ModelRoutes`` is built once per model at ``setup``; its methods are the
route callbacks.  Writes run in one transaction that also loads the row (for
``If-Match``): ``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR UPDATE`` on the
server databases, so two panels that edit one row cannot interleave.
"""
from __future__ import annotations

from urllib.parse import quote

import bottle
import peewee

from ..audit._log import AuditLog
from ..db._connect import get_database
from ..errors import ValidationError
from ..db._gate import gate
from ..model._values import dumps
from ..audit._write import Written, write_transaction
from ..db._dialect import dialect_of
from ._bodies import read_json_object
from ._compiled import CompiledSelect, JsonRows
from ._fields import ModelInfo, etag_of
from ._filters import parse_bool_param, parse_int_param, parse_list_query, query_params
from ._responses import JSON, error

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Optional

__all__ = ["ModelRoutes", "validate_body"]

CREATE, REPLACE, PATCH = "create", "replace", "patch"
_NO_LIMIT = (1 << 63) - 1  # LIMIT for "all rows" that every backend accepts
# Pages up to this many rows may come as one JSON text (JsonRows): the whole
# text and its parsed rows are in memory at once.
_JSON_PAGE_MAX = 1000


def _full_path() -> str:
    """``bottle.request.fullpath`` without its ``urljoin``: a routed path has no dot
    segments to resolve, so joining the two parts is the same."""
    environ = bottle.request.environ
    script = environ.get("SCRIPT_NAME", "").strip("/")
    return ("/" + script + "/" if script else "/") + environ.get("PATH_INFO", "").lstrip("/")


def _hooked(write: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a write whose hooks may refuse it: a ``ValueError`` (the client's data
    was refused) is a 422, not a 500; a ``ValidationError`` keeps its field errors."""
    try:
        return write(*args, **kwargs)
    except ValidationError:
        raise
    except ValueError as exc:
        raise error(422, str(exc) or "rejected by a hook") from None


def validate_body(info: ModelInfo, data: Dict[str, Any], mode: str) -> Dict[str, Any]:
    """The field values of a JSON body, converted; 422 (``ValidationError``) otherwise.

    ``mode`` is ``create`` (POST), ``replace`` (PUT: every writable field,
    defaults for the ones left out) or ``patch`` (only the given fields).
    Read-only fields (an auto-increment key, ``deleted_at``) are ignored, and
    so is the key on PUT and PATCH, where the URL names the row.
    """
    errors: Dict[str, str] = {}
    values: Dict[str, Any] = {}
    by_name = info.by_name
    skip_pk = mode != CREATE
    for key, value in data.items():
        field = by_name.get(key)
        if field is None:
            hint = info.by_column.get(key)
            errors[key] = "unknown field" + (" (did you mean %s?)" % hint if hint else "")
            continue
        if key in info.read_only or (skip_pk and field is info.pk):
            continue
        try:
            values[key] = info.check_value(field, value)
        except ValueError as exc:
            errors[key] = str(exc)
    if mode != PATCH:
        for name in info.required:
            if name not in data and not (skip_pk and name == info.pk.name):
                errors[name] = "required"
    if errors:
        raise ValidationError("invalid %s: %s" % (info.component, ", ".join(sorted(errors))),
                              errors)
    if mode == REPLACE:
        for field in info.writable:
            if field.name not in values and field is not info.pk:
                values[field.name] = info.default_of(field)
    return values


class ModelRoutes:
    """The route callbacks of one model; ``add_to(app)`` adds them."""

    def __init__(self, info: ModelInfo, plugin: Any) -> None:
        self.info = info
        self.plugin = plugin
        self.model = info.model
        self.max_records: Optional[int] = plugin.max_records_for(info.model)
        self.max_body_bytes: int = plugin.max_body_bytes
        self._reread_for: Dict[int, bool] = {}
        pk, model = info.pk, info.model
        # Rendered once per database class; see peestore.rest.compiled.
        self._get_live = CompiledSelect(
            lambda key: model.select().where(pk == key).limit(1), 1)
        self._get_any = CompiledSelect(
            lambda key: model.select().with_deleted().where(pk == key).limit(1), 1)
        self._page_live = CompiledSelect(
            lambda limit, offset: model.select().order_by(pk.asc()).limit(limit)
            .offset(offset), 2)
        count = peewee.fn.COUNT(peewee.SQL("*"))
        self._count_live = CompiledSelect(lambda: model.select(count), 0)
        self._count_any = CompiledSelect(lambda: model.select(count).with_deleted(), 0)
        self._page_any = CompiledSelect(
            lambda limit, offset: model.select().with_deleted().order_by(pk.asc())
            .limit(limit).offset(offset), 2)
        # The same pages as one JSON text from SQLite, for when other requests
        # are in flight (see JsonRows); None for a model with BLOBs.
        self._json_pages = (JsonRows.of_model(info, self._page_live),
                            JsonRows.of_model(info, self._page_any))

    def add_to(self, app: bottle.Bottle) -> None:
        """Add this model's routes to ``app`` under the plugin's prefix."""
        base = self.plugin.route_path("/%s/" % self.info.component)
        item = base + "<id>"
        name = "peestore.%s." % self.info.component
        add = app.route
        add(base, "GET", self.list, name=name + "list")
        add(base, "POST", self.create, name=name + "create", peestore_write=True)
        add(item, "GET", self.get, name=name + "get")
        add(item, "PUT", self.replace, name=name + "replace", peestore_write=True)
        add(item, "PATCH", self.patch, name=name + "patch", peestore_write=True)
        add(item, "DELETE", self.delete, name=name + "delete", peestore_write=True)
        add(item + "/restore", "POST", self.restore, name=name + "restore",
            peestore_write=True)
        add(item + "/history", "GET", self.history, name=name + "history")
        add(item + "/revert", "POST", self.revert, name=name + "revert", peestore_write=True)

    # -- helpers -------------------------------------------------------------

    def _pk(self, text: str) -> Any:
        pk = self.info.parse_pk(text)
        if pk is None:
            raise error(404, "no %s with id %r" % (self.info.component, text))
        return pk

    def _not_found(self, pk: Any) -> bottle.HTTPResponse:
        return error(404, "no %s with id %s" % (self.info.component, pk))

    def _load(self, db: peewee.Database, pk: Any, include_deleted: bool) -> Any:
        """The row as a model instance (locked for this transaction), or None."""
        query = self.model.select().where(self.info.pk == pk)
        if include_deleted:
            query = query.with_deleted()
        if dialect_of(db).locks_rows(db):
            query = query.for_update()
        rows = list(query.limit(1))
        return rows[0] if rows else None

    def _check_if_match(self, instance: Any) -> None:
        header = bottle.request.environ.get("HTTP_IF_MATCH")
        if header is None:
            return
        if instance is None:
            raise error(412, "If-Match: %s %s does not exist"
                        % (self.info.component, bottle.request.url_args.get("id")))
        tags = [tag.strip() for tag in header.split(",")]
        if "*" in tags:
            return
        current = etag_of(dumps(instance.to_dict()))
        if current not in tags:
            raise error(412, "If-Match: the %s changed since you read it (its ETag is now %s); "
                        "GET it again" % (self.info.component, current))

    def _check_max_records(self) -> None:
        if self.max_records is None:
            return
        count = self.model.select(peewee.fn.COUNT(peewee.SQL("*"))).scalar()
        if count >= self.max_records:
            raise error(409, "%s already has %d records, the most allowed (max_records)"
                        % (self.info.component, count))

    def _row_body(self, db: peewee.Database, instance: Any,
                  written: Optional[Written] = None) -> str:
        """The saved row as JSON, as the database holds it (what a GET returns)."""
        if self._reread(db):
            rows = list(self.model.select().with_deleted()
                        .where(self.info.pk == instance.get_id()).tuples().limit(1))
            if rows:
                return dumps(self.info.row_dict(rows[0]))
        # What the write just stored and audited: its "after", as the audit
        # entry's JSON text when there is one.
        if written:
            if written.after_text is not None:
                return written.after_text
            if written.changes:
                return dumps(written.changes[-1][2])
        return dumps(instance.to_dict())

    def _reread(self, db: peewee.Database) -> bool:
        # Some columns give back other than what was written (see
        # Dialect.lossy_kinds) or get server-side defaults: read the row back
        # there, and only there.
        cached = self._reread_for.get(id(db))
        if cached is None:
            kinds = set(self.info.kinds.values())
            cached = self.info.has_server_defaults or bool(
                kinds & dialect_of(db).lossy_kinds)
            self._reread_for[id(db)] = cached
        return cached

    def _send_row(self, body: str, status: int = 200) -> str:
        response = bottle.response
        response.status = status
        response.content_type = JSON
        response.set_header("ETag", etag_of(body))
        return body

    def _save(self, instance: Any, force_insert: bool = False) -> Any:
        """``instance.save()`` (a hook's refusal: 422); what the write did."""
        written = _hooked(instance._save, force_insert)
        return written or None

    def _lock_row(self, db: peewee.Database, pk: Any, include_deleted: bool,
                  must_exist: bool = True) -> Any:
        """The row a write changes, locked (404 when ``must_exist`` and it is missing),
        after its ``If-Match`` check."""
        instance = self._load(db, pk, include_deleted)
        if instance is None and must_exist:
            raise self._not_found(pk)
        self._check_if_match(instance)
        return instance

    def _bump_sequence(self, db: peewee.Database, pk: Any) -> None:
        # A row inserted with an explicit id: the next POST must not collide with it.
        if self.info.pk_auto and isinstance(pk, int):
            meta = self.model._meta
            dialect_of(db).move_sequence(db, meta.table_name, self.info.pk.column_name,
                                         meta.schema)

    # -- reads ---------------------------------------------------------------

    def list(self) -> str:
        """GET /C/: the rows matching the filters, with X-Total-Count."""
        info = self.info
        request = bottle.request
        query_string = query_params().allitems() if request.query_string else ()
        spec = parse_list_query(info, query_string)
        deleted_too = spec.include_deleted and info.soft_delete
        if spec.names is None and not spec.where and not spec.order_by:
            # The common page (no filters, default order): pre-rendered SQL.
            compiled = self._page_any if deleted_too else self._page_live
            db = get_database(self.model._meta.database)
            limit = spec.limit if spec.limit is not None else _NO_LIMIT
            rows = None
            json_rows = self._json_pages[1 if deleted_too else 0]
            if (json_rows is not None and spec.limit is not None
                    and spec.limit <= _JSON_PAGE_MAX and gate.crowded()):
                rows = json_rows.rows(db, (limit, spec.offset))
            if rows is None:
                rows = compiled.rows(db, (limit, spec.offset))
            body = dumps(info.raw_rows(rows))
        else:
            if spec.names is not None:
                names = spec.names
                converters = info.converters_for(names)
                query = self.model.select(*[info.by_name[n] for n in names])
            else:
                names, converters = info.names, None
                query = self.model.select()
            if deleted_too:
                query = query.with_deleted()
            if spec.where:
                query = query.where(*spec.where)
            query = query.order_by(*(spec.order_by + [info.pk.asc()]))
            if spec.limit is not None:
                query = query.limit(spec.limit)
            if spec.offset:
                query = query.offset(spec.offset)
            rows = list(query.tuples())
            body = dumps([info.row_dict(row, names, converters) for row in rows])
        count = len(rows)
        # X-Total-Count without a COUNT query when the page tells it already.
        if (spec.limit is None or count < spec.limit) and (count or not spec.offset):
            total = spec.offset + count
        elif not spec.where:
            compiled = self._count_any if deleted_too else self._count_live
            total = compiled.rows(get_database(self.model._meta.database), ())[0][0]
        else:
            count_query = self.model.select(peewee.fn.COUNT(peewee.SQL("*")))
            if deleted_too:
                count_query = count_query.with_deleted()
            total = count_query.where(*spec.where).scalar()
        response = bottle.response
        response.content_type = JSON
        response.set_header("X-Total-Count", str(total))
        return body

    def get(self, id: str) -> str:
        """GET /C/<id>: one row, with its ETag."""
        pk = self._pk(id)
        compiled = self._get_live
        if bottle.request.query_string:
            text = bottle.request.query.get("include_deleted")
            if text is not None and parse_bool_param("include_deleted", text):
                compiled = self._get_any
        db = get_database(self.model._meta.database)
        rows = compiled.rows(db, (self.info.pk.db_value(pk),))
        if not rows:
            raise self._not_found(pk)
        body = dumps(self.info.raw_row_dict(rows[0]))
        etag = etag_of(body)
        none_match = bottle.request.environ.get("HTTP_IF_NONE_MATCH")
        if none_match and (none_match.strip() == "*" or etag in
                           [t.strip() for t in none_match.split(",")]):
            raise bottle.HTTPResponse(status=304, headers={"ETag": etag})
        response = bottle.response
        response.content_type = JSON
        response.set_header("ETag", etag)
        return body

    def history(self, id: str) -> str:
        """GET /C/<id>/history: the record's audit entries, newest first."""
        pk = self._pk(id)
        query = bottle.request.query
        limit = parse_int_param("limit", query["limit"], 1, 1000) if "limit" in query else 100
        offset = parse_int_param("offset", query["offset"]) if "offset" in query else 0
        entries = list(AuditLog.select()
                       .where((AuditLog.component == self.info.component) &
                              (AuditLog.record_id == str(pk)))
                       .order_by(AuditLog.id.desc()).limit(limit).offset(offset))
        if not entries and not offset:
            exists = self.model.select(self.info.pk).with_deleted().where(self.info.pk == pk)
            if not exists.exists():
                raise self._not_found(pk)
        bottle.response.content_type = JSON
        return dumps([entry.to_dict(with_changed=True) for entry in entries])

    # -- writes --------------------------------------------------------------

    def create(self) -> str:
        """POST /C/: a new row; 201 with Location."""
        values = validate_body(self.info, read_json_object(self.max_body_bytes), CREATE)
        db = get_database(self.model._meta.database)
        instance = self.model(**values)
        if self.max_records is None:
            # save() is one transaction of its own (BEGIN IMMEDIATE on SQLite).
            written = self._save(instance, force_insert=True)
        else:
            with write_transaction(db):
                self._check_max_records()
                written = self._save(instance, force_insert=True)
        body = self._row_body(db, instance, written)
        bottle.response.set_header(
            "Location", _full_path().rstrip("/") + "/" + quote(str(instance.get_id()), safe=""))
        return self._send_row(body, 201)

    def replace(self, id: str) -> str:
        """PUT /C/<id>: replace every writable field, or create the row at that id."""
        pk = self._pk(id)
        values = validate_body(self.info, read_json_object(self.max_body_bytes), REPLACE)
        db = get_database(self.model._meta.database)
        with write_transaction(db):
            instance = self._lock_row(db, pk, include_deleted=True, must_exist=False)
            created = instance is None
            if created:
                self._check_max_records()
                instance = self.model(**values)
                setattr(instance, self.info.pk.name, pk)
                written = self._save(instance, force_insert=True)
                self._bump_sequence(db, pk)
            elif self.info.soft_delete and instance.deleted_at is not None:
                raise error(409, "%s %s is deleted; POST to its /restore first"
                            % (self.info.component, pk))
            else:
                written = self._apply(instance, values)
        body = self._row_body(db, instance, written)
        if created:
            bottle.response.set_header("Location", _full_path())
        return self._send_row(body, 201 if created else 200)

    def patch(self, id: str) -> str:
        """PATCH /C/<id>: change only the given fields."""
        pk = self._pk(id)
        values = validate_body(self.info, read_json_object(self.max_body_bytes), PATCH)
        db = get_database(self.model._meta.database)
        with write_transaction(db):
            instance = self._lock_row(db, pk, include_deleted=False)
            written = self._apply(instance, values)
        return self._send_row(self._row_body(db, instance, written))

    def _apply(self, instance: Any, values: Dict[str, Any]) -> Any:
        """Set the changed values and save; no write (and no audit entry) if none changed."""
        data = instance.__data__
        changed = [name for name, value in values.items()
                   if name not in data or data[name] != value]
        if not changed:
            return None
        for name in changed:
            setattr(instance, name, values[name])
        return self._save(instance)

    def delete(self, id: str) -> str:
        """DELETE /C/<id>: soft or hard, as the model says."""
        pk = self._pk(id)
        db = get_database(self.model._meta.database)
        with write_transaction(db):
            _hooked(self._lock_row(db, pk, include_deleted=False).delete_instance)
        bottle.response.content_type = JSON
        return '{"status":"deleted"}'

    def restore(self, id: str) -> str:
        """POST /C/<id>/restore: un-delete a soft-deleted row."""
        pk = self._pk(id)
        if not self.info.soft_delete:
            raise error(409, "%s has no soft delete (no deleted_at field), so nothing "
                        "to restore" % self.info.component)
        db = get_database(self.model._meta.database)
        with write_transaction(db):
            restored = _hooked(self._lock_row(db, pk, include_deleted=True).restore)
        bottle.response.content_type = JSON
        return dumps({"status": "ok", "restored": restored})

    def revert(self, id: str) -> str:
        """POST /C/<id>/revert: back to the state of one of the record's audit entries."""
        pk = self._pk(id)
        data = read_json_object(self.max_body_bytes)
        audit_id = data.get("audit_id")
        errors = {key: "unknown field" for key in data if key != "audit_id"}
        if "audit_id" not in data:
            errors["audit_id"] = "required"
        elif not isinstance(audit_id, int) or isinstance(audit_id, bool):
            errors["audit_id"] = "expected an integer"
        elif not -(1 << 63) <= audit_id < (1 << 63):
            errors["audit_id"] = "integer out of range"
        if errors:
            raise ValidationError("invalid revert request: %s" % ", ".join(sorted(errors)),
                                  errors)
        db = get_database(self.model._meta.database)
        with write_transaction(db):
            instance = self._lock_row(db, pk, include_deleted=True, must_exist=False)
            recreate = instance is None
            if recreate:
                instance = self.model()
                setattr(instance, self.info.pk.name, pk)
            # A refusal that names no entry of this record is the client's: 422.
            written = _hooked(instance._revert, audit_id) or None
            if recreate:
                self._bump_sequence(db, pk)
        return self._send_row(self._row_body(db, instance, written))
