"""The hash chain against what an attack review found: a stale head after another
process prunes or restores, hashes set to NULL, control characters on the
terminal, big rows (SPEC 13)."""
import json
import os
import subprocess
import sys

import peewee
import pytest

import peestore
from peestore import AuditLog, verify_audit
from peestore.cli._main import main

from .models import ALL, Product, User

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def entries():
    return list(AuditLog.select().order_by(AuditLog.id))


def raw(sql, params=()):
    """SQL straight at the database, as someone with file access would."""
    db = peestore.database.obj
    with db.connection_context():
        db.execute_sql(sql, params)


def quoted(name):
    db = peestore.database.obj
    return ("`%s`" if isinstance(db, peewee.MySQLDatabase) else '"%s"') % name


@pytest.fixture
def chain(connect_db):
    db = connect_db(ALL)
    with peestore.actor("op-1", reason="setup"):
        user = User.create(name="ada")
        Product.create(name="bolt", owner=user, price=1.5)
        user.name = "ada b"
        user.save()
        Product.insert_many([{"name": "nut"}, {"name": "washer"}]).execute()
    return db


# -- A: the head after another process changed the log --------------------------------

OTHER = """
import sys
sys.path.insert(0, %r)
import peestore
from tests.models import ALL
peestore.connect(sys.argv[1], models=ALL, create_tables=False)
if sys.argv[2] == "restore":
    peestore.restore(sys.argv[3])
else:
    peestore.prune_audit(keep_rows=int(sys.argv[3]))
"""


def _let_go(db):
    """Close this process' connections to ``db`` (the parked ones too), as a server
    between requests."""
    from peestore.db._connect import release_idle

    db.close()
    release_idle(db)


def _other_process(*args):
    subprocess.run([sys.executable, "-c", OTHER % ROOT] + [str(a) for a in args],
                   check=True, timeout=120)


def test_a_restore_by_another_process_does_not_fork_the_chain(sqlite_db, db_path, tmp_path):
    db = sqlite_db(ALL)
    User.create(name="ada")
    saved = tmp_path / "saved.sqlite"
    peestore.backup(str(saved))
    for name in ("bob", "cy", "dee"):
        User.create(name=name)  # this process' head is entry 4 now
    _let_go(db)
    _other_process("sqlite:///%s" % db_path, "restore", saved)  # entries 1 and 2 now
    User.create(name="eve")
    assert [e.operation for e in entries()] == ["create", "restore", "create"]
    result = verify_audit()
    assert result["ok"], result
    assert result["entries"] == 3


@pytest.mark.parametrize("keep", [0, 2])
def test_a_prune_by_another_process_keeps_one_chain(connect_db, db_url, keep):
    db = connect_db(ALL)
    for name in ("ada", "bob", "cy", "dee"):
        User.create(name=name)
    _let_go(db)
    _other_process(db_url, "prune", keep)
    User.create(name="eve")
    result = verify_audit()
    assert result["ok"], result
    assert [e.operation for e in entries()][-2:] == ["prune", "create"]


def test_a_command_line_prune_then_writes_here(sqlite_db, db_path, capsys):
    sqlite_db(ALL)
    for name in ("ada", "bob", "cy"):
        User.create(name=name)
    _let_go(peestore.database.obj)
    subprocess.run([sys.executable, "-m", "peestore", "prune-audit", "--db",
                    "sqlite:///%s" % db_path, "--keep-rows", "0"], check=True, timeout=120,
                   cwd=ROOT, capture_output=True)
    User.create(name="dee")
    User.create(name="eve")
    assert verify_audit()["ok"]


# -- B: hashes set to NULL --------------------------------------------------------------

def test_every_hash_set_to_null_is_tampering(chain):
    raw("UPDATE audit_log SET hash = NULL")
    result = verify_audit()
    assert not result["ok"]
    assert result["first_bad_id"] == 1


def test_the_last_hashes_set_to_null_are_tampering(chain):
    raw("UPDATE audit_log SET hash = NULL WHERE id >= 3")
    result = verify_audit()
    assert not result["ok"] and result["first_bad_id"] == 3


def test_null_hashes_after_a_prune_are_tampering(chain):
    peestore.prune_audit(keep_rows=2)
    first = entries()[0].id
    raw("UPDATE audit_log SET hash = NULL")
    result = verify_audit()
    assert not result["ok"] and result["first_bad_id"] == first


