"""Cross-site requests: a state-changing request a browser sends from another site is
refused with 403 before anything runs, on every route, the console's or not."""
import http.client
import json

import bottle
import peewee
import pytest
import webtest

import peestore
from peestore.rest._server import background


class Valve(peestore.BaseAuditedModel):
    name = peewee.CharField(unique=True)
    deleted_at = peewee.DateTimeField(null=True, index=True)

    class Meta:
        table_name = "xs_valve"
        component = "valves"


MODELS = [Valve]
HOST = "machine.local:8000"
USER = {"X-User": "anna"}
FOREIGN = [{"Origin": "http://evil.example"},
           {"Origin": "http://machine.local:9000"},   # same host, another port
           {"Origin": "null"},                         # a sandboxed frame or a file
           {"Origin": "http://%s" % HOST, "Sec-Fetch-Site": "cross-site"},
           {"Sec-Fetch-Site": "cross-site"}]


def _client(**kwargs):
    app = bottle.Bottle()
    # The machine's name here (HOST), webtest's own and the real server's address.
    plugin = peestore.RestPlugin(models=MODELS, allowed_hosts=["machine.local", "localhost",
                                                                "127.0.0.1"],
                                 **kwargs)
    app.install(plugin)
    return app, webtest.TestApp(app, extra_environ={"HTTP_HOST": HOST})


def _state():
    """Every valve as stored, deleted ones too, and the number of audit entries."""
    return ([v.to_dict() for v in Valve.select().with_deleted().order_by(Valve.id)],
            peestore.AuditLog.select().count())


@pytest.fixture
def valve(connect_db):
    connect_db(MODELS)
    with peestore.actor("setup"):
        return Valve.create(name="inlet")


WRITES = [
    ("POST", "/valves/", {"name": "outlet"}),
    ("PUT", "/valves/{id}", {"name": "renamed"}),
    ("PATCH", "/valves/{id}", {"name": "renamed"}),
    ("DELETE", "/valves/{id}", None),
    ("POST", "/valves/{id}/restore", None),
    ("POST", "/valves/{id}/revert", {"audit_id": 1}),
]


@pytest.mark.parametrize("method,path,body", WRITES)
def test_json_writes_from_another_site_change_nothing(valve, method, path, body):
    """Each REST write with a foreign Origin or Sec-Fetch-Site: cross-site is a 403
    JSON answer that says why, and nothing changes (no row, no audit entry)."""
    _, client = _client()
    before = _state()
    url = path.format(id=valve.id)
    for headers in FOREIGN:
        res = client.request(url, method=method, headers=dict(USER, **headers),
                             body=json.dumps(body).encode() if body is not None else b"",
                             content_type="application/json", expect_errors=True)
        assert res.status_int == 403, (headers, res.status)
        assert res.content_type == "application/json"
        assert res.json["detail"].startswith("cross-site request refused"), res.json
        assert "nothing was changed" in res.json["detail"]
    assert _state() == before


def test_same_origin_and_non_browser_writes_work(valve):
    """The same origin (default port or not, any letter case), and a client that sends
    no Origin at all (curl, a script), write as before."""
    _, client = _client()
    client.post_json("/valves/", {"name": "a"}, headers=USER, status=201)
    client.post_json("/valves/", {"name": "b"}, status=201,
                     headers=dict(USER, Origin="http://MACHINE.local:8000",
                                  **{"Sec-Fetch-Site": "same-origin"}))
    client.post_json("/valves/", {"name": "c"}, headers=dict(USER, Origin="https://machine.local"),
                     extra_environ={"HTTP_HOST": "machine.local"}, status=201)
    client.post_json("/valves/", {"name": "d"}, status=201,
                     headers=dict(USER, **{"Sec-Fetch-Site": "same-site"}))
    assert Valve.select().count() == 5


def test_reads_from_another_site_are_not_refused(valve):
    """GET, HEAD and OPTIONS change nothing, so they are never refused."""
    _, client = _client()
    assert client.get("/valves/", headers={"Origin": "http://evil.example",
                                           "Sec-Fetch-Site": "cross-site"}).json
    client.head("/valves/", headers={"Origin": "http://evil.example"})


def test_refused_before_anything_runs(valve):
    """The refusal comes before authenticate, the route and the database: an app's own
    POST route is refused too, and neither it nor authenticate is called."""
    calls = []

    def authenticate(request):
        calls.append("authenticate")
        return {"name": "ada", "roles": ["admin"]}

    app, client = _client(authenticate=authenticate)

    @app.post("/machine/start")
    def start():
        calls.append("route")
        return {"started": True}

    res = client.post("/machine/start", headers={"Origin": "http://evil.example"}, status=403)
    assert "cross-site" in res.json["detail"] and calls == []
    assert client.post("/machine/start").json == {"started": True}
    assert calls == ["authenticate", "route"]


@pytest.fixture
def backup_file(sqlite_db, tmp_path):
    """A live SQLite database with one valve; a backup of it with a second one."""
    sqlite_db(MODELS)
    with peestore.actor("setup"):
        Valve.create(name="inlet")
        extra = Valve.create(name="from-the-backup")
        peestore.backup(tmp_path / "b.sqlite")
        extra.delete_instance(permanently=True)
    return tmp_path / "b.sqlite"


def test_multipart_restore_from_another_site_changes_nothing(backup_file, db_path):
    """POST /db/restore with a valid backup but a foreign Origin: 403, the database is
    not replaced (no .pre-restore copy is even made); the same upload from the same
    origin restores."""
    _, client = _client()
    before = _state()
    upload = [("file", "b.sqlite", backup_file.read_bytes())]
    for headers in FOREIGN:
        res = client.post("/db/restore", upload_files=upload, headers=dict(USER, **headers),
                          status=403)
        assert "cross-site" in res.json["detail"]
    assert _state() == before
    assert not db_path.with_name(db_path.name + ".pre-restore").exists()
    res = client.post("/db/restore", upload_files=upload, status=200,
                      headers=dict(USER, Origin="http://" + HOST))
    assert res.json["restored"] is True
    assert [v["name"] for v in _state()[0]] == ["inlet", "from-the-backup"]


def test_multipart_import_from_another_site_changes_nothing(backup_file, tmp_path):
    """POST /db/import of a valid zip with a foreign Origin: 403, no row imported."""
    zipped = peestore.export_csv(tmp_path / "e.zip")
    _, client = _client()
    before = _state()
    upload = [("file", "e.zip", zipped.read_bytes())]
    for headers in FOREIGN:
        client.post("/db/import?mode=replace", upload_files=upload,
                    headers=dict(USER, **headers), status=403)
    assert _state() == before
    client.post("/db/import?mode=replace", upload_files=upload, headers=USER, status=200)


def test_over_real_http(backup_file):
    """Through waitress: the browser's headers as sent on the wire."""
    app, _ = _client()
    with background(app) as url:
        host = url.split("//", 1)[1]
        conn = http.client.HTTPConnection(host, timeout=10)
        try:
            for origin, status in (("http://evil.example", 403), ("http://" + host, 201)):
                conn.request("POST", "/valves/", body=json.dumps({"name": origin}),
                             headers={"Content-Type": "application/json", "X-User": "anna",
                                      "Origin": origin})
                res = conn.getresponse()
                body = json.loads(res.read())
                assert res.status == status, body
        finally:
            conn.close()
    assert [v["name"] for v in _state()[0]] == ["inlet", "http://" + host]
