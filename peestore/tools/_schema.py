"""A SQLite database's schema, read without running it and compared object by object.

``restore`` uses it to accept a backup only if the tables the models own are,
in the file, exactly what they are in the live database.  SQLite's pragmas
(``table_xinfo``, ``foreign_key_list``, ``index_list``, ``index_xinfo``)
describe columns, keys and indexes, but not CHECK constraints, collations of
columns without an index, ON CONFLICT clauses or DEFERRABLE, so the
``CREATE TABLE`` text is compared too, as meaning rather than as text: it is
split into column definitions and table constraints at its top-level commas,
each normalised (whitespace, comments, identifier quoting, keyword case), and
columns are matched by name.  A table that gained a column by ``ALTER TABLE
ADD COLUMN`` (the column comes last) thus still matches one created with the
column in the middle, and a column's ``REFERENCES`` clause matches the same
``FOREIGN KEY`` written as a table constraint.

Nothing here executes the schema: it is read from ``sqlite_master`` and the
pragmas, on a connection that does not trust it (``peestore.hardening``).
"""
from __future__ import annotations

import collections
import re

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple
    Query = Callable[..., List[tuple]]
    Token = Tuple[str, str, int, int]
    Key = Tuple[Tuple[str, str], ...]

__all__ = ["Schema", "read_schema", "compare_schemas", "fold", "tokenize", "iter_tokens",
           "KINDS", "statement_key", "shown"]

_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# SQLite's tokens, as far as comparing two statements needs them.
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<blob>[xX]'[0-9a-fA-F]*')
  | (?P<string>'(?:[^']|'')*')
  | (?P<quoted>"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\])
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<word>[^\W\d][\w$]*)
  | (?P<op>\|\||<<|>>|<=|>=|==|!=|<>|->>|->|.)
""", re.VERBOSE | re.DOTALL)

# Quoted, these are names; bare, they are values: "null" is not NULL.
_VALUE_WORDS = frozenset(("null", "true", "false", "current_time", "current_date",
                          "current_timestamp"))
_TABLE_CONSTRAINTS = frozenset(("constraint", "primary", "unique", "check", "foreign"))
#: The kinds of object a schema holds (``sqlite_master.type``, in any case).
KINDS = ("table", "index", "view", "trigger")
#: SQLite's own tables a file may hold besides the application's.
SQLITE_TABLES = frozenset(("sqlite_sequence", "sqlite_stat1", "sqlite_stat2", "sqlite_stat3",
                           "sqlite_stat4"))
_MAX_REPORTED = 10


def fold(name: str) -> str:
    """``name`` as SQLite compares names: ASCII letters in lower case."""
    return name.translate(_FOLD)


def tokenize(sql: str) -> List[Token]:
    """``sql``'s tokens as ``(kind, value, start, end)``; whitespace and comments dropped.

    Kinds: ``w`` a word (folded), ``i`` a quoted name (folded, quotes removed;
    it compares equal to the same bare word, except a quoted ``null``,
    ``true``... which is kind ``q``), ``s`` a string (its text), ``n`` a number,
    ``x`` a blob, ``p`` punctuation or an operator.
    """
    return list(iter_tokens(sql))


def iter_tokens(sql: str) -> Iterator[Token]:
    """``tokenize(sql)``, one token at a time (to read the head of a long statement)."""
    pos = 0
    size = len(sql)
    while pos < size:
        match = _TOKEN.match(sql, pos)
        kind, text, end = match.lastgroup, match.group(), match.end()
        if kind == "word":
            yield ("w", fold(text), pos, end)
        elif kind == "quoted":
            inner = text[1:-1]
            if text[0] != "[":
                inner = inner.replace(text[0] * 2, text[0])
            value = fold(inner)
            yield ("q" if value in _VALUE_WORDS else "i", value, pos, end)
        elif kind == "string":
            yield ("s", text[1:-1].replace("''", "'"), pos, end)
        elif kind == "number":
            yield ("n", text.lower(), pos, end)
        elif kind == "blob":
            yield ("x", text[2:-1].lower(), pos, end)
        elif kind == "op":
            yield ("p", text, pos, end)
        pos = end


def _key(tokens: List[Token]) -> Key:
    return tuple(("w" if kind == "i" else kind, value) for kind, value, _, _ in tokens)


def _text(sql: str, tokens: List[Token]) -> str:
    """The source text ``tokens`` span, on one line."""
    if not tokens:
        return ""
    return " ".join(sql[tokens[0][2]:tokens[-1][3]].split())


def _is(token: Token, kind: str, *values: str) -> bool:
    return token[0] == kind and (not values or token[1] in values)


def _split(tokens: List[Token]) -> List[List[Token]]:
    """``tokens`` cut at their top-level commas."""
    parts: List[List[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token[0] == "p":
            if token[1] == "(":
                depth += 1
            elif token[1] == ")":
                depth -= 1
            elif token[1] == "," and depth == 0:
                parts.append([])
                continue
        parts[-1].append(token)
    return parts


def _statement_key(tokens: List[Token]) -> Key:
    """A CREATE statement's tokens without ``IF NOT EXISTS``."""
    key = _key(tokens)
    for i in range(min(len(key), 6)):
        if key[i:i + 3] == (("w", "if"), ("w", "not"), ("w", "exists")):
            return key[:i] + key[i + 3:]
    return key


