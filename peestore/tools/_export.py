"""CSV export: a zip with one ``<table>.csv`` per table, written row by row.

Memory stays flat whatever the table size: rows come from the database
through a cursor (SQLite) or in primary-key pages (PostgreSQL, MariaDB, whose
drivers otherwise fetch a whole result set at once) of at most
``PAGE_ROWS`` rows and about ``PAGE_BYTES`` of values, and each row goes
straight into a deflated zip entry opened with ``ZipFile.open(name, "w")``.
The whole export is one read transaction, so the files agree with each other.

The CSV is ``peestore.csvformat``'s: NULL is an empty field, the empty
string ``""``.  Any text cell that a spreadsheet would run as a formula (it
starts with ``=``, ``+``, ``-``, ``@``, a tab or a CR) gets a ``'`` in
front, as OWASP recommends, and so does one that starts with ``'`` itself:
the column names of the header, the values of text columns, and text that a
database keeps in a column of another type (SQLite stores what it is given).
The importer takes that one ``'`` off again, so the round trip is exact.
"""
from __future__ import annotations

import base64
import datetime
import decimal
import io
import json
import os
import pathlib
import uuid
import zipfile

import peewee

from ..audit._log import JSONTextField
from ._backup import fsync_dir
from ._csv import cell, needs_quotes, record_text
from ..db._connect import get_database
from ..db._dialect import dialect_of
from ._tables import TableInfo, describe_tables, open_connection, resolve_tables
from ..model._values import ANY, INTEGER, NUMBER, STRING, field_kind

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, Iterator, Optional, Sequence, Union
    Progress = Callable[[str, int], None]

__all__ = ["export_csv", "export_steps", "cell_text", "cell_writer", "is_text", "is_json",
           "neutralised", "FORMULA_START"]

#: Rows fetched per page on PostgreSQL and MariaDB, at most ...
PAGE_ROWS = 1000
#: ... and about this many bytes of values: a page of large rows holds fewer.
PAGE_BYTES = 1 << 20
#: Rows of a table's first page, before the size of its rows is known.
FIRST_PAGE_ROWS = 10

#: Rows between two progress reports.
STEP_ROWS = 1000


#: The first characters of a text cell that get a ``'`` in front on export.
FORMULA_START = frozenset("=+-@\t\r'")


def is_json(field: peewee.Field) -> bool:
    """Whether ``field`` holds JSON (its cells are JSON text)."""
    return isinstance(field, JSONTextField) or "JSON" in str(
        getattr(field, "field_type", "")).upper()


def is_text(field: peewee.Field) -> bool:
    """Whether ``field`` holds text that export neutralises (not JSON, not a number...)."""
    return not is_json(field) and field_kind(field) in (STRING, ANY)


def neutralised(text: str) -> str:
    """``text`` with a ``'`` in front when it starts with one of ``FORMULA_START``."""
    return "'" + text if text[:1] in FORMULA_START else text


def cell_text(field: peewee.Field, raw: Any) -> Optional[str]:
    """The CSV cell of a database value: what a user would type to get it back.

    ``None`` for NULL; datetimes are ISO 8601, booleans ``true`` or
    ``false``, bytes base64, JSON values JSON text.  Any text (a text
    column's, or text a database holds in a column of another type, which
    its field cannot read) that starts with one of ``FORMULA_START`` gets a
    ``'`` in front; numbers, dates and JSON text are never text here.
    """
    if raw is None:
        return None
    try:
        value = field.python_value(raw)
    except (ValueError, TypeError, ArithmeticError):  # decimal.InvalidOperation
        return cell_text(_RAW, raw)  # what the field cannot read is written as it is
    if value is None:
        return None
    if is_json(field):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, str):
        return neutralised(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, peewee.Model):
        return cell_text(field, value.get_id())
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return neutralised(str(value))


#: Reads a raw database value as it is (for values a column's own field cannot read).
_RAW = peewee.BareField()


def cell_writer(field: peewee.Field) -> Callable[[Any], str]:
    """A function from a raw database value of ``field`` to its CSV cell, quoted as
    needed: ``csvformat.cell(cell_text(field, raw))``, with the
    commonest values (text, integers, floats) taken the short way."""
    text = is_text(field)
    kind = field_kind(field)

    def any_value(raw: Any) -> str:
        return cell(cell_text(field, raw))

    if text:
        def text_cell(raw: Any) -> str:
            if type(raw) is not str:
                return any_value(raw)
            if not raw:
                return '""'
            if raw[0] in FORMULA_START:
                raw = "'" + raw
            if needs_quotes(raw) is None:
                return raw
            return '"' + raw.replace('"', '""') + '"'
        return text_cell
    if kind == INTEGER:
        def integer_cell(raw: Any) -> str:
            return str(raw) if type(raw) is int else any_value(raw)
        return integer_cell
    if kind == NUMBER:
        def number_cell(raw: Any) -> str:
            return repr(raw) if type(raw) is float else any_value(raw)
        return number_cell
    return any_value


