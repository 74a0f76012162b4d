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
# What a string's header takes beyond an empty string's, at most (a 4-byte string's).
_HEADER_BYTES = sys.getsizeof("\U0001F600") - 4 - _EMPTY_SIZE

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


def _text_bytes(text: str) -> int:
    """The bytes ``text``'s characters take in memory (1, 2 or 4 each, as CPython keeps
    a string: as wide as its widest character needs), give or take its header."""
    return sys.getsizeof(text) - _EMPTY_SIZE


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
        # Nor can a line this short be over either limit.
        self._safe_line = max(0, min(max_field_bytes, max_record_bytes - 2 * _EMPTY_SIZE)) // 4
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
                record = self._record(max_fields)
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
                record = self._record(max_fields)  # quoted fields: one by one
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
            if len(core) > self._safe_line:
                if _text_bytes(core) > self.max_record_bytes:
                    self._record_too_large(self.line)
                for field in fields:
                    self._check_size(field, self.line)
            return [field or None for field in fields]

    def _record(self, max_fields: int) -> Optional[List[Optional[str]]]:
        """Read one record field by field, from the buffer and as many chunks as it takes;
        None for a blank line."""
        line = self._next_line
        self.line = line
        fields: List[Optional[str]] = []
        pieces: List[str] = []
        size = 0  # characters of the current field so far
        # What the finished fields take: a lower bound of their bytes (their characters)
        # until they could be near the limit, their bytes from then on.
        done = 0
        exact = False
        limit = self.max_record_bytes
        breaks = 0  # line breaks inside quoted fields
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
            elif state == _UNQUOTED:
                found = _UNQUOTED_END.search(buf, pos)
                stop = n if found is None else found.start()
                if stop > pos:
                    pieces.append(buf[pos:stop])
                    size += stop - pos
                    self._check_growth(size, done + size, line)
                self._pos = stop
                if found is None:
                    continue
                ends = buf[stop]
            elif state == _QUOTED:
                stop = buf.find('"', pos)
                if stop < 0:
                    stop = n
                if stop > pos:
                    pieces.append(buf[pos:stop])
                    size += stop - pos
                    self._check_growth(size, done + size, line)
                self._pos = stop if stop == n else stop + 1
                if stop < n:
                    state = _QUOTE
                continue
            else:  # _QUOTE: a quote in a quoted field, doubled or closing
                ends = buf[pos]
                if ends == '"':
                    pieces.append('"')
                    size += 1
                    self._pos = pos + 1
                    state = _QUOTED
                    continue
                if ends not in ",\r\n":
                    raise ValidationError(
                        "%s line %d: %r after a closing quote; a quote inside a quoted field "
                        "is written as two quotes"
                        % (self.name, line + breaks + _breaks("".join(pieces)), ends))
                stop = pos
            # A field ends at ``stop`` (a comma, a line break or the end of the text).
            value = self._field(pieces, state == _QUOTE, line)
            if state == _QUOTE and value:
                breaks += _breaks(value)
            fields.append(value)
            if value:
                # Joined, a field takes as many bytes a character as its widest one needs.
                if exact:
                    done += sys.getsizeof(value) - _EMPTY_SIZE
                else:
                    done += len(value)
                    if 4 * done + _HEADER_BYTES * len(fields) > limit:
                        exact = True
                        done = sum(sys.getsizeof(f) - _EMPTY_SIZE for f in fields if f)
                if done > limit:
                    self._record_too_large(line)
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
        # Characters are a lower bound of UTF-8 bytes, and of the bytes Python keeps a
        # string in: over the limit already.
        if size > self.max_field_bytes:
            self._field_too_large(line)
        if total > self.max_record_bytes:
            self._record_too_large(line)

    def _check_size(self, field: str, line: int) -> None:
        if len(field) > self.max_field_bytes or len(field.encode("utf-8", "surrogatepass")) \
                > self.max_field_bytes:
            self._field_too_large(line)

    def _field_too_large(self, line: int) -> None:
        raise FieldSizeError("%s line %d: a field is longer than %d bytes (max_field_bytes); "
                            "nothing was imported" % (self.name, line, self.max_field_bytes))

    def _record_too_large(self, line: int) -> None:
        raise FieldSizeError("%s line %d: the record is larger than %d bytes as text (a "
                            "character takes 1, 2 or 4 bytes, as wide as the widest of its "
                            "field); nothing was imported"
                            % (self.name, line, self.max_record_bytes))
