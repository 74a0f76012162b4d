"""The Host header (DNS rebinding): a request naming a host that is not this machine's
is a JSON 400 before anything else, on every route the plugin serves; on a real server."""
import http.client
import io
import json
import socket

import bottle
import peewee
import pytest
import webtest

import peestore
from peestore.rest._hosts import local_names
from peestore.rest._server import background

TIMEOUT = 10


class Pump(peestore.BaseAuditedModel):
    name = peewee.CharField()

    class Meta:
        table_name = "ho_pump"
        component = "pumps"


MODELS = [Pump]
ADMIN = {"Authorization": "Bearer admin"}


def _app(calls=None, **kwargs):
    def authenticate(request):
        if calls is not None:
            calls.append(request.path)
        if request.get_header("Authorization") == "Bearer admin":
            return {"name": "admin", "roles": ["admin"]}
        return None

    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=MODELS, authenticate=authenticate, **kwargs))
    return app


def _client(**kwargs):
    """A webtest client of ``_app(**kwargs)`` that sends the admin's token."""
    return webtest.TestApp(_app(**kwargs), extra_environ={"HTTP_AUTHORIZATION": "Bearer admin"})


def _address(url):
    host, port = url[len("http://"):].rsplit(":", 1)
    return host, int(port)


def _request(url, path, host, method="GET", body=None, headers=None):
    """(status, JSON or text body) of one request sent with this Host header."""
    conn = http.client.HTTPConnection(*_address(url), timeout=TIMEOUT)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host is not None:
            conn.putheader("Host", host)
        for name, value in dict(ADMIN, **(headers or {})).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        res = conn.getresponse()
        data = res.read()
        if res.getheader("Content-Type", "").startswith("application/json"):
            return res.status, json.loads(data)
        return res.status, data.decode("utf-8", "replace")
    finally:
        conn.close()


ROUTES = [("GET", "/pumps/"), ("GET", "/pumps/1"), ("GET", "/pumps/1/history"),
          ("GET", "/db/health"), ("GET", "/db/audit"), ("GET", "/db/diagram.svg"),
          ("GET", "/db/backup.sqlite"), ("GET", "/db/export.zip"), ("GET", "/openapi.json"),
          ("GET", "/db/console/"), ("GET", "/db/console/pumps"), ("GET", "/db/console/data"),
          ("POST", "/pumps/"), ("PATCH", "/pumps/1"), ("DELETE", "/pumps/1")]


def test_a_foreign_host_is_refused_on_every_route(sqlite_db):
    """A page on an attacker's name that resolves to the machine (DNS rebinding): every
    route, the console and /db/* included, answers a JSON 400 naming the Host, before
    authenticate runs, and nothing changes."""
    sqlite_db(MODELS)
    Pump.create(name="p1", actor="setup")
    calls = []
    with background(_app(calls), threads=2) as url:
        port = _address(url)[1]
        for host in ("evil.example:%d" % port, "evil.example", "127.0.0.1.evil.example:%d" % port):
            for method, path in ROUTES:
                body = b'{"name": "x"}' if method in ("POST", "PATCH") else None
                status, answer = _request(url, path, host, method, body)
                assert status == 400, (host, method, path, answer)
                assert answer["detail"].startswith("Host header %r is not" % host), answer
                assert "allowed_hosts" in answer["detail"]
        # The same requests with the address the client used work.
        assert _request(url, "/pumps/1", "127.0.0.1:%d" % port)[0] == 200
    assert calls == ["/pumps/1"]
    assert [p.name for p in Pump.select()] == ["p1"]
    assert peestore.AuditLog.select().count() == 1


def test_the_machine_s_own_names_are_allowed(sqlite_db):
    """By default: any IP address (v4, v6 in brackets), localhost, the host name, its
    .local (mDNS) name and its fully qualified name; any port, any letter case, a
    trailing dot; a request without Host (HTTP/1.0) too."""
    sqlite_db(MODELS)
    hostname = socket.gethostname()
    short = hostname.split(".")[0]
    names = {"localhost", hostname.lower(), short.lower() + ".local", socket.getfqdn().lower()}
    assert names <= local_names()
    with background(_app(), threads=2) as url:
        port = _address(url)[1]
        for host in ["127.0.0.1:%d" % port, "127.0.0.1", "192.168.1.20:8000", "[::1]:%d" % port,
                     "[::1]", "[fe80::1]:80", "localhost:%d" % port, "LOCALHOST", "localhost.",
                     "localhost:", hostname, "%s:%d" % (hostname.upper(), port),
                     short + ".local:80", socket.getfqdn() + ":1", None]:
            status, answer = _request(url, "/db/health", host)
            assert status == 200, (host, answer)


@pytest.mark.parametrize("host", ["::1", "[::1", "[::1]x", "[evil.example]", "localhost:http",
                                  "localhost:123456", "localhost:1:2", "local host", "x",
                                  "localhost.evil.example", "evil.localhost", "l\u00f6calhost",
                                  "a" * 5000])
def test_malformed_or_unknown_hosts_are_refused(sqlite_db, host):
    """A bare IPv6 address, a port that is no number, a name with a space, names that
    merely start or end like an allowed one: all 400, the detail bounded."""
    sqlite_db(MODELS)
    client = _client()
    res = client.get("/db/health", extra_environ={"HTTP_HOST": host}, status=400)
    assert res.json["detail"].startswith("Host header ")
    assert len(res.json["detail"]) < 400


