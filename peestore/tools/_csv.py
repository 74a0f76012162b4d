"""CSV as the data tools write and read it: Excel's dialect, streamed, with limits.

Fields are separated by commas; a field holding a comma, a double quote, CR
or LF is quoted, with its quotes doubled.  Records end with CRLF when
written; CR, LF and CRLF are accepted when read, and so is a UTF-8 byte-order
mark (the caller decodes with ``utf-8-sig``).

NULL and the empty string differ: NULL is an empty field without quotes,
the empty string is ``""``.  ``read`` gives ``None`` for the first and
``""`` for the second.  A blank line is not a record, so a record of a
single NULL field cannot be written (it would be a blank line).

Unlike the ``csv`` module, the reader looks at every field as it reads it:
it refuses a field or a record over its size limit, or a record with more
fields than the caller allows, before it holds any more of it, and it
changes no process-wide setting.  Errors name the line the record began on.
"""
from __future__ import annotations

import re
import sys

from ..errors import TooLargeError, ValidationError

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import IO, Iterable, List, Optional

__all__ = ["CsvReader", "FieldCountError", "FieldSizeError", "cell", "needs_quotes",
           "record_text"]

#: Characters read from the text stream at a time.
CHUNK_CHARS = 64 * 1024

#: ``needs_quotes(text)`` is not None when ``text`` must be quoted.
needs_quotes = re.compile('[,"\r\n]').search
_UNQUOTED_END = re.compile("[,\r\n]")
_BLANK = re.compile("[\r\n]+")
_EMPTY_SIZE = sys.getsizeof("")
# The size of a string of 2- or 4-byte characters beyond its characters' bytes.
_HEADERS = {2: sys.getsizeof("\u0100") - 2, 4: sys.getsizeof("\U0001F600") - 4}
# What a string's header takes beyond an empty string's, at most (a 4-byte string's).
_HEADER_BYTES = _HEADERS[4] - _EMPTY_SIZE

# Reader states between two chunks of text.
_FIELD, _UNQUOTED, _QUOTED, _QUOTE = range(4)


def cell(value: Optional[str]) -> str:
    """One field as CSV text: ``None`` is an empty field, ``""`` is ``""``, and text
    with a comma, a quote, CR or LF is quoted."""
    if value is None:
        return ""
    if not value:
        return '""'
    if needs_quotes(value) is None:
        return value
    return '"' + value.replace('"', '""') + '"'


def record_text(fields: Iterable[Optional[str]]) -> str:
    """One record as CSV text, CRLF included (each field as ``cell`` writes it)."""
    return ",".join([cell(value) for value in fields]) + "\r\n"


def _kind(text: str) -> int:
    """The bytes a character of ``text`` takes in memory: 1, 2 or 4, as CPython keeps a
    string (as many as its widest character needs)."""
    size, count = sys.getsizeof(text), len(text)
    if size >= _HEADERS[4] + 4 * count:
        return 4
    if size >= _HEADERS[2] + 2 * count:
        return 2
    return 1


def _breaks(text: str) -> int:
    """How many line breaks (CR, LF or CRLF) ``text`` holds."""
    return text.count("\n") + text.count("\r") - text.count("\r\n")


class FieldCountError(ValueError):
    """A record has more fields than ``read`` allowed (``line``: where it began)."""

    def __init__(self, line: int, limit: int) -> None:
        super().__init__("line %d: more than %d fields" % (line, limit))
        self.line = line
        self.limit = limit


class FieldSizeError(TooLargeError):
    """A field or a record is over the reader's size limit."""


