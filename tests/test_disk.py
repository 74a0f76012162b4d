"""A full disk is an answer: DiskFullError (507, one CLI line) on a real, small tmpfs.

Each test mounts a tmpfs of a few MB (the tests run as root, here and in CI),
fills it until writes stop, and checks what a user would: the error comes
before SQLite's, every acknowledged row and audit entry is there, the file
is sound, reads go on, and writes come back once a file is deleted.
Without permission to mount, the tests skip; under PEESTORE_REQUIRE_TMPFS=1
(CI) they fail instead.
"""
import json
import os
import subprocess
import urllib.error
import urllib.request

import bottle
import peewee
import pytest
from peewee import CharField, TextField

import peestore
from peestore.cli import main
from peestore.db._space import disk_space
from peestore.rest._server import background

MiB = 1 << 20
PAYLOAD = "x" * 2000


class Reading(peestore.BaseAuditedModel):
    sensor = CharField(max_length=20)
    data = TextField()

    class Meta:
        component = "readings"


@pytest.fixture
def tmpfs(tmp_path):
    """A 4 MB tmpfs mounted for the test (unmounted after it)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        message = "cannot mount a tmpfs (%s)" % result.stdout.strip()
        if os.environ.get("PEESTORE_REQUIRE_TMPFS") == "1":
            pytest.fail(message + " and PEESTORE_REQUIRE_TMPFS=1")
        pytest.skip(message)
    try:
        yield mount
    finally:
        db = peestore.database.obj
        if db is not None and not db.is_closed():
            db.close()
        if db is not None:
            from peestore.db._connect import release_idle

            release_idle(db)
        if subprocess.run(["umount", str(mount)]).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)])


def fill(folder, leave):
    """Write a file into ``folder`` that leaves about ``leave`` bytes free; its path."""
    path = folder / "filler"
    st = os.statvfs(str(folder))
    size = max(st.f_bavail * st.f_frsize - leave, 0)
    with open(str(path), "wb") as f:
        f.write(b"\0" * size)
    return path


def counts():
    entries = peestore.AuditLog.select().where(peestore.AuditLog.component == "readings")
    return Reading.select().count(), entries.count()


def assert_sound(db, acknowledged):
    """Every acknowledged row and its audit entry are there; the file and chain are sound."""
    rows, entries = counts()
    assert rows == entries == len(acknowledged)
    assert {r.id for r in Reading.select(Reading.id)} == set(acknowledged)
    assert db.execute_sql("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert peestore.verify_audit()["ok"]


def test_writes_stop_before_sqlite_fails_and_come_back(tmpfs):
    """Under min_free_bytes every write path is refused with DiskFullError (never SQLite's
    error), nothing changes, reads go on; deleting a file brings writes back."""
    db = peestore.connect("sqlite:///%s" % (tmpfs / "app.db"), models=[Reading],
                          min_free_bytes=1 * MiB)
    filler = fill(tmpfs, 3 * MiB)
    acknowledged = []
    with pytest.raises(peestore.DiskFullError) as caught:
        for _ in range(10000):
            acknowledged.append(Reading.create(sensor="t1", data=PAYLOAD).id)
    assert acknowledged, "the first write was already refused"
    error = caught.value
    assert error.free_bytes < error.min_free_bytes == 1 * MiB
    assert "free" in str(error) and "nothing was changed" in str(error)
    assert "database or disk is full" not in str(error)  # refused before SQLite's
    assert_sound(db, acknowledged)

    first = Reading.get_by_id(acknowledged[0])  # reads go on
    refused = [
        lambda: Reading.create(sensor="t2", data="y"),
        lambda: Reading.create_many([{"sensor": "t3", "data": "z"}]),
        lambda: Reading.insert_many([{"sensor": "t4", "data": "z"}]).execute(),
        lambda: Reading.update(sensor="moved").execute(),
        lambda: Reading.delete().where(Reading.id == first.id).execute(),
        lambda: first.delete_instance(),
        lambda: Reading.delete_many([first.id]),
        lambda: setattr(first, "sensor", "renamed") or first.save(),
        lambda: peestore.backup(tmpfs / "copy.sqlite"),
        lambda: peestore.backup_rotating(tmpfs, keep=2),
    ]
    for write in refused:
        with pytest.raises(peestore.DiskFullError):
            write()
        assert_sound(db, acknowledged)
    assert Reading.get_by_id(first.id).sensor == "t1"
    assert not (tmpfs / "copy.sqlite").exists()
    assert not [p for p in os.listdir(str(tmpfs)) if p.startswith("backup-")]

    filler.unlink()
    again = Reading.create(sensor="t1", data="after")
    assert Reading.get_by_id(again.id).data == "after"
    assert_sound(db, acknowledged + [again.id])


def test_import_and_restore_are_refused_on_a_full_disk(tmpfs, tmp_path):
    """A CSV import and a restore change nothing on a full disk: DiskFullError."""
    db = peestore.connect("sqlite:///%s" % (tmpfs / "app.db"), models=[Reading],
                          min_free_bytes=1 * MiB)
    kept = [Reading.create(sensor="t1", data="a").id for _ in range(3)]
    archive = peestore.export_csv(tmp_path / "data.zip")
    saved = peestore.backup(tmp_path / "saved.sqlite")
    fill(tmpfs, MiB // 2)
    with pytest.raises(peestore.DiskFullError):
        peestore.import_csv(archive, mode="replace")
    with pytest.raises(peestore.DiskFullError):
        peestore.restore(saved)
    assert_sound(db, kept)
    assert not (tmpfs / "app.db.pre-restore").exists()


def test_sqlite_full_itself_is_a_disk_full_error(tmpfs):
    """With min_free_bytes=0 SQLite's "database or disk is full" becomes DiskFullError:
    the row and its audit entry are rolled back together."""
    db = peestore.connect("sqlite:///%s" % (tmpfs / "app.db"), models=[Reading],
                          min_free_bytes=0)
    filler = fill(tmpfs, 2 * MiB)
    acknowledged = []
    with pytest.raises(peestore.DiskFullError) as caught:
        for _ in range(10000):
            acknowledged.append(Reading.create(sensor="t1", data=PAYLOAD).id)
    assert "database or disk is full" in str(caught.value)
    assert caught.value.path == str(tmpfs)
    assert_sound(db, acknowledged)
    with pytest.raises(peestore.DiskFullError):  # a bulk query, too
        Reading.insert_many([{"sensor": "bulk", "data": PAYLOAD * 50}] * 40).execute()
    assert_sound(db, acknowledged)
    filler.unlink()
    acknowledged.append(Reading.create(sensor="t1", data="after").id)
    assert_sound(db, acknowledged)


def _call(url, method="GET", body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={
        "X-User": "op", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _upload(url, path):
    """(status, JSON) of a multipart POST of the file at ``path`` as field ``file``."""
    boundary = "peestore-test-boundary"
    body = (("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n"
             "Content-Type: application/octet-stream\r\n\r\n" % boundary).encode()
            + path.read_bytes() + ("\r\n--%s--\r\n" % boundary).encode())
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "X-User": "op", "Content-Type": "multipart/form-data; boundary=" + boundary})
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_http_answers_507_and_health_warns(tmpfs, tmp_path):
    """Over HTTP a full disk is a 507 whose detail says how much is free (never a 500);
    /db/health says "low disk" before writes stop and reports the sizes."""
    db = peestore.connect("sqlite:///%s" % (tmpfs / "app.db"), models=[Reading],
                          min_free_bytes=1 * MiB)
    saved = peestore.backup(tmp_path / "saved.sqlite")
    archive = peestore.export_csv(tmp_path / "data.zip")
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=[Reading]))
    db.close()
    filler = fill(tmpfs, 1900 * 1024)
    with background(app) as url:
        status, health = _call(url + "/db/health")
        assert status == 200 and health["status"] == "ok" and "latency_ms" in health
        disk = health["disk"]
        assert disk["min_free_bytes"] == MiB and disk["writable"] and disk["low"]
        assert MiB < disk["free_bytes"] < 2 * MiB
        assert disk["database_bytes"] > 0 and disk["wal_bytes"] >= 0
        assert [w for w in health["warnings"] if w.startswith("low disk")]

        acknowledged, status = [], 201
        for _ in range(10000):
            status, body = _call(url + "/readings/", "POST", {"sensor": "t", "data": PAYLOAD})
            if status != 201:
                break
            acknowledged.append(body["id"])
        assert status == 507, body
        assert "free" in body["detail"] and "nothing was changed" in body["detail"]
        assert "database or disk is full" not in body["detail"]
        status, health = _call(url + "/db/health")
        assert status == 200 and not health["disk"]["writable"]
        assert health["warnings"][0].startswith("disk full")
        status, rows = _call(url + "/readings/?limit=1000")
        assert status == 200 and sorted(r["id"] for r in rows) == sorted(acknowledged)
        assert _call(url + "/readings/%d" % acknowledged[0], "PATCH", {"sensor": "u"})[0] \
            == 507
        assert _call(url + "/readings/%d" % acknowledged[0], "DELETE")[0] == 507
        for route, path in (("/db/restore", saved), ("/db/import", archive)):
            status, body = _upload(url + route, path)
            assert status == 507 and "disk full" in body["detail"], (route, body)
        assert _call(url + "/db/backup.sqlite")[0] == 507

        filler.unlink()
        status, body = _call(url + "/readings/", "POST", {"sensor": "t", "data": "after"})
        assert status == 201
        acknowledged.append(body["id"])
    assert_sound(db, acknowledged)


def test_http_maps_sqlite_full_to_507(tmpfs):
    """SQLite's own SQLITE_FULL (no min_free_bytes) is a 507 over HTTP too."""
    db = peestore.connect("sqlite:///%s" % (tmpfs / "app.db"), models=[Reading],
                          min_free_bytes=0)
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=[Reading]))
    db.close()
    fill(tmpfs, 2 * MiB)
    statuses = set()
    with background(app) as url:
        for _ in range(10000):
            status, body = _call(url + "/readings/", "POST", {"sensor": "t", "data": PAYLOAD})
            statuses.add(status)
            if status != 201:
                break
    assert statuses == {201, 507}, body
    assert "database or disk is full" in body["detail"]


