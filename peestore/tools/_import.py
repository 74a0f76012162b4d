"""CSV import: load a zip as ``export_csv`` makes it, all or nothing.

Every file is checked (a known table or component, a header naming the
table's columns) and then read through once (the records' shape and size
limits, no values kept) before the write lock is taken; then the whole zip
goes in one transaction, parents before children.  ``replace`` is refused
while a table outside the zip refers to rows it would delete.  Each row is
checked as ``POST /C/``
checks a body: every cell converted by its field's type, then NOT NULL,
length, ``choices`` and range (``peestore.checks``).  A table of a
registered model gets that model's fields and its ``before_insert`` and
``after_insert`` hooks, called with an instance of the row; a table without
one is checked by the fields ``playhouse.reflection`` infers from its
columns (type, NOT NULL, varchar length) and has no hooks.  Primary keys and
``deleted_at`` are imported as they are.  The first row that fails rolls
everything back: a ``ValidationError`` names the file, the line and the field.

The audit log is never imported (its file is skipped and the answer says
so): each imported table gets one ``import`` entry by the importing actor,
whether its model is audited or not.  What an upload can cost is bounded as
it is read (``._zip``, ``._csv``).
"""
from __future__ import annotations

import collections
import contextlib
import io
import json
import os

import peewee

from .. import _compat
from ..audit._log import INTERNAL_TABLES, AuditLog
from ..model._checks import check_converted, rules_of
from ._csv import CsvReader, FieldCountError, FieldSizeError
from ..db._connect import get_database
from ..errors import ValidationError
from ._export import FORMULA_START, is_json, is_text
from ..model._rendered import render
from ._tables import (TableInfo, describe_tables, foreign_key_order, models_by_table,
                     names_list, open_connection)
from ..model._values import BYTES, INTEGER, STRING, from_json_value
from ..audit._write import hook_of, hooked, write, write_transaction
from ..db._dialect import dialect_of
from ._zip import Archive, open_member, open_zip

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import (IO, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple,
                        Union)
    Progress = Callable[[str, int], None]

__all__ = ["import_csv", "load_zip", "ImportResult", "MODES", "AUDIT_SKIPPED"]

MODES = ("append", "replace")

#: Why ``audit_log.csv`` is skipped, as the answer says it.
AUDIT_SKIPPED = ("the audit log is never imported: entries are written by the writes "
                 "they record, and this import records itself with one import entry "
                 "per table")

# A header's field longer than this and than every column name cannot name a column.
_MAX_NAME_BYTES = 256

#: A record's fields may take this many times ``max_field_bytes`` in memory, as Python
#: strings (1, 2 or 4 bytes a character): one field at the limit whatever its characters,
#: or several of plain text.
RECORD_FIELDS = 5

# Bound parameters per INSERT of a table without a model: under SQLite's old limit of 999.
_MAX_PARAMS = 900


class ImportResult:
    """What ``load_zip`` did: ``imported`` ``{table: rows}`` in the order loaded,
    ``skipped`` ``{table: why}``, and ``unchecked``: the imported tables that no
    model describes (checked by their column types only, no hooks)."""

    def __init__(self, imported: Dict[str, int], skipped: Dict[str, str],
                 unchecked: List[str]) -> None:
        self.imported = imported
        self.skipped = skipped
        self.unchecked = unchecked

    def __repr__(self) -> str:
        return "ImportResult(imported=%r, skipped=%r)" % (self.imported, self.skipped)


def import_csv(src: Union[str, os.PathLike, IO[bytes]], *,
               database: Optional[peewee.Database] = None, mode: str = "append",
               max_field_bytes: int = 1 << 20, max_bytes: int = 256 << 20) -> Dict[str, int]:
    """Import the zip ``src`` (a path or a seekable binary file); returns ``{table: rows}``.

    ``mode="append"`` adds the rows (primary keys included, so a key already
    present is a conflict); ``mode="replace"`` first deletes every row of the
    tables in the zip.  Files are named ``<table>.csv`` or ``<component>.csv``;
    ``audit_log.csv`` is skipped.  Raises ``ValidationError`` (nothing
    imported) on any problem: not a zip, an unknown table, a header that does
    not match, a value that does not fit its field or that a hook refuses, a
    constraint violation; ``TooLargeError`` for a field over
    ``max_field_bytes`` or a file that inflates past ``max_bytes`` (or 100
    times its compressed size).
    """
    return load_zip(src, database=database, mode=mode, max_field_bytes=max_field_bytes,
                    max_bytes=max_bytes).imported


