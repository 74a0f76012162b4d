"""A streaming ``multipart/form-data`` reader: the file part goes straight to disk.

Bottle parses a multipart body by first spooling the whole request into a
temporary file and then copying each part again, in the system temporary
folder (often a RAM disk on a controller).  A database upload is written once,
where the caller says (beside the database, so the restore can rename it into
place), a chunk at a time; the small text fields are kept in memory.
"""
from __future__ import annotations

import re

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import IO, Dict, Optional

__all__ = ["UploadError", "UploadTooLarge", "read_multipart"]

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
            raise UploadTooLarge(f"upload larger than {self.limit} bytes")
        return data


def read_multipart(stream: IO[bytes], content_type: str, content_length: Optional[int],
                   file_field: str, out: IO[bytes], limit: int) -> Dict[str, str]:
    """Copy the part named ``file_field`` into ``out``; return the other fields as text.

    Raises ``UploadTooLarge`` past ``limit`` bytes of body and ``UploadError``
    for a malformed body or a missing file part.
    """
    delimiter = b"\r\n--" + _boundary(content_type)
    reader = _Reader(stream, content_length, limit)
    # A leading CRLF makes the first boundary look like every other one.
    buffer = b"\r\n" + reader.read()
    fields: Dict[str, str] = {}
    found_file = False
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
        params = _disposition(head)
        name = params.get("name")
        is_file = name == file_field and not found_file
        kept = bytearray()
        while True:
            at = buffer.find(delimiter)
            if at >= 0:
                part, buffer = buffer[:at], buffer[at + len(delimiter):]
            else:
                # Keep a tail that may be the start of the delimiter.
                keep = len(delimiter) - 1
                part, buffer = buffer[:-keep] if len(buffer) > keep else b"", \
                    buffer[-keep:] if len(buffer) > keep else buffer
            if is_file:
                out.write(part)
            elif name is not None:
                kept += part
                if len(kept) > _MAX_FIELD:
                    raise UploadError(f"form field {name!r} is too long")
            if at >= 0:
                break
            if not fill():
                raise UploadError("the multipart body ends before its closing boundary")
        if is_file:
            found_file = True
        elif name is not None:
            fields[name] = kept.decode("utf-8", "replace")
    if not found_file:
        raise UploadError(f"no file: send it as the multipart field {file_field!r}")
    return fields
