"""``GET /openapi.json``: an OpenAPI 3.1 document of the plugin's routes.

Built once, on the first request (when every route exists), from the models'
fields: types, formats, required, nullable, defaults, choices, read-only.
"""
from __future__ import annotations

import re

import bottle
import peewee

from ..audit._log import OPERATIONS

from ..model._values import dumps, to_json_value
from ._fields import (ANY, BOOLEAN, BYTES, DATE, DATETIME, DECIMAL, INTEGER, NUMBER, STRING,
                     TIME, UUID, ModelInfo)
from ._filters import OPERATORS, operators_for
from ._responses import JSON

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional

__all__ = ["build_document", "openapi_callback", "field_schema"]

_BASE = {
    INTEGER: {"type": "integer", "format": "int64"}, NUMBER: {"type": "number"},
    BOOLEAN: {"type": "boolean"}, STRING: {"type": "string"},
    # Datetimes and times are naive UTC, sent without an offset: RFC 3339's date-time
    # and time formats need one; the OpenAPI format registry's "-local" ones have none.
    DATETIME: {"type": "string", "format": "date-time-local"},
    DATE: {"type": "string", "format": "date"}, TIME: {"type": "string", "format": "time-local"},
    UUID: {"type": "string", "format": "uuid"},
    BYTES: {"type": "string", "contentEncoding": "base64"},
}
# What a body or a filter may send: with an offset too (converted to UTC).
_INPUT = {
    DATETIME: {"type": "string", "anyOf": [{"format": "date-time-local"},
                                           {"format": "date-time"}]},
    TIME: {"type": "string", "anyOf": [{"format": "time-local"}, {"format": "time"}]},
}

_ERROR_TEXT = {
    "400": "Bad request: malformed JSON, a body that is not an object, a bad query "
           "parameter, or a write without the X-User header",
    "401": "authenticate() returned no identity",
    "403": "The identity may not do this",
    "404": "No such record",
    "409": "Conflict: a unique constraint, max_records, or a deleted or not soft-deletable "
           "record",
    "412": "If-Match does not match the record's current ETag",
    "413": "The body is over max_body_bytes (or the upload over max_upload_bytes)",
    "415": "The body is not JSON (Content-Type: application/json)",
    "422": "Unknown field, wrong type, missing required field or another constraint; "
           "'errors' names each field",
    "501": "Not available on this database",
    "503": "The database did not answer, or is busy with other writes (Retry-After); "
           "nothing was changed",
    "507": "The disk is full (under min_free_bytes); 'detail' says how much is free; "
           "nothing was changed",
}


def field_schema(info: ModelInfo, field: peewee.Field, for_input: bool = False) -> Dict[str, Any]:
    """The JSON Schema of one field's value."""
    kind = info.kinds[field.name]
    if kind == DECIMAL:
        schema: Dict[str, Any] = ({"type": ["number", "string"]} if for_input
                                  else {"type": "string", "format": "decimal"})
    else:
        schema = dict((_INPUT if for_input else _BASE).get(kind) or _BASE.get(kind, {}))
    max_length = getattr(field, "max_length", None)
    if kind == STRING and max_length:
        schema["maxLength"] = max_length
    if field.choices:
        schema["enum"] = [to_json_value(c[0] if isinstance(c, (tuple, list)) else c)
                          for c in field.choices]
    if field.null and kind != ANY:
        kinds = schema.get("type")
        if kinds is not None:
            schema["type"] = (kinds if isinstance(kinds, list) else [kinds]) + ["null"]
        if "enum" in schema:
            schema["enum"].append(None)
    if field.default is not None and not callable(field.default):
        schema["default"] = to_json_value(field.default)
    text = field.help_text or field.verbose_name
    if isinstance(field, peewee.ForeignKeyField):
        target = getattr(field.rel_model._meta, "component", field.rel_model._meta.table_name)
        text = "%s (the id of a %s record)" % (text or field.name, target)
    if text:
        schema["description"] = text
    if field.name in info.read_only and not for_input:
        schema["readOnly"] = True
    return schema