def test_the_chain_start_record_is_bookkeeping(chain):
    db = peestore.database.obj
    assert "audit_chain" in db.get_tables()
    assert "audit_chain" in peestore.audit._log.INTERNAL_TABLES
    assert verify_audit()["chain_start"] == 1


def test_the_chain_start_record_removed_is_tampering(chain):
    raw("DELETE FROM audit_chain")
    result = verify_audit()
    assert not result["ok"] and result["first_bad_id"] == 1
    assert result["chain_start"] is None


def test_a_chain_start_moved_is_found_with_a_key(connect_db, db_url):
    connect_db(ALL, audit_key="plant secret")
    for name in ("ada", "bob", "cy"):
        User.create(name=name)
    assert verify_audit()["ok"]
    # Moving the start after the entries, then clearing their hashes, needs the key.
    raw("UPDATE audit_chain SET %s = 4" % quoted("start_id"))
    raw("UPDATE audit_log SET hash = NULL")
    result = verify_audit()
    assert not result["ok"]


OLD_AUDIT_LOG = """CREATE TABLE "audit_log" ("id" INTEGER NOT NULL PRIMARY KEY,
"timestamp" DATETIME NOT NULL, "component" VARCHAR(100) NOT NULL,
"record_id" VARCHAR(100) NOT NULL, "operation" VARCHAR(20) NOT NULL,
"actor" VARCHAR(200) NOT NULL, "before" TEXT, "after" TEXT)"""


def test_an_upgraded_database_starts_its_chain_after_the_old_entries(db_path):
    import sqlite3

    conn = sqlite3.connect(str(db_path))
    conn.execute(OLD_AUDIT_LOG)
    conn.executemany("INSERT INTO audit_log (timestamp, component, record_id, operation, "
                     "actor, before, after) VALUES ('2025-01-01 00:00:00', 'users', ?, "
                     "'create', 'old', NULL, '{}')", [("1",), ("2",)])
    conn.commit()
    conn.close()
    url = "sqlite:///%s" % db_path
    peestore.connect(url, models=ALL)
    assert verify_audit() == {"ok": True, "entries": 0, "first_bad_id": None, "head": None,
                              "chain_start": 3, "unchained": 2}
    User.create(name="new")
    peestore.connect(url, models=ALL)  # connecting again moves nothing
    result = verify_audit()
    assert result["ok"] and result["chain_start"] == 3 and result["unchained"] == 2
    raw("UPDATE audit_log SET hash = NULL WHERE id = 3")
    result = verify_audit()
    assert not result["ok"] and result["first_bad_id"] == 3


