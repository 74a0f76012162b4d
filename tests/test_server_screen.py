"""peestore's waitress server against hostile clients, on a real server: a body limit per
route decided from the headers (an anonymous client cannot make it buffer an upload),
a deadline for request headers (slowloris), a short idle timeout (stalled downloads),
and a quiet shutdown."""
import http.client
import json
import logging
import os
import socket
import tempfile
import threading
import time

import bottle
import peewee
import pytest

import peestore
from peestore.rest._server import (CHANNEL_TIMEOUT, CONNECTION_LIMIT, HEADER_TIMEOUT,
                                   background, make_server)

TIMEOUT = 10     # seconds a client waits for an answer
DEADLINE = 20    # seconds a test waits for the server to act on its own


class Gauge(peestore.BaseAuditedModel):
    name = peewee.CharField()

    class Meta:
        table_name = "ss_gauge"
        component = "gauges"


MODELS = [Gauge]
ADMIN = {"Authorization": "Bearer admin"}
OPERATOR = {"Authorization": "Bearer op"}


def authenticate(request):
    token = request.get_header("Authorization")
    if token == "Bearer admin":
        return {"name": "admin", "roles": ["admin"]}
    if token == "Bearer op":
        return {"name": "op", "roles": ["operator"]}
    return None


authenticate.scheme = 'Bearer realm="press"'


def _app(**kwargs):
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=MODELS, **kwargs))
    return app


def _address(url):
    host, port = url[len("http://"):].rsplit(":", 1)
    return host, int(port)


def _connect(url):
    sock = socket.create_connection(_address(url), timeout=TIMEOUT)
    return sock


def _answer(sock):
    """(status, headers, body) of the answer on ``sock``, read until the server closes."""
    data = b""
    while True:
        part = sock.recv(65536)
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


@pytest.fixture
def spool(tmp_path, monkeypatch):
    """The folder waitress buffers request bodies in (its temporary files); yields a
    function giving the bytes this process holds in files there (they are unlinked)."""
    folder = tmp_path / "spool"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))

    def held():
        total = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                if os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder)):
                    total += os.fstat(int(fd)).st_size
            except OSError:
                continue
        return total

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc to see the server's open files")
    return held


def _send_body_start(sock, head, size, chunked=False):
    """Send the request head and 3 MB of its body (more than waitress keeps in memory),
    without finishing it."""
    sock.sendall(head)
    block = b"x" * 65536
    for _ in range(48):
        try:
            sock.sendall(_frame(block) if chunked else block)
        except OSError:
            return False  # the server closed: it read no more
    return True


@pytest.mark.parametrize("chunked", [False, True])
def test_a_json_route_refuses_a_big_body_before_buffering_it(sqlite_db, spool, chunked):
    """A POST to a JSON route declaring (or streaming) far more than max_body_bytes:
    a JSON 413 naming the route's limit, and none of it in the temporary folder, while
    the server would take uploads of 256 MB elsewhere."""
    sqlite_db(MODELS)
    app = _app(max_body_bytes=4096, authenticate=authenticate)
    length = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: 50000000"
    with background(app, threads=2) as url:
        sock = _connect(url)
        _send_body_start(sock, b"POST /gauges/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: application/json\r\n" + length + b"\r\n\r\n",
                         50_000_000, chunked)
        held = spool()
        status, headers, body = _answer(sock)
    assert status == 413 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"detail": "request body over this route's limit of 4096 "
                                          "bytes (max_body_bytes)"}
    assert held == 0


