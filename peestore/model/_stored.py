"""Values as the database will store them, before a write sends them.

An audit entry's ``after`` must be what a fresh read of the row returns.  A
column may keep other than what was written: a DECIMAL rounds to its places,
MariaDB's DATETIME drops the fraction of a second, SQLite turns ``1.10`` into
the REAL ``1.1``, a CharField stores ``str(5)``.  So every value an audited
write sends is first made into what the column will give back (the rounding
and the conversion are peewee's and the database's, done here once), and the
write sends, audits and keeps on the instance that value: no read-back.

A value no backend stores faithfully is refused (``ValidationError``, the
field named): non-finite floats and decimals on every backend, decimals wider
than their field, and what only one backend cannot keep (``Dialect``).
"""
from __future__ import annotations

import datetime
import decimal
import math

import peewee

from ..db._dialect import dialect_of
from ..errors import ValidationError
from ._values import _parse_date, _parse_datetime, _parse_int, _parse_time, _parse_uuid

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Optional, Tuple

    from ..db._dialect import Dialect

__all__ = ["store_values", "store_value", "converters"]

_UTC = datetime.timezone.utc
_Decimal = decimal.Decimal
_Node = peewee.Node

# (model, dialect) -> {field name: (type kept as it is, converter)}; only fields
# whose values may need converting.
_plans: Dict[Tuple[type, Any], Dict[str, Tuple[Any, Callable[[Any], Any]]]] = {}

# Values of these types are stored as they are in fields of that kind: no call.
_KEPT = {"boolean": bool, "integer": int, "text": str, "date": datetime.date}


def converters(model: type, db: peewee.Database
               ) -> Dict[str, Tuple[Any, Callable[[Any], Any]]]:
    """``{field name: (kept, convert)}`` for ``model`` on ``db``: a value whose type is
    ``kept`` is stored as it is; ``convert(value)`` returns any other as its
    column gives it back, or raises ``ValueError`` (a short reason)."""
    dialect = dialect_of(db)
    key = (model, dialect)
    plan = _plans.get(key)
    if plan is None:
        plan = {}
        for field in model._meta.sorted_fields:
            found = _converter(field, dialect)
            if found is not None:
                kind, convert = found
                plan[field.name] = (_KEPT.get(kind), convert)
        _plans[key] = plan
    return plan


def store_values(model: type, db: peewee.Database, data: Dict[str, Any]) -> bool:
    """Replace each value of ``data`` (field name -> value) by the value its column
    will give back; ``ValidationError`` naming every field whose value cannot be
    stored faithfully.  Returns whether a value is a SQL expression (what the
    database makes of it is only known by reading the row)."""
    plan = converters(model, db)
    errors = None
    expression = False
    for name, value in data.items():
        if value is None:
            continue
        entry = plan.get(name)
        if entry is not None and type(value) is entry[0]:
            continue
        if isinstance(value, _Node):
            expression = True
            continue
        if entry is None:
            continue
        try:
            data[name] = entry[1](value)
        except (ValueError, TypeError, ArithmeticError) as exc:
            if errors is None:
                errors = {}
            errors[name] = _reason(exc)
    if errors:
        raise ValidationError("%s: %s cannot be stored as given: %s" % (
            model._meta.component, ", ".join(sorted(errors)),
            "; ".join("%s %s" % item for item in sorted(errors.items()))), errors)
    return expression


def store_value(field: peewee.Field, db: peewee.Database, value: Any) -> Any:
    """One value of ``field`` as its column will give it back (see ``store_values``)."""
    data = {field.name: value}
    store_values(field.model, db, data)
    return data[field.name]


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return text if text.startswith(("expected", "more", "at most")) else "is not a valid value"


_CONVERSIONS = ("db_value", "python_value", "adapt")


def _converter(field: peewee.Field, dialect: Dialect
               ) -> Optional[Tuple[str, Callable[[Any], Any]]]:
    """(kind, converter) for ``field`` on ``dialect``, or None: stored as given."""
    # Order matters: peewee's subclasses before their bases.
    if isinstance(field, peewee.ForeignKeyField):
        return None  # a model instance or its key: to_json_value takes either
    for base, kind, make in (
            (peewee.BooleanField, "boolean", lambda: _boolean),
            (peewee.TimestampField, "timestamp", lambda: _round_trip(field)),
            (peewee.IntegerField, "integer", lambda: _integer),
            (peewee.DecimalField, "decimal", lambda: _decimal(field, dialect)),
            (peewee.FloatField, "float", lambda: _float),
            (peewee.DateTimeField, "datetime", lambda: _datetime(dialect)),
            (peewee.DateField, "date", lambda: _date),
            (peewee.TimeField, "time", lambda: _time(dialect)),
            (peewee.UUIDField, "uuid", lambda: _uuid),
            (peewee.BinaryUUIDField, "uuid", lambda: _uuid),
            (peewee.CharField, "text", lambda: _text(field)),
            (peewee.TextField, "text", lambda: _text(field))):
        if isinstance(field, base):
            # A field class of the app's (or playhouse's: a JSONField is a
            # TextField) that converts values its own way is left to itself.
            klass = type(field)
            if all(getattr(klass, name) is getattr(base, name) for name in _CONVERSIONS):
                return kind, make()
            return None
    return None