def test_the_command_line_and_http_report_the_chain_start(chain, db_url, capsys):
    import webtest

    app = peestore.bootstrap(models=ALL, database_url=peestore.database.obj)
    assert webtest.TestApp(app).get("/db/audit/verify").json["chain_start"] == 1
    raw("UPDATE audit_log SET hash = NULL")
    assert webtest.TestApp(app).get("/db/audit/verify").json["ok"] is False
    assert main(["audit", "verify", "--db", db_url, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["first_bad_id"] == 1


# -- C: what the command line prints --------------------------------------------------

HOSTILE = "\x1b[2J\x1b]0;owned\x07op\u202eevil\x9b31m"


def test_the_audit_listing_escapes_control_characters(sqlite_db, db_path, capsys):
    sqlite_db(ALL)
    with peestore.actor(HOSTILE, reason="\u202ex\x9b"):
        User.create(name="ada" + HOSTILE)
    url = "sqlite:///%s" % db_path
    for argv in (["audit", "--db", url], ["audit", "--db", url, "--json"]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert not any(c in out for c in "\x1b\x07\u202e\x9b"), repr(out)
        if "--json" in argv:
            entry = json.loads(out)[0]
            assert entry["actor"] == HOSTILE and entry["after"]["name"] == "ada" + HOSTILE
        else:
            assert "\\x1b[2J" in out and "\\u202e" in out and "\\x9b" in out


def test_errors_escape_control_characters(sqlite_db, db_path, tmp_path, capsys):
    sqlite_db(ALL)
    missing = tmp_path / ("no\x1b[31mfile" + ".zip")
    assert main(["import", str(missing), "--db", "sqlite:///%s" % db_path]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b[31m" in err


def test_verify_escapes_a_stored_head(sqlite_db, db_path, capsys):
    sqlite_db(ALL)
    User.create(name="ada")
    raw("UPDATE audit_log SET hash = ?", ("\x1b[2J" + "0" * 60,))
    assert main(["audit", "verify", "--db", "sqlite:///%s" % db_path]) == 1
    assert "\x1b" not in capsys.readouterr().out


# -- E: big rows ------------------------------------------------------------------------

class Document(peestore.BaseAuditedModel):
    """Three texts that each fit MariaDB's TEXT (64 KB): together they do not."""

    name = peewee.CharField()
    body = peewee.TextField()
    notes = peewee.TextField(default="")
    appendix = peewee.TextField(default="")

    class Meta:
        component = "documents"


def _big_column(db):
    if not isinstance(db, peewee.MySQLDatabase):
        return None
    with db.connection_context():
        return {row[0]: row[1].lower() for row in db.execute_sql(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name = 'audit_log' "
            "AND column_name IN ('before', 'after')").fetchall()}


def test_a_row_over_64_kb_is_audited_whole(connect_db, backend):
    db = connect_db(ALL + [Document])
    body = "x" * 30000 + "é" * 10
    doc = Document.create(name="manual", body=body, notes="n" * 30000, appendix="a" * 30000)
    doc.body = body + "!"
    doc.save()
    log = entries()
    assert len(json.dumps(log[0].after)) > 65536  # the entry's JSON text is over 64 KB
    assert log[0].after == {"id": doc.id, "name": "manual", "body": body, "notes": "n" * 30000,
                            "appendix": "a" * 30000}
    assert log[1].before["body"] == body and log[1].after["body"] == body + "!"
    assert verify_audit()["ok"]
    if backend == "mysql":
        assert _big_column(db) == {"before": "longtext", "after": "longtext"}


def test_an_older_mariadb_audit_log_is_widened_on_connect(connect_db, backend, db_url):
    if backend != "mysql":
        pytest.skip("MariaDB/MySQL only: the other backends' TEXT has no 64 KB limit")
    db = connect_db(ALL + [Document])
    with db.connection_context():
        db.execute_sql("ALTER TABLE audit_log MODIFY `before` TEXT NULL, "
                       "MODIFY `after` TEXT NULL")
    assert _big_column(db) == {"before": "text", "after": "text"}
    db.close()
    connect_db(ALL + [Document])
    assert _big_column(peestore.database.obj) == {"before": "longtext", "after": "longtext"}
    Document.create(name="manual", body="y" * 40000, notes="z" * 40000)
    assert entries()[0].after["notes"] == "z" * 40000
    assert verify_audit()["ok"]


# -- D: --reason on import and restore ----------------------------------------------------

class Batch(peestore.BaseAuditedModel):
    """A batch record: every change needs a reason."""

    code = peewee.CharField()

    class Meta:
        component = "batches"
        require_reason = True


def test_import_and_restore_take_a_reason(sqlite_db, db_path, tmp_path, capsys):
    sqlite_db([Batch])
    Batch(code="B-1").save(reason="first batch")
    zipped = peestore.export_csv(tmp_path / "export.zip")
    saved = peestore.backup(tmp_path / "saved.sqlite")
    url = "sqlite:///%s" % db_path
    app = "tests.test_chain_attacks"
    # Batch requires a reason: without one the import is refused and changes nothing.
    assert main(["import", "--db", url, "--app", app, "--replace", str(zipped)]) == 1
    assert "batches needs a reason" in capsys.readouterr().err
    assert len(entries()) == 1
    assert main(["import", "--db", url, "--app", app, "--replace", "--reason",
                 "re-keyed after audit CC-7", str(zipped)]) == 0
    assert [(e.operation, e.reason) for e in entries()][-1] == ("import",
                                                                 "re-keyed after audit CC-7")
    assert main(["restore", "--db", url, "--reason", "rollback: wrong lot", str(saved)]) == 0
    peestore.connect(url, models=[Batch], create_tables=False)
    last = entries()[-1]
    assert (last.operation, last.actor, last.reason) == ("restore", "cli", "rollback: wrong lot")
    assert verify_audit()["ok"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["import", "--db", url, "--reason", "x" * 2001, str(zipped)])
    assert info.value.code == 2


def test_the_diagram_on_stdout_escapes_control_characters(sqlite_db, db_path, capsys):
    sqlite_db(ALL)
    raw('CREATE TABLE "gauge\u202e\x9b31m" ("id" INTEGER PRIMARY KEY, "v\x85" TEXT)')
    assert main(["diagram", "--db", "sqlite:///%s" % db_path]) == 0
    out = capsys.readouterr().out
    assert out.startswith("<svg") or out.startswith("<?xml")
    assert not any(c in out for c in "\u202e\x9b\x85") and "gauge\\u202e\\x9b31m" in out
