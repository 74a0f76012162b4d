"""Tests of peestore.backup: online, stepped, one consistent snapshot."""
import importlib
import sqlite3
import threading
import time

import peewee
import pytest

import peestore
from peestore.tools._backup import NotSQLiteError

backup_module = importlib.import_module("peestore.tools._backup")


class Recipe(peestore.BaseAuditedModel):
    name = peewee.CharField()
    speed = peewee.FloatField(default=1.0)


def _count(path, sql):
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def test_backup_copies_rows_and_audit(sqlite_db, tmp_path):
    """The copy holds the rows and their audit entries, and is a standalone file."""
    sqlite_db([Recipe])
    Recipe.create(name="a")
    Recipe.create(name="b")
    out = peestore.backup(tmp_path / "out.sqlite")
    assert out == tmp_path / "out.sqlite"
    assert _count(out, "SELECT count(*) FROM recipe") == 2
    assert _count(out, "SELECT count(*) FROM audit_log") == 2
    assert _count(out, "PRAGMA integrity_check") == "ok"
    assert _count(out, "PRAGMA journal_mode") == "delete"
    assert not list(tmp_path.glob(".out.sqlite.*"))


def test_backup_calls_progress_per_step(sqlite_db, tmp_path, monkeypatch):
    """progress(remaining, total) is called once per step, ending at 0 remaining."""
    monkeypatch.setattr(backup_module, "STEP_PAGES", 2)
    sqlite_db([Recipe])
    Recipe.create_many([{"name": "x" * 500} for _ in range(200)])
    calls = []
    peestore.backup(tmp_path / "out.sqlite", progress=lambda r, t: calls.append((r, t)))
    assert len(calls) > 5
    assert calls[-1][0] == 0
    total = calls[-1][1]
    assert all(t == total for _, t in calls)
    assert [r for r, _ in calls] == sorted((r for r, _ in calls), reverse=True)


def test_backup_while_a_thread_writes_is_consistent(sqlite_db, tmp_path, monkeypatch):
    """A backup taken during writes is one snapshot: every row has its audit entry."""
    monkeypatch.setattr(backup_module, "STEP_PAGES", 1)
    db = sqlite_db([Recipe])
    Recipe.create_many([{"name": f"seed {i}"} for i in range(300)])
    stop = threading.Event()
    written = []

    def writer():
        with db.connection_context():
            i = 0
            while not stop.is_set():
                Recipe.create(name=f"w{i}")
                i += 1
                written.append(i)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 20:
            pass
        steps = []
        before = len(written)
        peestore.backup(tmp_path / "snap.sqlite",
                        progress=lambda r, t: (steps.append(r), time.sleep(0.002)))
        after = len(written)
    finally:
        stop.set()
        thread.join()
    assert len(steps) > 10  # many steps, and writers kept going meanwhile
    assert after > before  # the writer was not blocked by the backup
    out = tmp_path / "snap.sqlite"
    rows = _count(out, "SELECT count(*) FROM recipe")
    audited = _count(out, "SELECT count(*) FROM audit_log WHERE operation = 'create'")
    assert rows == audited
    assert 300 < rows < 300 + len(written) + 1
    assert _count(out, "SELECT count(*) FROM recipe WHERE CAST(id AS TEXT) NOT IN "
                       "(SELECT record_id FROM audit_log)") == 0


def test_backup_replaces_dest_atomically(sqlite_db, tmp_path):
    """An existing file at dest is replaced by the complete copy."""
    sqlite_db([Recipe])
    Recipe.create(name="a")
    dest = tmp_path / "out.sqlite"
    dest.write_bytes(b"old")
    peestore.backup(str(dest))
    assert _count(dest, "SELECT count(*) FROM recipe") == 1


def test_backup_inside_a_transaction_sees_committed_data(sqlite_db, tmp_path):
    """The backup uses its own connection: an open transaction of the caller is not copied."""
    db = sqlite_db([Recipe])
    Recipe.create(name="committed")
    with db.atomic() as txn:
        Recipe.create(name="pending")
        peestore.backup(tmp_path / "out.sqlite")
        txn.rollback()
    assert _count(tmp_path / "out.sqlite", "SELECT count(*) FROM recipe") == 1


def test_backup_failure_leaves_no_file(sqlite_db, tmp_path):
    """A backup into a missing directory raises, naming it, and leaves nothing behind."""
    sqlite_db([Recipe])
    with pytest.raises(peestore.PeestoreError, match="no folder .*nope"):
        peestore.backup(tmp_path / "nope" / "out.sqlite")
    assert not (tmp_path / "nope").exists()


def test_backup_refuses_non_sqlite():
    """PostgreSQL and MariaDB are told to use their own dump tools."""
    db = peewee.PostgresqlDatabase("x")
    with pytest.raises(NotSQLiteError, match="pg_dump"):
        peestore.backup("/tmp/never.sqlite", database=db)
    assert isinstance(NotSQLiteError("x"), peestore.PeestoreError)
