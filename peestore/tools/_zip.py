"""Opening an uploaded zip without letting it take the device's memory or time.

``open_zip`` reads the end-of-central-directory record itself, the way
``zipfile`` will find it, and refuses a directory over ``MAX_DIRECTORY_BYTES``
or ``MAX_ENTRIES`` before ``zipfile.ZipFile`` reads it whole (``zipfile``
reads the directory in one piece and keeps an object per entry, whatever the
file claims).
``open_member`` gives a member's bytes through a reader that counts what
comes out of the decompressor and refuses, as it reads, a member that
inflates past ``max_bytes`` or to more than ``MAX_RATIO`` times its
compressed size (its first ``FREE_BYTES`` are always allowed, so small
repetitive files pass).  Only stored and deflated members are read: they
are what ``export_csv`` writes, and deflate inflates in bounded steps.
"""
from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib

from ..errors import TooLargeError, ValidationError

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import IO, Tuple, Union

__all__ = ["open_zip", "open_member", "MAX_ENTRIES", "MAX_DIRECTORY_BYTES", "MAX_RATIO",
           "FREE_BYTES"]

#: Files a zip may hold (an export holds one per table).
MAX_ENTRIES = 4096
#: Bytes of the zip's central directory (the list of its files).
MAX_DIRECTORY_BYTES = 2 << 20
#: How many times its compressed size a member may inflate to ...
MAX_RATIO = 100
#: ... once past its first this many bytes.
FREE_BYTES = 1 << 20

# The fixed-size records of the zip format (APPNOTE.TXT 4.3.12-4.3.16).
_EOCD = struct.Struct("<4s4H2LH")
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_READ_CHUNK = 64 * 1024


def _not_a_zip(why: str) -> ValidationError:
    return ValidationError("not a zip file (%s); upload a zip made by export" % why)


def _directory(fp: IO[bytes]) -> Tuple[int, int, int]:
    """(entries, size, start) of the central directory, found as ``zipfile`` finds it."""
    fp.seek(0, os.SEEK_END)
    file_size = fp.tell()
    if file_size < _EOCD.size:
        raise _not_a_zip("too short")
    fp.seek(file_size - _EOCD.size)
    record = fp.read(_EOCD.size)
    where = file_size - _EOCD.size
    if not (record[:4] == b"PK\x05\x06" and record[-2:] == b"\x00\x00"):
        # A zip with a comment (up to 64 KiB): the last signature in the tail.
        tail_start = max(file_size - (1 << 16) - _EOCD.size, 0)
        fp.seek(tail_start)
        tail = fp.read()
        found = tail.rfind(b"PK\x05\x06")
        if found < 0 or len(tail) - found < _EOCD.size:
            raise _not_a_zip("no end of central directory record")
        record = tail[found:found + _EOCD.size]
        where = tail_start + found
    (_, disk, _, _, entries, size, offset, _) = _EOCD.unpack(record)
    concat = where - size - offset
    if where >= _EOCD64_LOCATOR.size:
        fp.seek(where - _EOCD64_LOCATOR.size)
        locator = fp.read(_EOCD64_LOCATOR.size)
        if locator[:4] == b"PK\x06\x07":
            # zipfile (depending on its version) reads the zip64 record right
            # before the locator or where the locator says: they must agree.
            _, _, record_at, _ = _EOCD64_LOCATOR.unpack(locator)
            at = where - _EOCD64_LOCATOR.size - _EOCD64.size
            fp.seek(max(at, 0))
            data = fp.read(_EOCD64.size)
            if at < 0 or record_at != at or len(data) != _EOCD64.size \
                    or data[:4] != b"PK\x06\x06":
                raise _not_a_zip("a zip64 end of central directory record out of place")
            fields = _EOCD64.unpack(data)
            entries, size, offset = fields[7], fields[8], fields[9]
            concat = at - size - offset
    if disk != 0:
        raise _not_a_zip("a zip split over several disks")
    if entries > MAX_ENTRIES:
        raise TooLargeError("the zip lists %d files, more than the %d an import reads"
                            % (entries, MAX_ENTRIES))
    if size > MAX_DIRECTORY_BYTES:
        raise TooLargeError("the zip's list of files is %d bytes, more than the %d an import "
                            "reads" % (size, MAX_DIRECTORY_BYTES))
    start = offset + concat
    if start < 0 or start + size > file_size:
        raise _not_a_zip("its central directory lies outside the file")
    return entries, size, start


