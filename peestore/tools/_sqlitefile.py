"""A SQLite file's schema table, read from its pages without SQLite.

SQLite parses every statement in a file's schema as soon as the first
statement runs on that file, and parsing takes many times the memory of the
text: a backup whose schema holds one huge view would cost the server far
more memory than its size before any check could refuse it.  ``restore``
therefore reads the rows of ``sqlite_schema`` here first, from the b-tree
rooted at page 1 as the file format documents it, and refuses a schema
that is too large, too long or foreign before SQLite sees it.

The reader trusts nothing in the file: every page number, cell offset,
length and overflow chain is checked, each page is read at most once, and
it stops with ``SchemaTableError`` as soon as the rows pass ``max_rows`` or
their payload passes ``max_bytes``.  A file it cannot read whole is refused,
so SQLite never loads a schema this reader did not bound.
"""
from __future__ import annotations

import os
import struct

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import IO, Any, List, Optional, Set, Tuple

__all__ = ["SchemaTableError", "FileHeader", "read_header", "read_schema_rows", "ENCODINGS"]

#: The text encodings a SQLite header names (offset 56), by number.
ENCODINGS = {1: "UTF-8", 2: "UTF-16le", 3: "UTF-16be"}
_CODECS = {1: "utf-8", 2: "utf-16-le", 3: "utf-16-be"}
_LEAF, _INTERIOR = 0x0D, 0x05
_COLUMNS = 5  # type, name, tbl_name, rootpage, sql


class SchemaTableError(Exception):
    """The schema table cannot be read, or is over a limit (the message says which)."""


class FileHeader:
    """What restore needs from a SQLite file's 100-byte header."""

    def __init__(self, page_size: int, usable: int, encoding: int, pages: int) -> None:
        self.page_size = page_size
        self.usable = usable      # page size less the reserved bytes at each page's end
        self.encoding = encoding  # 1, 2 or 3 (ENCODINGS)
        self.pages = pages        # whole pages in the file

    @property
    def encoding_name(self) -> str:
        return ENCODINGS.get(self.encoding, "unknown (%d)" % self.encoding)


