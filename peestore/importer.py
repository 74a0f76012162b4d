"""CSV import: load a zip as ``export_csv`` makes it, all or nothing.

Every file is checked (known table, header matching the table's columns)
before anything is written; then the whole zip goes in one transaction,
parents before children, each value converted by its column's field type, and
one ``import`` audit entry per table.  Any error rolls everything back.
"""
from __future__ import annotations

import csv
import io
import json
import os
import zipfile

import peewee

from .audit import AuditLog, JSONTextField, write_entries
from .db import get_database
from .errors import ValidationError
from .tables import TableInfo, describe_tables, foreign_key_order, open_connection
from .values import from_json_value
from .writes import record_writes

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import IO, Any, Callable, Dict, List, Optional, Union
    Progress = Callable[[str, int], None]

__all__ = ["import_csv", "MODES"]

MODES = ("append", "replace")

# Bound parameters per INSERT: under SQLite's old limit of 999.
_MAX_PARAMS = 900

# A base64 blob or an audit entry's JSON may exceed csv's default 128 KiB field.
_FIELD_LIMIT = 1 << 28


def import_csv(src: Union[str, os.PathLike, IO[bytes]], *,
               database: Optional[peewee.Database] = None,
               mode: str = "append") -> Dict[str, int]:
    """Import the zip ``src`` (a path or binary file); returns ``{table: rows}``.

    ``mode="append"`` adds the rows (primary keys included, so a key already
    present is a conflict); ``mode="replace"`` first deletes every row of the
    tables in the zip.  Raises ``ValidationError`` (nothing imported) on any
    problem: not a zip, an unknown table, a header that does not match, a
    value that does not fit its column, a constraint violation.
    """
    return load_zip(src, database=database, mode=mode)


def load_zip(src: Union[str, os.PathLike, IO[bytes]], *,
             database: Optional[peewee.Database] = None, mode: str = "append",
             progress: Optional[Progress] = None) -> Dict[str, int]:
    """``import_csv`` with a ``progress(table, rows_read)`` callback."""
    if mode not in MODES:
        raise ValidationError(f"mode must be append or replace, not {mode!r}",
                              {"mode": "expected append or replace"})
    db = get_database(database)
    try:
        archive = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValidationError(f"not a zip file ({exc}); upload a zip made by export") from None
    if csv.field_size_limit() < _FIELD_LIMIT:
        csv.field_size_limit(_FIELD_LIMIT)
    with archive, open_connection(db):
        members = _members(archive)
        existing = set(db.get_tables())
        unknown = sorted(t for t in members if t not in existing)
        if unknown:
            raise ValidationError(
                f"no table {', '.join(unknown)} in the database; the zip's files must be "
                f"named <table>.csv after: {', '.join(sorted(existing))}")
        infos = describe_tables(db, list(members))
        headers = {table: _check_header(archive, members[table], infos[table])
                   for table in members}
        order = foreign_key_order(infos)
        counts: Dict[str, int] = {}
        try:
            with db.atomic():
                if mode == "replace":
                    for table in reversed(order):
                        _delete_all(db, table)
                for table in order:
                    counts[table] = _load(db, archive, members[table], infos[table],
                                          headers[table], mode, progress)
                _reset_sequences(db, [infos[t] for t in order])
                _audit(infos, counts, mode)
        except peewee.DatabaseError as exc:
            raise ValidationError(f"import failed, nothing was imported: {exc}") from None
    return {table: counts[table] for table in order}


def _members(archive: zipfile.ZipFile) -> Dict[str, str]:
    """Table name -> member name, for each ``<table>.csv`` at the zip's top level."""
    members: Dict[str, str] = {}
    for name in archive.namelist():
        if name.endswith("/") or "/" in name or not name.lower().endswith(".csv"):
            continue  # folders, files in folders (__MACOSX/...), anything not CSV
        table = name[:-4]
        if table in members:
            raise ValidationError(f"the zip holds {table}.csv twice")
        members[table] = name
    if not members:
        raise ValidationError("the zip holds no <table>.csv file")
    return members


def _open_text(archive: zipfile.ZipFile, member: str) -> IO[str]:
    # utf-8-sig: a spreadsheet program may have added a byte-order mark.
    return io.TextIOWrapper(archive.open(member), encoding="utf-8-sig", newline="")


def _check_header(archive: zipfile.ZipFile, member: str, info: TableInfo) -> List[str]:
    """The file's header, if it names exactly the table's columns (in any order)."""
    try:
        with _open_text(archive, member) as text:
            header = next(csv.reader(text), [])
    except (UnicodeDecodeError, csv.Error, zipfile.BadZipFile) as exc:
        raise ValidationError(f"{member}: unreadable ({exc})") from None
    missing = [c for c in info.columns if c not in header]
    unknown = [c for c in header if c not in info.columns]
    doubled = sorted({c for c in header if header.count(c) > 1})
    if missing or unknown or doubled:
        problems = []
        if missing:
            problems.append("missing columns: " + ", ".join(missing))
        if unknown:
            problems.append("unknown columns: " + ", ".join(unknown))
        if doubled:
            problems.append("repeated columns: " + ", ".join(doubled))
        raise ValidationError(
            f"{member}: the header does not match table {info.name} ({'; '.join(problems)}); "
            f"expected: {', '.join(info.columns)}")
    return header


