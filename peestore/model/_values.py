"""Converting field values to JSON-safe values and back, by the field's type.

The same rules serve ``to_dict``, the audit log's before/after, the REST
bodies and the CSV files, so a value reads back as the type it was written.
"""
from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import json
import math
import uuid

import peewee

from .. import _compat

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable

__all__ = ["to_json_value", "from_json_value", "field_kind", "dumps", "loads", "row_values",
           "json_safe"]


def to_json_value(value: Any) -> Any:
    """Return ``value`` as something ``json.dumps`` accepts.

    Datetimes, dates and times become ISO 8601 strings, decimals and UUIDs
    strings, bytes base64 text.
    """
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, peewee.Model):
        return to_json_value(value.get_id())
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_json_value(v) for v in value]
    return str(value)


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    raise ValueError("expected an integer")


def _parse_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    if isinstance(value, (int, float)):
        result = float(value)
    elif isinstance(value, str):
        result = float(value.strip())
    else:
        raise ValueError("expected a number")
    if not math.isfinite(result):
        raise ValueError("expected a finite number")
    return result


def _parse_decimal(value: Any) -> decimal.Decimal:
    if isinstance(value, bool):
        raise ValueError("expected a decimal number")
    if isinstance(value, (int, str, float)):
        try:
            result = decimal.Decimal(str(value).strip())
        except decimal.InvalidOperation:
            raise ValueError("expected a decimal number") from None
        if not result.is_finite():
            raise ValueError("expected a finite decimal number")
        return result
    raise ValueError("expected a decimal number")


def _six_digits(text: str) -> str:
    """``text`` with its seconds' fraction written with six digits (``.5`` ->
    ``.500000``, a seventh digit on dropped): Python before 3.11 parses only three
    or six, and every Python the package runs on must take the same values."""
    at = text.find(":")
    at = text.find(":", at + 1) if at >= 0 else -1
    start = at + 3
    if at < 0 or start >= len(text) or text[start] not in ".,":
        return text
    end = start + 1
    while end < len(text) and text[end].isdigit():
        end += 1
    if end == start + 1:
        return text
    return text[:start] + "." + (text[start + 1:end] + "00000")[:6] + text[end:]


def _parse_datetime(value: Any) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        parsed = datetime.datetime.fromisoformat(_six_digits(text))
        if parsed.tzinfo is not None:
            # Stored datetimes are naive UTC, as peewee writes them.
            parsed = parsed.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return parsed
    raise ValueError("expected an ISO 8601 date and time")


def _parse_date(value: Any) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        return datetime.date.fromisoformat(value.strip())
    raise ValueError("expected an ISO 8601 date")


def _parse_time(value: Any) -> datetime.time:
    if isinstance(value, datetime.time):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        parsed = datetime.time.fromisoformat(_six_digits(text))
    else:
        raise ValueError("expected an ISO 8601 time")
    offset = parsed.utcoffset()
    if offset is not None:
        # Stored times are naive UTC, like datetimes: shift by the offset.
        moment = datetime.datetime.combine(datetime.date(2000, 1, 2),
                                           parsed.replace(tzinfo=None)) - offset
        parsed = moment.time()
    return parsed


def _parse_uuid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        return uuid.UUID(value.strip())
    raise ValueError("expected a UUID")


def _parse_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise ValueError("expected base64 text") from None
    raise ValueError("expected base64 text")


def _parse_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValueError("expected a string")


# JSON kinds: how a value of a field looks in JSON.
INTEGER, NUMBER, DECIMAL, BOOLEAN, STRING = "integer", "number", "decimal", "boolean", "string"
DATETIME, DATE, TIME, UUID, BYTES, ANY = "datetime", "date", "time", "uuid", "bytes", "any"