def test_cli_says_disk_full_in_one_line(tmpfs, tmp_path, capsys):
    """The command line reports a full disk in one line, exit status 1, nothing changed."""
    db = peestore.connect("sqlite:///%s" % (tmpfs / "app.db"), models=[Reading],
                          min_free_bytes=0)
    Reading.create(sensor="t1", data="a")
    archive = peestore.export_csv(tmp_path / "data.zip")
    db.close()
    fill(tmpfs, 2 * MiB)  # under the command line's default min_free_bytes (16 MiB)
    url = "sqlite:///%s" % (tmpfs / "app.db")
    backups = tmpfs / "backups"
    backups.mkdir()
    for argv in (["import", "--db", url, str(archive)],
                 ["backup", "--db", url, "--keep", "3", str(backups)],
                 ["backup", "--db", url, str(tmpfs / "copy.sqlite")]):
        capsys.readouterr()
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "disk full" in err, err
    assert not os.listdir(str(backups))
    peestore.connect(url, models=[Reading], min_free_bytes=0)
    assert counts() == (1, 1)


def test_rotation_keeps_exactly_keep_checked_backups(tmp_path):
    """backup_rotating writes a checked backup-YYYYmmddTHHMMSSZ.sqlite and keeps the
    newest ``keep``; the list says which passed their check."""
    peestore.connect("sqlite:///%s" % (tmp_path / "app.db"), models=[Reading])
    for i in range(5):
        Reading.create(sensor="t%d" % i, data="a")
    folder = tmp_path / "backups"
    folder.mkdir()
    first = peestore.backup_rotating(folder, keep=3)
    old = ["backup-2020010%dT000000Z.sqlite" % day for day in range(1, 5)]
    for name in old:
        (folder / name).write_bytes(first.read_bytes())
    (folder / "notes.txt").write_text("not a backup")
    newest = peestore.backup_rotating(folder, keep=3)
    names = sorted(p.name for p in folder.iterdir() if p.name.startswith("backup-"))
    assert len(names) == 3 and newest.name in names and first.name in names
    assert names[0] == old[-1]  # the oldest went first
    assert (folder / "notes.txt").exists()
    from peestore.tools._rotate import list_backups

    listed = list_backups(folder)
    assert [b["name"] for b in listed] == sorted(names, reverse=True)
    assert [b["verified"] for b in listed] == [True, True, False]
    assert listed[0]["size"] == newest.stat().st_size and listed[0]["time"].endswith("Z")
    copy = peewee.SqliteDatabase(str(newest))
    assert copy.execute_sql("SELECT count(*) FROM reading").fetchone()[0] == 5
    copy.close()


