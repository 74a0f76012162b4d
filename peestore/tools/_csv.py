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
    ``max_field_bytes`` (UTF-8) or a record over ``max_record_chars``
    characters is a ``FieldSizeError`` (a ``TooLargeError``); a malformed record (a quote not
    closed, text after a closing quote) a ``ValidationError``.
    """

    def __init__(self, text: IO[str], name: str, *, max_field_bytes: int,
                 max_record_chars: int) -> None:
        self._text = text
        self.name = name
        self.max_field_bytes = max_field_bytes
        self.max_record_chars = max_record_chars
        # A field this many characters or fewer cannot be over max_field_bytes
        # (UTF-8 needs at most 4 bytes a character): no need to encode it.
        self._safe_chars = max_field_bytes // 4
        self._buf = ""
        self._pos = 0
        self._eof = False
        self._skip_lf = False  # the last record ended with CR: a LF next belongs to it
        self._no_lf = 0  # the buffer holds no LF before this index
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
        self._no_lf = max(0, self._no_lf - self._pos)
        self._buf = self._buf[self._pos:] + chunk if self._pos < len(self._buf) else chunk
        self._pos = 0
        return True

    # -- records -----------------------------------------------------------

    def read(self, max_fields: int) -> Optional[List[Optional[str]]]:
        """The next record, or None at the end; ``FieldCountError`` past ``max_fields``."""
        while True:
            if self._skip_lf:
                if self._pos >= len(self._buf) and not self._more():
                    return None
                if self._buf[self._pos] == "\n":
                    self._pos += 1
                self._skip_lf = False
            buf, pos = self._buf, self._pos
            end = buf.find("\n", max(pos, self._no_lf))
            if end < 0:
                self._no_lf = len(buf)
                if len(buf) - pos <= CHUNK_CHARS and self._more():
                    continue  # no whole line in the buffer yet: read on
                if self._pos >= len(self._buf) and not self._more():
                    return None
                record = self._record(max_fields)
            else:
                line = buf[pos:end]
                core = line[:-1] if line.endswith("\r") else line
                if '"' in core or "\r" in core:
                    record = self._record(max_fields)
                else:
                    # The common case: a whole line without quotes.
                    self._pos = end + 1
                    self.line = self._next_line
                    self._next_line += 1
                    if not core:
                        continue  # a blank line is no record
                    fields = core.split(",")
                    if len(fields) > max_fields:
                        raise FieldCountError(self.line, max_fields)
                    if len(core) > self._safe_chars:
                        if len(core) > self.max_record_chars:
                            self._record_too_large(self.line)
                        for field in fields:
                            self._check_size(field, self.line)
                    return [field or None for field in fields]
            if record is not None:
                return record

    def _record(self, max_fields: int) -> Optional[List[Optional[str]]]:
        """Read one record field by field, from the buffer and as many chunks as it takes;
        None for a blank line."""
        line = self._next_line
        self.line = line
        fields: List[Optional[str]] = []
        pieces: List[str] = []
        size = 0  # characters of the current field so far
        total = 0  # characters of the record's fields so far
        breaks = 0  # line breaks inside quoted fields
        state = _FIELD
        while True:
            buf, pos, n = self._buf, self._pos, len(self._buf)
            if pos >= n:
                if self._more():
                    continue
                # The end of the text ends the record.
                if state == _QUOTED:
                    raise ValidationError("%s line %d: a quoted field is not closed (the file "
                                          "ends inside it)" % (self.name, line))
                if state == _FIELD and not fields:
                    return None  # nothing left after all
                fields.append(self._field(pieces, state == _QUOTE, line))
                if len(fields) > max_fields:
                    raise FieldCountError(line, max_fields)
                self._next_line = line + breaks + 1
                return fields
            if state == _FIELD:
                if buf[pos] == '"':
                    state = _QUOTED
                    self._pos = pos + 1
                else:
                    state = _UNQUOTED
                continue
            if state == _UNQUOTED:
                found = _UNQUOTED_END.search(buf, pos)
                stop = n if found is None else found.start()
                if stop > pos:
                    pieces.append(buf[pos:stop])
                    size += stop - pos
                    total += stop - pos
                    self._check_growth(size, total, line)
                self._pos = stop
                if found is None:
                    continue
                ends = buf[stop]
            elif state == _QUOTED:
                stop = buf.find('"', pos)
                if stop < 0:
                    stop = n
                if stop > pos:
                    piece = buf[pos:stop]
                    pieces.append(piece)
                    size += stop - pos
                    total += stop - pos
                    self._check_growth(size, total, line)
                self._pos = stop if stop == n else stop + 1
                if stop < n:
                    state = _QUOTE
                continue
            else:  # _QUOTE: a quote in a quoted field, doubled or closing
                ends = buf[pos]
                if ends == '"':
                    pieces.append('"')
                    size += 1
                    total += 1
                    self._pos = pos + 1
                    state = _QUOTED
                    continue
                if ends not in ",\r\n":
                    raise ValidationError(
                        "%s line %d: %r after a closing quote; a quote inside a quoted field "
                        "is written as two quotes"
                        % (self.name, line + breaks + _breaks("".join(pieces)), ends))
                stop = pos
            # A field ends at ``stop`` (a comma or a line break).
            value = self._field(pieces, state == _QUOTE, line)
            if state == _QUOTE and value:
                breaks += _breaks(value)
            fields.append(value)
            if len(fields) > max_fields:
                raise FieldCountError(line, max_fields)
            pieces = []
            size = 0
            self._pos = stop + 1
            if ends == ",":
                state = _FIELD
                continue
            self._skip_lf = ends == "\r"
            self._next_line = line + breaks + 1
            if len(fields) == 1 and fields[0] is None:
                return None  # a blank line (a CR line end): no record
            return fields

    def _field(self, pieces: List[str], quoted: bool, line: int) -> Optional[str]:
        value = pieces[0] if len(pieces) == 1 else "".join(pieces)
        if len(value) > self._safe_chars:
            self._check_size(value, line)
        if not value and not quoted:
            return None
        return value

    # -- limits ------------------------------------------------------------

    def _check_growth(self, size: int, total: int, line: int) -> None:
        # Characters are a lower bound of UTF-8 bytes: over the limit already.
        if size > self.max_field_bytes:
            self._field_too_large(line)
        if total > self.max_record_chars:
            self._record_too_large(line)

    def _check_size(self, field: str, line: int) -> None:
        if len(field) > self.max_field_bytes or len(field.encode("utf-8", "surrogatepass")) \
                > self.max_field_bytes:
            self._field_too_large(line)

    def _field_too_large(self, line: int) -> None:
        raise FieldSizeError("%s line %d: a field is longer than %d bytes (max_field_bytes); "
                            "nothing was imported" % (self.name, line, self.max_field_bytes))

    def _record_too_large(self, line: int) -> None:
        raise FieldSizeError("%s line %d: the record is longer than %d characters (4 x "
                            "max_field_bytes); nothing was imported"
                            % (self.name, line, self.max_record_chars))