def read_header(path: str) -> FileHeader:
    """Parse the header of the file at ``path``; raise ``SchemaTableError`` if it is not
    a whole SQLite database."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        raise SchemaTableError("not a SQLite database (bad header); upload a file made by "
                               "peestore backup")
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise SchemaTableError("not a SQLite database (page size %d)" % page_size)
    if size % page_size:
        raise SchemaTableError("truncated SQLite file: %d bytes is not a whole number of "
                               "%d-byte pages" % (size, page_size))
    change_counter, pages = struct.unpack(">II", header[24:32])
    valid_for = struct.unpack(">I", header[92:96])[0]
    # The page count in the header is only valid when written by SQLite 3.7+
    # in the same transaction as the change counter.
    if pages and change_counter == valid_for and size < pages * page_size:
        raise SchemaTableError("truncated SQLite file: %d bytes, the header says %d"
                               % (size, pages * page_size))
    usable = page_size - header[20]
    if usable < 480:
        raise SchemaTableError("not a SQLite database (%d reserved bytes per page)"
                               % header[20])
    # 0: no schema was ever written, which SQLite reads as UTF-8.
    encoding = struct.unpack(">I", header[56:60])[0] or 1
    if encoding not in ENCODINGS:
        raise SchemaTableError("not a SQLite database (text encoding %d)" % encoding)
    return FileHeader(page_size, usable, encoding, size // page_size)


def read_schema_rows(path: str, header: FileHeader, *, max_rows: int,
                     max_bytes: int) -> List[Tuple[Any, Any, Any, Any]]:
    """The ``(type, name, tbl_name, sql)`` rows of the file's schema table, text decoded
    (undecodable bytes as lone surrogates: ``surrogateescape``), other values as stored."""
    with open(path, "rb") as f:
        return _Reader(f, header, max_rows, max_bytes).rows()


def _damaged(what: str) -> SchemaTableError:
    return SchemaTableError("the backup's schema table is damaged (%s); it is not a "
                            "usable SQLite database" % what)


class _Reader:
    def __init__(self, f: IO[bytes], header: FileHeader, max_rows: int,
                 max_bytes: int) -> None:
        self.f = f
        self.header = header
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.seen: Set[int] = set()
        self.total = 0
        self.codec = _CODECS[header.encoding]

    def page(self, number: int) -> bytes:
        if not 1 <= number <= self.header.pages:
            raise _damaged("page %d is outside the file" % number)
        if number in self.seen:
            raise _damaged("page %d is used twice" % number)
        self.seen.add(number)
        self.f.seek((number - 1) * self.header.page_size)
        return self.f.read(self.header.page_size)[:self.header.usable]

    def rows(self) -> List[Tuple[Any, Any, Any, Any]]:
        out: List[Tuple[Any, Any, Any, Any]] = []
        pending = [1]
        while pending:
            number = pending.pop()
            data = self.page(number)
            start = 100 if number == 1 else 0
            kind = data[start]
            if kind not in (_LEAF, _INTERIOR):
                raise _damaged("page %d is not a table b-tree page" % number)
            cells = struct.unpack(">H", data[start + 3:start + 5])[0]
            pointers = start + (12 if kind == _INTERIOR else 8)
            if pointers + 2 * cells > len(data):
                raise _damaged("page %d claims %d cells" % (number, cells))
            for i in range(cells):
                at = struct.unpack(">H", data[pointers + 2 * i:pointers + 2 * i + 2])[0]
                if not pointers + 2 * cells <= at < len(data):
                    raise _damaged("a cell of page %d is outside it" % number)
                if kind == _INTERIOR:
                    pending.append(_u32(data, at))
                else:
                    if len(out) == self.max_rows:
                        raise SchemaTableError(
                            "the backup's schema has more than %d objects, the limit for "
                            "this database" % self.max_rows)
                    out.append(self.row(data, at))
            if kind == _INTERIOR:
                pending.append(_u32(data, start + 8))
        return out

    def row(self, data: bytes, at: int) -> Tuple[Any, Any, Any, Any]:
        size, at = _varint(data, at)
        _, at = _varint(data, at)  # rowid
        self.total += size
        usable = self.header.usable
        room = usable - 35
        if size <= room:
            local = size
        else:
            least = (usable - 12) * 32 // 255 - 23
            local = least + (size - least) % (usable - 4)
            if local > room:
                local = least
        if at + local > len(data):
            raise _damaged("a schema row runs past its page")
        payload = data[at:at + local]
        if self.total > self.max_bytes:
            raise SchemaTableError("the backup's schema is over %d bytes, the limit for this "
                                   "database%s" % (self.max_bytes, self.object(payload)))
        if local < size:
            payload += self.overflow(_u32(data, at + local), size - local)
        return self.record(payload)

    def overflow(self, number: int, remaining: int) -> bytes:
        parts = []
        while remaining > 0:
            if number == 0:
                raise _damaged("an overflow chain ends early")
            data = self.page(number)
            number = _u32(data, 0)
            part = data[4:4 + remaining]
            parts.append(part)
            remaining -= len(part)
        return b"".join(parts)

    def object(self, payload: bytes) -> str:
        """``: at <type> <name> (N bytes)``, read from the start of a row, if there."""
        try:
            kind, name = self.record(payload, 2)[:2]
        except SchemaTableError:
            return ""
        if not isinstance(kind, str) or not isinstance(name, str):
            return ""
        shown = "".join(c if c.isprintable() else "?" for c in name[:60])
        return " (at %s %s)" % ("".join(c for c in kind[:10] if c.isalpha()), shown)

    def record(self, payload: bytes, columns: int = _COLUMNS) -> Tuple[Any, ...]:
        header_size, at = _varint(payload, 0)
        if header_size > len(payload):
            raise _damaged("a schema row's header runs past the row")
        types = []
        while at < header_size and len(types) < columns:
            serial, at = _varint(payload, at)
            types.append(serial)
        values: List[Optional[Any]] = []
        at = header_size
        for serial in types:
            value, at = self.value(payload, at, serial)
            values.append(value)
        values += [None] * (_COLUMNS - len(values))
        if columns < _COLUMNS:
            return tuple(values)
        return values[0], values[1], values[2], values[4]

    def value(self, payload: bytes, at: int, serial: int) -> Tuple[Any, int]:
        if serial in (0, 8, 9):
            return (None, 0, 1)[(0, 8, 9).index(serial)], at
        if 1 <= serial <= 6:
            width = (1, 2, 3, 4, 6, 8)[serial - 1]
            if at + width > len(payload):
                raise _damaged("a schema row's value runs past the row")
            return int.from_bytes(payload[at:at + width], "big", signed=True), at + width
        if serial == 7:
            if at + 8 > len(payload):
                raise _damaged("a schema row's value runs past the row")
            return struct.unpack(">d", payload[at:at + 8])[0], at + 8
        if serial >= 12:
            width = (serial - 12) // 2
            if at + width > len(payload):
                raise _damaged("a schema row's value runs past the row")
            raw = payload[at:at + width]
            if serial % 2:
                return raw.decode(self.codec, "surrogateescape"), at + width
            return raw, at + width
        raise _damaged("a schema row has a value of reserved type %d" % serial)


def _u32(data: bytes, at: int) -> int:
    if at + 4 > len(data):
        raise _damaged("a page number runs past its page")
    return struct.unpack(">I", data[at:at + 4])[0]


def _varint(data: bytes, at: int) -> Tuple[int, int]:
    value = 0
    for i in range(9):
        if at + i >= len(data):
            raise _damaged("a number runs past its page")
        byte = data[at + i]
        if i == 8:
            return (value << 8) | byte, at + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + i + 1
    raise AssertionError("unreachable")
