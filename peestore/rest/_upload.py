"""A streaming ``multipart/form-data`` reader: the file part goes straight to disk.

Bottle parses a multipart body by first spooling the whole request into a
temporary file and then copying each part again, in the system temporary
folder (often a RAM disk on a controller).  A database upload is written once,
where the caller says (beside the database, so the restore can rename it into
place), a chunk at a time; the small text fields are kept in memory.
"""
from __future__ import annotations

import re

from ._data_routes import body_limit  # re-exported: the limit lives with the routes

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import IO, Collection, Dict, List, Optional

__all__ = ["UploadError", "UploadTooLarge", "read_multipart", "body_limit"]

_CHUNK = 64 * 1024
_MAX_HEADER = 16 * 1024   # bytes of headers per part
_MAX_FIELD = 4 * 1024     # bytes of a text field


class UploadError(ValueError):
    """The request body is not the multipart form expected (a 400)."""


class UploadTooLarge(UploadError):
    """The body is larger than the limit (a 413)."""


def _boundary(content_type: str) -> bytes:
    if not content_type.lower().startswith("multipart/form-data"):
        raise UploadError("send the file as multipart/form-data")
    match = re.search(r'boundary=(?:"([^"]+)"|([^;\s]+))', content_type, re.I)
    if not match:
        raise UploadError("multipart/form-data without a boundary")
    boundary = (match.group(1) or match.group(2)).encode("latin-1")
    if len(boundary) > 200:
        raise UploadError("multipart boundary too long")
    return boundary


def _disposition(headers: bytes) -> Dict[str, str]:
    text = headers.decode("utf-8", "replace")
    out: Dict[str, str] = {}
    for line in text.split("\r\n"):
        if line.lower().startswith("content-disposition:"):
            for key, quoted, bare in re.findall(r';\s*([\w*-]+)=(?:"((?:[^"\\]|\\.)*)"|([^;]*))',
                                                line):
                out[key.lower()] = quoted if quoted or not bare else bare.strip()
    return out


class _Reader:
    """``wsgi.input`` read in chunks, at most ``length`` bytes, at most ``limit`` bytes."""

    def __init__(self, stream: IO[bytes], length: Optional[int], limit: int) -> None:
        self.stream = stream
        self.left = length
        self.limit = limit
        self.total = 0

    def read(self) -> bytes:
        size = _CHUNK if self.left is None else min(_CHUNK, self.left)
        if size <= 0:
            return b""
        data = self.stream.read(size)
        if self.left is not None:
            self.left -= len(data)
        self.total += len(data)
        if self.total > self.limit:
            raise UploadTooLarge(f"request body larger than {self.limit} bytes")
        return data


def _shown(name: str) -> str:
    return repr(name if len(name) <= 80 else name[:80] + "...")


def read_multipart(stream: IO[bytes], content_type: str, content_length: Optional[int],
                   file_field: str, out: IO[bytes], limit: int,
                   fields: Collection[str] = ()) -> Dict[str, str]:
    """Copy the part named ``file_field`` into ``out``; return the text fields named in
    ``fields``.

    Raises ``UploadTooLarge`` for a file over ``limit`` bytes or a body over
    ``body_limit(limit)``, and ``UploadError`` for a malformed body, a body
    without the file part, a field not in ``fields``, one sent twice or one
    over 4 KiB.  The whole body is read before a missing file or an unknown
    field is reported, so the answer names the file whatever else the form
    holds.
    """
    delimiter = b"\r\n--" + _boundary(content_type)
    reader = _Reader(stream, content_length, body_limit(limit))
    # A leading CRLF makes the first boundary look like every other one.
    buffer = b"\r\n" + reader.read()
    kept_fields: Dict[str, str] = {}
    file_parts = 0
    file_bytes = 0
    unknown: Optional[str] = None  # the first field not in ``fields``
    repeated: Optional[str] = None  # the first field sent twice
    seen = set()
    too_long: List[str] = []
    eof = False

    def fill() -> bool:
        nonlocal buffer, eof
        if eof:
            return False
        data = reader.read()
        if not data:
            eof = True
            return False
        buffer += data
        return True

    # Skip the preamble up to the first boundary.
    while True:
        at = buffer.find(delimiter)
        if at >= 0:
            buffer = buffer[at + len(delimiter):]
            break
        buffer = buffer[-len(delimiter):]
        if not fill():
            raise UploadError("no multipart boundary in the body")
    while True:
        while len(buffer) < 2 and fill():
            pass
        if buffer.startswith(b"--"):
            break  # the closing boundary
        while b"\r\n\r\n" not in buffer:
            if len(buffer) > _MAX_HEADER or not fill():
                raise UploadError("malformed multipart part headers")
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        name = _disposition(head).get("name")
        is_file = name == file_field and not file_parts
        if name == file_field:
            file_parts += 1
        # Only the fields the caller takes are kept; the others are read past
        # (the body limit bounds them) and reported at the end.
        keep = name is not None and name != file_field and name in fields
        if unknown is None and name is not None and name != file_field and not keep:
            unknown = name
        if keep:
            if name in seen and repeated is None:
                repeated = name
            seen.add(name)
        kept = bytearray()
        while True:
            at = buffer.find(delimiter)
            if at >= 0:
                part, buffer = buffer[:at], buffer[at + len(delimiter):]
            else:
                # Keep a tail that may be the start of the delimiter.
                tail = len(delimiter) - 1
                part, buffer = buffer[:-tail] if len(buffer) > tail else b"", \
                    buffer[-tail:] if len(buffer) > tail else buffer
            if is_file:
                file_bytes += len(part)
                if file_bytes > limit:
                    raise UploadTooLarge(f"file larger than {limit} bytes")
                out.write(part)
            elif keep and name not in too_long:
                kept += part
                if len(kept) > _MAX_FIELD:
                    too_long.append(name)
            if at >= 0:
                break
            if not fill():
                raise UploadError("the multipart body ends before its closing boundary")
        if keep and name not in too_long:
            kept_fields[name] = kept.decode("utf-8", "replace")
    if not file_parts:
        raise UploadError(f"no file: send the file as the multipart field {file_field!r}")
    if file_parts > 1:
        raise UploadError(f"send one file in the multipart field {file_field!r}, "
                          f"not {file_parts}")
    if unknown is not None:
        takes = ", ".join([file_field] + [f for f in fields if f != file_field])
        raise UploadError(f"form field {_shown(unknown)} is not one this route takes "
                          f"({takes})")
    if repeated is not None:
        # Which value wins is not a guess to make for ``dry_run=true`` and
        # ``dry_run=false``: the client says it once.
        raise UploadError(f"form field {_shown(repeated)} is sent more than once; "
                          "send it once")
    if too_long:
        raise UploadError(f"form field {_shown(too_long[0])} is over {_MAX_FIELD} bytes")
    return kept_fields