def _references_end(tokens: List[Token], start: int) -> int:
    """Where the foreign key clause that begins at ``tokens[start]`` (REFERENCES) ends."""
    i = start + 2  # REFERENCES and the table's name
    n = len(tokens)
    if i < n and _is(tokens[i], "p", "("):
        while i < n and not _is(tokens[i], "p", ")"):
            i += 1
        i += 1
    while i < n:
        token = tokens[i]
        if _is(token, "w", "on") and i + 1 < n and _is(tokens[i + 1], "w", "delete", "update"):
            i += 2
            i += 2 if i < n and _is(tokens[i], "w", "set", "no") else 1
        elif _is(token, "w", "match"):
            i += 2
        elif _is(token, "w", "not") and i + 1 < n and _is(tokens[i + 1], "w", "deferrable"):
            i += 2
            if i < n and _is(tokens[i], "w", "initially"):
                i += 2
        elif _is(token, "w", "deferrable"):
            i += 1
            if i < n and _is(tokens[i], "w", "initially"):
                i += 2
        else:
            break
    return min(i, n)


class Column:
    """One column: its name, its definition as written, and what it means."""

    def __init__(self, name: str, text: str, key: Optional[Key], info: tuple) -> None:
        self.name = name
        self.text = text or "(no type)"
        self.key = key
        self.info = info  # table_xinfo: type, notnull, default as written, pk, hidden

    def same(self, other: Column) -> bool:
        return self.key is not None and self.key == other.key and self.info == other.info


class Table:
    """A table as ``CREATE TABLE`` and the pragmas describe it."""

    def __init__(self, name: str, sql: str) -> None:
        self.name = name
        self.sql = sql or ""
        tokens = tokenize(self.sql)
        self.statement = _statement_key(tokens)
        self.virtual = len(tokens) > 1 and _is(tokens[1], "w", "virtual")
        self.columns: Dict[str, Column] = {}
        self.constraints: Dict[Key, List[str]] = collections.defaultdict(list)
        self.options: frozenset = frozenset()
        self.options_text = ""
        self.foreign_keys: List[tuple] = []
        self.indexes: Dict[str, Index] = {}
        self.implicit_indexes: List[tuple] = []
        self.definitions: Dict[str, Tuple[str, Key]] = {}
        if not self.virtual:
            self._parse(tokens)

    def _parse(self, tokens: List[Token]) -> None:
        open_at = next((i for i, t in enumerate(tokens) if _is(t, "p", "(")), None)
        if open_at is None:
            return
        depth, close_at = 0, len(tokens)
        for i in range(open_at, len(tokens)):
            if _is(tokens[i], "p", "("):
                depth += 1
            elif _is(tokens[i], "p", ")"):
                depth -= 1
                if depth == 0:
                    close_at = i
                    break
        for item in _split(tokens[open_at + 1:close_at]):
            if not item:
                continue
            if _is(item[0], "w", *_TABLE_CONSTRAINTS):
                self.constraints[_key(item)].append(_text(self.sql, item))
            else:
                self._column(item)
        tail = tokens[close_at + 1:]
        self.options = frozenset(_key(part) for part in _split(tail) if part)
        self.options_text = _text(self.sql, tail)

    def _column(self, item: List[Token]) -> None:
        name = item[0][1]
        definition = item[1:]
        text = _text(self.sql, definition)
        # A column's REFERENCES clause is the same key as a FOREIGN KEY table
        # constraint: migrations write the one, CREATE TABLE the other.
        i = 0
        while i < len(definition):
            if _is(definition[i], "w", "references"):
                start = i
                if i >= 2 and _is(definition[i - 2], "w", "constraint"):
                    start = i - 2
                end = _references_end(definition, i)
                clause = definition[start:end]
                named = clause[:i - start]
                key = (_key(named) + (("w", "foreign"), ("w", "key"), ("p", "("), ("w", name),
                                      ("p", ")")) + _key(clause[i - start:]))
                self.constraints[key].append("FOREIGN KEY (%s) %s" % (
                    name, _text(self.sql, clause)))
                definition = definition[:start] + definition[end:]
                i = start
            else:
                i += 1
        self.definitions[name] = (text, _key(definition))