def test_a_backup_that_fails_its_check_is_removed(tmp_path):
    """A backup whose audit chain does not verify is deleted and raises; the kept
    backups stay as they were."""
    db = peestore.connect("sqlite:///%s" % (tmp_path / "app.db"), models=[Reading])
    Reading.create(sensor="t1", data="a")
    folder = tmp_path / "backups"
    folder.mkdir()
    good = peestore.backup_rotating(folder, keep=1)
    db.execute_sql("UPDATE audit_log SET actor = 'someone else'")  # not an audited write
    with pytest.raises(peestore.PeestoreError, match="failed its check and was deleted"):
        peestore.backup_rotating(folder, keep=1)
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) \
        == [good.name]


def test_bad_arguments_are_configuration_errors(tmp_path):
    for value in (-1, True, "16M", 1.5):
        with pytest.raises(peestore.ConfigurationError):
            peestore.connect("sqlite:///%s" % (tmp_path / "a.db"), min_free_bytes=value)
    peestore.connect("sqlite:///%s" % (tmp_path / "a.db"))
    for keep in (0, -1, True, "3"):
        with pytest.raises(peestore.ConfigurationError):
            peestore.backup_rotating(tmp_path, keep=keep)
    with pytest.raises(peestore.ConfigurationError):
        background(bottle.Bottle(), backup_every=10).__enter__()


