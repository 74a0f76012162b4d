"""A backup's schema rows, checked one by one before anything parses them.

``sqlite_master`` is a table like any other: a crafted file may store in it
any type in any case, a name that is not the one its SQL creates, a NULL or
huge statement, two objects of one name, or thousands of objects.  SQLite
itself builds each object from its SQL (it ignores the ``type`` column), so
each row is held to what its SQL says, and the whole schema to a size
measured against the live database's, before SQLite or the comparison in
``peestore.tools._schema`` reads a statement in full.  Triggers and views
the live database does not have are refused here by their names alone.
"""
from __future__ import annotations

from ._schema import KINDS, SQLITE_TABLES, fold, iter_tokens, shown

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple
    from ._schema import Schema

__all__ = ["Limits", "row_problems", "STATEMENT_BYTES", "EXTRA_OBJECTS", "EXTRA_BYTES"]

#: Longest statement for an object the live database lacks (a longer one of an
#: object it has may be up to 4 times the live one's).
STATEMENT_BYTES = 64 << 10
#: Schema objects a file may hold beyond the live database's.
EXTRA_OBJECTS = 1000
#: Schema text a file may hold beyond twice the live database's.
EXTRA_BYTES = 256 << 10
# Planner samples: SQLite loads them whole into memory as it opens the schema.
_SAMPLES = frozenset(("sqlite_stat2", "sqlite_stat3", "sqlite_stat4"))


class Limits:
    """How large a file's schema may be, measured against the live database's."""

    def __init__(self, live: Schema) -> None:
        self.lengths = live.lengths
        self.max_rows = len(live.rows) + EXTRA_OBJECTS
        stored = sum(len(_text(v)) + 8 for row in live.rows for v in row)
        self.max_bytes = 2 * stored + EXTRA_BYTES
        self.longest = max([STATEMENT_BYTES] + [4 * n for n in self.lengths.values()])

    def statement(self, kind: str, name: str) -> int:
        """The longest statement accepted for object ``name`` (folded) of ``kind``."""
        known = self.lengths.get((kind, name))
        return max(4 * known, STATEMENT_BYTES) if known else STATEMENT_BYTES


def row_problems(rows: List[tuple], live: Schema, limits: Limits) -> List[str]:
    """What is wrong with the schema rows ``(type, name, tbl_name, sql)`` of a file,
    one line per object; empty when each row is what its SQL creates, within limits."""
    problems: List[str] = []
    if len(rows) > limits.max_rows:
        return ["the backup's schema has %d objects, over the limit of %d for this database "
                "(%d more than the live database's)" % (len(rows), limits.max_rows,
                                                         EXTRA_OBJECTS)]
    total = sum(len(_text(v)) + 8 for row in rows for v in row)
    if total > limits.max_bytes:
        return ["the backup's schema is %d bytes, over the limit of %d for this database"
                % (total, limits.max_bytes)]
    names: Dict[Tuple[str, str], str] = {}
    for row in rows:
        problem = _row_problem(row, live, limits, names)
        if problem:
            problems.append(problem)
    return problems