class Index:
    """An index: its statement (None for one a constraint made) and its pragmas."""

    def __init__(self, name: str, sql: Optional[str], info: tuple) -> None:
        self.name = name
        self.sql = sql
        tokens = tokenize(sql or "")
        open_at = next((i for i, t in enumerate(tokens) if _is(t, "p", "(")), len(tokens))
        # What it indexes, and how: not its name, which differs between an index
        # CREATE TABLE made (after the model class) and one a migration added
        # (after the table).
        self.content = (info, _key(tokens[open_at:]))
        self.info = info  # unique, origin, partial, and each column's name/desc/collation/key

    def text(self) -> str:
        return shown(" ".join(self.sql.split()) if self.sql else self.name, 200)


class Schema:
    """The tables, indexes, triggers and views of one database."""

    def __init__(self) -> None:
        self.tables: Dict[str, Table] = {}
        self.table_sql: Dict[str, Tuple[str, str]] = {}      # fold(name) -> name, sql
        self.index_sql: Dict[str, List[Tuple[str, Optional[str]]]] = collections.defaultdict(list)
        # (kind, folded name) -> name, table, SQL: triggers and views
        self.others: Dict[Tuple[str, str], Tuple[str, str, str]] = {}
        # Every row of its sqlite_master as stored: (type, name, tbl_name, sql).
        self.rows: List[tuple] = []
        # (kind, folded name) -> length of its SQL: what a file's may be measured by.
        self.lengths: Dict[Tuple[str, str], int] = {}

    def table_names(self) -> List[str]:
        """The folded names of its tables, SQLite's own left out."""
        return [name for name in self.table_sql if not name.startswith("sqlite_")]

    def describe(self, query: Query, table: str) -> Optional[Table]:
        """Read ``table`` (a folded name) in full with ``query``; None if absent."""
        if table in self.tables:
            return self.tables[table]
        found = self.table_sql.get(table)
        if found is None:
            return None
        name, sql = found
        described = Table(name, sql)
        for row in query('SELECT name, type, "notnull", dflt_value, pk, hidden '
                         "FROM pragma_table_xinfo(?)", (name,)):
            column, ctype, notnull, default, pk, hidden = row
            column = _str(column)
            text, key = described.definitions.get(fold(column), (None, None))
            info = (fold(_str(ctype)), notnull, default, pk, hidden)
            described.columns[fold(column)] = Column(column, text or "", key, info)
        described.foreign_keys = sorted(_foreign_keys(query, name))
        statements = dict((fold(n), s) for n, s in self.index_sql.get(table, ()))
        for index_name, unique, origin, partial in query(
                'SELECT name, "unique", origin, partial FROM pragma_index_list(?)', (name,)):
            columns = tuple(
                (fold(_str(col)) if col is not None else None, cid if col is None else 0,
                 desc, fold(_str(coll)), key)
                for _, cid, col, desc, coll, key in query(
                    "SELECT seqno, cid, name, desc, coll, key FROM pragma_index_xinfo(?) "
                    "ORDER BY seqno", (index_name,)))
            info = (unique, origin, partial, columns)
            index_name = _str(index_name)
            sql = statements.get(fold(index_name))
            if origin == "c":
                described.indexes[fold(index_name)] = Index(index_name, sql, info)
            else:
                described.implicit_indexes.append(info)
        described.implicit_indexes.sort(key=repr)
        self.tables[table] = described
        return described