def _count_entries(fp: IO[bytes], size: int, start: int) -> int:
    """How many file headers the central directory really holds (``zipfile`` reads them
    all, whatever the end record says)."""
    fp.seek(start)
    data = fp.read(size)
    count = 0
    pos = 0
    while pos < len(data):
        if len(data) - pos < _CENTRAL.size or data[pos:pos + 4] != b"PK\x01\x02":
            raise _not_a_zip("a damaged central directory")
        fields = _CENTRAL.unpack_from(data, pos)
        pos += _CENTRAL.size + fields[12] + fields[13] + fields[14]
        count += 1
        if count > MAX_ENTRIES:
            raise TooLargeError("the zip lists more than %d files, the most an import "
                                "reads" % MAX_ENTRIES)
    return count


def open_zip(src: Union[str, os.PathLike, IO[bytes]]) -> zipfile.ZipFile:
    """``zipfile.ZipFile(src)`` (a path or a seekable binary file) once its directory
    is known to be small enough."""
    own = not hasattr(src, "read")
    try:
        fp = open(src, "rb") if own else src  # type: ignore[arg-type]
    except OSError as exc:
        raise ValidationError("cannot read the zip: %s" % exc) from None
    try:
        if not own and not fp.seekable():
            raise ValidationError("the zip must be a file that can seek (a path or an "
                                  "open file)")
        _, size, start = _directory(fp)
        _count_entries(fp, size, start)
        if not own:
            fp.seek(0)
            return zipfile.ZipFile(fp)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, struct.error,
            OSError, EOFError) as exc:
        raise _not_a_zip(str(exc) or type(exc).__name__) from None
    finally:
        if own:
            fp.close()
    try:
        # Given the path, ZipFile opens the file itself and closes it with the archive.
        return zipfile.ZipFile(src)  # type: ignore[arg-type]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError,
            EOFError) as exc:
        raise _not_a_zip(str(exc) or type(exc).__name__) from None


class _Bounded(io.RawIOBase):
    """A zip member's bytes, refused once they inflate past the limits."""

    def __init__(self, member: IO[bytes], info: zipfile.ZipInfo, max_bytes: int) -> None:
        self._member = member
        self._name = info.filename
        self._limit = max_bytes
        self._ratio_limit = max(FREE_BYTES, MAX_RATIO * info.compress_size)
        self._read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._member.read(len(buffer))
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise ValidationError("%s: damaged in the zip (%s); nothing was imported"
                                  % (self._name, exc)) from None
        self._read += len(data)
        _check(self._name, self._read, self._limit, self._ratio_limit)
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self._member.close()
        super().close()


def _check(name: str, size: int, limit: int, ratio_limit: int) -> None:
    if size > limit:
        raise TooLargeError("%s inflates to more than %d bytes (max_upload_bytes); nothing "
                            "was imported" % (name, limit))
    if size > ratio_limit:
        raise TooLargeError("%s inflates to more than %d times its compressed size (a zip "
                            "bomb?); nothing was imported" % (name, MAX_RATIO))


def open_member(archive: zipfile.ZipFile, name: str, max_bytes: int) -> IO[bytes]:
    """The bytes of member ``name``, read in chunks and refused past the limits."""
    info = archive.getinfo(name)
    if info.flag_bits & 0x1:
        raise ValidationError("%s is encrypted; an import reads plain zips" % name)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ValidationError("%s is compressed with method %d; an import reads stored or "
                              "deflated files (as export writes them)"
                              % (name, info.compress_type))
    # What the directory declares is checked first: most bombs say what they are.
    _check(name, info.file_size, max_bytes, max(FREE_BYTES, MAX_RATIO * info.compress_size))
    try:
        member = archive.open(info)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError,
            zlib.error) as exc:
        raise ValidationError("%s: damaged in the zip (%s); nothing was imported"
                              % (name, exc)) from None
    return io.BufferedReader(_Bounded(member, info, max_bytes), _READ_CHUNK)