def _schema_names(infos: List[ModelInfo]) -> Dict[str, str]:
    names: Dict[str, str] = {}
    used = set()
    for info in infos:
        name = info.model.__name__
        if name in used:
            name = re.sub(r"[^A-Za-z0-9._-]", "_", info.component)
        used.add(name)
        names[info.component] = name
    return names


def _ref(name: str) -> Dict[str, str]:
    return {"$ref": "#/components/schemas/%s" % name}


def _json(schema: Dict[str, Any], description: str,
          headers: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    out: Dict[str, Any] = {"description": description,
                           "content": {JSON: {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _errors(*codes: str) -> Dict[str, Any]:
    out = {}
    for code in codes:
        schema = "ValidationError" if code == "422" else "Error"
        out[code] = _json(_ref(schema), _ERROR_TEXT[code])
    return out


def _query(name: str, schema: Dict[str, Any], description: str) -> Dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


_ETAG = {"ETag": {"description": "Changes whenever the record does; send it back in If-Match",
                  "schema": {"type": "string"}}}
_IF_MATCH = {"name": "If-Match", "in": "header", "required": False,
             "schema": {"type": "string"},
             "description": "The ETag you read; 412 and no change when the record changed "
                            "since (* matches any existing record)"}


class _Builder:
    def __init__(self, plugin: Any, routes: set) -> None:
        self.plugin = plugin
        self.routes = routes
        self.write_headers: List[Dict[str, Any]] = []
        if plugin.authenticate is None:
            self.write_headers.append({
                "name": "X-User", "in": "header", "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                "description": "Who makes the change: the actor in the audit log"})
        auth = ("401", "403") if plugin.authenticate is not None else ()
        self.auth = auth

    def model(self, info: ModelInfo, name: str, paths: Dict[str, Any],
              schemas: Dict[str, Any]) -> None:
        fields = info.fields
        schemas[name] = {
            "type": "object",
            "properties": {f.name: field_schema(info, f) for f in fields},
            "required": [f.name for f in fields],
        }
        writable = [f for f in info.writable]
        schemas[name + "Input"] = {
            "type": "object",
            "properties": {f.name: field_schema(info, f, True) for f in writable},
            "required": list(info.required),
            "additionalProperties": False,
            "description": "POST and PUT body; PUT gives left-out fields their default "
                           "(or null)",
        }
        schemas[name + "Patch"] = {
            "type": "object",
            "properties": {f.name: field_schema(info, f, True) for f in writable},
            "additionalProperties": False,
        }
        comp = info.component
        base = self.plugin.route_path("/%s/" % comp)
        item = base + "{id}"
        tag = [comp]
        row = _ref(name)
        id_param = {"name": "id", "in": "path", "required": True,
                    "schema": field_schema(info, info.pk, True) if info.kinds[info.pk.name]
                    != ANY else {"type": "string"}}
        id_param["schema"].pop("readOnly", None)
        id_param["schema"].pop("default", None)
        id_param["schema"].pop("description", None)
        write = self.write_headers
        body = {"required": True, "content": {JSON: {"schema": _ref(name + "Input")}}}
        patch_body = {"required": True, "content": {JSON: {"schema": _ref(name + "Patch")}}}
        auth = self.auth
        include_deleted = _query("include_deleted", {"type": "boolean", "default": False},
                                 "Include soft-deleted records")
        paths[base] = {
            "get": {
                "tags": tag, "operationId": "list_%s" % comp,
                "summary": "List %s, filtered, sorted and paged" % comp,
                "parameters": self.list_parameters(info) + [include_deleted],
                "responses": dict({"200": _json(
                    {"type": "array", "items": row}, "The matching records",
                    {"X-Total-Count": {"description": "Records matching the filters, "
                                                      "before limit and offset",
                                       "schema": {"type": "integer"}}})},
                    **_errors("400", *auth)),
            },
            "post": {
                "tags": tag, "operationId": "create_%s" % comp,
                "summary": "Create a %s record" % comp,
                "parameters": list(write), "requestBody": body,
                "responses": dict({"201": _json(row, "Created", dict(_ETAG, Location={
                    "description": "URL of the new record", "schema": {"type": "string"}}))},
                    **_errors("400", *auth, "409", "413", "415", "422", "503", "507")),
            },
        }
        paths[item] = {
            "parameters": [id_param],
            "get": {
                "tags": tag, "operationId": "get_%s" % comp,
                "summary": "One %s record" % comp, "parameters": [include_deleted],
                "responses": dict({"200": _json(row, "The record", _ETAG),
                                   "304": {"description": "Not modified (If-None-Match)"}},
                                  **_errors("400", *auth, "404")),
            },
            "put": {
                "tags": tag, "operationId": "replace_%s" % comp,
                "summary": "Replace a %s record, or create it at this id" % comp,
                "parameters": write + [_IF_MATCH], "requestBody": body,
                "responses": dict({"200": _json(row, "Replaced", _ETAG),
                                   "201": _json(row, "Created at this id", _ETAG)},
                                  **_errors("400", *auth, "404", "409", "412", "413", "415",
                                            "422", "503", "507")),
            },
            "patch": {
                "tags": tag, "operationId": "patch_%s" % comp,
                "summary": "Change some fields of a %s record" % comp,
                "parameters": write + [_IF_MATCH], "requestBody": patch_body,
                "responses": dict({"200": _json(row, "Updated", _ETAG)},
                                  **_errors("400", *auth, "404", "412", "413", "415", "422",
                                            "503", "507")),
            },
            "delete": {
                "tags": tag, "operationId": "delete_%s" % comp,
                "summary": ("Soft-delete" if info.soft_delete else "Delete") +
                           " a %s record" % comp,
                "parameters": write + [_IF_MATCH],
                "responses": dict({"200": _json(_ref("Deleted"), "Deleted")},
                                  **_errors("400", *auth, "404", "412", "422", "503", "507")),
            },
        }
        paths[item + "/restore"] = {
            "parameters": [id_param],
            "post": {
                "tags": tag, "operationId": "restore_%s" % comp,
                "summary": "Restore a soft-deleted %s record" % comp,
                "parameters": write + [_IF_MATCH],
                "responses": dict({"200": _json(_ref("Restored"), "restored is false when "
                                                "the record was not deleted")},
                                  **_errors("400", *auth, "404", "409", "412", "422", "503",
                                            "507")),
            },
        }
        paths[item + "/history"] = {
            "parameters": [id_param],
            "get": {
                "tags": tag, "operationId": "history_%s" % comp,
                "summary": "The audit entries of a %s record, newest first" % comp,
                "parameters": self.page_parameters(),
                "responses": dict({"200": _json({"type": "array",
                                                 "items": _ref("AuditEntry")},
                                                "Audit entries, newest first")},
                                  **_errors("400", *auth, "404")),
            },
        }
        paths[item + "/revert"] = {
            "parameters": [id_param],
            "post": {
                "tags": tag, "operationId": "revert_%s" % comp,
                "summary": "Set a %s record back to the state of one of its audit entries"
                           % comp,
                "parameters": write + [_IF_MATCH],
                "requestBody": {"required": True, "content": {JSON: {"schema": _ref(
                    "RevertRequest")}}},
                "responses": dict({"200": _json(row, "The reverted record", _ETAG)},
                                  **_errors("400", *auth, "404", "409", "412", "413", "415",
                                            "422", "503", "507")),
            },
        }

    def list_parameters(self, info: ModelInfo) -> List[Dict[str, Any]]:
        params = []
        for field in info.fields:
            scalar = field_schema(info, field, True)
            for key in ("default", "readOnly", "description"):
                scalar.pop(key, None)
            for op in operators_for(info.kinds[field.name]):
                if op == "is_null":
                    schema: Dict[str, Any] = {"type": "boolean"}
                elif op in ("in", "not_in"):
                    schema = {"type": "string"}
                elif op in ("contains", "startswith", "endswith", "like"):
                    schema = {"type": "string"}
                else:
                    schema = scalar
                name = field.name if op == "eq" else "%s__%s" % (field.name, op)
                text = {"in": "comma-separated values", "not_in": "comma-separated values",
                        "like": "case-insensitive pattern, % is the wildcard",
                        "contains": "case-insensitive", "startswith": "case-insensitive",
                        "endswith": "case-insensitive",
                        "is_null": "true or false"}.get(op, "")
                params.append(_query(name, schema, ("%s %s %s" % (field.name, op, text))
                                     .strip()))
        names = ", ".join(info.names)
        params.append(_query("order_by", {"type": "string"},
                             "Comma-separated fields, - for descending (%s)" % names))
        params.append(_query("fields", {"type": "string"},
                             "Comma-separated fields to return (%s)" % names))
        params.append(_query("limit", {"type": "integer", "minimum": 0}, "At most this many"))
        params.append(_query("offset", {"type": "integer", "minimum": 0, "default": 0},
                             "Skip this many"))
        return params

    def page_parameters(self) -> List[Dict[str, Any]]:
        return [_query("limit", {"type": "integer", "minimum": 1, "maximum": 1000,
                                 "default": 100}, "At most this many entries"),
                _query("offset", {"type": "integer", "minimum": 0, "default": 0},
                       "Skip this many entries")]

    def changes(self, paths: Dict[str, Any]) -> None:
        """``GET /db/changes``: the change stream (SPEC 12)."""
        from ._changes import LOG_COMPONENTS

        names = sorted({model._meta.component for model in self.plugin.models}
                       | set(LOG_COMPONENTS))
        event_id = {"type": "integer", "format": "int64", "minimum": 0}
        listed = {"type": "string", "pattern": "^[^,]+(,[^,]+)*$"}
        paths[self.plugin.route_path("/db/changes")] = {"get": {
            "tags": ["db"], "operationId": "db_changes",
            "summary": "Committed changes as Server-Sent Events (resumable)",
            "parameters": [
                _query("components", listed, "Only these components (comma-separated: %s)"
                       % ", ".join(names)),
                _query("operations", listed, "Only these operations (comma-separated: %s)"
                       % ", ".join(OPERATIONS)),
                _query("since", event_id, "Replay every audited change after this event id"),
                {"name": "Last-Event-ID", "in": "header", "required": False,
                 "schema": event_id, "description": "As since (an EventSource reconnecting)"}],
            "responses": dict({"200": {"description": "An endless text/event-stream: one "
                                       "'change' event per committed change",
                                       "content": {"text/event-stream": {
                                           "schema": {"type": "string"}}}}},
                              **_errors(*sorted(set(("400", "503") + self.auth))))}}

    def db(self, paths: Dict[str, Any]) -> None:
        route = self.plugin.route_path
        auth = self.auth
        tag = ["db"]
        text = {"type": "string"}
        if ("GET", route("/db/health")) in self.routes:
            paths[route("/db/health")] = {"get": {
                "tags": tag, "operationId": "db_health", "summary": "Does the database answer",
                "responses": dict({"200": _json(_ref("Health"), "It answers"),
                                   "503": _json(_ref("Health"), _ERROR_TEXT["503"])},
                                  **_errors(*auth))}}
        if ("GET", route("/db/audit")) in self.routes:
            params = [_query(name, text, "Entries with this %s" % name)
                      for name in ("component", "record_id", "actor")]
            params.append(_query("operation", {"type": "string", "enum": list(OPERATIONS)},
                "Entries of this operation"))
            params.append(_query("since", dict(_INPUT[DATETIME]),
                                 "Entries at or after this time (UTC unless it has an offset)"))
            params.append(_query("until", dict(_INPUT[DATETIME]),
                                 "Entries at or before this time (UTC unless it has an offset)"))
            paths[route("/db/audit")] = {"get": {
                "tags": tag, "operationId": "db_audit", "summary": "The audit log, newest first",
                "parameters": params + self.page_parameters(),
                "responses": dict({"200": _json({"type": "array", "items": _ref("AuditEntry")},
                                                "Audit entries")}, **_errors("400", *auth))}}
        if ("GET", route("/db/audit/verify")) in self.routes:
            digest = {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}
            paths[route("/db/audit/verify")] = {"get": {
                "tags": tag, "operationId": "db_audit_verify",
                "summary": "Check the audit log's hash chain",
                "parameters": [
                    _query("head_id", {"type": "integer", "format": "int64", "minimum": 1},
                           "A head saved earlier: its entry id (with head_hash)"),
                    _query("head_hash", digest,
                           "A head saved earlier: its hash (with head_id)")],
                "responses": dict({"200": _json(_ref("AuditVerification"),
                                                "What the check found")},
                                  **_errors(*sorted(set(("400",) + auth + ("401", "403")))))}}
        if ("GET", route("/db/backups")) in self.routes:
            paths[route("/db/backups")] = {"get": {
                "tags": tag, "operationId": "db_backups",
                "summary": "The rotating backups kept (serve(backup_dir=...)), newest first",
                "responses": dict({"200": _json({"type": "array", "items": _ref("Backup")},
                                                "The backups")},
                                  **_errors(*sorted(set(("400",) + auth + ("401", "403")))))}}
        if ("GET", route("/db/changes")) in self.routes:
            self.changes(paths)
        admin = ("401", "403")
        files = [
            ("GET", "/db/diagram.svg", "db_diagram", "The schema as an SVG diagram",
             "image/svg+xml", ()),
            ("GET", "/db/export.zip", "db_export", "Every table as CSV, in a zip",
             "application/zip", admin + ("400",)),
            ("GET", "/db/backup.sqlite", "db_backup", "A consistent online backup (SQLite)",
             "application/x-sqlite3", admin + ("501", "507")),
        ]
        for method, path, op_id, summary, mime, codes in files:
            if (method, route(path)) in self.routes:
                errors = tuple(sorted(set(auth + codes)))
                paths[route(path)] = {"get": {
                    "tags": tag, "operationId": op_id, "summary": summary,
                    "responses": dict({"200": {"description": summary, "content": {
                        mime: {"schema": {"type": "string", "format": "binary"}}}}},
                        **_errors(*errors))}}
        uploads = [
            ("/db/import", "db_import", "Import a zip of CSV files, all or nothing",
             {"mode": {"type": "string", "enum": ["append", "replace"], "default": "append"}},
             "ImportResult"),
            ("/db/restore", "db_restore", "Replace the database with a backup file",
             {"integrity_check": {"type": "boolean", "default": True},
              "dry_run": {"type": "boolean", "default": False}}, "RestoreResult"),
        ]
        for path, op_id, summary, extra, result in uploads:
            if ("POST", route(path)) in self.routes:
                props = {"file": {"type": "string", "format": "binary"}}
                props.update(extra)
                paths[route(path)] = {"post": {
                    "tags": tag, "operationId": op_id, "summary": summary,
                    "parameters": list(self.write_headers),
                    "requestBody": {"required": True, "content": {"multipart/form-data": {
                        "schema": {"type": "object", "properties": props,
                                   "required": ["file"]}}}},
                    "responses": dict({"200": _json(_ref(result), summary)},
                                      **_errors("400", "401", "403", "413", "422", "501", "507"))}}


def _shared_schemas() -> Dict[str, Any]:
    text = {"type": "string"}
    obj = {"type": ["object", "null"]}
    return {
        "Error": {"type": "object", "properties": {"detail": text}, "required": ["detail"]},
        "ValidationError": {"type": "object", "required": ["detail"], "properties": {
            "detail": text,
            "errors": {"type": "object", "additionalProperties": text,
                       "description": "field name -> what is wrong with it"}}},
        "Deleted": {"type": "object", "properties": {"status": {"const": "deleted"}},
                    "required": ["status"]},
        "Restored": {"type": "object", "required": ["status", "restored"], "properties": {
            "status": {"const": "ok"}, "restored": {"type": "boolean"}}},
        "RevertRequest": {"type": "object", "required": ["audit_id"],
                          "additionalProperties": False,
                          "properties": {"audit_id": {"type": "integer", "format": "int64"}}},
        "AuditEntry": {"type": "object", "properties": {
            "id": {"type": "integer"}, "timestamp": {"type": "string", "format": "date-time-local"},
            "component": text, "record_id": text,
            "operation": {"type": "string", "enum": list(OPERATIONS)},
            "actor": text, "reason": {"type": ["string", "null"]}, "before": obj, "after": obj,
            "hash": {"type": ["string", "null"],
                     "description": "the entry's link in the hash chain (null: written "
                                    "before the chain existed)"},
            "changed": {"type": "array", "items": text}},
            "required": ["id", "timestamp", "component", "record_id", "operation", "actor",
                         "before", "after"]},
        "AuditVerification": {"type": "object", "required": [
            "ok", "entries", "first_bad_id", "head", "chain_start", "unchained"], "properties": {
            "ok": {"type": "boolean"}, "entries": {"type": "integer"},
            "first_bad_id": {"type": ["integer", "null"]},
            "head": {"type": ["object", "null"], "properties": {
                "id": {"type": "integer"}, "hash": {"type": "string"}}},
            "chain_start": {"type": ["integer", "null"]}, "unchained": {"type": "integer"}}},
        "Health": {"type": "object", "required": ["status"], "properties": {
            "status": {"type": "string", "enum": ["ok", "error"]}, "database": text,
            "latency_ms": {"type": "number"}, "detail": text,
            "disk": {"type": ["object", "null"], "properties": {
                "free_bytes": {"type": ["integer", "null"]},
                "min_free_bytes": {"type": "integer"}, "database_bytes": {"type": "integer"},
                "wal_bytes": {"type": "integer"}, "low": {"type": "boolean"},
                "writable": {"type": "boolean"}}},
            "warnings": {"type": "array", "items": text}}},
        "Backup": {"type": "object", "required": ["name", "size", "time", "verified"],
                   "properties": {"name": text, "size": {"type": "integer"},
                                  "time": {"type": "string", "format": "date-time"},
                                  "verified": {"type": "boolean"}}},
        "ImportResult": {"type": "object", "properties": {
            "imported": {"type": "object", "additionalProperties": {"type": "integer"},
                         "description": "table -> rows imported"},
            "skipped": {"type": "object", "additionalProperties": text,
                        "description": "table -> why its file was skipped (the audit log)"}}},
        "RestoreResult": {"type": "object", "properties": {
            "status": text, "restored": {"type": "boolean"}, "bytes": {"type": "integer"}}},
    }


def build_document(plugin: Any, routes: Optional[set] = None) -> Dict[str, Any]:
    """The OpenAPI 3.1 document (without ``servers``) of ``plugin``'s routes.

    ``routes`` is a set of ``(method, rule)``: the /db routes are described
    when they exist (by default: the routes the plugin added at setup).
    """
    from .. import __version__

    if routes is None:
        routes = plugin.route_keys
    schemas = _shared_schemas()
    paths: Dict[str, Any] = {}
    builder = _Builder(plugin, routes)
    names = _schema_names(plugin.infos)
    for info in plugin.infos:
        builder.model(info, names[info.component], paths, schemas)
    if plugin.db_routes:
        builder.db(paths)
    paths[plugin.route_path("/openapi.json")] = {"get": {
        "tags": ["meta"], "operationId": "openapi", "summary": "This document",
        "responses": {"200": {"description": "OpenAPI 3.1", "content": {JSON: {
            "schema": {"type": "object"}}}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "peestore REST API", "version": __version__,
                 "description": "Generated by peestore from the models: %s. Filters: "
                                "field=value or field__op=value with op one of %s."
                                % (", ".join(i.component for i in plugin.infos) or "none",
                                   ", ".join(OPERATORS))},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def openapi_callback(plugin: Any) -> Callable[[], str]:
    """The ``GET /openapi.json`` route callback of ``plugin`` (the document is built on
    the first request and kept, per URL prefix it is served under)."""
    path = plugin.route_path("/openapi.json")
    cache: Dict[str, str] = {}
    document: List[Dict[str, Any]] = []

    def openapi() -> str:
        request = bottle.request
        # The URL the routes are served under (a mount prefix, a proxy's SCRIPT_NAME).
        full = request.fullpath
        base = full[:-len(path)] if full.endswith(path) else ""
        text = cache.get(base)
        if text is None:
            if not document:
                document.append(build_document(plugin))
            doc = dict(document[0])
            doc["servers"] = [{"url": base or "/"}]
            text = cache[base] = dumps(doc)
        bottle.response.content_type = JSON
        return text

    return openapi

