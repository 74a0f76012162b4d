"""waitress' body limit set from the plugin, and waitress' own errors as JSON, on a real server."""
import json
import socket
import tempfile

import bottle
import peewee
import pytest

import peestore
from peestore.rest._server import background, make_server, request_body_limit

TIMEOUT = 10


class Gauge(peestore.BaseAuditedModel):
    name = peewee.CharField()

    class Meta:
        table_name = "sl_gauge"
        component = "gauges"


MODELS = [Gauge]
WAITRESS_DEFAULT = 1 << 30


def _app(**kwargs):
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=MODELS, **kwargs))
    return app


def _connect(url, sndbuf=None):
    host, port = url[len("http://"):].rsplit(":", 1)
    sock = socket.socket()
    if sndbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    sock.settimeout(TIMEOUT)
    sock.connect((host, int(port)))
    return sock


def _response(sock):
    """(status, headers, body) of the one answer on ``sock``, read until the server closes."""
    data = b""
    while True:
        try:
            part = sock.recv(65536)
        except ConnectionResetError:
            break
        if not part:
            break
        data += part
    sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def _frame(data):
    return b"%x\r\n" % len(data) + data + b"\r\n"


def _chunked_upload(file_bytes, chunk=64 * 1024):
    """A chunked multipart body carrying a file of ``file_bytes`` bytes, made as it is sent."""
    yield _frame(b'--XX\r\nContent-Disposition: form-data; name="file"; filename="b"\r\n\r\n')
    block = b"x" * chunk
    left = file_bytes
    while left > 0:
        yield _frame(block[:min(chunk, left)])
        left -= chunk
    yield _frame(b"\r\n--XX--\r\n") + b"0\r\n\r\n"


UPLOAD_HEAD = (b"POST /db/restore HTTP/1.1\r\nHost: 127.0.0.1\r\nX-User: t\r\n"
               b"Content-Type: multipart/form-data; boundary=XX\r\n")


def test_make_server_sets_the_body_limit_from_the_plugin():
    """The computed limit reaches waitress; an explicit option wins; no plugin, no change."""
    app = _app(max_upload_bytes=100_000, max_body_bytes=4096)
    plugin = app.plugins[-1]
    assert plugin.max_request_body_size == 100_000 + 64 * 1024 + 1
    assert request_body_limit(app) == plugin.max_request_body_size
    for kwargs, expected in [({}, plugin.max_request_body_size),
                             ({"max_request_body_size": 5000}, 5000)]:
        server = make_server(app, port=0, **kwargs)
        try:
            assert server.adj.max_request_body_size == expected
        finally:
            server.close()
    server = make_server(bottle.Bottle(), port=0)
    try:
        assert server.adj.max_request_body_size == WAITRESS_DEFAULT
    finally:
        server.close()


def test_the_limit_covers_the_biggest_legitimate_request():
    """A JSON body limit above the upload's wins; a mounted app's plugin is found too."""
    assert _app(max_upload_bytes=1000, max_body_bytes=1 << 20).plugins[-1] \
        .max_request_body_size == (1 << 20) + 1
    default = peestore.RestPlugin(models=MODELS)
    assert default.max_request_body_size == (256 << 20) + (1 << 20) + 1
    parent = bottle.Bottle()
    parent.mount("/machine/", _app(max_upload_bytes=5 << 20))
    assert request_body_limit(parent) == (5 << 20) + 64 * 1024 + 1


def test_a_chunked_upload_far_over_the_limit_is_refused_early(sqlite_db, db_path, tmp_path,
                                                                monkeypatch):
    """256 MB sent chunked against a 64 KiB limit: a JSON 413, and the server stops
    reading after a few hundred KB (kernel buffers included); nothing left on disk."""
    sqlite_db(MODELS)
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))  # where waitress buffers bodies
    app = _app(max_upload_bytes=64 * 1024, max_body_bytes=4096)
    with background(app, threads=2) as url:
        sock = _connect(url, sndbuf=32 * 1024)
        sock.sendall(UPLOAD_HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        sent = 0
        try:
            for piece in _chunked_upload(256 << 20):
                sock.sendall(piece)
                sent += len(piece)
        except OSError:
            pass  # the server closed the connection, as it should
        status, headers, body = _response(sock)
    assert status == 413
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"detail": "request body over the server's limit of %d bytes "
                                          "(max_request_body_size)" % (128 * 1024)}
    assert sent < 8 << 20
    assert list(spool.iterdir()) == []
    assert sorted(p.name for p in db_path.parent.iterdir() if p.name.startswith(".")) == []


def test_a_content_length_over_the_limit_is_refused_before_the_body(sqlite_db, db_path):
    """Only the headers are sent: the 413 comes back without waiting for the body."""
    sqlite_db(MODELS)
    app = _app(max_upload_bytes=64 * 1024, max_body_bytes=4096)
    with background(app, threads=2) as url:
        sock = _connect(url)
        sock.sendall(UPLOAD_HEAD + b"Content-Length: 300000000\r\n\r\n")
        status, headers, body = _response(sock)
    assert status == 413 and headers["content-type"] == "application/json"
    assert "max_request_body_size" in json.loads(body)["detail"]
    assert [p.name for p in db_path.parent.iterdir() if p.name.startswith(".upload")] == []


def test_a_file_of_exactly_the_limit_passes_the_server_in_small_chunks(sqlite_db):
    """The allowance covers the form and chunk framing: the route judges the file (a 422
    for a file that is no backup), not a 413."""
    sqlite_db(MODELS)
    app = _app(max_upload_bytes=64 * 1024, max_body_bytes=4096)
    with background(app, threads=2) as url:
        sock = _connect(url)
        sock.sendall(UPLOAD_HEAD + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        for piece in _chunked_upload(64 * 1024, chunk=2048):
            sock.sendall(piece)
        status, _, body = _response(sock)
    assert status == 422, body


@pytest.mark.parametrize("request_bytes, status, word", [
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400, "Content-Length"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431, "max_header"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "Transfer-Encoding"),
])
def test_waitress_own_errors_are_json(request_bytes, status, word):
    """What waitress refuses before the app sees it is answered like the API: JSON detail."""
    with background(bottle.Bottle(), threads=1, max_request_header_size=8192) as url:
        sock = _connect(url)
        sock.sendall(request_bytes)
        got, headers, body = _response(sock)
    assert got == status
    assert headers["content-type"] == "application/json"
    assert word in json.loads(body)["detail"]


def test_an_app_that_fails_gives_a_json_500_without_its_error():
    """A WSGI app that raises: waitress' 500 is JSON and says nothing of the exception."""
    def app(environ, start_response):
        raise RuntimeError("secret path /etc/x")

    with background(app, threads=1, expose_tracebacks=True) as url:
        sock = _connect(url)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, headers, body = _response(sock)
    assert status == 500 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"detail": "internal server error"}
