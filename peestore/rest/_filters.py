"""The list query string: filters, ``order_by``, ``limit``/``offset``, ``fields``.

Every parameter is checked against the model's fields and every value parsed
by its field's type before it touches a query; values reach the database as
bound parameters, never as SQL text.  Any mistake is a 400 that names the
parameter.  Each value is bounded (``MAX_VALUE_CHARS``), so a long one costs
neither the database (a megabyte ``contains`` compared with every row) nor
the answer (no error echoes more than a few words of it).
"""
from __future__ import annotations


import bottle
import peewee

from ..model._values import from_json_value
from ._fields import ANY, BOOLEAN, BYTES, STRING, ModelInfo, check_range, check_text
from ._responses import error

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Iterable, List, Optional, Tuple

__all__ = ["OPERATORS", "RESERVED", "MAX_FILTERS", "MAX_VALUES", "MAX_VALUE_CHARS",
           "ListQuery", "parse_list_query", "operators_for", "parse_bool_param",
           "parse_int_param", "query_params", "check_length", "shown"]

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains",
             "startswith", "endswith", "like", "is_null")
RESERVED = ("order_by", "limit", "offset", "include_deleted", "fields")

_TEXT_ONLY = ("contains", "startswith", "endswith", "like")
_MAX_INT = (1 << 63) - 1
# Filters per query, and values of all filters together (each is a bound
# parameter: SQLite builds before 3.32 take at most 999 in one statement).
MAX_FILTERS = 100
MAX_VALUES = 900
#: The most characters a query parameter's value may have; in a comma-separated
#: list (``in``, ``not_in``, ``fields``, ``order_by``), each item.  Longer is a 400.
MAX_VALUE_CHARS = 1000
_SHOWN = 60  # characters of a value or a name an error repeats


def shown(text: str) -> str:
    """``text`` as an error message repeats it: quoted, cut after a few words."""
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def _param(name: str) -> str:
    return name if len(name) <= _SHOWN else name[:_SHOWN] + "..."


def check_length(name: str, text: str) -> None:
    """A 400 naming the parameter ``name`` when ``text`` is over ``MAX_VALUE_CHARS``."""
    if len(text) > MAX_VALUE_CHARS:
        raise error(400, "query parameter %s: a value of %d characters; at most %d "
                    "(MAX_VALUE_CHARS)" % (_param(name), len(text), MAX_VALUE_CHARS))


def query_params() -> bottle.FormsDict:
    """The request's query parameters decoded as UTF-8 text; 400 when they are not."""
    try:
        return bottle.request.query.decode()
    except UnicodeError:
        raise error(400, "the query string is not UTF-8 text (percent-encode the UTF-8 "
                    "bytes of each character)") from None


def operators_for(kind: str) -> Tuple[str, ...]:
    """The operators that make sense for a field of this JSON kind."""
    if kind == STRING:
        return OPERATORS
    if kind in (BOOLEAN, BYTES, ANY):
        return ("eq", "ne", "in", "not_in", "is_null")
    return tuple(op for op in OPERATORS if op not in _TEXT_ONLY)


def parse_bool_param(name: str, text: str) -> bool:
    """``true``/``false`` (also 1/0, yes/no); else a 400 naming ``name``."""
    check_length(name, text)
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise error(400, "query parameter %s: expected true or false, got %r" % (name, text))


def parse_int_param(name: str, text: str, low: int = 0, high: int = _MAX_INT) -> int:
    """An integer in ``low..high``; else a 400 naming ``name``."""
    check_length(name, text)
    try:
        value = int(text.strip())
    except ValueError:
        raise error(400, "query parameter %s: expected an integer, got %r"
                    % (name, text)) from None
    if not low <= value <= high:
        raise error(400, "query parameter %s: must be between %d and %d, got %d"
                    % (name, low, high, value))
    return value


class ListQuery:
    """A parsed list request."""

    __slots__ = ("where", "order_by", "limit", "offset", "include_deleted", "names")

    def __init__(self) -> None:
        self.where: List[Any] = []
        self.order_by: List[Any] = []
        self.limit: Optional[int] = None
        self.offset: int = 0
        self.include_deleted = False
        self.names: Optional[List[str]] = None


