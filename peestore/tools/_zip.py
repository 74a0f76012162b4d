"""Opening an uploaded zip without letting it take the device's memory or time.

``open_zip`` reads the end-of-central-directory record itself, the way
``zipfile`` will find it, and refuses a directory over ``MAX_DIRECTORY_BYTES``
or ``MAX_ENTRIES`` before ``zipfile.ZipFile`` reads it whole (``zipfile``
reads the directory in one piece and keeps an object per entry, whatever the
file claims).
``open_member`` reads a member's bytes itself, from its local header on,
and inflates them with ``zlib``: it counts both the compressed bytes it
feeds the decompressor and what comes out, and refuses, as it reads, a
member that inflates past ``max_bytes`` or to more than ``MAX_RATIO`` times
the compressed bytes read so far (its first ``FREE_BYTES`` are always
allowed, so small repetitive files pass).  What the directory declares is
never trusted for that: a compressed size that could not fit between the
member's header and the directory is refused before any of it is read, and
the inflated size and CRC are checked at the end.  Only stored and
deflated members are read: they are what ``export_csv`` writes, and
deflate inflates in bounded steps.
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
    from typing import IO, List, Tuple, Union

__all__ = ["Archive", "open_zip", "open_member", "MAX_ENTRIES", "MAX_DIRECTORY_BYTES",
           "MAX_RATIO", "FREE_BYTES"]

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
_LOCAL = struct.Struct("<4s2B4HL2L2H")
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


class Archive:
    """An uploaded zip: ``zipfile`` reads its directory, ``open_member`` its members.

    ``data_end`` is where the central directory starts: every member's bytes
    lie before it.
    """

    def __init__(self, fp: IO[bytes], own: bool, data_end: int) -> None:
        self.fp = fp
        self.data_end = data_end
        self._own = own
        try:
            self._zip = zipfile.ZipFile(fp)
        except BaseException:
            self.close()
            raise

    def namelist(self) -> List[str]:
        return self._zip.namelist()

    def getinfo(self, name: str) -> zipfile.ZipInfo:
        return self._zip.getinfo(name)

    def close(self) -> None:
        zf = getattr(self, "_zip", None)
        if zf is not None:
            zf.close()
        if self._own:
            self.fp.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_zip(src: Union[str, os.PathLike, IO[bytes]]) -> Archive:
    """The zip ``src`` (a path or a seekable binary file), once its directory is known
    to be small enough."""
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
        fp.seek(0)
        return Archive(fp, own, start)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, struct.error,
            OSError, EOFError) as exc:
        if own:
            fp.close()
        raise _not_a_zip(str(exc) or type(exc).__name__) from None
    except BaseException:
        if own:
            fp.close()
        raise


class _Member(io.RawIOBase):
    """A member's bytes, read from the archive and inflated here, refused once they
    inflate past the limits."""

    def __init__(self, archive: Archive, info: zipfile.ZipInfo, start: int,
                 max_bytes: int) -> None:
        self._fp = archive.fp
        self._name = info.filename
        self._info = info
        self._pos = start  # the next compressed byte in the archive
        self._left = info.compress_size  # compressed bytes not read yet
        self._limit = max_bytes
        self._inflate = zlib.decompressobj(-15) \
            if info.compress_type == zipfile.ZIP_DEFLATED else None
        self._tail = b""  # compressed bytes read but not consumed yet
        self._consumed = 0  # compressed bytes the decompressor has used
        self._out = 0
        self._crc = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def _damaged(self, why: str) -> ValidationError:
        return ValidationError("%s: damaged in the zip (%s); nothing was imported"
                               % (self._name, why))

    def _raw(self, size: int) -> bytes:
        try:
            self._fp.seek(self._pos)
            data = self._fp.read(size)
        except OSError as exc:
            raise self._damaged(str(exc)) from None
        if len(data) < size:
            raise self._damaged("the file ends inside it")
        self._pos += size
        self._left -= size
        return data

    def readinto(self, buffer) -> int:
        size = len(buffer)
        while not self._done:
            if self._inflate is None:
                data = self._raw(min(size, self._left))
                self._consumed += len(data)
                ended = self._left == 0
            else:
                if not self._tail:
                    if not self._left:
                        raise self._damaged("its compressed data ends early")
                    self._tail = self._raw(min(_READ_CHUNK, self._left))
                fed = len(self._tail)
                try:
                    data = self._inflate.decompress(self._tail, size)
                except zlib.error as exc:
                    raise self._damaged(str(exc)) from None
                ended = self._inflate.eof
                self._tail = self._inflate.unconsumed_tail
                # After the end of the stream, what is left over was not part of it.
                self._consumed += fed - len(self._tail) - len(self._inflate.unused_data)
            self._out += len(data)
            self._crc = zlib.crc32(data, self._crc)
            if self._out > self._info.file_size:
                raise self._damaged("it inflates to more than the %d bytes its directory "
                                    "entry says" % self._info.file_size)
            _check(self._name, self._out, self._limit,
                   max(FREE_BYTES, MAX_RATIO * self._consumed))
            if ended:
                self._done = True
                if self._out != self._info.file_size or self._crc != self._info.CRC:
                    raise self._damaged("its size or CRC is not what its directory entry "
                                        "says")
            if data:
                buffer[:len(data)] = data
                return len(data)
        return 0


def _check(name: str, size: int, limit: int, ratio_limit: int) -> None:
    if size > limit:
        raise TooLargeError("%s inflates to more than %d bytes (max_upload_bytes); nothing "
                            "was imported" % (name, limit))
    if size > ratio_limit:
        raise TooLargeError("%s inflates to more than %d times its compressed size (a zip "
                            "bomb?); nothing was imported" % (name, MAX_RATIO))


def open_member(archive: Archive, name: str, max_bytes: int) -> IO[bytes]:
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
        archive.fp.seek(info.header_offset)
        header = archive.fp.read(_LOCAL.size)
    except OSError as exc:
        raise ValidationError("%s: damaged in the zip (%s); nothing was imported"
                              % (name, exc)) from None
    if len(header) < _LOCAL.size or header[:4] != b"PK\x03\x04":
        raise ValidationError("%s: damaged in the zip (no file header where the directory "
                              "says); nothing was imported" % name)
    fields = _LOCAL.unpack(header)
    start = info.header_offset + _LOCAL.size + fields[10] + fields[11]
    room = archive.data_end - start
    if info.compress_size > room:
        raise ValidationError("%s: damaged in the zip (its directory entry declares %d "
                              "compressed bytes, where only %d bytes lie between its header "
                              "and the directory); nothing was imported"
                              % (name, info.compress_size, max(room, 0)))
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise ValidationError("%s: damaged in the zip (stored, yet its directory entry "
                              "declares %d bytes compressed and %d inflated); nothing was "
                              "imported" % (name, info.compress_size, info.file_size))
    return io.BufferedReader(_Member(archive, info, start, max_bytes), _READ_CHUNK)
