"""Tests of peestore.restore: validation, atomic swap, nothing changed on failure."""
import os
import sqlite3
import threading
import time

import peewee
import pytest

import peestore
from peestore.db._gate import gate


class Recipe(peestore.BaseAuditedModel):
    name = peewee.CharField()
    speed = peewee.FloatField(default=1.0)


@pytest.fixture
def live(sqlite_db, db_path, tmp_path):
    """A live database with one recipe, and a backup of it holding two."""
    db = sqlite_db([Recipe])
    Recipe.create(name="one")
    Recipe.create(name="two")
    peestore.backup(tmp_path / "good.sqlite")
    Recipe.get(Recipe.name == "two").delete_instance()
    return db


def _names():
    return sorted(r.name for r in Recipe.select())


def _assert_untouched(db_path):
    assert _names() == ["one"]
    assert not (db_path.parent / (db_path.name + ".pre-restore")).exists()
    leftovers = [p.name for p in db_path.parent.iterdir() if p.name.endswith(".restore")]
    assert leftovers == []


def test_restore_swaps_in_the_backup(live, db_path, tmp_path):
    """The backup's rows are live afterwards; the old file is kept as .pre-restore."""
    result = peestore.restore(tmp_path / "good.sqlite")
    assert result == {"status": "ok", "restored": True,
                      "bytes": os.path.getsize(tmp_path / "good.sqlite")}
    assert _names() == ["one", "two"]
    pre = db_path.parent / (db_path.name + ".pre-restore")
    conn = sqlite3.connect(str(pre))
    assert conn.execute("SELECT count(*) FROM recipe").fetchone()[0] == 1
    conn.close()
    Recipe.create(name="three")  # the restored database takes writes
    assert _names() == ["one", "three", "two"]
    assert (tmp_path / "good.sqlite").exists()  # src is not consumed


def test_restore_keeps_only_the_latest_pre_restore(live, db_path, tmp_path):
    """A second restore replaces the older .pre-restore."""
    peestore.restore(tmp_path / "good.sqlite")
    Recipe.create(name="three")
    peestore.restore(tmp_path / "good.sqlite")
    pre = db_path.parent / (db_path.name + ".pre-restore")
    conn = sqlite3.connect(str(pre))
    assert conn.execute("SELECT count(*) FROM recipe").fetchone()[0] == 3
    conn.close()
    assert not (db_path.parent / (db_path.name + ".pre-restore.tmp")).exists()


def test_pre_restore_holds_wal_content(live, db_path, tmp_path):
    """Writes still in the -wal at restore time are in the .pre-restore copy."""
    for i in range(20):
        Recipe.create(name=f"w{i}")
    assert os.path.getsize(str(db_path) + "-wal") > 0
    peestore.restore(tmp_path / "good.sqlite")
    conn = sqlite3.connect(str(db_path) + ".pre-restore")
    assert conn.execute("SELECT count(*) FROM recipe").fetchone()[0] == 21
    conn.close()


def test_stale_wal_cannot_leak_into_the_new_file(live, db_path, tmp_path):
    """Old -wal/-shm/-journal files are gone before the new file arrives."""
    for i in range(5):
        Recipe.create(name=f"w{i}")
    live.close()
    peestore.restore(tmp_path / "good.sqlite")
    live.close()
    for suffix in ("-wal", "-shm", "-journal"):
        assert not os.path.exists(str(db_path) + suffix)
    with live.connection_context():
        assert _names() == ["one", "two"]


def test_dry_run_changes_nothing(live, db_path, tmp_path):
    """dry_run validates, reports restored false and leaves everything as it was."""
    before = sorted(os.listdir(str(db_path.parent)))
    result = peestore.restore(tmp_path / "good.sqlite", dry_run=True)
    assert result["restored"] is False and result["status"] == "ok"
    assert sorted(os.listdir(str(db_path.parent))) == before
    assert _names() == ["one"]


def test_restore_calls_on_restore_listeners(live, tmp_path):
    """on_restore listeners run after a restore, not after a dry run."""
    calls = []
    peestore.on_restore(lambda: calls.append(_names()))
    peestore.restore(tmp_path / "good.sqlite", dry_run=True)
    assert calls == []
    peestore.restore(tmp_path / "good.sqlite")
    assert calls == [["one", "two"]]


def test_garbage_is_rejected(live, db_path, tmp_path):
    """Random bytes are not a backup."""
    bad = tmp_path / "garbage.sqlite"
    bad.write_bytes(os.urandom(8192))
    with pytest.raises(peestore.RestoreError, match="not a SQLite database"):
        peestore.restore(bad)
    _assert_untouched(db_path)


def test_empty_file_is_rejected(live, db_path, tmp_path):
    """An empty file is not a backup."""
    bad = tmp_path / "empty.sqlite"
    bad.write_bytes(b"")
    with pytest.raises(peestore.RestoreError):
        peestore.restore(bad)
    _assert_untouched(db_path)