def _boolean(value: Any) -> Any:
    return value if type(value) is bool else bool(value)  # as peewee's BooleanField


def _integer(value: Any) -> Any:
    if type(value) is int:
        return value
    if isinstance(value, bool):
        return int(value)
    return _parse_int(value)  # "5" -> 5; 2.5 is refused (backends round or keep it)


def _float(value: Any) -> Any:
    if type(value) is not float:
        if isinstance(value, str):
            value = value.strip()
        value = float(value)
    if not math.isfinite(value):
        # SQLite keeps inf and turns nan into NULL, PostgreSQL keeps both,
        # MySQL refuses both: refused everywhere alike.
        raise ValueError("expected a finite number")
    return value + 0.0  # -0.0 reads back as 0.0 on SQLite


def _decimal(field: peewee.DecimalField, dialect: Dialect) -> Callable[[Any], Any]:
    places = field.decimal_places
    digits = field.max_digits
    # The servers round half away from zero; peewee's auto_round its own way.
    rounding = (field.rounding or decimal.ROUND_HALF_EVEN) if field.auto_round \
        else decimal.ROUND_HALF_UP
    exponent = _Decimal(1).scaleb(-places) if places is not None else None
    wide = "at most %s digits, %s after the decimal point" % (digits, places)
    stored = dialect.stored_decimal

    def convert(value: Any) -> Any:
        if type(value) is not _Decimal:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValueError("expected a decimal number")
            try:
                value = _Decimal(str(value).strip())
            except decimal.InvalidOperation:
                raise ValueError("expected a decimal number") from None
        if not value.is_finite():
            raise ValueError("expected a finite decimal number")
        if exponent is not None:
            try:
                value = value.quantize(exponent, rounding)
            except decimal.InvalidOperation:
                raise ValueError(wide) from None
        if digits is not None and len(value.as_tuple().digits) > digits:
            raise ValueError(wide)
        if not value:
            value = abs(value)  # no backend keeps a negative zero
        return stored(value)

    return convert


def _datetime(dialect: Dialect) -> Callable[[Any], Any]:
    stored = dialect.stored_datetime

    def convert(value: Any) -> Any:
        if type(value) is not datetime.datetime:
            if isinstance(value, datetime.datetime):
                pass
            elif isinstance(value, datetime.date):
                value = datetime.datetime(value.year, value.month, value.day)
            elif isinstance(value, str):
                value = _parse_datetime(value)
            else:
                raise ValueError("expected an ISO 8601 date and time")
        if value.tzinfo is not None:
            # Stored datetimes are naive UTC (a TIMESTAMP column would shift an
            # aware one to the session's zone, SQLite keep its offset as text).
            value = value.astimezone(_UTC).replace(tzinfo=None)
        return stored(value)

    return convert


def _date(value: Any) -> Any:
    if type(value) is datetime.date:
        return value
    return _parse_date(value)


def _time(dialect: Dialect) -> Callable[[Any], Any]:
    stored = dialect.stored_time

    def convert(value: Any) -> Any:
        if type(value) is not datetime.time:
            if isinstance(value, datetime.datetime):
                value = value.time()
            else:
                value = _parse_time(value)
        elif value.tzinfo is not None:
            value = _parse_time(value)  # shifted to UTC, as REST bodies are
        return stored(value)

    return convert


def _uuid(value: Any) -> Any:
    return _parse_uuid(value)


def _text(field: peewee.Field) -> Callable[[Any], Any]:
    adapt = field.adapt

    def convert(value: Any) -> Any:
        return value if type(value) is str else adapt(value)  # str(5), bytes decoded

    return convert


def _round_trip(field: peewee.Field) -> Callable[[Any], Any]:
    # TimestampField keeps whole (or resolution) seconds as an integer, on every backend.
    def convert(value: Any) -> Any:
        return field.python_value(field.db_value(value))

    return convert
