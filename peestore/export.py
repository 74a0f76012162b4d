"""CSV export: a zip with one ``<table>.csv`` per table, written row by row.

Memory stays flat whatever the table size: rows come from the database
through a cursor (SQLite) or in primary-key pages (PostgreSQL, MariaDB, whose
drivers otherwise fetch a whole result set at once), and each row goes
straight into a deflated zip entry opened with ``ZipFile.open(name, "w")``.
The whole export is one read transaction, so the files agree with each other.
"""
from __future__ import annotations

import base64
import csv
import datetime
import decimal
import io
import json
import os
import pathlib
import tempfile
import uuid
import zipfile

import peewee

from .backup import fsync_dir
from .db import get_database
from .errors import PeestoreError
from .tables import TableInfo, describe_tables, open_connection

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Callable, Iterator, List, Optional, Sequence, Union
    Progress = Callable[[str, int], None]

__all__ = ["export_csv", "stream_export", "export_steps", "text_value"]

#: Rows fetched per page on PostgreSQL and MariaDB.
PAGE_ROWS = 1000

#: Rows between two progress reports (and two flushes of a streamed response).
STEP_ROWS = 1000


def text_value(field: peewee.Field, raw: Any) -> str:
    """The CSV text of a database value: what a user would type to get it back.

    ``None`` is the empty field; datetimes are ISO 8601, booleans ``true`` or
    ``false``, bytes base64, JSON values JSON text.
    """
    if raw is None:
        return ""
    try:
        value = field.python_value(raw)
    except (ValueError, TypeError):
        value = raw
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, peewee.Model):
        return text_value(field, value._pk)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _rows(db: peewee.Database, info: TableInfo) -> Iterator[tuple]:
    """Every row of ``info``'s table as raw database values, in primary-key order."""
    table = peewee.Table(info.name)
    columns = [peewee.Column(table, name) for name in info.columns]
    key = [peewee.Column(table, name) for name in info.primary_key]
    query = table.select(*columns).bind(db)
    if isinstance(db, peewee.SqliteDatabase) or not key:
        # sqlite3 steps through the result; it never holds the whole table.
        yield from (query.order_by(*key) if key else query).tuples().iterator()
        return
    positions = [info.columns.index(name) for name in info.primary_key]
    last = None
    while True:
        page = query.order_by(*key).limit(PAGE_ROWS)
        if last is not None:
            if len(key) == 1:
                page = page.where(key[0] > last[0])
            else:
                page = page.where(peewee.Tuple(*key) > peewee.Tuple(*last))
        rows = list(page.tuples())
        yield from rows
        if len(rows) < PAGE_ROWS:
            return
        last = [rows[-1][i] for i in positions]


def _snapshot(db: peewee.Database):
    """A transaction in which every read sees the same snapshot of the database."""
    txn = db.atomic()
    if isinstance(db, peewee.PostgresqlDatabase) and db.transaction_depth() == 0:
        class _RepeatableRead:
            def __enter__(self):
                txn.__enter__()
                db.execute_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                return txn

            def __exit__(self, *exc):
                return txn.__exit__(*exc)
        return _RepeatableRead()
    # SQLite (WAL) and InnoDB (REPEATABLE READ by default) snapshot at the first read.
    return txn


def export_steps(fileobj: Any, db: peewee.Database, tables: Optional[Sequence[str]] = None,
                 progress: Optional[Progress] = None) -> Iterator[None]:
    """Write the export zip to ``fileobj``, yielding every ``STEP_ROWS`` rows.

    A generator, so a caller can hand on what was written so far (a streamed
    HTTP response) or report progress.  Opens a connection if this thread has
    none.
    """
    with open_connection(db):
        try:
            infos = describe_tables(db, tables)
        except KeyError as exc:
            raise PeestoreError(f"no table {exc.args[0]!r} in the database; tables: "
                                f"{', '.join(db.get_tables())}") from None
        with _snapshot(db), zipfile.ZipFile(fileobj, "w", zipfile.ZIP_DEFLATED) as zf:
            for info in infos.values():
                fields = [info.fields[name] for name in info.columns]
                # force_zip64: the entry's size is unknown until its last row.
                with zf.open(info.name + ".csv", "w", force_zip64=True) as raw:
                    text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
                    writer = csv.writer(text)
                    writer.writerow(info.columns)
                    count = 0
                    for row in _rows(db, info):
                        writer.writerow([text_value(f, v) for f, v in zip(fields, row)])
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

    The audit log is a table like the others.  The zip is written beside
    ``dest`` and renamed into place when complete.  Returns its path.
    """
    return write_export(dest, database=database, tables=tables)


def write_export(dest: Union[str, os.PathLike], *, database: Optional[peewee.Database] = None,
                 tables: Optional[Sequence[str]] = None,
                 progress: Optional[Progress] = None) -> pathlib.Path:
    """``export_csv`` with a ``progress(table, rows_written)`` callback."""
    db = get_database(database)
    dest = pathlib.Path(dest)
    directory = dest.parent if str(dest.parent) else pathlib.Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=str(directory))
    try:
        with os.fdopen(fd, "wb") as f:
            for _ in export_steps(f, db, tables, progress):
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


class _Sink:
    """A write-only byte buffer: ``ZipFile`` writes into it, the response drains it."""

    def __init__(self) -> None:
        self._parts: List[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts = []
        return data


def stream_export(database: Optional[peewee.Database] = None,
                  tables: Optional[Sequence[str]] = None) -> Iterator[bytes]:
    """The export zip as an iterator of byte chunks, for a streamed HTTP response."""
    db = get_database(database)
    sink = _Sink()
    for _ in export_steps(sink, db, tables):
        chunk = sink.take()
        if chunk:
            yield chunk
    chunk = sink.take()
    if chunk:
        yield chunk