def _str(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _foreign_keys(query: Query, table: str) -> List[tuple]:
    keys: Dict[int, list] = collections.defaultdict(list)
    for fid, parent, column, to, on_update, on_delete, match in query(
            'SELECT id, "table", "from", "to", on_update, on_delete, "match" '
            "FROM pragma_foreign_key_list(?) ORDER BY id, seq", (table,)):
        keys[fid].append((fold(_str(parent)), fold(_str(column)), fold(_str(to)),
                          on_update, on_delete, match))
    return [tuple(rows) for rows in keys.values()]


def read_schema(query: Query, tables: Iterable[str] = ()) -> Schema:
    """The schema ``query(sql, params)`` reads, with ``tables`` (folded names) in full.

    Kinds are compared as SQLite compares them, whatever their case; a row of
    another kind is kept in ``rows`` only (``peestore.tools._objects`` refuses it).
    """
    schema = Schema()
    for row in query("SELECT type, name, tbl_name, sql FROM sqlite_master"):
        schema.rows.append(tuple(row))
        # A crafted file may store anything in sqlite_master: names as text.
        kind, name, table, sql = fold(_str(row[0])), _str(row[1]), _str(row[2]), _str(row[3])
        schema.lengths[(kind, fold(name))] = len(sql)
        if kind == "table":
            schema.table_sql[fold(name)] = (name, sql)
        elif kind == "index":
            schema.index_sql[fold(table)].append((name, sql or None))
        elif kind in ("trigger", "view"):
            schema.others[(kind, fold(name))] = (name, table, sql)
    for table in tables:
        schema.describe(query, table)
    return schema


def statement_key(sql: str) -> Key:
    """What a CREATE statement means, for comparing two of them."""
    return _statement_key(tokenize(sql))


def shown(name: str, most: int = 60) -> str:
    """``name`` as a message can show it: control characters escaped, cut at ``most``."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in name[:most])
    return text + ("..." if len(name) > most else "")


def compare_schemas(live: Schema, file: Schema, owned: Iterable[str]) -> List[str]:
    """What makes ``file`` differ from ``live``, one line per object, live before file.

    ``owned`` (folded table names) must match exactly, with their indexes and
    triggers; no trigger or view may be in ``file`` that ``live`` does not
    have; other tables in ``file`` are kept if they run no SQL of their own
    (no CHECK, no generated column, no expression or partial index, not
    virtual) or are exactly as in ``live``.
    """
    problems: List[str] = []
    compared: Set[str] = set()
    pairs = []
    for table in owned:
        ours = live.tables.get(table)
        if ours is None:
            continue  # neither the live database nor the models have it
        compared.add(table)
        theirs = file.tables.get(table)
        if theirs is None:
            problems.append("table %s is missing" % ours.name)
        else:
            pairs.append((ours, theirs))
    for ours, theirs in pairs:
        _compare_table(ours, theirs, problems)
    _compare_others(live, file, compared, problems)
    _check_parents(live, file, compared, problems)
    for table in file.table_sql:
        if table not in compared:
            _check_extra_table(live, file, table, compared, problems)
    return problems


def summary(problems: List[str]) -> str:
    """``problems`` as one line, the first few of them."""
    text = "; ".join(problems[:_MAX_REPORTED])
    if len(problems) > _MAX_REPORTED:
        text += "; and %d more" % (len(problems) - _MAX_REPORTED)
    return text


def _compare_table(ours: Table, theirs: Table, problems: List[str]) -> None:
    name = ours.name
    if ours.virtual or theirs.virtual:
        if ours.statement != theirs.statement:
            problems.append("table %s differs: %s vs %s" % (
                name, shown(" ".join(ours.sql.split()), 200),
                shown(" ".join(theirs.sql.split()), 200)))
        return
    if ours.options != theirs.options:
        problems.append("table %s: table options differ: %s vs %s" % (
            name, ours.options_text or "(none)", theirs.options_text or "(none)"))
    missing = [c.name for key, c in ours.columns.items() if key not in theirs.columns]
    if missing:
        problems.append("table %s: %s %s missing" % (
            name, _plural("column", missing), "is" if len(missing) == 1 else "are"))
    extra = [shown(c.name) for key, c in theirs.columns.items() if key not in ours.columns]
    if extra:
        problems.append("table %s: %s %s not in the live database" % (
            name, _plural("column", extra), "is" if len(extra) == 1 else "are"))
    for column, theirs_column in theirs.columns.items():
        ours_column = ours.columns.get(column)
        if ours_column is not None and not ours_column.same(theirs_column):
            problems.append("table %s: column %s differs: %s vs %s" % (
                name, ours_column.name, shown(ours_column.text, 200),
                shown(theirs_column.text, 200)))
    before = len(problems)
    for key in list(ours.constraints) + [k for k in theirs.constraints
                                         if k not in ours.constraints]:
        mine, other = ours.constraints.get(key, []), theirs.constraints.get(key, [])
        for text in other[len(mine):]:
            problems.append("table %s: constraint %s is not in the live database" % (
                name, shown(text, 200)))
        for text in mine[len(other):]:
            problems.append("table %s: constraint %s is missing" % (name, text))
    if ours.foreign_keys != theirs.foreign_keys and len(problems) == before:
        problems.append("table %s: foreign keys differ: %s vs %s" % (
            name, _fk_text(ours.foreign_keys), _fk_text(theirs.foreign_keys)))
    _compare_indexes(name, ours, theirs, problems)
    if ours.implicit_indexes != theirs.implicit_indexes:
        problems.append("table %s: the indexes of its PRIMARY KEY and UNIQUE constraints "
                        "differ" % name)


def _compare_indexes(name: str, ours: Table, theirs: Table, problems: List[str]) -> None:
    """Indexes match by what they index, whatever their names.

    The file must have each of the live database's indexes, and no index that
    it lacks; of an index the live database holds twice (``create_tables``
    after a migration adds its own copy under the class's name), one copy is
    enough, but the file may not hold more copies than the live database.
    Those left over are reported, as one that differs where both sides have
    one of that name.
    """
    mine: Dict[tuple, List[Index]] = collections.defaultdict(list)
    for index in ours.indexes.values():
        mine[index.content].append(index)
    other: Dict[tuple, List[Index]] = collections.defaultdict(list)
    # Copies under a name the live database knows are matched first.
    for index in sorted(theirs.indexes.values(),
                        key=lambda index: fold(index.name) not in ours.indexes):
        other[index.content].append(index)
    missing = [copies[0] for content, copies in mine.items() if content not in other]
    extra = {}
    for content, copies in other.items():
        for index in copies[len(mine.get(content, ())):]:
            extra[fold(index.name)] = index
    for index in missing:
        changed = extra.pop(fold(index.name), None)
        if changed is None:
            problems.append("index %s on %s is missing" % (index.name, name))
        else:
            problems.append("index %s on %s differs: %s vs %s" % (
                index.name, name, index.text(), changed.text()))
    for index in extra.values():
        problems.append("index %s on %s is not in the live database" % (index.name, name))


def _plural(word: str, names: List[str]) -> str:
    return "%s%s %s" % (word, "s" if len(names) > 1 else "", ", ".join(names))


def _fk_text(keys: List[tuple]) -> str:
    if not keys:
        return "(none)"
    parts = []
    for rows in keys:
        parent, _, _, on_update, on_delete, match = rows[0]
        parts.append("(%s) -> %s(%s) ON UPDATE %s ON DELETE %s" % (
            ", ".join(r[1] for r in rows), parent, ", ".join(str(r[2]) for r in rows),
            on_update, on_delete))
    return ", ".join(parts)


def _compare_others(live: Schema, file: Schema, owned: Set[str],
                    problems: List[str]) -> None:
    for ident, (name, table, sql) in file.others.items():
        kind = ident[0]
        mine = live.others.get(ident)
        where = " on %s" % shown(table) if kind == "trigger" else ""
        if mine is None:
            # Refused by its name: a foreign statement is never tokenized.
            problems.append("%s %s%s is not in the live database" % (kind, shown(name), where))
        elif fold(mine[1]) != fold(table) or statement_key(mine[2]) != statement_key(sql):
            problems.append("%s %s%s differs from the live database's" % (
                kind, shown(name), where))
    for ident, (name, table, _) in live.others.items():
        if ident[0] == "trigger" and fold(table) in owned and ident not in file.others:
            problems.append("trigger %s on %s is missing" % (name, table))


def _check_parents(live: Schema, file: Schema, owned: Set[str], problems: List[str]) -> None:
    """A table the models' tables refer to must be the live database's own: a foreign
    key into a table without the key it names fails every write."""
    for table in sorted(owned):
        described = live.tables.get(table)
        for keys in (described.foreign_keys if described else ()):
            parent = keys[0][0]
            if parent in owned:
                continue
            mine, theirs = live.table_sql.get(parent), file.table_sql.get(parent)
            if mine is None:
                continue  # not in the live database either: both fail alike
            if theirs is None or statement_key(mine[1]) != statement_key(theirs[1]):
                problems.append("table %s differs from the live database's, and table %s "
                                "refers to it" % (mine[0], described.name))


def _check_extra_table(live: Schema, file: Schema, table: str, owned: Set[str],
                       problems: List[str]) -> None:
    name, sql = file.table_sql[table]
    if table.startswith("sqlite_") and table not in SQLITE_TABLES:
        problems.append("table %s: the name is reserved for SQLite's own tables" % shown(name))
        return
    tokens = tokenize(sql)
    mine = live.table_sql.get(table)
    if mine is not None and _statement_key(tokenize(mine[1])) == _statement_key(tokens):
        trusted_table = True
    else:
        trusted_table = False
        if len(tokens) > 1 and _is(tokens[1], "w", "virtual"):
            problems.append("table %s is a virtual table that is not in the live database"
                            % shown(name))
            return
        if any(_is(t, "w", "check", "as", "generated") for t in tokens):
            problems.append("table %s is not in the live database and has CHECK constraints "
                            "or generated columns, which SQLite would run while checking "
                            "the file" % shown(name))
            return
        # A foreign key into a model's table would veto its deletes (and the
        # audit log's pruning), as a trigger would.
        parents = sorted({fold(t[1]) for i, t in enumerate(tokens[1:], 1)
                          if t[0] in ("w", "i", "q", "s") and _is(tokens[i - 1], "w",
                                                                  "references")} & owned)
        if parents:
            problems.append("table %s is not in the live database and has a foreign key "
                            "into %s, which would refuse deleting its rows" % (
                                shown(name), ", ".join(parents)))
            return
    live_indexes = dict((fold(n), s) for n, s in live.index_sql.get(table, ()))
    for index, sql in file.index_sql.get(table, ()):
        if not sql:
            continue  # made by a constraint of the table
        statement = _statement_key(tokenize(sql))
        known = live_indexes.get(fold(index))
        if trusted_table and known and _statement_key(tokenize(known)) == statement:
            continue
        if not _plain_index(tokenize(sql)):
            problems.append("index %s on %s is not in the live database and indexes an "
                            "expression or part of the table, which SQLite would compute "
                            "while checking the file" % (shown(index), shown(name)))


def _plain_index(tokens: List[Token]) -> bool:
    """Whether a CREATE INDEX indexes columns only (no expression, no WHERE)."""
    open_at = next((i for i, t in enumerate(tokens) if _is(t, "p", "(")), None)
    if open_at is None:
        return False
    for token in tokens[open_at + 1:]:
        if _is(token, "p", ")"):
            break
        if token[0] not in ("w", "i", "q") and not _is(token, "p", ","):
            return False
    else:
        return False
    return not any(_is(t, "w", "where") for t in tokens)