UPLOAD = (b"POST /db/restore HTTP/1.1\r\nHost: 127.0.0.1\r\n"
          b"Content-Type: multipart/form-data; boundary=XX\r\n")


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("who, status", [({}, 401), (OPERATOR, 403)])
def test_an_upload_is_authenticated_before_its_body_is_read(sqlite_db, db_path, spool,
                                                            chunked, who, status):
    """An anonymous or non-admin upload of 100 MB: 401 (with WWW-Authenticate) or 403
    from the headers alone; nothing reaches the temporary folder or the database's."""
    sqlite_db(MODELS)
    length = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: 100000000"
    head = UPLOAD + b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in who.items())
    with background(_app(authenticate=authenticate), threads=2) as url:
        sock = _connect(url)
        _send_body_start(sock, head + length + b"\r\n\r\n", 100_000_000, chunked)
        held = spool()
        got, headers, body = _answer(sock)
    assert got == status and headers["content-type"] == "application/json"
    if status == 401:
        assert headers["www-authenticate"] == 'Bearer realm="press"'
        assert json.loads(body) == {"detail": "authentication required"}
    else:
        assert json.loads(body) == {"detail": "/db/restore needs the admin role"}
    assert held == 0
    assert not [p for p in db_path.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("path", ["/db/restore", "/db/import"])
@pytest.mark.parametrize("browser", [b"Origin: http://evil.example\r\n",
                                     b"Sec-Fetch-Site: cross-site\r\n"])
@pytest.mark.parametrize("who", [ADMIN, {"X-User": "anna"}])
def test_a_cross_site_upload_is_refused_before_its_body_is_read(sqlite_db, db_path, spool,
                                                                chunked, path, browser, who):
    """An upload of 100 MB that a browser sends from another site, by an admin (or with
    X-User when there is no authenticate): a JSON 403 from the headers alone, sent while
    the client is still sending; nothing in the temporary folder or beside the database."""
    sqlite_db(MODELS)
    length = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: 100000000"
    head = (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=XX\r\n" % path.encode() + browser
            + b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in who.items()))
    app = _app(authenticate=authenticate) if who is ADMIN else _app()
    with background(app, threads=2) as url:
        sock = _connect(url)
        _send_body_start(sock, head + length + b"\r\n\r\n", 100_000_000, chunked)
        held = spool()
        status, headers, body = _answer(sock)
    assert status == 403 and headers["content-type"] == "application/json"
    detail = json.loads(body)["detail"]
    assert detail.startswith("cross-site request refused") and "nothing was changed" in detail
    assert held == 0
    assert not [p for p in db_path.parent.iterdir() if p.name.startswith(".")]


