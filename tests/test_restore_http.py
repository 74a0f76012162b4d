"""POST /db/restore with a hostile file, its audit entry, and restore_wait on waitress."""
import hashlib
import json
import sqlite3
import threading
import time
import urllib.error
import urllib.request

import bottle
import peewee
import pytest
import webtest

import peestore
from peestore import AuditLog
from peestore.db._gate import gate
from peestore.rest._server import background


class Press(peestore.BaseAuditedModel):
    name = peewee.CharField(unique=True)
    speed_rpm = peewee.FloatField(default=1.0)

    class Meta:
        table_name = "rh_press"
        component = "presses"


MODELS = [Press]
USER = {"X-User": "anna"}


@pytest.fixture
def backup(sqlite_db, tmp_path):
    """A live database with one press, and the bytes of a backup of it holding two."""
    db = sqlite_db(MODELS)
    Press.create(name="one")
    Press.create(name="two")
    peestore.backup(tmp_path / "good.sqlite")
    Press.get(Press.name == "two").delete_instance()
    db.close()
    return tmp_path / "good.sqlite"


def _client(**kwargs):
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=MODELS, **kwargs))
    return webtest.TestApp(app)


def _altered(path, tmp_path, *statements, rewrite=None):
    out = tmp_path / "hostile.sqlite"
    out.write_bytes(path.read_bytes())
    conn = sqlite3.connect(str(out))
    for sql in statements:
        conn.execute(sql)
    if rewrite is not None:
        old = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'rh_press'").fetchone()[0]
        conn.execute("PRAGMA writable_schema=ON")
        conn.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'rh_press'",
                     (rewrite(old),))
    conn.commit()
    conn.close()
    return out.read_bytes()


def _names(client):
    return sorted(p["name"] for p in client.get("/presses/").json)


@pytest.mark.parametrize("alteration, message", [
    (dict(statements=["CREATE TRIGGER audit_guard AFTER INSERT ON audit_log BEGIN "
                      "DELETE FROM audit_log WHERE id = new.id; END"]),
     "trigger audit_guard on audit_log is not in the live database"),
    (dict(rewrite=lambda sql: sql.replace('"speed_rpm" REAL NOT NULL', '"speed_rpm" REAL')),
     "table rh_press: column speed_rpm differs: REAL NOT NULL vs REAL"),
    (dict(statements=["DROP INDEX press_name"]),
     "index press_name on rh_press is missing"),
])
def test_a_hostile_upload_is_a_422_naming_the_object(backup, tmp_path, alteration, message):
    """The trigger and constraint cases over HTTP: 422, nothing changed, and the
    live database keeps auditing its writes."""
    client = _client()
    data = _altered(backup, tmp_path, *alteration.get("statements", ()),
                    rewrite=alteration.get("rewrite"))
    for query in ("?dry_run=true", ""):
        res = client.post("/db/restore" + query, upload_files=[("file", "b.sqlite", data)],
                          headers=USER, status=422)
        assert message in res.json["detail"]
    assert _names(client) == ["one"]
    created = client.post_json("/presses/", {"name": "three"}, headers=USER).json
    newest = client.get("/presses/%d/history" % created["id"]).json[0]
    assert (newest["operation"], newest["actor"], newest["after"]["name"]) == (
        "create", "anna", "three")
    assert client.get("/db/audit?component=db").json == []


def test_the_restore_entry_names_the_x_user(backup):
    """POST /db/restore is audited with the request's X-User, size and SHA-256."""
    client = _client()
    data = backup.read_bytes()
    res = client.post("/db/restore", upload_files=[("file", "b.sqlite", data)],
                      headers={"X-User": "operator-7"})
    assert res.json == {"status": "ok", "restored": True, "bytes": len(data)}
    assert _names(client) == ["one", "two"]
    entries = client.get("/db/audit?component=db").json
    assert [(e["operation"], e["record_id"], e["actor"], e["before"], e["after"])
            for e in entries] == [
        ("restore", "*", "operator-7", None,
         {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})]


