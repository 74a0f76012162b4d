"""Tests of the /db data routes: diagram, export, import, backup, restore over WSGI."""
import csv
import io
import os
import re
import sqlite3
import xml.etree.ElementTree as ET
import zipfile

import bottle
import peewee
import pytest
import webtest

import peestore
from peestore import AuditLog

from .conftest import BACKENDS, backend_url


class Tool(peestore.BaseAuditedModel):
    name = peewee.CharField()
    wear = peewee.FloatField(default=0.0)

    class Meta:
        table_name = "dr_tool"
        component = "tools"


class Use(peestore.BaseAuditedModel):
    tool = peewee.ForeignKeyField(Tool)
    at = peewee.DateTimeField()

    class Meta:
        table_name = "dr_use"


MODELS = [Tool, Use]
USER = {"X-User": "tester"}


def _app(**kwargs):
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=MODELS, **kwargs))
    return webtest.TestApp(app)


@pytest.fixture
def client(sqlite_db):
    db = sqlite_db(MODELS)
    Tool.create(name="drill")
    Tool.create(name="saw")
    db.close()
    return _app()


def _zip(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, rows in files.items():
            text = io.StringIO()
            csv.writer(text).writerows(rows)
            zf.writestr(name, text.getvalue())
    return buf.getvalue()


def _backup_bytes(client):
    return client.get("/db/backup.sqlite").body


def test_diagram(client):
    """GET /db/diagram.svg is SVG of the live database."""
    res = client.get("/db/diagram.svg")
    assert res.content_type == "image/svg+xml"
    root = ET.fromstring(res.body)
    assert {g.get("data-table") for g in root.iter("{http://www.w3.org/2000/svg}g")} == {
        "audit_log", "dr_tool", "dr_use"}


def test_export_zip_streams_every_table(client):
    """GET /db/export.zip is a streamed zip with a CSV per table."""
    res = client.get("/db/export.zip")
    assert res.content_type == "application/zip"
    assert re.match(r'attachment; filename="export-\d{8}T\d{6}Z\.zip"',
                    res.headers["Content-Disposition"])
    with zipfile.ZipFile(io.BytesIO(res.body)) as zf:
        assert sorted(zf.namelist()) == ["audit_log.csv", "dr_tool.csv", "dr_use.csv"]
        rows = list(csv.reader(io.TextIOWrapper(zf.open("dr_tool.csv"), encoding="utf-8")))
    assert rows == [["id", "name", "wear"], ["1", "drill", "0.0"], ["2", "saw", "0.0"]]


def test_export_is_sent_from_a_finished_file(sqlite_db, db_path):
    """The export is written to a file beside the database, then handed to the server's
    wsgi.file_wrapper with its Content-Length: the request ends before the client reads,
    and the file is unlinked at once."""
    sqlite_db(MODELS)
    Tool.insert_many([{"name": f"t{i}" * 20} for i in range(3000)]).execute()
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=MODELS))
    wrapped = []

    def file_wrapper(fileobj, block_size=8192):
        wrapped.append(fileobj)
        return iter(lambda: fileobj.read(block_size), b"")

    statuses = []
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/db/export.zip", "SERVER_NAME": "x",
               "SERVER_PORT": "80", "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http",
               "wsgi.file_wrapper": file_wrapper}
    body = app(environ, lambda status, headers, exc_info=None: statuses.append(
        (status, dict(headers))))
    assert len(wrapped) == 1
    assert [p.name for p in db_path.parent.iterdir() if p.name.startswith(".")] == []
    data = b"".join(body)
    wrapped[0].close()
    status, headers = statuses[0]
    assert status.startswith("200") and int(headers["Content-Length"]) == len(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("dr_tool.csv").count(b"\n") == 3001


def test_export_selected_tables(client):
    """?tables= limits the export; an unknown table is a 400."""
    res = client.get("/db/export.zip?tables=dr_tool")
    assert zipfile.ZipFile(io.BytesIO(res.body)).namelist() == ["dr_tool.csv"]
    res = client.get("/db/export.zip?tables=nope", status=400)
    assert "nope" in res.json["detail"]


def test_import_round_trip(client):
    """POST /db/import with replace brings the exported rows back, audited per table."""
    exported = client.get("/db/export.zip?tables=dr_tool,dr_use").body
    client.delete("/tools/1", headers=USER)
    res = client.post("/db/import?mode=replace", upload_files=[("file", "x.zip", exported)],
                      headers=USER)
    assert res.json == {"imported": {"dr_tool": 2, "dr_use": 0}, "skipped": {}}
    assert [t["name"] for t in client.get("/tools/").json] == ["drill", "saw"]
    entries = client.get("/db/audit?operation=import").json
    assert {e["component"] for e in entries} == {"tools", "dr_use"}
    assert all(e["actor"] == "tester" for e in entries)


def test_import_mode_as_form_field(client):
    """mode may come as a form field too."""
    data = _zip({"dr_tool.csv": [["id", "name", "wear"], ["10", "lathe", "0.5"]]})
    res = client.post("/db/import", {"mode": "append"},
                      upload_files=[("file", "x.zip", data)], headers=USER)
    assert res.json == {"imported": {"dr_tool": 1}, "skipped": {}}


def test_import_errors(client):
    """Header mismatch 422 naming the table; bad mode 400; no file 400; nothing imported."""
    bad = _zip({"dr_tool.csv": [["id", "label"], ["3", "x"]]})
    res = client.post("/db/import", upload_files=[("file", "x.zip", bad)], headers=USER,
                      status=422)
    assert "dr_tool" in res.json["detail"] and "label" in res.json["detail"]
    good = _zip({"dr_tool.csv": [["id", "name", "wear"], ["3", "x", "0"]]})
    res = client.post("/db/import?mode=merge", upload_files=[("file", "x.zip", good)],
                      headers=USER, status=400)
    assert "mode" in res.json["detail"]
    res = client.post("/db/import", {"other": "1"}, headers=USER, status=400)
    assert "file" in res.json["detail"]
    res = client.post("/db/import", upload_files=[("file", "x.zip", b"junk")], headers=USER,
                      status=422)
    assert len(client.get("/tools/").json) == 2


def test_import_needs_x_user(client):
    """Import is a write: without X-User (and no authenticate) it is a 400."""
    good = _zip({"dr_tool.csv": [["id", "name", "wear"], ["3", "x", "0"]]})
    client.post("/db/import", upload_files=[("file", "x.zip", good)], status=400)


def test_backup_download(client):
    """GET /db/backup.sqlite is the database, with a dated attachment name."""
    res = client.get("/db/backup.sqlite")
    assert res.content_type == "application/x-sqlite3"
    assert re.match(r'attachment; filename="backup-\d{8}T\d{6}Z\.sqlite"$',
                    res.headers["Content-Disposition"])
    assert res.body.startswith(b"SQLite format 3\x00")
    assert int(res.headers["Content-Length"]) == len(res.body)


def test_backup_leaves_no_temporary_file(client, db_path):
    """The temporary copy is gone once the response is sent."""
    client.get("/db/backup.sqlite")
    assert [p.name for p in db_path.parent.iterdir() if p.name.startswith(".backup")] == []


def test_restore(client, db_path):
    """POST /db/restore swaps in the uploaded backup; dry_run validates only."""
    data = _backup_bytes(client)
    client.post("/tools/", '{"name": "extra"}', content_type="application/json",
                headers=USER)
    assert len(client.get("/tools/").json) == 3
    res = client.post("/db/restore?dry_run=true", upload_files=[("file", "b.sqlite", data)],
                      headers=USER)
    assert res.json == {"status": "ok", "restored": False, "bytes": len(data)}
    assert len(client.get("/tools/").json) == 3
    res = client.post("/db/restore", upload_files=[("file", "b.sqlite", data)], headers=USER)
    assert res.json == {"status": "ok", "restored": True, "bytes": len(data)}
    assert [t["name"] for t in client.get("/tools/").json] == ["drill", "saw"]
    assert (db_path.parent / (db_path.name + ".pre-restore")).exists()
    assert [p.name for p in db_path.parent.iterdir() if p.name.startswith(".upload")] == []


def test_restore_options_as_form_fields(client):
    """integrity_check and dry_run may be form fields; a bad value is a 400."""
    data = _backup_bytes(client)
    res = client.post("/db/restore", {"dry_run": "1", "integrity_check": "false"},
                      upload_files=[("file", "b.sqlite", data)], headers=USER)
    assert res.json["restored"] is False
    client.post("/db/restore?dry_run=maybe", upload_files=[("file", "b.sqlite", data)],
                headers=USER, status=400)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_schema"])
def test_restore_rejects_bad_files_with_422(client, tmp_path, damage):
    """Invalid backups are a 422 and the database keeps answering."""
    data = _backup_bytes(client)
    if damage == "garbage":
        data = os.urandom(10000)
    elif damage == "truncated":
        data = data[:len(data) // 2]
    else:
        other = tmp_path / "other.sqlite"
        conn = sqlite3.connect(str(other))
        conn.execute("CREATE TABLE dr_tool (id INTEGER PRIMARY KEY)")
        conn.commit()
        conn.close()
        data = other.read_bytes()
    res = client.post("/db/restore", upload_files=[("file", "b.sqlite", data)], headers=USER,
                      status=422)
    assert res.json["detail"]
    assert len(client.get("/tools/").json) == 2


def test_restore_over_the_upload_limit_is_413(sqlite_db):
    """Content-Length above max_upload_bytes is refused before the body is read."""
    sqlite_db(MODELS)
    client = _app(max_upload_bytes=1000)
    res = client.post("/db/restore", upload_files=[("file", "b.sqlite", b"x" * 5000)],
                      headers=USER, status=413)
    assert "max_upload_bytes" in res.json["detail"]
    client.post("/db/import", upload_files=[("file", "b.zip", b"x" * 5000)],
                headers=USER, status=413)


def test_restore_without_content_length_is_counted(sqlite_db, db_path):
    """A body with no Content-Length is counted as it streams and cut at the limit."""
    sqlite_db(MODELS)
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=MODELS, max_upload_bytes=1000))
    body = (b"--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b\"\r\n\r\n"
            + b"x" * 5000 + b"\r\n--XX--\r\n")
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/db/restore", "SERVER_NAME": "x",
               "SERVER_PORT": "80", "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
               "CONTENT_TYPE": "multipart/form-data; boundary=XX", "HTTP_X_USER": "t"}
    statuses = []
    b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    assert statuses[0].startswith("413")
    assert [p.name for p in db_path.parent.iterdir() if p.name.startswith(".upload")] == []