def _multipart(data, fields=()):
    parts = b"".join(b'--XX\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                     % (name.encode(), value.encode()) for name, value in fields)
    return (parts + b'--XX\r\nContent-Disposition: form-data; name="file"; '
            b'filename="b"\r\n\r\n' + data + b"\r\n--XX--\r\n")


def _post(url, path, body, headers=None, content_type="multipart/form-data; boundary=XX"):
    conn = http.client.HTTPConnection(*_address(url), timeout=TIMEOUT)
    try:
        conn.request("POST", path, body=body,
                     headers=dict(headers or {}, **{"Content-Type": content_type}))
        res = conn.getresponse()
        return res.status, res.headers, res.read()
    finally:
        conn.close()


def test_a_client_that_sends_its_whole_body_still_reads_the_refusal(sqlite_db):
    """An ordinary client (http.client) sends 5 MB before it reads: it gets the 401 and
    the 413, not a reset connection."""
    sqlite_db(MODELS)
    with background(_app(authenticate=authenticate), threads=2) as url:
        status, headers, body = _post(url, "/db/import", _multipart(b"z" * (5 << 20)))
        assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="press"'
        status, _, body = _post(url, "/gauges/", b"[" + b"1," * (3 << 20) + b"1]", ADMIN,
                                "application/json")
        assert status == 413 and "max_body_bytes" in json.loads(body)["detail"]


def test_authenticate_is_asked_first_with_the_headers_alone(sqlite_db):
    """On an upload route authenticate runs twice: on the headers (an empty body, in the
    server's thread; bottle.request works there too), then on the whole request."""
    sqlite_db(MODELS)
    calls = []

    def recording(request):
        if not calls:
            calls.append(("early", request.environ["wsgi.input"].read(),
                          bottle.request.get_header("Authorization")))
        else:
            calls.append(("request", request.content_length))
        return authenticate(request)

    with background(_app(authenticate=recording), threads=2) as url:
        status, _, body = _post(url, "/db/restore", _multipart(b"not a backup"), ADMIN)
    assert status == 422, body  # the route ran: a file that is no backup
    assert calls[0] == ("early", b"", "Bearer admin")
    assert calls[1][0] == "request" and calls[1][1] > 0 and len(calls) == 2


def test_an_authenticate_that_fails_on_the_headers_is_a_json_500(sqlite_db, caplog):
    sqlite_db(MODELS)

    def broken(request):
        raise RuntimeError("token store down")

    with background(_app(authenticate=broken), threads=2) as url:
        with caplog.at_level(logging.ERROR, logger="peestore.rest"):
            status, _, body = _post(url, "/db/import", _multipart(b"z" * 100_000), ADMIN)
    assert status == 500 and json.loads(body) == {"detail": "internal server error"}
    assert "token store down" in caplog.text


def test_without_authenticate_an_upload_needs_x_user_first(sqlite_db, spool):
    """No authenticate: an upload without a usable X-User is a 400 before its body."""
    sqlite_db(MODELS)
    with background(_app(), threads=2) as url:
        for who, word in ((b"", "send an X-User header"),
                          ("X-User: a\u200bb\r\n".encode(), "U+200B")):
            sock = _connect(url)
            _send_body_start(sock, UPLOAD + who + b"Content-Length: 100000000\r\n\r\n",
                             100_000_000)
            held = spool()
            status, _, body = _answer(sock)
            assert status == 400 and word in json.loads(body)["detail"]
            assert held == 0
        status, _, _ = _post(url, "/db/restore", _multipart(b"not a backup"), {"X-User": "t"})
        assert status == 422


def test_the_upload_limit_follows_the_routes(sqlite_db):
    """A route added with peestore_upload=True takes a big body like /db/import; the
    plugin's routes keep their limits under a prefix and in a mounted app."""
    sqlite_db(MODELS)
    child = _app(prefix="/api", max_body_bytes=4096)

    @child.post("/api/blob", peestore_upload=True)
    def blob():
        return {"bytes": len(bottle.request.body.read())}

    @child.post("/api/small")
    def small():
        return {"bytes": len(bottle.request.body.read())}

    parent = bottle.Bottle()
    parent.mount("/machine/", child)
    big = b"b" * (2 << 20)
    user = {"X-User": "t"}
    with background(parent, threads=2) as url:
        status, _, body = _post(url, "/machine/api/blob", big, user, "application/octet-stream")
        assert status == 200 and json.loads(body) == {"bytes": len(big)}
        status, _, body = _post(url, "/machine/api/small", big, user, "application/octet-stream")
        assert status == 413 and "max_body_bytes" in json.loads(body)["detail"]
        status, _, body = _post(url, "/machine/api/db/import", _multipart(big), user)
        assert status == 422, body  # judged by the route: not a zip


def test_a_form_field_sent_twice_is_a_400_and_restores_nothing(sqlite_db, db_path, tmp_path):
    """dry_run=true then dry_run=false used to restore for real."""
    db = sqlite_db(MODELS)
    Gauge.create(name="g1", actor="t")
    peestore.backup(tmp_path / "b.sqlite")
    Gauge.create(name="g2", actor="t")
    db.close()
    data = (tmp_path / "b.sqlite").read_bytes()
    with background(_app(), threads=2) as url:
        status, _, body = _post(url, "/db/restore", _multipart(
            data, [("dry_run", "true"), ("dry_run", "false")]), {"X-User": "t"})
    assert status == 400
    assert json.loads(body) == {"detail": "form field 'dry_run' is sent more than once; "
                                          "send it once"}
    with db.connection_context():
        assert [g.name for g in Gauge.select().order_by(Gauge.id)] == ["g1", "g2"]


def _until(what, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while True:
        result = what()
        if result:
            return result
        assert time.monotonic() < end, "gave up waiting"
        time.sleep(0.1)


def _health(url):
    try:
        conn = http.client.HTTPConnection(*_address(url), timeout=2)
        conn.request("GET", "/db/health")
        res = conn.getresponse()
        res.read()
        conn.close()
        return res.status == 200
    except OSError:
        return False


def test_half_sent_headers_do_not_hold_the_connection_slots(sqlite_db):
    """connection_limit slow clients, each sending half a request header: they are cut
    off after header_timeout, and /db/health answers again."""
    sqlite_db(MODELS)
    with background(_app(), threads=2, header_timeout=1, connection_limit=10) as url:
        slow = []
        try:
            for _ in range(10):
                sock = _connect(url)
                sock.sendall(b"GET /db/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                slow.append(sock)
            _until(lambda: _health(url))
            for sock in slow:
                sock.settimeout(DEADLINE)
                assert sock.recv(100) == b""  # the server closed it
        finally:
            for sock in slow:
                sock.close()


def test_a_keep_alive_connection_outlives_a_slow_answer(sqlite_db):
    """The header deadline counts from the last answer, not from the connection's
    request before it: an answer slower than header_timeout, then a second request
    on the same connection."""
    app = bottle.Bottle()

    @app.get("/slow")
    def slow():
        time.sleep(1.5)
        return "slow"

    @app.get("/fast")
    def fast():
        return "fast"

    with background(app, threads=2, header_timeout=1) as url:
        conn = http.client.HTTPConnection(*_address(url), timeout=TIMEOUT)
        try:
            for path in ("/slow", "/fast", "/slow", "/fast"):
                conn.request("GET", path)
                res = conn.getresponse()
                assert res.status == 200 and res.read() == path[1:].encode()
        finally:
            conn.close()


def test_an_authenticate_that_queries_the_database_works_on_the_headers(sqlite_db):
    """authenticate may look its tokens up in the database, in the early call too."""
    sqlite_db(MODELS)
    Gauge.create(name="admin-token", actor="t")

    def lookup(request):
        token = (request.get_header("Authorization") or "").replace("Bearer ", "")
        if Gauge.select().where(Gauge.name == token + "-token").exists():
            return {"name": token, "roles": ["admin"]}
        return None

    with background(_app(authenticate=lookup), threads=2) as url:
        for _ in range(3):
            status, _, body = _post(url, "/db/restore", _multipart(b"not a backup"), ADMIN)
            assert status == 422, body
            status, _, _ = _post(url, "/db/restore", _multipart(b"x"), OPERATOR)
            assert status == 401


def test_the_defaults_for_a_controller():
    """channel_timeout 30 s (waitress: 120), connection_limit 100, header_timeout 10 s."""
    server = make_server(bottle.Bottle(), port=0)
    try:
        assert server.adj.channel_timeout == CHANNEL_TIMEOUT == 30
        assert server.adj.connection_limit == CONNECTION_LIMIT == 100
        assert server.channel_class.header_timeout == HEADER_TIMEOUT == 10
    finally:
        server.close()
    server = make_server(bottle.Bottle(), port=0, channel_timeout=300, header_timeout=None)
    try:
        assert server.adj.channel_timeout == 300
    finally:
        server.close()
    for bad in (0, -1, "10", True, float("inf")):
        with pytest.raises(ValueError, match="header_timeout"):
            make_server(bottle.Bottle(), port=0, header_timeout=bad)


@pytest.fixture
def big_database(sqlite_db):
    """A database of about 8 MB: more than the socket buffers hold."""
    db = sqlite_db(MODELS)
    db.execute_sql("CREATE TABLE ss_filler (data BLOB)")
    for _ in range(8):
        db.execute_sql("INSERT INTO ss_filler VALUES (randomblob(1048576))")
    db.close()
    return db


def _copies_held():
    """Backup copies this process still holds open (unlinked temporary downloads)."""
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if ".peestore-tmp-download-" in target:
            found += 1
    return found


def _stalled_download(url):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(TIMEOUT)
    sock.connect(_address(url))
    sock.sendall(b"GET /db/backup.sqlite HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert sock.recv(12).startswith(b"HTTP/1.1 200")
    return sock


def _download_ok(url):
    conn = http.client.HTTPConnection(*_address(url), timeout=TIMEOUT)
    try:
        conn.request("GET", "/db/backup.sqlite")
        res = conn.getresponse()
        body = res.read()
        return res.status == 200 and body.startswith(b"SQLite format 3\x00")
    finally:
        conn.close()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_a_stalled_download_gives_back_its_slot_and_copy(big_database):
    """Two downloads that stop reading: after channel_timeout (1 s here, 30 s by default;
    waitress' own cleanup_interval left at 30 s) both copies are closed and a new
    download runs."""
    with background(_app(), threads=2, channel_timeout=1) as url:
        socks = [_stalled_download(url), _stalled_download(url)]
        try:
            assert _copies_held() == 2
            _until(lambda: _copies_held() == 0)
            assert _download_ok(url)
        finally:
            for sock in socks:
                sock.close()


def test_stopping_a_background_server_mid_request_is_quiet(caplog):
    """A request still running when the block ends: it finishes, and waitress logs no
    error (it used to print 'OSError: Bad file descriptor' from a closed trigger)."""
    app = bottle.Bottle()
    started = threading.Event()

    @app.get("/slow")
    def slow():
        started.set()
        time.sleep(0.5)
        return "done"

    answers = []

    def client(url):
        try:
            conn = http.client.HTTPConnection(*_address(url), timeout=TIMEOUT)
            conn.request("GET", "/slow")
            answers.append(conn.getresponse().status)
        except OSError as exc:
            answers.append(exc)

    with caplog.at_level(logging.DEBUG, logger="waitress"):
        for _ in range(3):
            started.clear()
            with background(app, threads=2) as url:
                thread = threading.Thread(target=client, args=(url,))
                thread.start()
                assert started.wait(TIMEOUT)
            thread.join(TIMEOUT)
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert errors == [], [r.getMessage() for r in errors]
    assert all(not isinstance(a, int) or a == 200 for a in answers)


def test_the_hostile_edge_benchmark_runs(tmp_path):
    """benchmarks/hostile_edge.py, a smoke run with small counts (figures not checked)."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, os.path.join(root, "benchmarks", "hostile_edge.py"),
                           "--connections", "1", "--sent-mb", "1", "--slow", "3",
                           "--stalled-db-mb", "1", "--skip-stalled"], cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "held in temporary files: 0.0 MB" in done.stdout
    assert "diagram of a 5000-table chain" in done.stdout
