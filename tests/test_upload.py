"""Tests of the streaming multipart reader behind /db/import and /db/restore."""
import io
import os

import pytest

from peestore import upload
from peestore.upload import UploadError, UploadTooLarge, read_multipart


def _body(boundary, parts, preamble=b""):
    out = preamble
    for name, data, filename in parts:
        disposition = f'form-data; name="{name}"'
        if filename:
            disposition += f'; filename="{filename}"'
        out += (b"--" + boundary + b"\r\nContent-Disposition: " + disposition.encode()
                + b"\r\nContent-Type: application/octet-stream\r\n\r\n" + data + b"\r\n")
    return out + b"--" + boundary + b"--\r\n"


@pytest.mark.parametrize("chunk", [1, 7, 64, 65536])
def test_file_and_fields_across_chunk_edges(monkeypatch, chunk):
    """Whatever the read size, the file comes out byte for byte and fields as text."""
    monkeypatch.setattr(upload, "_CHUNK", chunk)
    boundary = b"----b0und"
    data = os.urandom(3000) + b"\r\n------b0un" + b"\r\n--" + os.urandom(100)
    body = _body(boundary, [("mode", b"replace", None), ("file", data, "x.zip"),
                            ("dry_run", b"true", None)], preamble=b"ignored preamble\r\n")
    out = io.BytesIO()
    fields = read_multipart(io.BytesIO(body), "multipart/form-data; boundary=" +
                            boundary.decode(), len(body), "file", out, 1 << 20)
    assert out.getvalue() == data
    assert fields == {"mode": "replace", "dry_run": "true"}


def test_quoted_boundary_and_no_length():
    """A quoted boundary works, and so does a body without Content-Length."""
    body = _body(b"a b", [("file", b"hello", "f")])
    out = io.BytesIO()
    read_multipart(io.BytesIO(body), 'multipart/form-data; boundary="a b"', None, "file",
                   out, 1000)
    assert out.getvalue() == b"hello"


def test_limits_and_malformed_bodies():
    """Too large, no file part, not multipart, cut short: each its own error."""
    ct = "multipart/form-data; boundary=XX"
    big = _body(b"XX", [("file", b"x" * 5000, "f")])
    with pytest.raises(UploadTooLarge):
        read_multipart(io.BytesIO(big), ct, None, "file", io.BytesIO(), 1000)
    with pytest.raises(UploadError, match="no file"):
        body = _body(b"XX", [("other", b"1", None)])
        read_multipart(io.BytesIO(body), ct, len(body), "file", io.BytesIO(), 1000)
    with pytest.raises(UploadError, match="multipart/form-data"):
        read_multipart(io.BytesIO(b""), "application/json", 0, "file", io.BytesIO(), 1000)
    with pytest.raises(UploadError, match="ends before"):
        body = _body(b"XX", [("file", b"abc", "f")])[:-8]
        read_multipart(io.BytesIO(body), ct, len(body), "file", io.BytesIO(), 1000)