def _row_problem(row: tuple, live: Schema, limits: Limits,
                 names: Dict[Tuple[str, str], str]) -> Optional[str]:
    kind, name, table, sql = (_text(v) for v in row[:4])
    kind = fold(kind)
    folded = fold(name)
    if kind not in KINDS:
        return "object %s has the unknown type %r" % (shown(name), shown(kind))
    what = "%s %s" % (kind, shown(name))
    if "\x00" in name + table:
        return "%s: its name holds a NUL byte" % what
    if not all(_utf8(text) for text in (name, table, sql)):
        return "%s: its name or SQL is not UTF-8" % what
    # Tables, views and indexes share one namespace, triggers have their own.
    space = ("trigger" if kind == "trigger" else "object", folded)
    if space in names:
        return "%s: a second object of that name" % what
    names[space] = name
    if folded.startswith("sqlite_"):
        reserved = _reserved(kind, folded, table, sql)
        if reserved:
            return "%s: %s" % (what, reserved)
    if not sql:
        if kind == "index" and folded.startswith("sqlite_autoindex_"):
            return None  # made by a PRIMARY KEY or UNIQUE constraint
        return "%s has no SQL" % what
    if kind in ("trigger", "view") and (kind, folded) not in live.lengths:
        where = " on %s" % shown(table) if kind == "trigger" else ""
        return "%s%s is not in the live database" % (what, where)
    longest = limits.statement(kind, folded)
    if len(sql) > longest:
        return "%s: its SQL is %d bytes, longer than the %d accepted for it" % (
            what, len(sql), longest)
    created = _created(sql)
    if created is None:
        return "%s: its SQL is not a CREATE TABLE, INDEX, VIEW or TRIGGER" % what
    made, made_name, made_table = created
    if made == "temp":
        return "%s: its SQL creates a temporary object" % what
    if made != kind:
        return "%s: its SQL creates a %s" % (what, made)
    if made_name != folded:
        return "%s: its SQL creates %s" % (what, shown(made_name))
    if made_table != fold(table):
        return "%s: its table is %s, its SQL says %s" % (what, shown(table),
                                                        shown(made_table))
    return None


def _reserved(kind: str, name: str, table: str, sql: str) -> Optional[str]:
    if kind == "index":
        if name.startswith("sqlite_autoindex_") and not sql:
            return None
    elif kind == "table" and name in SQLITE_TABLES:
        if name in _SAMPLES:
            return ("planner samples are not taken from a backup (run ANALYZE again "
                    "after the restore; DROP TABLE %s in a copy of the file)" % name)
        return None
    return "the name is reserved for SQLite's own objects"


def _name(tokens: Any) -> Optional[str]:
    """The next name in ``tokens`` (``main.`` allowed before it), folded; else None."""
    token = next(tokens, None)
    if token is None or token[0] not in ("w", "i", "q", "s"):
        return None
    following = next(tokens, None)
    if following is not None and following[0] == "p" and following[1] == ".":
        if fold(token[1]) != "main":
            return None
        return _name(tokens)
    tokens.pushed = following
    return fold(token[1])


class _Tokens:
    """The tokens of a statement, read as far as needed, with one token of look-back."""

    def __init__(self, sql: str) -> None:
        self.tokens = iter_tokens(sql)
        self.pushed: Any = None

    def __iter__(self) -> _Tokens:
        return self

    def __next__(self) -> Any:
        if self.pushed is not None:
            token, self.pushed = self.pushed, None
            return token
        return next(self.tokens)


def _created(sql: str) -> Optional[Tuple[str, str, str]]:
    """(kind, name, table) that the CREATE statement ``sql`` makes, names folded;
    kind ``temp`` for a temporary object; None if it is no CREATE."""
    tokens = _Tokens(sql)
    words: List[str] = []
    for token in tokens:
        if token[0] != "w":
            return None
        words.append(token[1])
        if token[1] in ("table", "index", "view", "trigger") or len(words) > 3:
            break
    if not words or words[0] != "create" or words[-1] not in KINDS:
        return None
    if set(words[1:-1]) & {"temp", "temporary"}:
        return ("temp", "", "")
    if words[1:-1] not in ([], ["unique"], ["virtual"]) \
            or (words[1:-1] == ["unique"] and words[-1] != "index") \
            or (words[1:-1] == ["virtual"] and words[-1] != "table"):
        return None
    kind = words[-1]
    first = next(tokens, None)
    if first is not None and first[:2] == ("w", "if"):
        rest = [next(tokens, None), next(tokens, None)]
        if [t[:2] if t else None for t in rest] != [("w", "not"), ("w", "exists")]:
            return None
    else:
        tokens.pushed = first
    name = _name(tokens)
    if name is None:
        return None
    if kind in ("table", "view"):
        return (kind, name, name)
    depth = 0
    for token in tokens:  # up to ON: the table an index or a trigger is on
        if token[0] == "p" and token[1] in "()":
            depth += 1 if token[1] == "(" else -1
        elif depth == 0 and token[0] == "w" and token[1] == "on":
            table = _name(tokens)
            return (kind, name, table) if table is not None else None
    return None


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: bytes that were not UTF-8
        return False
    return True


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)