def test_truncated_file_is_rejected(live, db_path, tmp_path):
    """A backup cut short (a dropped upload) is rejected by its header."""
    data = (tmp_path / "good.sqlite").read_bytes()
    for cut in (len(data) // 2, len(data) - 4096, 50):
        bad = tmp_path / "cut.sqlite"
        bad.write_bytes(data[:cut])
        with pytest.raises(peestore.RestoreError, match="truncated|not a SQLite"):
            peestore.restore(bad, integrity_check=False)
        _assert_untouched(db_path)


def test_wrong_schema_is_rejected(live, db_path, tmp_path):
    """A SQLite file without the models' tables and columns is rejected, naming them."""
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(str(other))
    conn.execute("CREATE TABLE recipe (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("CREATE TABLE something (x)")
    conn.commit()
    conn.close()
    with pytest.raises(peestore.RestoreError) as info:
        peestore.restore(other)
    message = str(info.value)
    assert "table audit_log" in message and "speed" in message and "recipe" in message
    _assert_untouched(db_path)


def test_corrupted_file_is_rejected(live, db_path, tmp_path):
    """A backup with a damaged page fails PRAGMA integrity_check."""
    Recipe.create_many([{"name": f"r{i}"} for i in range(300)])
    peestore.backup(tmp_path / "big.sqlite")
    data = bytearray((tmp_path / "big.sqlite").read_bytes())
    page = 4096
    assert len(data) > 4 * page
    # Damage the cell content (at the end of each page), keeping the file header.
    for start in range(page, len(data), page):
        for offset in range(start + page - 600, start + page - 100, 7):
            data[offset] = 0x5A
    bad = tmp_path / "corrupt.sqlite"
    bad.write_bytes(bytes(data))
    with pytest.raises(peestore.RestoreError):
        peestore.restore(bad)
    assert len(_names()) == 301
    assert not (db_path.parent / (db_path.name + ".pre-restore")).exists()


def test_missing_file_is_rejected(live, db_path, tmp_path):
    """A path with no file is a RestoreError."""
    with pytest.raises(peestore.RestoreError, match="no backup file"):
        peestore.restore(tmp_path / "absent.sqlite")
    _assert_untouched(db_path)


def test_failed_swap_leaves_old_database_in_service(live, db_path, tmp_path, monkeypatch):
    """If the final rename fails, the old database still answers."""
    real_replace = os.replace

    def failing_replace(a, b):
        if str(b) == str(db_path):
            raise OSError("disk full")
        return real_replace(a, b)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        peestore.restore(tmp_path / "good.sqlite")
    monkeypatch.undo()
    assert _names() == ["one"]
    Recipe.create(name="still writable")
    leftovers = [p.name for p in db_path.parent.iterdir() if p.name.endswith(".restore")]
    assert leftovers == []


def test_restore_refused_while_another_connection_is_open(live, db_path, tmp_path):
    """Another connection to the live file makes restore fail with nothing changed:
    busy (try again), not a bad file."""
    other = sqlite3.connect(str(db_path))
    other.execute("SELECT count(*) FROM recipe").fetchone()
    try:
        with pytest.raises(peestore.BusyError, match="in use") as info:
            peestore.restore(tmp_path / "good.sqlite")
        assert not isinstance(info.value, peestore.RestoreError)
    finally:
        other.close()
    assert _names() == ["one"]
    assert not (db_path.parent / (db_path.name + ".pre-restore")).exists()


def test_restore_inside_a_transaction_is_refused(live, tmp_path):
    """restore() inside db.atomic() raises and changes nothing."""
    with live.atomic():
        with pytest.raises(peestore.PeestoreError, match="transaction"):
            peestore.restore(tmp_path / "good.sqlite")
    assert _names() == ["one"]


def test_restore_without_integrity_check_still_checks_schema(live, tmp_path):
    """integrity_check=False skips only the integrity check."""
    other = tmp_path / "other.sqlite"
    sqlite3.connect(str(other)).execute("CREATE TABLE x (y)").connection.close()
    with pytest.raises(peestore.RestoreError, match="missing"):
        peestore.restore(other, integrity_check=False)


def test_requests_wait_for_the_swap(live, db_path, tmp_path):
    """A request holding the gate shared delays the swap; one arriving meanwhile waits."""
    order = []
    entered = threading.Event()
    release = threading.Event()

    def request():
        with gate.shared():
            entered.set()
            release.wait(5)
            order.append("request done")

    live.close()  # connections are per request, as the plugin opens them
    first = threading.Thread(target=request)
    first.start()
    entered.wait(5)
    restorer = threading.Thread(
        target=lambda: (peestore.restore(tmp_path / "good.sqlite", database=live),
                        order.append("restored")))
    restorer.start()
    time.sleep(0.2)
    assert order == []  # the restore waits for the request in flight

    def late_request():
        with gate.shared(), live.connection_context():
            order.append(("late request", _names()))

    late = threading.Thread(target=late_request)
    late.start()
    time.sleep(0.2)
    assert order == []  # the late request waits behind the restore
    release.set()
    for t in (first, restorer, late):
        t.join(10)
    assert order[0] == "request done"
    # the late request ran after the swap: it sees the restored rows
    assert sorted(order[1:], key=str) == [("late request", ["one", "two"]), "restored"]


def test_restore_from_the_command_line_style_checks_live_tables(db_path, tmp_path):
    """With no registered models, the live database's tables and columns are required."""
    peestore.connect(f"sqlite:///{db_path}", models=[Recipe])
    Recipe.create(name="x")
    db = peestore.connect(f"sqlite:///{db_path}", create_tables=False)
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(str(other))
    conn.execute("CREATE TABLE audit_log (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    with pytest.raises(peestore.RestoreError, match="recipe"):
        peestore.restore(other)
    db.close()


# -- the restore's own audit entry ------------------------------------------

def _restore_entries():
    from peestore import AuditLog

    return [e.to_dict() for e in AuditLog.select().where(AuditLog.component == "db")]


def test_a_restore_is_audited(live, tmp_path):
    """After the swap the restored database holds one entry: who restored, and the
    uploaded file's size and SHA-256."""
    import hashlib

    from peestore import AuditLog

    data = (tmp_path / "good.sqlite").read_bytes()
    backup_entries = AuditLog.select().count() - 1  # the live one's delete is not in it
    with peestore.actor("anna"):
        peestore.restore(tmp_path / "good.sqlite")
    entries = _restore_entries()
    assert len(entries) == 1
    entry = entries[0]
    assert (entry["component"], entry["operation"], entry["record_id"], entry["actor"]) == (
        "db", "restore", "*", "anna")
    assert entry["before"] is None
    assert entry["after"] == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert AuditLog.select().count() == backup_entries + 1


def test_a_dry_run_writes_no_entry(live, tmp_path):
    """A dry run changes nothing, the audit log included."""
    from peestore import AuditLog

    before = AuditLog.select().count()
    peestore.restore(tmp_path / "good.sqlite", dry_run=True)
    assert AuditLog.select().count() == before and _restore_entries() == []


def test_a_restore_from_the_command_line_is_blamed_on_cli(live, db_path, tmp_path, capsys):
    """peestore restore writes the entry with actor cli."""
    from peestore.cli._main import main

    live.close()
    assert main(["restore", "--db", f"sqlite:///{db_path}", str(tmp_path / "good.sqlite")]) == 0
    db = peestore.connect(f"sqlite:///{db_path}", models=[Recipe])
    assert [(e["operation"], e["actor"]) for e in _restore_entries()] == [("restore", "cli")]
    db.close()


# -- restore waits only so long for requests in flight ----------------------

def test_restore_gives_up_on_a_request_that_does_not_end(live, db_path, tmp_path):
    """A request in flight past ``wait`` makes restore raise BusyError with nothing
    changed, and the requests queued behind the restore go on at once."""
    entered, release = threading.Event(), threading.Event()
    done = []

    def stalled_request():
        with gate.shared():
            entered.set()
            release.wait(30)

    live.close()
    stalled = threading.Thread(target=stalled_request)
    stalled.start()
    errors = []

    def restorer():
        try:
            peestore.restore(tmp_path / "good.sqlite", database=live, wait=0.5)
        except peestore.BusyError as exc:
            errors.append(exc)

    def late_request():
        with gate.shared(), live.connection_context():
            done.append(_names())

    try:
        assert entered.wait(10)
        restoring = threading.Thread(target=restorer)
        restoring.start()
        while not gate._waiting and restoring.is_alive():  # the restore waits at the gate
            time.sleep(0.01)
        late = threading.Thread(target=late_request)
        late.start()
        late.join(30)
        restoring.join(30)
        # Both ended while the stalled request still holds the gate.
        assert not late.is_alive() and not restoring.is_alive() and stalled.is_alive()
    finally:
        release.set()
        stalled.join(10)
    assert done == [["one"]]
    assert len(errors) == 1 and "nothing was changed" in str(errors[0])
    assert errors[0].retry_after >= 1
    _assert_untouched(db_path)
    with live.connection_context():
        assert _restore_entries() == []


def test_wait_must_be_seconds(live, tmp_path):
    """A negative or non-number wait is a ConfigurationError."""
    for wait in (-1, "10", float("nan")):
        with pytest.raises(peestore.ConfigurationError, match="wait"):
            peestore.restore(tmp_path / "good.sqlite", wait=wait)


def test_the_restore_benchmark_script_runs():
    """benchmarks/restore_check.py runs (a smoke run; its figures are not checked)."""
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "benchmarks", "restore_check.py")
    out = subprocess.run([sys.executable, script, "--models", "2", "--rows", "50",
                          "--repeat", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout
    assert "schema check alone:" in out.stdout