# Order matters: subclasses before their bases (BooleanField is not an
# IntegerField in peewee, but TimestampField is a BigIntegerField).
_KINDS = (
    (peewee.BooleanField, BOOLEAN),
    (peewee.TimestampField, DATETIME),
    (peewee.IntegerField, INTEGER),
    (peewee.DecimalField, DECIMAL),
    (peewee.FloatField, NUMBER),
    (peewee.DateTimeField, DATETIME),
    (peewee.DateField, DATE),
    (peewee.TimeField, TIME),
    (peewee.UUIDField, UUID),
    (peewee.BinaryUUIDField, UUID),
    (peewee.BlobField, BYTES),
    (peewee.CharField, STRING),
    (peewee.TextField, STRING),
)

_PARSERS = {
    BOOLEAN: _parse_bool, INTEGER: _parse_int, DECIMAL: _parse_decimal, NUMBER: _parse_float,
    DATETIME: _parse_datetime, DATE: _parse_date, TIME: _parse_time, UUID: _parse_uuid,
    BYTES: _parse_bytes, STRING: _parse_text,
}


def field_kind(field: peewee.Field) -> str:
    """The JSON kind of ``field`` (a foreign key has its target's kind)."""
    if isinstance(field, peewee.ForeignKeyField):
        return field_kind(_compat.target_field(field))
    for klass, kind in _KINDS:
        if isinstance(field, klass):
            return kind
    return ANY


def _parser_for(field: peewee.Field):
    # Kept on the field: working the kind out walks the type table each time.
    try:
        return field.__dict__["_ps_parser"]
    except KeyError:
        parser = field.__dict__["_ps_parser"] = _PARSERS.get(field_kind(field))
        return parser


def from_json_value(field: peewee.Field, value: Any) -> Any:
    """Convert a JSON (or CSV/query-string) value back to ``field``'s Python type.

    ``None`` stays ``None``.  Raises ``ValueError`` with a short reason when
    the value does not fit.
    """
    if value is None:
        return None
    parser = _parser_for(field)
    if parser is None:
        return value
    try:
        return parser(value)
    except (ValueError, TypeError, OverflowError) as exc:
        reason = str(exc) if str(exc).startswith("expected") else _expected(field)
        raise ValueError(reason) from None


def _expected(field: peewee.Field) -> str:
    parser = _parser_for(field)
    names = {
        _parse_int: "an integer", _parse_float: "a number", _parse_bool: "true or false",
        _parse_decimal: "a decimal number", _parse_datetime: "an ISO 8601 date and time",
        _parse_date: "an ISO 8601 date", _parse_time: "an ISO 8601 time",
        _parse_uuid: "a UUID", _parse_bytes: "base64 text", _parse_text: "a string",
    }
    return "expected %s" % names.get(parser, "a valid value")


_PLAIN_TYPES = frozenset((str, int, float, bool, type(None)))


def row_values(model_class, data: Dict[str, Any]) -> Dict[str, Any]:
    """Return a JSON-safe dict of ``data`` (field name -> value) in field order."""
    return json_safe(data, [name for name in _compat.field_names(model_class)
                            if name in data])


def json_safe(data: Dict[str, Any], names: Iterable[str]) -> Dict[str, Any]:
    """``{name: to_json_value(data.get(name))}`` for ``names``, in that order."""
    # Most values are JSON already: a type check, not a call, per value.
    plain = _PLAIN_TYPES
    out = {}
    for name in names:
        value = data.get(name)
        out[name] = value if type(value) in plain else to_json_value(value)
    return out


# One encoder for every call: ``json.dumps`` with options builds a new one each
# time.  An encoder keeps no state between calls, so threads can share it.
_encode = json.JSONEncoder(default=to_json_value, separators=(",", ":"),
                           ensure_ascii=False).encode


def dumps(obj: Any) -> str:
    """Compact JSON text of ``obj`` (already JSON-safe or made so)."""
    return _encode(obj)


def loads(text: Any) -> Any:
    """Parse JSON text; ``None`` stays ``None``."""
    if text is None:
        return None
    if isinstance(text, (dict, list)):
        return text
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8")
    return json.loads(text)