def test_the_restore_entry_names_the_identity(backup):
    """With authenticate, the identity's name is the restore's actor."""
    def authenticate(request):
        return {"name": "boss", "roles": ["admin"]}

    client = _client(authenticate=authenticate)
    client.post("/db/restore", upload_files=[("file", "b.sqlite", backup.read_bytes())])
    assert [e["actor"] for e in client.get("/db/audit?component=db").json] == ["boss"]


def test_a_dry_run_over_http_writes_no_entry(backup):
    client = _client()
    client.post("/db/restore?dry_run=1", upload_files=[("file", "b", backup.read_bytes())],
                headers=USER)
    assert client.get("/db/audit?component=db").json == []


@pytest.mark.parametrize("value", [-1, "10", None, float("inf")])
def test_restore_wait_must_be_seconds(value):
    with pytest.raises(peestore.ConfigurationError, match="restore_wait"):
        peestore.RestPlugin(models=MODELS, restore_wait=value)


def _multipart(data):
    boundary = "peestoretestboundary"
    body = (("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.sqlite\"\r\n"
             "Content-Type: application/octet-stream\r\n\r\n" % boundary).encode()
            + data + ("\r\n--%s--\r\n" % boundary).encode())
    return body, "multipart/form-data; boundary=%s" % boundary


def _call(request, results, key):
    try:
        with urllib.request.urlopen(request, timeout=60) as res:
            results[key] = (res.status, dict(res.headers), res.read())
    except urllib.error.HTTPError as exc:
        results[key] = (exc.code, dict(exc.headers), exc.read())


def test_restore_wait_on_a_real_server(backup, db_path):
    """A request that stays open (a user route blocked on an event) makes POST
    /db/restore answer 503 with Retry-After after restore_wait; the database is
    unchanged, and a request sent during the wait completes while the stalled
    one is still open."""
    release, entered = threading.Event(), threading.Event()
    app = bottle.Bottle()

    @app.get("/stalled")
    def stalled():
        entered.set()
        release.wait(60)
        return {"status": "released"}

    app.install(peestore.RestPlugin(models=MODELS, restore_wait=1))
    results = {}
    with background(app, threads=4) as base:
        first = threading.Thread(target=_call, args=(base + "/stalled", results, "stalled"))
        first.start()
        try:
            assert entered.wait(30)
            body, content_type = _multipart(backup.read_bytes())
            post = urllib.request.Request(base + "/db/restore", data=body, method="POST",
                                          headers={"Content-Type": content_type,
                                                   "X-User": "anna"})
            restoring = threading.Thread(target=_call, args=(post, results, "restore"))
            restoring.start()
            while not gate._waiting and restoring.is_alive():  # the restore is waiting
                time.sleep(0.01)
            third = threading.Thread(target=_call,
                                     args=(base + "/presses/", results, "third"))
            third.start()
            third.join(60)
            restoring.join(60)
            assert not third.is_alive() and not restoring.is_alive()
            assert first.is_alive()  # the stalled request is still open
        finally:
            release.set()
            first.join(60)
        status, headers, text = results["restore"]
        assert status == 503
        assert int(headers["Retry-After"]) >= 1
        assert "nothing was changed" in json.loads(text)["detail"]
        status, _, text = results["third"]
        assert status == 200 and [p["name"] for p in json.loads(text)] == ["one"]
        assert results["stalled"][0] == 200
        # Unchanged: the same rows, no .pre-restore, no entry; a retry now succeeds.
        assert not (db_path.parent / (db_path.name + ".pre-restore")).exists()
        assert json.loads(urllib.request.urlopen(base + "/db/audit?component=db").read()) == []
        post = urllib.request.Request(base + "/db/restore", data=body, method="POST",
                                      headers={"Content-Type": content_type,
                                               "X-User": "anna"})
        _call(post, results, "retry")
        assert results["retry"][0] == 200
        names = json.loads(urllib.request.urlopen(base + "/presses/").read())
        assert sorted(p["name"] for p in names) == ["one", "two"]
    db = peestore.database.obj
    with db.connection_context():
        assert [e.actor for e in AuditLog.select().where(AuditLog.component == "db")] == [
            "anna"]