def test_webtest_and_plain_wsgi_calls_keep_working(sqlite_db):
    """webtest sends Host localhost:80; a WSGI call without HTTP_HOST is no browser's."""
    sqlite_db(MODELS)
    assert _client().get("/db/health", status=200).json["status"] == "ok"
    app = _app()
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/db/health", "wsgi.input": io.BytesIO(),
               "wsgi.errors": io.StringIO(), "HTTP_AUTHORIZATION": "Bearer admin",
               "SERVER_NAME": "x", "SERVER_PORT": "80", "wsgi.url_scheme": "http"}
    statuses = []
    b"".join(app(environ, lambda status, headers, *exc_info: statuses.append(status)))
    assert statuses == ["200 OK"]


def test_allowed_hosts_replaces_the_default(sqlite_db):
    """A list of names (and addresses) replaces the default: its names on any port, in
    any letter case; localhost and other addresses are then refused."""
    sqlite_db(MODELS)
    client = _client(allowed_hosts=["plc.factory.example", "10.0.0.5", "[::1]"])
    for host in ("plc.factory.example", "PLC.Factory.Example.:8443", "10.0.0.5:80", "[::1]:8000",
                 "[0:0::1]"):
        client.get("/db/health", extra_environ={"HTTP_HOST": host}, status=200)
    for host in ("localhost:80", "127.0.0.1", "10.0.0.6", "factory.example", socket.gethostname()):
        res = client.get("/db/health", extra_environ={"HTTP_HOST": host}, status=400)
        assert "allowed_hosts" in res.json["detail"]


def test_a_star_turns_the_check_off(sqlite_db):
    """allowed_hosts=["*"]: any Host (behind a proxy that checks it itself)."""
    sqlite_db(MODELS)
    client = _client(allowed_hosts=["*"])
    for host in ("evil.example", "x", "[::1"):
        client.get("/db/health", extra_environ={"HTTP_HOST": host}, status=200)


@pytest.mark.parametrize("bad", ["localhost", [], [""], ["host:8000"], ["a b"], [5], None])
def test_allowed_hosts_is_checked_when_the_plugin_is_made(bad):
    """A lone string, an empty list, a name with a port or a space, a non-string: a
    ConfigurationError that names the option."""
    if bad is None:
        peestore.RestPlugin(models=MODELS, allowed_hosts=None)  # the default
        return
    with pytest.raises(peestore.ConfigurationError, match="allowed_hosts"):
        peestore.RestPlugin(models=MODELS, allowed_hosts=bad)


def test_bootstrap_passes_allowed_hosts_on(db_path):
    """bootstrap(allowed_hosts=...) as RestPlugin's."""
    app = peestore.bootstrap(models=MODELS, database_url="sqlite:///%s" % db_path,
                             allowed_hosts=["plc.example"])
    client = webtest.TestApp(app)
    client.get("/db/health", extra_environ={"HTTP_HOST": "plc.example:80"}, status=200)
    client.get("/db/health", status=400)  # webtest's localhost:80


def _send_head(url, head):
    """Send a request's head only (its body never comes); the answer, read until the
    server closes.  A server that waited for the body would time out here."""
    sock = socket.create_connection(_address(url), timeout=TIMEOUT)
    try:
        sock.sendall(head)
        data = b""
        while True:
            part = sock.recv(65536)
            if not part:
                break
            data += part
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize("path, kind", [("/db/restore", b"multipart/form-data; boundary=XX"),
                                        ("/db/import", b"multipart/form-data; boundary=XX"),
                                        ("/pumps/", b"application/json")])
def test_a_foreign_host_is_refused_before_the_body(sqlite_db, db_path, path, kind):
    """An upload declaring 100 MB, or a JSON write declaring 500 KB, from an admin with a
    foreign Host: the 400 comes from the headers alone (the body is never sent), and
    authenticate is not asked."""
    sqlite_db(MODELS)
    calls = []
    length = b"100000000" if path.startswith("/db/") else b"500000"
    with background(_app(calls), threads=2) as url:
        status, answer = _send_head(url, b"POST %s HTTP/1.1\r\nHost: evil.example\r\n"
                                    b"Authorization: Bearer admin\r\nContent-Type: %s\r\n"
                                    b"Content-Length: %s\r\n\r\n" % (path.encode(), kind, length))
    assert status == 400 and answer["detail"].startswith("Host header 'evil.example' is not")
    assert calls == []
    assert not [p for p in db_path.parent.iterdir() if p.name.startswith(".")]


def test_a_mounted_app_without_the_plugin_is_not_refused_early(sqlite_db):
    """Only the routes the plugin serves check Host: an app mounted beside it without
    the plugin answers any Host, a body included."""
    sqlite_db(MODELS)
    parent = _app()
    child = bottle.Bottle()

    @child.post("/echo")
    def echo():
        return {"bytes": len(bottle.request.body.read())}

    parent.mount("/other/", child)
    with background(parent, threads=2) as url:
        assert _request(url, "/other/echo", "evil.example", "POST", b"{}") == (200, {"bytes": 2})
        assert _request(url, "/pumps/", "evil.example", "POST", b"{}")[0] == 400