def _is_json(field: peewee.Field) -> bool:
    return isinstance(field, JSONTextField) or "JSON" in str(
        getattr(field, "field_type", "")).upper()


def _converter(info: TableInfo, column: str) -> Callable[[str], Any]:
    """Turn the CSV text of ``column`` into the value to store."""
    field = info.fields[column]
    text_type = isinstance(field, (peewee.CharField, peewee.TextField)) and not _is_json(field)

    def convert(text: str) -> Any:
        if text == "":
            if field.null:
                return None
            if text_type:
                return ""
            raise ValueError("a value is required")
        if _is_json(field):
            try:
                value = json.loads(text)
            except ValueError:
                raise ValueError("expected JSON text") from None
        elif isinstance(field, peewee.BareField):
            return text
        else:
            value = from_json_value(field, text)
        return field.db_value(value)
    return convert


def _load(db: peewee.Database, archive: zipfile.ZipFile, member: str, info: TableInfo,
          header: List[str], mode: str, progress: Optional[Progress]) -> int:
    columns = list(header)
    if info.name == AuditLog._meta.table_name and mode == "append":
        # Nothing refers to an audit entry's id: appended entries are renumbered.
        columns = [c for c in header if c != "id"]
    positions = [header.index(c) for c in columns]
    converters = [_converter(info, c) for c in columns]
    table = peewee.Table(info.name)
    target = [peewee.Column(table, c) for c in columns]
    batch_size = max(1, _MAX_PARAMS // max(1, len(columns)))
    batch: List[List[Any]] = []
    count = 0
    first_line = 2

    def flush() -> None:
        if not batch:
            return
        try:
            table.insert(batch, columns=target).bind(db).execute()
        except peewee.DatabaseError as exc:
            lines = f"line {first_line}" if len(batch) == 1 else \
                f"lines {first_line}-{first_line + len(batch) - 1}"
            raise ValidationError(f"{member} {lines}: {exc}; nothing was imported") from None
        del batch[:]

    with _open_text(archive, member) as text:
        reader = csv.reader(text)
        next(reader, None)
        try:
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise ValidationError(f"{member} line {line}: {len(row)} values for "
                                          f"{len(header)} columns")
                values = []
                for column, position, convert in zip(columns, positions, converters):
                    try:
                        values.append(convert(row[position]))
                    except ValueError as exc:
                        raise ValidationError(
                            f"{member} line {line}, column {column}: {exc}",
                            {column: str(exc)}) from None
                if not batch:
                    first_line = line
                batch.append(values)
                count += 1
                if len(batch) >= batch_size:
                    flush()
                if progress is not None and count % 1000 == 0:
                    progress(info.name, count)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ValidationError(f"{member}: unreadable CSV ({exc})") from None
        flush()
    if progress is not None:
        progress(info.name, count)
    return count


def _delete_all(db: peewee.Database, table: str) -> None:
    try:
        peewee.Table(table).delete().bind(db).execute()
    except peewee.DatabaseError as exc:
        raise ValidationError(f"replace could not empty table {table} ({exc}); another table "
                              f"not in the zip may refer to its rows; nothing was imported"
                              ) from None


def _reset_sequences(db: peewee.Database, infos: List[TableInfo]) -> None:
    """PostgreSQL sequences do not move for explicit keys: point them past the rows."""
    if not isinstance(db, peewee.PostgresqlDatabase):
        return
    for info in infos:
        if len(info.primary_key) != 1:
            continue
        column = info.primary_key[0]
        if not isinstance(info.fields.get(column), peewee.IntegerField):
            continue
        quoted_table = '"%s"' % info.name.replace('"', '""')  # noqa: UP031
        quoted_column = '"%s"' % column.replace('"', '""')  # noqa: UP031
        db.execute_sql(
            f"SELECT setval(pg_get_serial_sequence(%s, %s), "
            f"(SELECT COALESCE(MAX({quoted_column}), 0) + 1 FROM {quoted_table}), false)",
            (quoted_table, column))


def _audit(infos: Dict[str, TableInfo], counts: Dict[str, int], mode: str) -> None:
    """One ``import`` entry per table: record_id ``*``, after ``{table, rows, mode}``."""
    loose = []
    for table, rows in counts.items():
        info = infos[table]
        after = {"table": table, "rows": rows, "mode": mode}
        model = info.model
        if model is not None and hasattr(model._meta, "audited"):
            # An audited model's entry also reaches its after_commit listeners.
            record_writes(model, [("import", "*", None, after)])
        else:
            loose.append({"component": info.component, "record_id": "*",
                          "operation": "import", "before": None, "after": after})
    write_entries(loose)