def test_admin_role_needed(sqlite_db):
    """With authenticate, backup, restore and import need the admin role."""
    sqlite_db(MODELS)

    def authenticate(request):
        name = request.headers.get("X-Name")
        if not name:
            return None
        return {"name": name, "roles": ["admin"] if name == "boss" else ["operator"]}

    client = _app(authenticate=authenticate)
    client.get("/db/backup.sqlite", status=401)
    client.get("/db/backup.sqlite", headers={"X-Name": "op"}, status=403)
    client.post("/db/restore", upload_files=[("file", "b", b"x")], headers={"X-Name": "op"},
                status=403)
    client.post("/db/import", upload_files=[("file", "b", b"x")], headers={"X-Name": "op"},
                status=403)
    data = client.get("/db/backup.sqlite", headers={"X-Name": "boss"}).body
    client.post("/db/restore", upload_files=[("file", "b", data)],
                headers={"X-Name": "boss"}, status=200)
    client.get("/db/diagram.svg", headers={"X-Name": "op"}, status=200)


def test_prefix(sqlite_db):
    """The routes live under the plugin's prefix."""
    sqlite_db(MODELS)
    client = _app(prefix="/api")
    client.get("/api/db/diagram.svg")
    client.get("/api/db/export.zip")
    client.get("/db/diagram.svg", status=404)


