"""Serving with waitress on a loopback port: peestore.serve, background, `peestore serve`."""
import http.client
import json
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request

import bottle
import pytest

import peestore
from peestore.cli._serve import load_app
from peestore.rest._server import background

from . import processes
from .rest_models import REST_MODELS, Part

TIMEOUT = 10


def call(url, method="GET", body=None, headers=None):
    """(status, headers, parsed JSON or text) of one bounded request."""
    data = None if body is None else json.dumps(body).encode()
    hdrs = {"X-User": "net"}
    if body is not None:
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as res:
            status, info, raw = res.status, res.headers, res.read()
    except urllib.error.HTTPError as exc:
        status, info, raw = exc.code, exc.headers, exc.read()
    try:
        return status, info, json.loads(raw)
    except ValueError:
        return status, info, raw


@pytest.fixture
def server(connect_db):
    """A real waitress server (4 threads) on 127.0.0.1, the plugin and the test models.

    It runs on every backend: per-request connections under waitress's threads.
    """
    db = connect_db(REST_MODELS)
    app = peestore.bootstrap(models=REST_MODELS, database_url=db, create_tables=False)
    db.close()
    with background(app, threads=4) as url:
        yield url


def test_routes_over_http(server):
    """Create, get, list, update, delete and errors through a real socket."""
    status, headers, row = call(server + "/parts/", "POST", {"name": "net"})
    assert status == 201 and headers["Location"].endswith("/parts/%d" % row["id"])
    status, headers, got = call(server + "/parts/%d" % row["id"])
    assert status == 200 and got == row and headers["ETag"]
    status, headers, rows = call(server + "/parts/?name__like=N%25")
    assert rows == [row] and headers["X-Total-Count"] == "1"
    stale = {"If-Match": '"nope"'}
    assert call(server + "/parts/%d" % row["id"], "PATCH", {"qty": 1}, stale)[0] == 412
    assert call(server + "/parts/%d" % row["id"], "PATCH", {"qty": 1})[2]["qty"] == 1
    assert call(server + "/parts/%d" % row["id"], "DELETE")[2] == {"status": "deleted"}
    status, _, body = call(server + "/missing")
    assert status == 404 and "detail" in body
    assert call(server + "/db/health")[2]["status"] == "ok"
    assert call(server + "/openapi.json")[2]["openapi"].startswith("3.1")