def _like_pattern(text: str) -> Any:
    # Only % is a wildcard for ``like``: escape the backslash and _ so they
    # match themselves, the way peewee's own contains() does (portable ESCAPE).
    if "_" in text or "\\" in text:
        escaped = text.replace("\\", "\\\\").replace("_", "\\_")
        return peewee.NodeList((peewee.Value(escaped, converter=False), peewee.SQL("ESCAPE"),
                                peewee.Value("\\", converter=False)))
    return text


def _value(info: ModelInfo, param: str, field: peewee.Field, text: str) -> Any:
    try:
        value = from_json_value(field, text)
        check_range(info.kinds[field.name], value)
    except ValueError as exc:
        raise error(400, "query parameter %s: %s, got %r" % (param, exc, text)) from None
    return value


def _condition(info: ModelInfo, param: str, field: peewee.Field, op: str, text: str) -> Any:
    if op not in ("in", "not_in"):
        check_length(param, text)
    if op == "is_null":
        return field.is_null(parse_bool_param(param, text))
    if op in ("in", "not_in"):
        parts = text.split(",")
        for part in parts:
            check_length(param, part)
        values = [_value(info, param, field, part) for part in parts]
        return field.in_(values) if op == "in" else field.not_in(values)
    if op in _TEXT_ONLY:
        try:
            check_text(text)
        except ValueError as exc:
            raise error(400, "query parameter %s: %s, got %r" % (param, exc, text)) from None
        if op == "like":
            return field ** _like_pattern(text)
        return getattr(field, op)(text)
    value = _value(info, param, field, text)
    if op == "eq":
        return field == value
    if op == "ne":
        return field != value
    if op == "gt":
        return field > value
    if op == "gte":
        return field >= value
    if op == "lt":
        return field < value
    return field <= value


def _field(info: ModelInfo, param: str, name: str) -> peewee.Field:
    field = info.by_name.get(name)
    if field is None:
        raise error(400, "query parameter %s: %s has no field %s"
                    % (_param(param), info.component, shown(name)))
    return field


def _names(info: ModelInfo, param: str, text: str) -> List[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    for name in names:
        check_length(param, name)
    if not names:
        raise error(400, "query parameter %s: name at least one field" % param)
    for name in names:
        _field(info, param, name)
    return names


def parse_list_query(info: ModelInfo, items: Iterable[Tuple[str, str]]) -> ListQuery:
    """Parse the query string of ``GET /C/`` (``items``: decoded name, value pairs)."""
    query = ListQuery()
    order_text = None
    values = 0
    for param, text in items:
        if param in RESERVED:
            if param == "limit":
                query.limit = parse_int_param(param, text)
            elif param == "offset":
                query.offset = parse_int_param(param, text)
            elif param == "include_deleted":
                query.include_deleted = parse_bool_param(param, text)
            elif param == "fields":
                query.names = _names(info, param, text)
            else:
                order_text = text
            continue
        if param in info.by_name:
            name, op = param, "eq"
        else:
            name, _, op = param.rpartition("__")
            if not name:
                name, op = param, "eq"
        field = _field(info, param, name)
        if op not in OPERATORS:
            raise error(400, "query parameter %s: unknown operator %s; use one of %s"
                        % (_param(param), shown(op), ", ".join(OPERATORS)))
        if op not in operators_for(info.kinds[name]):
            raise error(400, "query parameter %s: operator %s does not apply to field %s"
                        % (param, op, name))
        values += text.count(",") + 1 if op in ("in", "not_in") else 1
        if len(query.where) >= MAX_FILTERS or values > MAX_VALUES:
            raise error(400, "query parameter %s: too many filters; a query takes at most "
                        "%d filters and %d values in all" % (param, MAX_FILTERS, MAX_VALUES))
        query.where.append(_condition(info, param, field, op, text))
    if len(query.where) > 1:
        # One flat AND: peewee nests a chain of & one level per filter, and
        # rendering a deep one would exhaust Python's recursion limit.
        query.where = [peewee.NodeList(query.where, " AND ", parens=True)]
    if order_text is not None:
        for part in order_text.split(","):
            part = part.strip()
            if not part:
                continue
            check_length("order_by", part)
            field = _field(info, "order_by", part[1:] if part.startswith("-") else part)
            query.order_by.append(field.desc() if part.startswith("-") else field.asc())
        if not query.order_by:
            raise error(400, "query parameter order_by: name at least one field")
    return query
