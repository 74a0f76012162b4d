"""Backup and export downloads and slow readers: at most 2 at once (the two kinds share the
slots), and a stalled one holds nothing the other requests need (a worker thread, the
restore gate, a database connection, a read transaction)."""
import http.client
import io
import json
import socket
import time
import zipfile

import bottle
import peewee
import pytest

import peestore
from peestore.rest._server import background

TIMEOUT = 10
DEADLINE = 30  # seconds a test waits for the server to notice a client has gone


class Press(peestore.BaseAuditedModel):
    name = peewee.CharField()

    class Meta:
        table_name = "bd_press"
        component = "presses"


MODELS = [Press]
USER = {"X-User": "tester"}


@pytest.fixture
def database(sqlite_db, tmp_path):
    """A database of about 8 MB (more than the socket buffers hold), and a valid backup
    of it; yields the backup's bytes."""
    db = sqlite_db(MODELS)
    Press.create(name="p1")
    db.execute_sql("CREATE TABLE bd_filler (data BLOB)")
    for _ in range(8):
        db.execute_sql("INSERT INTO bd_filler VALUES (randomblob(1048576))")
    db.close()
    peestore.backup(tmp_path / "good.sqlite")
    return (tmp_path / "good.sqlite").read_bytes()


def _app(**kwargs):
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=MODELS, **kwargs))
    return app


def _address(url):
    host, port = url[len("http://"):].rsplit(":", 1)
    return host, int(port)


def _stalled_download(url, path="/db/backup.sqlite"):
    """Ask for a backup (or ``path``) on a socket with a tiny receive buffer and read only
    the status line; returns (status, socket).  The caller never reads the rest."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(TIMEOUT)
    sock.connect(_address(url))
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path.encode())
    line = b""
    while not line.endswith(b"\r\n"):
        part = sock.recv(1)
        assert part, "the server closed the connection"
        line += part
    return int(line.split()[1]), sock


def _call(url, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(*_address(url), timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        return res.status, res.headers, res.read()
    finally:
        conn.close()


def _multipart(data):
    return (b'--XX\r\nContent-Disposition: form-data; name="file"; filename="b.sqlite"\r\n\r\n'
            + data + b"\r\n--XX--\r\n")


def _until(what, deadline=DEADLINE):
    """Call ``what`` until it returns a true value; fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while True:
        result = what()
        if result:
            return result
        assert time.monotonic() < end, "gave up waiting"
        time.sleep(0.05)


def _download_ok(url):
    status, headers, body = _call(url, "GET", "/db/backup.sqlite")
    if status == 503:
        return None
    assert status == 200
    assert body.startswith(b"SQLite format 3\x00") and len(body) == int(headers["Content-Length"])
    return body


def test_stalled_downloads_hold_no_worker_gate_or_connection(database, db_path):
    """Six clients that never read, on a server with 2 threads: 2 downloads run, 4 get
    a 503 with Retry-After; health, a create and a restore still answer; once the
    clients leave, both slots are free again."""
    # 2 threads, and a 1 MB high-water mark for the unsent bytes a worker may leave to
    # the main loop (waitress' default is 16 MB): a download sent by a worker thread
    # would keep both threads waiting on the stalled clients.
    with background(_app(), threads=2, outbuf_high_watermark=1 << 20) as url:
        stalled = []
        try:
            answers = []
            for _ in range(6):
                status, sock = _stalled_download(url)
                answers.append(status)
                if status == 200:
                    stalled.append(sock)
                else:
                    rest = b""
                    while b"\r\n\r\n" not in rest or not rest.endswith(b"}"):
                        part = sock.recv(65536)
                        if not part:
                            break
                        rest += part
                    sock.close()
                    head, _, body = rest.partition(b"\r\n\r\n")
                    assert b"\r\nRetry-After: " in b"\r\n" + head
                    assert "downloads (backups and exports)" in json.loads(body)["detail"]
            assert answers == [200, 200, 503, 503, 503, 503]
            # The copies are unlinked: nothing beside the database but its own files.
            assert [p.name for p in db_path.parent.iterdir() if p.name.startswith(".")] == []

            status, _, body = _call(url, "GET", "/db/health")
            assert status == 200 and json.loads(body)["status"] == "ok"
            status, _, body = _call(url, "POST", "/presses/", json.dumps({"name": "p2"}),
                                    {"Content-Type": "application/json", **USER})
            assert status == 201
            status, _, body = _call(url, "POST", "/db/restore", _multipart(database),
                                    {"Content-Type": "multipart/form-data; boundary=XX",
                                     **USER})
            assert status == 200 and json.loads(body)["restored"] is True
            status, _, body = _call(url, "GET", "/presses/")
            assert [p["name"] for p in json.loads(body)] == ["p1"]
        finally:
            for sock in stalled:
                sock.close()

        # Both slots come back: two new stalled downloads run, a third is refused.
        again = []
        try:
            for _ in range(2):
                again.append(_until(lambda: _retry_stalled(url)))
            status, sock = _stalled_download(url)
            sock.close()
            assert status == 503
        finally:
            for sock in again:
                sock.close()
        assert _until(lambda: _download_ok(url))


def _refused(sock):
    """The rest of a refused download's answer: its head and its JSON detail."""
    rest = b""
    while b"\r\n\r\n" not in rest or not rest.endswith(b"}"):
        part = sock.recv(65536)
        if not part:
            break
        rest += part
    sock.close()
    head, _, body = rest.partition(b"\r\n\r\n")
    return head, json.loads(body)["detail"]