class CsvReader:
    """Records from a text stream, one ``read`` at a time.

    ``name`` starts every error message (the file's name).  A field over
    ``max_field_bytes`` (UTF-8) or a record whose fields take more than
    ``max_record_bytes`` as Python strings (1, 2 or 4 bytes a character,
    whatever the widest character of a string needs) is a ``FieldSizeError``
    (a ``TooLargeError``); a malformed record (a quote not closed, text after
    a closing quote) a ``ValidationError``.
    """

    def __init__(self, text: IO[str], name: str, *, max_field_bytes: int,
                 max_record_bytes: int) -> None:
        self._text = text
        self.name = name
        self.max_field_bytes = max_field_bytes
        self.max_record_bytes = max_record_bytes
        # A field this many characters or fewer cannot be over max_field_bytes
        # (UTF-8 needs at most 4 bytes a character): no need to encode it.
        self._safe_chars = max_field_bytes // 4
        self._buf = ""
        self._pos = 0
        self._eof = False
        self._skip_lf = False  # the last record ended with CR: a LF next belongs to it
        self._no_end = 0  # the buffer holds no CR or LF before this index
        self._next_line = 1
        #: The line the last record read began on.
        self.line = 0

    # -- input -------------------------------------------------------------

    def _more(self) -> bool:
        """Drop what was read, append the next chunk; False at the end of the text."""
        if self._eof:
            return False
        chunk = self._text.read(CHUNK_CHARS)
        if not chunk:
            self._eof = True
            return False
        self._no_end = max(0, self._no_end - self._pos)
        self._buf = self._buf[self._pos:] + chunk if self._pos < len(self._buf) else chunk
        self._pos = 0
        return True

    # -- records -----------------------------------------------------------

    def read(self, max_fields: int) -> Optional[List[Optional[str]]]:
        """The next record, or None at the end; ``FieldCountError`` past ``max_fields``."""
        return self._next(max_fields, True)

    def skip(self, max_fields: int) -> Optional[int]:
        """Check the next record as ``read`` does, without holding its values; its
        number of fields, or None at the end."""
        record = self._next(max_fields, False)
        return None if record is None else len(record)

    def _next(self, max_fields: int, keep: bool) -> Optional[List[Optional[str]]]:
        while True:
            buf, pos = self._buf, self._pos
            if pos >= len(buf):
                if not self._more():
                    return None
                continue
            if self._skip_lf:
                self._skip_lf = False
                if buf[pos] == "\n":
                    self._pos = pos + 1
                    continue
            if buf[pos] in "\r\n":
                # Blank lines are no record: a run of them is skipped in one step.
                end = _BLANK.match(buf, pos).end()  # type: ignore[union-attr]
                self._next_line += buf.count("\n", pos, end) + buf.count("\r", pos, end) \
                    - buf.count("\r\n", pos, end)
                self._pos = end
                self._skip_lf = buf[end - 1] == "\r"
                continue
            start = max(pos, self._no_end)
            end = buf.find("\n", start)
            if end < 0:
                end = buf.find("\r", start)  # a file whose lines end with CR alone
            if end < 0:
                self._no_end = len(buf)
                if len(buf) - pos <= CHUNK_CHARS and self._more():
                    continue  # no whole line in the buffer yet: read on
                record = self._record(max_fields, keep)
                if record is not None:
                    return record
                continue
            core = buf[pos:end]
            if core[-1:] == "\r":
                core = core[:-1]  # CRLF
            if "\r" in core:  # a bare CR ends the line before the LF
                cut = core.index("\r")
                core = core[:cut]
                end = pos + cut
            if '"' in core:
                record = self._record(max_fields, keep)  # quoted fields: one by one
                if record is not None:
                    return record
                continue
            # The common case: a whole line without quotes.
            if buf[end] == "\r":
                self._skip_lf = True  # a LF next (maybe in the next chunk) belongs to it
            self._pos = end + 1
            self.line = self._next_line
            self._next_line += 1
            fields = core.split(",")
            if len(fields) > max_fields:
                raise FieldCountError(self.line, max_fields)
            room = self.max_record_bytes - _HEADER_BYTES * len(fields)
            if 4 * len(core) > room and _kind(core) * len(core) > room:
                self._record_too_large(self.line)
            if len(core) > self._safe_chars:
                for field in fields:
                    self._check_size(field, self.line)
            return [field or None for field in fields]

    def _record(self, max_fields: int, keep: bool) -> Optional[List[Optional[str]]]:
        """Read one record field by field, from the buffer and as many chunks as it takes;
        None for a blank line.  Unless ``keep``, its fields are checked and counted but
        their text is not kept (each is None)."""
        line = self._next_line
        self.line = line
        fields: List[Optional[str]] = []
        pieces: List[str] = []
        # The current field so far: its characters, its UTF-8 bytes, and the bytes a
        # character will take once its pieces are joined (its widest character's).
        size = utf8 = 0
        kind = 1
        done = 0  # bytes the record's finished fields take
        breaks = 0  # line breaks inside quoted fields
        cr_end = False  # the quoted text so far ends with CR (a LF next is its CRLF)
        state = _FIELD
        while True:
            buf, pos, n = self._buf, self._pos, len(self._buf)
            if pos >= n:
                if self._more():
                    continue
                if state == _QUOTED:
                    raise ValidationError("%s line %d: a quoted field is not closed (the file "
                                          "ends inside it)" % (self.name, line))
                if state == _FIELD and not fields:
                    return None  # nothing left after all
                ends, stop = "", n  # the end of the text ends the record
            elif state == _FIELD:
                if buf[pos] == '"':
                    state = _QUOTED
                    self._pos = pos + 1
                else:
                    state = _UNQUOTED
                continue
            elif state == _QUOTE:  # a quote in a quoted field, doubled or closing
                ends = buf[pos]
                if ends == '"':
                    if keep:
                        pieces.append('"')
                    size += 1
                    utf8 += 1
                    cr_end = False
                    self._pos = pos + 1
                    state = _QUOTED
                    continue
                if ends not in ",\r\n":
                    raise ValidationError(
                        "%s line %d: %r after a closing quote; a quote inside a quoted field "
                        "is written as two quotes" % (self.name, line + breaks, ends))
                stop = pos
            else:  # _UNQUOTED or _QUOTED: take the text up to the field's next mark
                if state == _UNQUOTED:
                    found = _UNQUOTED_END.search(buf, pos)
                    stop = n if found is None else found.start()
                else:
                    stop = buf.find('"', pos)
                    if stop < 0:
                        stop = n
                if stop > pos:
                    piece = buf[pos:stop]
                    if keep:
                        pieces.append(piece)
                    size += stop - pos
                    if piece.isascii():
                        utf8 += stop - pos
                    else:
                        utf8 += len(piece.encode("utf-8", "surrogatepass"))
                        kind = max(kind, _kind(piece))
                    if utf8 > self.max_field_bytes:
                        self._field_too_large(line)
                    if done + kind * size > self.max_record_bytes:
                        self._record_too_large(line)
                    if state == _QUOTED:
                        breaks += _breaks(piece) - (cr_end and piece[0] == "\n")
                        cr_end = piece[-1] == "\r"
                if state == _QUOTED:
                    self._pos = stop if stop == n else stop + 1
                    if stop < n:
                        state = _QUOTE
                    continue
                self._pos = stop
                if found is None:
                    continue
                ends = buf[stop]
            # A field ends at ``stop`` (a comma, a line break or the end of the text).
            if not size:
                fields.append("" if state == _QUOTE and keep else None)
            else:
                fields.append(("".join(pieces) if len(pieces) > 1 else pieces[0])
                              if keep else None)
                done += kind * size + _HEADER_BYTES
            if len(fields) > max_fields:
                raise FieldCountError(line, max_fields)
            self._pos = stop + 1
            if ends == ",":
                pieces = []
                size = utf8 = 0
                kind = 1
                cr_end = False
                state = _FIELD
                continue
            self._skip_lf = ends == "\r"
            self._next_line = line + breaks + 1
            if len(fields) == 1 and not size and state != _QUOTE:
                return None  # a blank line (a CR line end): no record
            return fields

    # -- limits ------------------------------------------------------------

    def _check_size(self, field: str, line: int) -> None:
        if len(field) > self.max_field_bytes or len(field.encode("utf-8", "surrogatepass")) \
                > self.max_field_bytes:
            self._field_too_large(line)

    def _field_too_large(self, line: int) -> None:
        raise FieldSizeError("%s line %d: a field is longer than %d bytes (max_field_bytes); "
                            "nothing was imported" % (self.name, line, self.max_field_bytes))

    def _record_too_large(self, line: int) -> None:
        raise FieldSizeError("%s line %d: the record's fields take more than %d bytes as text "
                            "(1, 2 or 4 bytes a character, as many as the widest character "
                            "of a field needs); nothing was imported"
                            % (self.name, line, self.max_record_bytes))
