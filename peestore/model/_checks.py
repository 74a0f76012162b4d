"""The checks a field's value passes before it is written, wherever it comes from.

The REST API (a JSON body) and the CSV import (a cell's text) each convert a
value to its field's type (``peestore.values``), then run ``check_converted``:
range, text that no database stores, length and ``choices``.
"""
from __future__ import annotations

import re

import peewee

from ._values import INTEGER, STRING, field_kind

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, List, Optional, Tuple

__all__ = ["check_range", "check_text", "check_converted", "rules_of"]

_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1

# NUL (PostgreSQL refuses it in text, SQLite cuts patterns at it) and lone
# surrogates (JSON can escape them; no database encoding can store them).
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


def check_range(kind: str, value: Any) -> None:
    """ValueError for a value no database column can hold on every backend: an
    integer outside 64 bits, text with a NUL character or a lone surrogate."""
    if kind == INTEGER and isinstance(value, int) and not _INT_MIN <= value <= _INT_MAX:
        raise ValueError("integer out of range")
    if kind == STRING and isinstance(value, str):
        check_text(value)


def check_text(text: str) -> None:
    """ValueError for text with a NUL character or a lone surrogate."""
    bad = _BAD_TEXT.search(text)
    if bad is not None:
        raise ValueError("may not contain a NUL character" if bad.group() == "\x00" else
                         "may not contain a lone surrogate (\\u%04x)" % ord(bad.group()))


def rules_of(field: peewee.Field) -> Tuple[str, Optional[int], Optional[List[Any]]]:
    """What ``check_converted`` needs of ``field``: its kind, ``max_length``, ``choices``."""
    choices = [c[0] if isinstance(c, (tuple, list)) else c for c in field.choices] \
        if field.choices else None
    return field_kind(field), getattr(field, "max_length", None), choices


def check_converted(kind: str, value: Any, max_length: Optional[int],
                    allowed: Optional[List[Any]]) -> None:
    """ValueError when ``value`` (already of the field's type) is out of range, holds
    text no database stores, is longer than ``max_length`` or is not in ``allowed``."""
    check_range(kind, value)
    if max_length and isinstance(value, str) and len(value) > max_length:
        raise ValueError("at most %d characters" % max_length)
    if allowed is not None and value not in allowed:
        raise ValueError("must be one of: %s" % ", ".join(str(a) for a in allowed))