def test_stalled_exports_hold_no_worker_gate_or_connection(database, db_path):
    """Six clients that ask for /db/export.zip (about 10 MB) and never read, on a server
    with 2 threads: 2 exports run, 4 get a 503 with Retry-After, and so does a backup
    (the slots are shared); health, a create and a restore still answer meanwhile (no
    worker, no read transaction, no gate is held); once the clients leave, the slots
    come back."""
    with background(_app(), threads=2, outbuf_high_watermark=1 << 20) as url:
        stalled = []
        try:
            answers = []
            for _ in range(6):
                status, sock = _stalled_download(url, "/db/export.zip")
                answers.append(status)
                if status == 200:
                    stalled.append(sock)
                else:
                    head, detail = _refused(sock)
                    assert b"\r\nRetry-After: " in b"\r\n" + head
                    assert "downloads (backups and exports) are running" in detail
            assert answers == [200, 200, 503, 503, 503, 503]
            status, sock = _stalled_download(url)  # a backup: no slot left either
            assert status == 503 and "running already" in _refused(sock)[1]
            # The exports are unlinked files: nothing beside the database but its own.
            assert [p.name for p in db_path.parent.iterdir() if p.name.startswith(".")] == []

            status, _, body = _call(url, "GET", "/db/health")
            assert status == 200 and json.loads(body)["status"] == "ok"
            status, _, body = _call(url, "POST", "/presses/", json.dumps({"name": "p2"}),
                                    {"Content-Type": "application/json", **USER})
            assert status == 201
            status, _, body = _call(url, "POST", "/db/restore", _multipart(database),
                                    {"Content-Type": "multipart/form-data; boundary=XX",
                                     **USER})
            assert status == 200 and json.loads(body)["restored"] is True
        finally:
            for sock in stalled:
                sock.close()
        assert _until(lambda: _export_ok(url))
        assert _until(lambda: _download_ok(url))


def _export_ok(url):
    status, headers, body = _call(url, "GET", "/db/export.zip?tables=presses")
    if status == 503:
        return None
    assert status == 200 and len(body) == int(headers["Content-Length"])
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        assert zf.namelist() == ["bd_press.csv"]
    return body


def _retry_stalled(url):
    status, sock = _stalled_download(url)
    if status == 200:
        return sock
    sock.close()
    return None


def test_waitress_channel_timeout_frees_the_slots(database):
    """Clients that stall and stay connected are cut off by waitress' channel_timeout,
    and their slots come back."""
    with background(_app(), threads=2, channel_timeout=1, cleanup_interval=1) as url:
        socks = []
        try:
            for _ in range(2):
                status, sock = _stalled_download(url)
                socks.append(sock)
                assert status == 200
            assert _until(lambda: _download_ok(url))
        finally:
            for sock in socks:
                sock.close()


def _wsgi_get(app, path="/db/backup.sqlite", method="GET"):
    statuses = []
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "SERVER_NAME": "x",
               "SERVER_PORT": "80", "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http"}
    body = app(environ, lambda status, headers, exc_info=None: statuses.append(
        (status, dict(headers))))
    return statuses[0], body


def test_the_slot_is_given_back_when_the_body_is_closed(database):
    """Without a server's file_wrapper too: two open downloads, the third is a 503 with
    Retry-After; closing one lets the next one through."""
    app = _app()
    (first, _), body1 = _wsgi_get(app)
    (second, _), body2 = _wsgi_get(app)
    assert first.startswith("200") and second.startswith("200")
    (third, headers), body3 = _wsgi_get(app)
    assert third.startswith("503") and int(headers["Retry-After"]) > 0
    assert "2 downloads (backups and exports) are running" in json.loads(
        b"".join(body3))["detail"]
    assert b"".join(body1).startswith(b"SQLite format 3\x00")
    body1.close()
    (fourth, _), body4 = _wsgi_get(app)
    assert fourth.startswith("200")
    body2.close()
    body4.close()
    for _ in range(3):  # HEAD makes the copy and gives the slot back at once
        (status, _), body = _wsgi_get(app, method="HEAD")
        assert status.startswith("200") and b"".join(body) == b""


def test_exports_and_backups_share_the_slots(database):
    """One backup and one export open: a third download of either kind is a 503; closing
    the export's body (the client left) frees its slot."""
    app = _app()
    (backup_status, _), backup_body = _wsgi_get(app)
    (export_status, headers), export_body = _wsgi_get(app, "/db/export.zip")
    assert backup_status.startswith("200") and export_status.startswith("200")
    assert headers["Content-Type"] == "application/zip"
    for path in ("/db/export.zip", "/db/backup.sqlite"):
        (status, headers), body = _wsgi_get(app, path)
        assert status.startswith("503") and int(headers["Retry-After"]) > 0
    export_body.close()
    (status, _), body = _wsgi_get(app, "/db/export.zip")
    assert status.startswith("200")
    data = b"".join(body)
    body.close()
    backup_body.close()
    assert "bd_press.csv" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    for _ in range(3):  # HEAD writes the export and gives the slot back at once
        (status, _), body = _wsgi_get(app, "/db/export.zip", method="HEAD")
        assert status.startswith("200") and b"".join(body) == b""


def test_each_plugin_has_its_own_slots(database):
    """The limit is per plugin: another app's downloads do not count."""
    one, two = _app(), _app()
    held = [_wsgi_get(one)[1], _wsgi_get(one)[1]]
    (status, _), body = _wsgi_get(two)
    assert status.startswith("200")
    for b in held + [body]:
        b.close()