def _rows(db: peewee.Database, info: TableInfo) -> Iterator[tuple]:
    """Every row of ``info``'s table as raw database values, in primary-key order."""
    table = peewee.Table(info.name)
    columns = [peewee.Column(table, name) for name in info.columns]
    key = [peewee.Column(table, name) for name in info.primary_key]
    query = table.select(*columns).bind(db)
    if not dialect_of(db).pages_by_key() or not key:
        # sqlite3 steps through the result; it never holds the whole table.
        yield from (query.order_by(*key) if key else query).tuples().iterator()
        return
    positions = [info.columns.index(name) for name in info.primary_key]
    last = None
    size = min(FIRST_PAGE_ROWS, PAGE_ROWS)
    while True:
        page = query.order_by(*key).limit(size)
        if last is not None:
            if len(key) == 1:
                page = page.where(key[0] > last[0])
            else:
                page = page.where(peewee.Tuple(*key) > peewee.Tuple(*last))
        rows = list(page.tuples())
        yield from rows
        if len(rows) < size:
            return
        last = [rows[-1][i] for i in positions]
        # The next page holds about PAGE_BYTES of rows like these.
        taken = sum(len(v) if isinstance(v, (str, bytes)) else 8 for row in rows for v in row)
        size = max(1, min(PAGE_ROWS, PAGE_BYTES * len(rows) // max(taken, 1)))


def export_steps(fileobj: Any, db: peewee.Database, tables: Optional[Sequence[str]] = None,
                 progress: Optional[Progress] = None,
                 models: Optional[Sequence[type]] = None) -> Iterator[None]:
    """Write the export zip to ``fileobj``, yielding every ``STEP_ROWS`` rows.

    A generator, so a caller can report progress.  ``tables`` are table or
    component names (``models`` add to the registered models that name
    components).  Opens a connection if this thread has none.  Each row goes
    on to the compressor as it is written (the text layer keeps a few KB),
    and the compressor writes to ``fileobj``: memory stays flat whatever the
    size of the rows.
    """
    with open_connection(db):
        if tables is not None:
            tables = resolve_tables(db, tables, models)
        infos = describe_tables(db, tables, models)
        with dialect_of(db).snapshot(db), \
                zipfile.ZipFile(fileobj, "w", zipfile.ZIP_DEFLATED) as zf:
            for info in infos.values():
                writers = [cell_writer(info.fields[name]) for name in info.columns]
                # force_zip64: the entry's size is unknown until its last row.
                with zf.open(info.name + ".csv", "w", force_zip64=True) as raw:
                    text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
                    write = text.write
                    write(record_text([neutralised(name) for name in info.columns]))
                    count = 0
                    for row in _rows(db, info):
                        write(",".join([w(v) for w, v in zip(writers, row)]) + "\r\n")
                        count += 1
                        if count % STEP_ROWS == 0:
                            if progress is not None:
                                progress(info.name, count)
                            text.flush()
                            yield
                    text.flush()
                    text.detach()
                if progress is not None:
                    progress(info.name, count)
                yield


def export_csv(dest: Union[str, os.PathLike], *, database: Optional[peewee.Database] = None,
               tables: Optional[Sequence[str]] = None) -> pathlib.Path:
    """Write a zip of one ``<table>.csv`` per table (default: every table) to ``dest``.

    ``tables`` names tables by table name or by component (``machines`` or
    ``machine``); an unknown name is a ``ValidationError`` that lists both.
    The audit log is a table like the others.  The zip is written beside
    ``dest`` and renamed into place when complete.  Returns its path.
    """
    return write_export(dest, database=database, tables=tables)


def write_export(dest: Union[str, os.PathLike], *, database: Optional[peewee.Database] = None,
                 tables: Optional[Sequence[str]] = None,
                 progress: Optional[Progress] = None,
                 models: Optional[Sequence[type]] = None) -> pathlib.Path:
    """``export_csv`` with a ``progress(table, rows_written)`` callback and more ``models``."""
    from ._files import check_output, temp_file

    db = get_database(database)
    check_output(dest, database=db, what="the export")
    dest = pathlib.Path(dest)
    directory = dest.parent if str(dest.parent) else pathlib.Path(".")
    fd, tmp = temp_file(str(directory), "export", ".zip")
    try:
        with os.fdopen(fd, "wb") as f:
            for _ in export_steps(f, db, tables, progress, models):
                pass
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, str(dest))
        fsync_dir(directory)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return dest