@pytest.mark.parametrize("server", [b for b in BACKENDS if b != "sqlite"])
def test_backup_and_restore_are_501_on_servers(server, tmp_path):
    """PostgreSQL and MariaDB get a 501 that names their dump tools."""
    peestore.connect(backend_url(server, tmp_path), models=MODELS)
    client = _app()
    res = client.get("/db/backup.sqlite", status=501)
    assert "pg_dump" in res.json["detail"] and "mariadb-dump" in res.json["detail"]
    res = client.post("/db/restore", upload_files=[("file", "b", b"x")], headers=USER,
                      status=501)
    assert "pg_dump" in res.json["detail"]


def test_export_and_import_on_every_backend(connect_db):
    """Export and import over HTTP work on SQLite, PostgreSQL and MariaDB."""
    connect_db(MODELS)
    Tool.create(name="drill")
    client = _app()
    data = client.get("/db/export.zip?tables=dr_tool").body
    res = client.post("/db/import?mode=replace", upload_files=[("file", "x.zip", data)],
                      headers=USER)
    assert res.json == {"imported": {"dr_tool": 1}, "skipped": {}}
    assert AuditLog.select().where(AuditLog.operation == "import").count() == 1


def test_upload_without_the_file_field_asks_for_it(client):
    """No `file` part: the 400 says how to send the file, whatever other fields come."""
    for route, fields in (("/db/restore", {"other": "x" * 10000}),
                          ("/db/restore", {"dry_run": "true"}),
                          ("/db/import", {"mode": "append", "x": "1"})):
        res = client.post(route, fields, headers=USER, content_type="multipart/form-data",
                          status=400)
        assert res.json == {"detail": "no file: send the file as the multipart field 'file'"}


def test_upload_field_the_route_does_not_take_is_named(client, db_path):
    """An unknown form field is a 400 naming it and the fields the route takes."""
    data = _backup_bytes(client)
    res = client.post("/db/restore", {"mode": "replace"},
                      upload_files=[("file", "b.sqlite", data)], headers=USER, status=400)
    assert res.json["detail"] == ("form field 'mode' is not one this route takes "
                                  "(file, integrity_check, dry_run)")
    good = _zip({"dr_tool.csv": [["id", "name", "wear"], ["3", "x", "0"]]})
    res = client.post("/db/import", {"dry_run": "true"},
                      upload_files=[("file", "x.zip", good)], headers=USER, status=400)
    assert res.json["detail"] == "form field 'dry_run' is not one this route takes (file, mode)"
    assert len(client.get("/tools/").json) == 2
    assert [p.name for p in db_path.parent.iterdir() if p.name.startswith(".upload")] == []