def load_zip(src: Union[str, os.PathLike, IO[bytes]], *,
             database: Optional[peewee.Database] = None, mode: str = "append",
             progress: Optional[Progress] = None, max_field_bytes: int = 1 << 20,
             max_bytes: int = 256 << 20,
             models: Optional[Sequence[type]] = None) -> ImportResult:
    """``import_csv`` with a ``progress(table, rows_read)`` callback, more ``models``
    (beside the registered ones) and the whole ``ImportResult``."""
    if mode not in MODES:
        raise ValidationError("mode must be append or replace, not %r" % (mode,),
                              {"mode": "expected append or replace"})
    for name, value in (("max_field_bytes", max_field_bytes), ("max_bytes", max_bytes)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValidationError("%s must be a positive integer, not %r" % (name, value))
    db = get_database(database)
    archive = open_zip(src)
    with archive, open_connection(db):
        members, skipped = _members(archive, db, models)
        infos = describe_tables(db, list(members), models)
        plans = {table: _Plan(db, infos[table], members[table],
                              _header(archive, members[table], infos[table], max_bytes))
                 for table in members}
        order = foreign_key_order(infos)
        counts: Dict[str, int] = {}
        limits = (max_field_bytes, max_bytes)
        # Every file is read once before the write lock is taken: a file that breaks a
        # limit or is malformed fails here, and one without records is not read again.
        records = {table: _scan(archive, plans[table], limits) for table in order}
        try:
            with write_transaction(db):
                if mode == "replace":
                    _refuse_dependents(db, infos)
                    for table in reversed(order):
                        _delete_all(db, table)
                for table in order:
                    counts[table] = _import_table(archive, plans[table], limits, progress,
                                                  mode, records[table])
                _reset_sequences(db, [infos[t] for t in order])
        except peewee.DatabaseError as exc:
            raise ValidationError("import failed, nothing was imported: %s" % exc) from None
    return ImportResult({table: counts[table] for table in order}, skipped,
                        [table for table in order if infos[table].model is None])


# -- the files -------------------------------------------------------------------

def _members(archive: Archive, db: peewee.Database,
             models: Optional[Sequence[type]]) -> Tuple[Dict[str, str], Dict[str, str]]:
    """Table -> member name for each ``<table>.csv`` or ``<component>.csv`` at the zip's
    top level, and the skipped tables with why."""
    existing = set(db.get_tables())
    bookkeeping = INTERNAL_TABLES & existing
    components = {getattr(model._meta, "component", None): table
                  for table, model in models_by_table(models).items() if table in existing}
    audit_table = AuditLog._meta.table_name
    members: Dict[str, str] = {}
    skipped: Dict[str, str] = {}
    unknown = []
    found_csv = False
    for name in archive.namelist():
        if name.endswith("/") or "/" in name or not name.lower().endswith(".csv"):
            continue  # folders, files in folders (__MACOSX/...), anything not CSV
        found_csv = True
        stem = name[:-4]
        table = stem if stem in existing else components.get(stem)
        if stem == audit_table or table == audit_table:
            skipped[audit_table] = AUDIT_SKIPPED
            continue
        if table in bookkeeping:
            skipped[table] = ("peestore's own bookkeeping (the head of the audit log's hash "
                              "chain) is never imported")
            continue
        if table is None:
            unknown.append(stem)
            continue
        if table in members:
            raise ValidationError("the zip holds table %s twice (%s and %s)"
                                  % (table, members[table], name))
        members[table] = name
    if not found_csv:
        raise ValidationError("the zip holds no <table>.csv file")
    if unknown:
        named = sorted(c for c in components if c and c != components[c])
        raise ValidationError(
            "no table or component %s in the database; the zip's files must be named "
            "<table>.csv or <component>.csv after a table: %s%s" % (
                names_list(unknown), names_list(sorted(existing - {audit_table}), 50),
                "; or a component: " + names_list(named, 50) if named else ""))
    return members, skipped


def _text(archive: Archive, member: str, max_bytes: int) -> IO[str]:
    # utf-8-sig: a spreadsheet program may have added a byte-order mark.
    return io.TextIOWrapper(open_member(archive, member, max_bytes), encoding="utf-8-sig",
                            newline="")


def _unreadable(member: str, exc: UnicodeDecodeError) -> ValidationError:
    return ValidationError("%s is not UTF-8 text (%s); save it as CSV UTF-8"
                           % (member, exc.reason))


def _header(archive: Archive, member: str, info: TableInfo,
            max_bytes: int) -> List[str]:
    """The file's header, if it names exactly the table's columns (in any order).

    A header cannot be longer than the table's columns need: it is refused
    at the first field over ``_MAX_NAME_BYTES`` (or the longest column name)
    or past the number of columns, before the rest of it is read.
    """
    columns = info.columns
    # + 1: export neutralises a name as it does a text cell (a ' in front).
    longest = max([_MAX_NAME_BYTES] + [len(c.encode("utf-8")) + 1 for c in columns])
    expected = "expected: " + names_list(columns)
    try:
        with _text(archive, member, max_bytes) as text:
            reader = CsvReader(text, member, max_field_bytes=longest,
                               max_record_bytes=4 * (longest + 1) * len(columns))
            header = reader.read(len(columns)) or []
    except FieldCountError:
        raise ValidationError("%s: the header has more than the %d columns of table %s; %s"
                              % (member, len(columns), info.name, expected)) from None
    except FieldSizeError:
        raise ValidationError("%s: the header names a column longer than any of table %s "
                              "could have; %s" % (member, info.name, expected)) from None
    except UnicodeDecodeError as exc:
        raise _unreadable(member, exc) from None
    names = ["" if name is None else _plain(name) for name in header]
    seen = collections.Counter(names)
    known = set(columns)
    missing = [c for c in columns if c not in seen]
    unknown = [n for n in seen if n not in known]
    doubled = [n for n, count in seen.items() if count > 1]
    if missing or unknown or doubled:
        problems = []
        if missing:
            problems.append("missing columns: " + names_list(missing))
        if unknown:
            problems.append("unknown columns: " + names_list(unknown))
        if doubled:
            problems.append("repeated columns: " + names_list(doubled))
        raise ValidationError("%s: the header does not match table %s (%s); %s"
                              % (member, info.name, "; ".join(problems), expected))
    return names


def _plain(cell: str) -> str:
    """A cell as it was before export neutralised it (one ' taken off)."""
    return cell[1:] if cell[:1] == "'" and cell[1:2] in FORMULA_START else cell


# -- the rows --------------------------------------------------------------------

def _converter(field: peewee.Field) -> Callable[[Optional[str]], Any]:
    """Turn a cell (``None``: an empty unquoted cell) into the field's value, checked."""
    kind, max_length, allowed = rules_of(field)
    text = is_text(field)
    as_json = is_json(field)
    nullable = field.null
    # check_converted tests the range of integers and the characters of strings.
    checked = kind in (INTEGER, STRING) or bool(max_length) or allowed is not None

    def convert(cell: Optional[str]) -> Any:
        # A quoted "" is NULL too where no value is empty text, except bytes (b"").
        if cell is None or (not cell and not text and kind != BYTES):
            if nullable:
                return None
            if text:
                return ""  # a hand-made file's empty cell in a NOT NULL text column
            raise ValueError("a value is required")
        # Export put a ' before text a spreadsheet would run as a formula, in a
        # column of any type (no number, date or JSON text starts with ').
        cell = _plain(cell)
        if text:
            value = cell
        elif as_json:
            try:
                value = json.loads(cell)
            except ValueError:
                raise ValueError("expected JSON text") from None
        else:
            value = from_json_value(field, cell)
        if checked:
            check_converted(kind, value, max_length, allowed)
        return value
    return convert


class _Plan:
    """How the rows of one file go in: per column, where its cell is and how it converts;
    the INSERT rendered once; the model whose hooks run, if any."""

    def __init__(self, db: peewee.Database, info: TableInfo, member: str,
                 header: List[str]) -> None:
        self.db = db
        self.info = info
        self.member = member
        self.header = header
        self.model = info.model
        model_fields = _compat.fields_by_column(self.model) if self.model is not None else {}
        position = {name: i for i, name in enumerate(header)}
        # Per column in table order: (column, cell position, converter, model field or None).
        self.columns = []
        for column in info.columns:
            field = info.fields[column]
            own = model_fields.get(column)
            self.columns.append((column, position[column], _converter(field), own))
        table = peewee.Table(info.name)
        self.table = table
        self.target = [peewee.Column(table, c) for c in info.columns]
        self.insert = render(db, lambda *marks: table.insert([marks], columns=self.target),
                             len(self.target))

    def error(self, line: int, column: Optional[str], message: str,
              errors: Optional[Dict[str, str]] = None) -> ValidationError:
        where = "%s line %d" % (self.member, line) + (", column %s" % column if column else "")
        return ValidationError("%s: %s; nothing was imported" % (where, message),
                               errors if errors is not None else
                               ({column: message} if column else {}))

    def values(self, line: int, record: List[Optional[str]]) -> List[Any]:
        """The record's values, converted and checked, in table column order."""
        out = []
        for column, position, convert, _ in self.columns:
            try:
                out.append(convert(record[position]))
            except ValueError as exc:
                raise self.error(line, column, str(exc)) from None
        return out


def _hook_error(plan: _Plan, line: int, exc: ValueError) -> ValidationError:
    errors = dict(getattr(exc, "errors", None) or {})
    if errors:
        detail = "; ".join("field %s: %s" % (name, message) for name, message in errors.items())
    else:
        detail = str(exc) or "refused"
    return plan.error(line, None, "%s (refused by a %s hook)" % (detail, hook_of(exc) or "model"),
                      errors)


def _import_table(archive: Archive, plan: _Plan, limits: Tuple[int, int],
                  progress: Optional[Progress], mode: str, records: int) -> int:
    """Load one file as one audited write: a single ``import`` entry for the table
    (record_id ``*``, after ``{table, rows, mode}``) by the importing actor."""
    info = plan.info
    model = info.model
    # A registered model's entry also reaches its after_commit listeners; a table
    # without one is audited under its table name.
    target = model if model is not None and hasattr(model._meta, "audited") else \
        info.component

    def run(_: None) -> Tuple[int, list]:
        count = _load(archive, plan, limits, progress) if records else 0
        return count, [("*", None, {"table": info.name, "rows": count, "mode": mode})]

    # audited=True: a model with Meta.audited = False (a log of its own) has no entry
    # per row, but an import replaces or adds rows wholesale and must leave a trace.
    return write(target, "import", run, audited=True).result


def _records(archive: Archive, plan: _Plan, limits: Tuple[int, int], keep: bool = True
             ) -> Iterator[Tuple[int, List[Optional[str]]]]:
    """``(line, record)`` for each record of the file after its header, as many values
    as the header has columns (unless ``keep``, the record's values are all None: it
    is only checked)."""
    max_field_bytes, max_bytes = limits
    width = len(plan.header)
    try:
        with _text(archive, plan.member, max_bytes) as text:
            reader = CsvReader(text, plan.member, max_field_bytes=max_field_bytes,
                               max_record_bytes=RECORD_FIELDS * max_field_bytes)
            reader.read(width)  # the header, checked already
            read = reader.read if keep else reader.skip
            while True:
                try:
                    record = read(width)
                except FieldCountError as exc:
                    raise plan.error(exc.line, None, "more values than the header's %d "
                                     "columns" % width) from None
                if record is None:
                    return
                count = len(record) if keep else record
                if count != width:
                    raise plan.error(reader.line, None, "%d values for %d columns"
                                     % (count, width))
                yield reader.line, record if keep else []
    except UnicodeDecodeError as exc:
        raise _unreadable(plan.member, exc) from None


def _scan(archive: Archive, plan: _Plan, limits: Tuple[int, int]) -> int:
    """How many records the file holds, once it has been read through its limits
    (without holding any record's text)."""
    count = 0
    with contextlib.closing(_records(archive, plan, limits, keep=False)) as records:
        for _ in records:
            count += 1
    return count


def _load(archive: Archive, plan: _Plan, limits: Tuple[int, int],
          progress: Optional[Progress]) -> int:
    count = 0
    insert = _insert_each if plan.model is not None else _insert_batched

    def rows() -> Iterator[Tuple[int, List[Any]]]:
        nonlocal count
        with contextlib.closing(_records(archive, plan, limits)) as records:
            for line, record in records:
                yield line, plan.values(line, record)
                count += 1
                if progress is not None and count % 1000 == 0:
                    progress(plan.info.name, count)
    insert(plan, rows())
    if progress is not None:
        progress(plan.info.name, count)
    return count


def _insert_each(plan: _Plan, rows) -> None:
    """One INSERT per row, between the model's before_insert and after_insert hooks."""
    db, model, sql, params = plan.db, plan.model, plan.insert.sql, plan.insert.params
    # Per column: the model attribute that holds its value after the hooks (a foreign
    # key's id accessor, which reads no row), or None for a column the model lacks.
    attributes = [None if field is None else field.object_id_name
                  if isinstance(field, peewee.ForeignKeyField) else field.name
                  for _, _, _, field in plan.columns]
    names = [(field.name, i) for i, (_, _, _, field) in enumerate(plan.columns)
             if field is not None]
    converters = [(field or plan.info.fields[column]).db_value
                  for column, _, _, field in plan.columns]
    for line, values in rows:
        instance = model(**{name: values[i] for name, i in names})

        def insert(_: None, instance: Any = instance, values: List[Any] = values,
                   line: int = line) -> Tuple[int, list]:
            row = [convert(value if attribute is None else getattr(instance, attribute))
                   for convert, attribute, value in zip(converters, attributes, values)]
            try:
                db.execute_sql(sql, params(row))
            except peewee.DatabaseError as exc:
                raise _RowRefused(plan.error(line, None, str(exc))) from None
            return 1, [None]  # a row went in (the table's one entry records it)

        try:
            hooked(instance, "create", insert)
        except _RowRefused as exc:
            raise exc.error from None
        except ValueError as exc:  # a hook refused the row
            raise _hook_error(plan, line, exc) from None


class _RowRefused(Exception):
    """The database refused a row (``error`` names its line): not a hook's refusal."""

    def __init__(self, error: ValidationError) -> None:
        super().__init__(str(error))
        self.error = error


def _insert_batched(plan: _Plan, rows) -> None:
    """Multi-row INSERTs for a table no model describes (it has no hooks)."""
    converters = [plan.info.fields[column].db_value for column, _, _, _ in plan.columns]
    batch_size = max(1, _MAX_PARAMS // max(1, len(converters)))
    batch: List[List[Any]] = []
    first = last = 0

    def flush() -> None:
        if not batch:
            return
        try:
            plan.table.insert(batch, columns=plan.target).bind(plan.db).execute()
        except peewee.DatabaseError as exc:
            lines = "line %d" % first if first == last else "lines %d-%d" % (first, last)
            raise ValidationError("%s %s: %s; nothing was imported"
                                  % (plan.member, lines, exc)) from None
        del batch[:]

    for line, values in rows:
        if not batch:
            first = line
        last = line
        batch.append([convert(v) for convert, v in zip(converters, values)])
        if len(batch) >= batch_size:
            flush()
    flush()


# -- around the rows ---------------------------------------------------------------

def _refuse_dependents(db: peewee.Database, infos: Dict[str, TableInfo]) -> None:
    """Refuse to replace tables that a table outside the zip refers to.

    Emptying them would cascade into that table (ON DELETE CASCADE deletes its
    rows, SET NULL clears its keys: changes no audit entry records) or fail
    half-way (NO ACTION); so whatever the ON DELETE action, any row that refers
    to a row of a replaced table makes replace a ``ValidationError``.
    """
    keys: Dict[str, List[str]] = {}
    parents: Dict[str, List[str]] = {}
    for table in db.get_tables():
        if table in infos:
            continue
        for fk in db.get_foreign_keys(table):
            if fk.dest_table not in infos:
                continue
            child, parent = peewee.Table(table), peewee.Table(fk.dest_table)
            refers = child.select(peewee.SQL("1")).where(peewee.Column(child, fk.column).in_(
                parent.select(peewee.Column(parent, fk.dest_column)))).bind(db)
            if refers.exists():
                keys.setdefault(table, []).append("%s.%s -> %s.%s" % (
                    table, fk.column, fk.dest_table, fk.dest_column))
                if fk.dest_table not in parents.setdefault(table, []):
                    parents[table].append(fk.dest_table)
    if keys:
        raise ValidationError(
            "replace would delete rows that tables outside the zip refer to: %s; put %s in "
            "the zip too, or import with mode append; nothing was imported" % (
                "; ".join("%s (%s)" % (table, ", ".join(refs)) for table, refs in keys.items()),
                names_list(list(keys))),
            {table: "refers to rows of " + names_list(tables)
             for table, tables in parents.items()})


def _delete_all(db: peewee.Database, table: str) -> None:
    try:
        peewee.Table(table).delete().bind(db).execute()
    except peewee.DatabaseError as exc:
        raise ValidationError("replace could not empty table %s (%s); another table not in "
                              "the zip may refer to its rows; nothing was imported"
                              % (table, exc)) from None


def _reset_sequences(db: peewee.Database, infos: List[TableInfo]) -> None:
    """Key sequences that do not move for explicit keys (PostgreSQL): past the rows."""
    dialect = dialect_of(db)
    for info in infos:
        if len(info.primary_key) != 1:
            continue
        column = info.primary_key[0]
        if isinstance(info.fields.get(column), peewee.IntegerField):
            dialect.move_sequence(db, info.name, column)