def test_connecting_a_database_again_keeps_its_limit(tmp_path):
    """bootstrap (or peestore serve) of a database the app connected keeps its limit."""
    db = peestore.connect("sqlite:///%s" % (tmp_path / "a.db"), models=[Reading],
                          min_free_bytes=1 << 62)
    peestore.bootstrap(models=[Reading], database_url=db)
    with pytest.raises(peestore.DiskFullError):
        Reading.create(sensor="t", data="a")
    peestore.connect(db, models=[Reading], min_free_bytes=0)
    Reading.create(sensor="t", data="a")


def test_journal_size_limit_is_set(tmp_path):
    db = peestore.connect("sqlite:///%s" % (tmp_path / "a.db"))
    assert db.execute_sql("PRAGMA journal_size_limit").fetchone()[0] == 4 * MiB
    db.close()


def test_server_backends_have_no_disk_limit(connect_db, backend):
    """min_free_bytes applies to SQLite files only: a server database manages its own
    storage (health reports no disk for it)."""
    db = connect_db([Reading], min_free_bytes=1 << 62)
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=[Reading]))
    if backend == "sqlite":
        assert disk_space(db) is not None
        with pytest.raises(peestore.DiskFullError):
            Reading.create(sensor="t", data="a")
    else:
        assert disk_space(db) is None
        Reading.create(sensor="t", data="a")
    db.close()
    import webtest

    health = webtest.TestApp(app).get("/db/health").json
    assert health["status"] == "ok"
    assert (health["disk"] is None) == (backend != "sqlite")


def test_serve_makes_backups_on_a_timer_and_lists_them_to_admins(tmp_path):
    """serve(backup_dir=..., backup_every=...) writes a checked backup at once when the
    folder has none; GET /db/backups lists it (name, size, time, verified), admins only."""
    import time

    db = peestore.connect("sqlite:///%s" % (tmp_path / "app.db"), models=[Reading])
    Reading.create(sensor="t1", data="a")
    db.close()
    users = {"Bearer boss": {"name": "boss", "roles": ["admin"]},
             "Bearer op": {"name": "op", "roles": []}}
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(
        models=[Reading], authenticate=lambda request: users.get(
            request.get_header("Authorization"))))
    folder = tmp_path / "backups"
    folder.mkdir()

    def get(url, token=None):
        req = urllib.request.Request(url, headers={"Authorization": token} if token else {})
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                return res.status, json.loads(res.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    with background(app, backup_dir=folder, backup_every=3600, backup_keep=2) as url:
        deadline = time.monotonic() + 60
        listed = []
        while time.monotonic() < deadline and not (listed and listed[0]["verified"]):
            time.sleep(0.1)
            status, listed = get(url + "/db/backups", "Bearer boss")
            assert status == 200
        assert len(listed) == 1 and listed[0]["verified"], listed
        assert listed[0]["name"].startswith("backup-") and listed[0]["size"] > 0
        assert (folder / listed[0]["name"]).stat().st_size == listed[0]["size"]
        assert get(url + "/db/backups", "Bearer op")[0] == 403
        assert get(url + "/db/backups")[0] == 401
    status, listed = webtest_get(app, "/db/backups", "Bearer boss")
    assert listed == []  # the server stopped: no folder of its own any more


def webtest_get(app, path, token):
    import webtest

    res = webtest.TestApp(app).get(path, headers={"Authorization": token})
    return res.status_int, res.json