def test_413_and_chunked_body_over_http(server):
    """An oversized body is 413; a chunked JSON body is accepted (waitress de-chunks it)."""
    status, _, body = call(server + "/parts/", "POST", {"name": "x", "note": "y" * (2 << 20)})
    assert status == 413 and "detail" in body
    host, port = server.rsplit("/", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    chunks = iter([b'{"name": ', b'"chunky"}'])
    conn.request("POST", "/parts/", body=chunks, encode_chunked=True,
                 headers={"Content-Type": "application/json", "X-User": "net",
                          "Transfer-Encoding": "chunked"})
    res = conn.getresponse()
    assert res.status == 201 and json.loads(res.read())["name"] == "chunky"
    conn.close()


def test_concurrent_writes(server):
    """Parallel POSTs from 8 clients on 4 server threads: every one lands, each audited."""
    errors = []

    def worker(n):
        for i in range(5):
            status = call(server + "/parts/", "POST", {"name": "w%d-%d" % (n, i)})[0]
            if status != 201:
                errors.append(status)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert call(server + "/parts/?limit=1")[1]["X-Total-Count"] == "40"
    assert call(server + "/db/audit?operation=create&limit=1")[1]["X-Total-Count"] == "40"


def test_concurrent_if_match_only_one_wins(server):
    """Two panels PATCH one row with the same ETag at once: one 200, one 412."""
    row = call(server + "/parts/", "POST", {"name": "shared"})[2]
    etag = call(server + "/parts/%d" % row["id"])[1]["ETag"]
    statuses = []

    def panel(qty):
        statuses.append(call(server + "/parts/%d" % row["id"], "PATCH", {"qty": qty},
                             {"If-Match": etag})[0])

    threads = [threading.Thread(target=panel, args=(q,)) for q in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(statuses) == [200, 412]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_up(url, proc, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError("server exited: %s" % (proc.communicate()[1],))
        try:
            with urllib.request.urlopen(url, timeout=1) as res:
                return res.status
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    raise AssertionError("server did not come up at %s" % url)


def _stop(proc):
    proc.terminate()
    try:
        return proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate(timeout=TIMEOUT)


def test_peestore_serve_function(tmp_path):
    """peestore.serve(app, host, port, threads) serves with waitress until stopped."""
    port = _free_port()
    script = textwrap.dedent("""
        import sys
        import peestore
        from peewee import CharField

        class Note(peestore.BaseAuditedModel):
            text = CharField()

        app = peestore.bootstrap(models=[Note], database_url=sys.argv[1])
        peestore.serve(app, host="127.0.0.1", port=int(sys.argv[2]), threads=2)
    """)
    (tmp_path / "app.py").write_text(script)
    proc = subprocess.Popen([sys.executable, str(tmp_path / "app.py"),
                             "sqlite:///%s" % (tmp_path / "s.db"), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = "http://127.0.0.1:%d" % port
        assert _wait_up(url + "/db/health", proc) == 200
        assert call(url + "/note/", "POST", {"text": "hi"})[0] == 201
    finally:
        out, _ = _stop(proc)
    # One line first: where it serves and which database, so the app does not look hung.
    assert out.splitlines()[0] == ("peestore: serving on %s/ (database sqlite:///%s); "
                                   "Ctrl-C stops" % (url, tmp_path / "s.db"))


def test_peestore_serve_command_with_a_module_of_models(tmp_path):
    """`peestore serve module` bootstraps the module's models on --db."""
    port = _free_port()
    (tmp_path / "shopmodels.py").write_text(textwrap.dedent("""
        import peestore
        from peewee import CharField

        class Shelf(peestore.BaseAuditedModel):
            label = CharField()

            class Meta:
                component = "shelves"
    """))
    proc = subprocess.Popen(
        [sys.executable, "-m", "peestore", "serve", "shopmodels", "--db",
         "sqlite:///%s" % (tmp_path / "shop.db"), "--port", str(port), "--threads", "2"],
        cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=os.getcwd()))
    try:
        url = "http://127.0.0.1:%d" % port
        _wait_up(url + "/db/health", proc)
        assert call(url + "/shelves/", "POST", {"label": "top"})[0] == 201
    finally:
        out, _ = _stop(proc)
    assert out.splitlines()[0] == ("peestore: serving on http://127.0.0.1:%d/ (database "
                                   "sqlite:///%s); Ctrl-C stops" % (port, tmp_path / "shop.db"))


MACHINE_MODULE = """
import peestore
from peewee import CharField

class Press(peestore.BaseAuditedModel):
    label = CharField()

    class Meta:
        component = "presses"

peestore.connect("sqlite:///machine.db", models=[Press])
"""


def test_peestore_serve_keeps_the_modules_own_database(tmp_path):
    """`peestore serve module` without --db serves the database the module connected,
    names it on its first line, and makes no peestore.db."""
    (tmp_path / "pressmodels.py").write_text(MACHINE_MODULE)
    proc, first, url = processes.start(["-m", "peestore", "serve", "pressmodels", "--port", "0",
                                        "--threads", "2"], tmp_path)
    try:
        assert call(url + "presses/", "POST", {"label": "p1"})[0] == 201
    finally:
        processes.stop(proc)
    assert first.strip() == ("peestore: serving on %s (database sqlite:///%s); Ctrl-C stops"
                             % (url, tmp_path / "machine.db"))
    assert not (tmp_path / "peestore.db").exists()
    conn = sqlite3.connect(str(tmp_path / "machine.db"))
    try:
        assert conn.execute("SELECT label FROM press").fetchall() == [("p1",)]
    finally:
        conn.close()


def test_load_app_database_choice(tmp_path, monkeypatch):
    """--db wins; else the module's own database; else the default ($PEESTORE_DATABASE_URL)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("PEESTORE_DATABASE_URL", raising=False)
    (tmp_path / "ownmodels.py").write_text(MACHINE_MODULE)
    (tmp_path / "plainmodels.py").write_text(MACHINE_MODULE.replace(
        'peestore.connect("sqlite:///machine.db", models=[Press])', "").replace(
        "Press", "Plain").replace("presses", "plains"))
    try:
        peestore.database.initialize(None)
        load_app("ownmodels")
        assert peestore.database.obj.database == "machine.db"
        load_app("ownmodels", "sqlite:///%s" % (tmp_path / "given.db"))
        assert peestore.database.obj.database == str(tmp_path / "given.db")
        peestore.database.obj.close()
        peestore.database.initialize(None)
        monkeypatch.setenv("PEESTORE_DATABASE_URL", "sqlite:///%s" % (tmp_path / "env.db"))
        load_app("plainmodels")
        assert peestore.database.obj.database == str(tmp_path / "env.db")
    finally:
        for name in ("ownmodels", "plainmodels"):
            sys.modules.pop(name, None)
        if peestore.database.obj is not None:
            peestore.database.obj.close()


def test_start_line_never_shows_a_password():
    """The start line names a server database by scheme, user, host, port and name only."""
    import peewee

    from peestore.rest._banner import database_label

    pg = peewee.PostgresqlDatabase("plant", user="op", password="s3cret", host="db.local",
                                   port=5433)
    assert database_label(pg) == "postgresql://op@db.local:5433/plant"
    my = peewee.MySQLDatabase("plant", user="root", passwd="s3cret", host="10.0.0.2")
    assert database_label(my) == "mysql://root@10.0.0.2/plant"
    assert database_label(peewee.SqliteDatabase(":memory:")) == "sqlite:///:memory:"


def test_serve_command_errors_are_one_line(tmp_path):
    """A module that fails at import, or a port in use: one line on stderr, exit 1."""
    (tmp_path / "brokenapp.py").write_text("raise RuntimeError('boom\\nmore')\n")
    done = subprocess.run([sys.executable, "-m", "peestore", "serve", "brokenapp:app",
                           "--port", "0"], cwd=str(tmp_path), env=processes.environment(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "peestore serve: error: importing brokenapp failed: RuntimeError: boom"]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        (tmp_path / "fine.py").write_text(MACHINE_MODULE)
        done = subprocess.run([sys.executable, "-m", "peestore", "serve", "fine", "--port",
                               str(busy.getsockname()[1])], cwd=str(tmp_path),
                              env=processes.environment(), capture_output=True, text=True,
                              timeout=60)
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1 and "peestore serve: error:" in done.stderr


def test_load_app_bottle_and_errors(tmp_path, monkeypatch):
    """module:attr naming a Bottle app is served as is; bad names are clear errors."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "myapp.py").write_text(textwrap.dedent("""
        import bottle
        import peestore
        from tests.rest_models import REST_MODELS
        app = bottle.Bottle()
        app.install(peestore.RestPlugin(models=REST_MODELS))
        not_an_app = 42
    """))
    monkeypatch.syspath_prepend(os.path.dirname(os.path.dirname(__file__)))
    app = load_app("myapp:app", "sqlite:///%s" % (tmp_path / "a.db"))
    assert isinstance(app, bottle.Bottle)
    assert Part.table_exists()
    peestore.database.obj.close()
    with pytest.raises(peestore.ConfigurationError):
        load_app("myapp:not_an_app")
    with pytest.raises(peestore.ConfigurationError):
        load_app("myapp:missing")
    with pytest.raises(peestore.ConfigurationError):
        load_app("no_such_module_here:app")


def _get_as(url, host):
    """The status of GET url sent with this Host header."""
    import http.client
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.putrequest("GET", parts.path, skip_host=True)
        conn.putheader("Host", host)
        conn.endheaders()
        res = conn.getresponse()
        res.read()
        return res.status
    finally:
        conn.close()


def test_peestore_serve_allowed_host(tmp_path):
    """`peestore serve --allowed-host NAME` (repeatable) answers those names only: the
    list replaces the default, as RestPlugin(allowed_hosts=...) does."""
    (tmp_path / "pressmodels.py").write_text(MACHINE_MODULE)
    proc, _, url = processes.start(["-m", "peestore", "serve", "pressmodels", "--port", "0",
                                    "--threads", "2", "--allowed-host", "press-7.plant.example",
                                    "--allowed-host", "192.168.1.20"], tmp_path)
    try:
        assert _get_as(url + "db/health", "press-7.plant.example:8000") == 200
        assert _get_as(url + "db/health", "192.168.1.20") == 200
        assert _get_as(url + "db/health", "localhost") == 400
        assert _get_as(url + "db/health", url.split("/")[2]) == 400
    finally:
        processes.stop(proc)
    done = subprocess.run([sys.executable, "-m", "peestore", "serve", "pressmodels",
                           "--port", "0", "--allowed-host", "press-7:8000"], cwd=str(tmp_path),
                          env=processes.environment(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1
    assert "allowed_hosts" in done.stderr


def test_load_app_allowed_hosts_replaces_the_plugins(tmp_path, monkeypatch):
    """A Bottle app's RestPlugin takes the names given to load_app (--allowed-host)."""
    import webtest

    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "hostapp.py").write_text(textwrap.dedent("""
        import bottle
        import peestore
        from tests.rest_models import REST_MODELS
        app = bottle.Bottle()
        app.install(peestore.RestPlugin(models=REST_MODELS, allowed_hosts=["a.example"]))
    """))
    monkeypatch.syspath_prepend(os.path.dirname(os.path.dirname(__file__)))
    try:
        app = load_app("hostapp:app", "sqlite:///%s" % (tmp_path / "a.db"),
                       allowed_hosts=["b.example"])
        client = webtest.TestApp(app)
        client.get("/db/health", extra_environ={"HTTP_HOST": "b.example"}, status=200)
        client.get("/db/health", extra_environ={"HTTP_HOST": "a.example"}, status=400)
    finally:
        sys.modules.pop("hostapp", None)
        peestore.database.obj.close()
