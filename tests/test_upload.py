"""Tests of the streaming multipart reader behind /db/import and /db/restore."""
import io
import os

import pytest

from peestore.rest import _upload as upload
from peestore.rest._upload import UploadError, UploadTooLarge, read_multipart


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
                            boundary.decode(), len(body), "file", out, 1 << 20,
                            ("mode", "dry_run"))
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
    with pytest.raises(UploadError, match="send the file as the multipart field 'file'"):
        body = _body(b"XX", [("other", b"1", None)])
        read_multipart(io.BytesIO(body), ct, len(body), "file", io.BytesIO(), 1000)
    with pytest.raises(UploadError, match="multipart/form-data"):
        read_multipart(io.BytesIO(b""), "application/json", 0, "file", io.BytesIO(), 1000)
    with pytest.raises(UploadError, match="ends before"):
        body = _body(b"XX", [("file", b"abc", "f")])[:-8]
        read_multipart(io.BytesIO(body), ct, len(body), "file", io.BytesIO(), 1000)


CT = "multipart/form-data; boundary=XX"


def _read(parts, fields=("mode",), limit=1 << 20):
    body = _body(b"XX", parts)
    out = io.BytesIO()
    return read_multipart(io.BytesIO(body), CT, len(body), "file", out, limit, fields), out


@pytest.mark.parametrize("parts", [
    [("other", b"x" * 10000, None)],             # long, and not a field the route takes
    [("mode", b"x" * 10000, None)],              # long, and one it takes
    [("mode", b"append", None), ("other", b"1", None)],
    [],
])
def test_a_body_without_the_file_asks_for_it_whatever_else_it_holds(parts):
    """No `file` part: the answer says how to send the file, not what else is wrong."""
    with pytest.raises(UploadError) as caught:
        _read(parts)
    assert str(caught.value) == "no file: send the file as the multipart field 'file'"


def test_a_field_the_route_does_not_take_is_named_with_those_it_takes():
    """An unknown field is refused, named, with the list of the fields the route takes."""
    with pytest.raises(UploadError) as caught:
        _read([("file", b"data", "f"), ("other", b"x" * 10000, None)],
              fields=("integrity_check", "dry_run"))
    assert str(caught.value) == ("form field 'other' is not one this route takes "
                                 "(file, integrity_check, dry_run)")


def test_length_is_checked_only_for_fields_the_route_takes():
    """A field the route takes may be at most 4 KiB."""
    with pytest.raises(UploadError, match="form field 'mode' is over 4096 bytes"):
        _read([("file", b"data", "f"), ("mode", b"x" * 5000, None)])
    fields, out = _read([("file", b"data", "f"), ("mode", b"x" * 4096, None)])
    assert fields == {"mode": "x" * 4096} and out.getvalue() == b"data"


def test_two_files_are_refused():
    """A second `file` part is not silently dropped."""
    with pytest.raises(UploadError, match="send one file"):
        _read([("file", b"a", "f"), ("file", b"b", "g")])


def test_the_limit_is_the_file_and_the_form_gets_an_allowance():
    """A file of exactly the limit passes with its form around it; one byte more does not."""
    fields, out = _read([("mode", b"replace", None), ("file", b"x" * 1000, "f")], limit=1000)
    assert len(out.getvalue()) == 1000 and fields == {"mode": "replace"}
    with pytest.raises(UploadTooLarge, match="file larger than 1000 bytes"):
        _read([("file", b"x" * 1001, "f")], limit=1000)
    assert upload.body_limit(1000) == 1000 + 64 * 1024
    assert upload.body_limit(256 << 20) == (256 << 20) + (1 << 20)


def test_the_body_is_bounded_even_when_the_file_is_small():
    """Unknown fields cannot make the body unbounded: past body_limit it is a 413."""
    parts = [("file", b"x", "f")] + [("junk%d" % i, b"y" * 1000, None) for i in range(100)]
    with pytest.raises(UploadTooLarge, match="request body larger than"):
        _read(parts, limit=1000)


def test_a_field_sent_twice_is_refused_by_name():
    """dry_run=true then dry_run=false: not a guess at which one wins."""
    body = _body(b"XX", [("dry_run", b"true", None), ("dry_run", b"false", None),
                         ("file", b"abc", "f")])
    with pytest.raises(UploadError, match="form field 'dry_run' is sent more than once"):
        read_multipart(io.BytesIO(body), "multipart/form-data; boundary=XX", len(body),
                       "file", io.BytesIO(), 1000, ("dry_run", "integrity_check"))
