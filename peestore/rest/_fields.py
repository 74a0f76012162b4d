"""What the REST API knows about a model, worked out once at setup.

``ModelInfo`` holds, per model, the field lookups, the JSON kind of every
field, which fields a client may write, which it must send, and how a row
becomes JSON, so that a request does no introspection of its own.
"""
from __future__ import annotations

import hashlib

import peewee

from .. import _compat
from ..model._checks import check_converted, check_range, check_text, rules_of
from ..errors import ConfigurationError
from ..model._values import (ANY, BOOLEAN, BYTES, DATE, DATETIME, DECIMAL, INTEGER, NUMBER,  # noqa: F401
                      STRING, TIME, UUID, field_kind, from_json_value, to_json_value)
from ._rows import raw_plan, rows_converter

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = ["ModelInfo", "field_kind", "etag_of", "check_range", "check_text"]

# Kinds whose values the JSON output carries unchanged (no conversion needed).
_PLAIN = {INTEGER, NUMBER, BOOLEAN, STRING}

# The JSON types a body may use for each kind ("wrong type" is a 422).
_ACCEPTS: Dict[str, Tuple[type, ...]] = {
    INTEGER: (int,), NUMBER: (int, float), DECIMAL: (int, float, str), BOOLEAN: (bool,),
    STRING: (str,), DATETIME: (str,), DATE: (str,), TIME: (str,), UUID: (str,), BYTES: (str,),
}
_NAMES = {
    INTEGER: "an integer", NUMBER: "a number", DECIMAL: "a decimal number (number or string)",
    BOOLEAN: "true or false", STRING: "a string", DATETIME: "an ISO 8601 date and time string",
    DATE: "an ISO 8601 date string", TIME: "an ISO 8601 time string", UUID: "a UUID string",
    BYTES: "a base64 string",
}


def etag_of(body: str) -> str:
    """A strong ETag for a row's JSON text: it changes whenever the row does."""
    return '"%s"' % hashlib.sha1(body.encode("utf-8")).hexdigest()[:24]


def _default_of(field: peewee.Field) -> Any:
    default = field.default
    return default() if callable(default) else default


class ModelInfo:
    """The REST view of one model: fields, kinds, writable and required fields."""

    def __init__(self, model: type) -> None:
        meta = model._meta
        self.model = model
        self.component: str = meta.component
        self.soft_delete: bool = bool(meta.soft_delete)
        self.audited: bool = bool(meta.audited)
        self.pk: peewee.Field = meta.primary_key
        if self.pk is False or self.pk is None or _compat.composite_key(model):
            raise ConfigurationError("%s: the REST API needs a single-column primary key"
                                     % model.__name__)
        self.pk_kind = field_kind(self.pk)
        self.pk_auto: bool = _compat.auto_increment(model)
        self.fields: List[peewee.Field] = list(meta.sorted_fields)
        self.names: List[str] = [f.name for f in self.fields]
        self.by_name: Dict[str, peewee.Field] = dict(meta.fields)
        self.kinds: Dict[str, str] = {f.name: field_kind(f) for f in self.fields}
        # Per field, what check_value tests: kind, accepted JSON types, length, choices.
        self._checks: Dict[str, Tuple[str, Any, Optional[int], Optional[List[Any]]]] = {}
        for f in self.fields:
            kind, max_length, allowed = rules_of(f)
            self._checks[f.name] = (kind, _ACCEPTS.get(kind), max_length, allowed)
        # Read-only: an auto-increment key (the URL names the row) and
        # deleted_at (DELETE and restore set it, with their hooks and audit).
        read_only = {"deleted_at"} if self.soft_delete else set()
        if self.pk_auto:
            read_only.add(self.pk.name)
        self.read_only = read_only
        self.writable = [f for f in self.fields if f.name not in read_only]
        self.required = [f.name for f in self.writable if not f.null and f.default is None]
        self.by_column: Dict[str, str] = {f.column_name: f.name for f in self.fields
                                          if f.column_name != f.name}
        self.has_server_defaults = any(f.constraints for f in self.fields)
        self._converters: List[Tuple[int, Callable[[Any], Any]]] = [
            (i, to_json_value) for i, f in enumerate(self.fields)
            if self.kinds[f.name] not in _PLAIN]
        self.raw_rows: Callable[[Any], List[Dict[str, Any]]] = rows_converter(
            self.names, [raw_plan(f, self.kinds[f.name]) for f in self.fields])

    # -- values from the client --------------------------------------------

    def parse_pk(self, text: str) -> Optional[Any]:
        """The primary key named by a URL segment, or None when it cannot be one."""
        try:
            value = from_json_value(self.pk, text)
            check_range(self.pk_kind, value)
        except ValueError:
            return None
        if self.pk_kind == STRING and self.pk.max_length and len(value) > self.pk.max_length:
            return None
        return value

    def check_value(self, field: peewee.Field, value: Any) -> Any:
        """``value`` from a JSON body converted for ``field``; ValueError says why not."""
        if value is None:
            if not field.null:
                raise ValueError("may not be null")
            return None
        kind, accepts, max_length, allowed = self._checks[field.name]
        if accepts is not None and (not isinstance(value, accepts) or isinstance(value, bool)
                                    and kind != BOOLEAN):
            raise ValueError("expected %s" % _NAMES[kind])
        # The commonest kind, a string, is its own value (its type is checked above).
        converted = value if kind == STRING else from_json_value(field, value)
        check_converted(kind, converted, max_length, allowed)
        return converted

    def default_of(self, field: peewee.Field) -> Any:
        """The value ``field`` gets when a replacing PUT leaves it out."""
        return _default_of(field)

    # -- rows to the client ------------------------------------------------

    def row_dict(self, row: Tuple[Any, ...], names: Optional[List[str]] = None,
                 converters: Optional[List[Tuple[int, Callable]]] = None) -> Dict[str, Any]:
        """A database row (a tuple in field order, or of ``names``) as a JSON-safe dict."""
        if converters is None:
            converters = self._converters
        if converters:
            row = list(row)
            for i, convert in converters:
                row[i] = convert(row[i])
        return dict(zip(names or self.names, row))

    def raw_row_dict(self, row: Tuple[Any, ...]) -> Dict[str, Any]:
        """A row straight from the DB-API cursor (every field, in order) as a JSON-safe dict:
        what ``row_dict`` gives for the same row read through peewee.  ``raw_rows(rows)``
        does a list of them at once."""
        return self.raw_rows((row,))[0]

    def converters_for(self, names: List[str]) -> List[Tuple[int, Callable[[Any], Any]]]:
        """Converters for a row of just ``names`` (the ``fields=`` parameter)."""
        return [(i, to_json_value) for i, n in enumerate(names) if self.kinds[n] not in _PLAIN]
