"""The audit log's hash chain, its verification, and the reason for a change (SPEC 13)."""
import json
import os
import subprocess
import sys
import threading

import peewee
import pytest
import webtest
from peewee import CharField, FloatField

import peestore
from peestore import AuditLog, ValidationError, verify_audit
from peestore.cli._main import main

from .models import ALL, Product, User


class Dose(peestore.BaseAuditedModel):
    """A recipe value a regulated process may change only with a reason."""

    name = CharField()
    amount = FloatField(default=0.0)

    class Meta:
        component = "doses"
        require_reason = True


MODELS = ALL + [Dose]


def entries():
    return list(AuditLog.select().order_by(AuditLog.id))


def raw(sql, params=()):
    """SQL straight at the database, as someone tampering with it would."""
    db = peestore.database.obj
    with db.connection_context():
        db.execute_sql(sql, params)


def quoted(db, name):
    return ("`%s`" if isinstance(db, peewee.MySQLDatabase) else '"%s"') % name


@pytest.fixture
def chain(connect_db):
    """A database with a few audited writes of several kinds."""
    db = connect_db(MODELS)
    with peestore.actor("op-1", reason="setup"):
        user = User.create(name="ada")
        product = Product.create(name="bolt", owner=user, price=1.5)
        product.price = 2.0
        product.save()
        user.delete_instance()
        Product.insert_many([{"name": "nut"}, {"name": "washer"}]).execute()
    return db


def test_every_entry_is_chained_and_the_chain_verifies(chain):
    log = entries()
    assert all(entry.hash and len(entry.hash) == 64 for entry in log)
    assert [entry.id for entry in log] == list(range(1, len(log) + 1))
    result = verify_audit()
    assert result == {"ok": True, "entries": len(log), "first_bad_id": None,
                      "head": {"id": log[-1].id, "hash": log[-1].hash}, "chain_start": 1,
                      "unchained": 0}


@pytest.mark.parametrize("column, value", [("actor", "'mallory'"), ("after", "NULL"),
                                           ("reason", "'nothing to see'"),
                                           ("timestamp", "'2020-01-01 00:00:00'")])
def test_an_entry_changed_is_found_at_its_id(chain, column, value):
    db = peestore.database.obj
    raw("UPDATE audit_log SET %s = %s WHERE id = 3" % (quoted(db, column), value))
    result = verify_audit()
    assert not result["ok"] and result["first_bad_id"] == 3


def test_an_entry_removed_in_the_middle_is_found_after_the_gap(chain):
    raw("DELETE FROM audit_log WHERE id = 3")
    result = verify_audit()
    assert not result["ok"] and result["first_bad_id"] == 4


def test_an_entry_inserted_in_the_middle_is_found(chain):
    raw("DELETE FROM audit_log WHERE id = 3")
    forged = dict(entries()[1].__data__, id=3, actor="mallory")
    AuditLog.insert(forged).execute()  # a plausible row, with the hash of another
    result = verify_audit()
    assert not result["ok"] and result["first_bad_id"] == 3


def test_entries_removed_at_the_end_need_a_head_kept_elsewhere(chain):
    head = verify_audit()["head"]
    raw("DELETE FROM audit_log WHERE id >= %d" % (head["id"] - 1))
    assert verify_audit()["ok"]  # what is left is a whole chain
    result = verify_audit(expect_head=head)
    assert not result["ok"] and result["first_bad_id"] == head["id"]


def test_an_expected_head_that_was_altered_is_found(chain):
    head = verify_audit()["head"]
    assert verify_audit(expect_head=head)["ok"]
    assert not verify_audit(expect_head={"id": head["id"], "hash": "0" * 64})["ok"]


def test_the_entries_at_the_start_removed_are_found(chain):
    raw("DELETE FROM audit_log WHERE id <= 2")
    result = verify_audit()
    assert not result["ok"] and result["first_bad_id"] == 3


def test_a_keyed_chain_does_not_verify_with_another_key(connect_db, db_url):
    peestore.connect(db_url, models=MODELS, audit_key="plant secret")
    User.create(name="ada")
    User.create(name="bob")
    assert verify_audit()["ok"]
    assert verify_audit(key="plant secret")["ok"]
    assert verify_audit(key="wrong")["first_bad_id"] == 1
    assert verify_audit(key=b"")["ok"] is False  # an empty key is another key
    peestore.connect(db_url, models=MODELS)  # no key: plain SHA-256 finds a mismatch
    assert verify_audit()["first_bad_id"] == 1


def test_the_key_comes_from_the_environment(connect_db, db_url, monkeypatch):
    monkeypatch.setenv("PEESTORE_AUDIT_KEY", "from the environment")
    peestore.connect(db_url, models=MODELS)
    User.create(name="ada")
    assert verify_audit(key="from the environment")["ok"]
    monkeypatch.delenv("PEESTORE_AUDIT_KEY")
    assert not verify_audit(key=b"other")["ok"]


def test_prune_keeps_the_rest_verifiable(chain):
    count = len(entries())
    assert peestore.prune_audit(keep_rows=2) == count - 2
    log = entries()
    assert log[-1].operation == "prune" and log[-1].component == "audit_log"
    assert log[-1].after["last_removed_id"] == count - 2
    result = verify_audit()
    assert result["ok"] and result["chain_start"] == count - 1
    User.create(name="after the prune")
    assert verify_audit()["ok"]
    assert peestore.prune_audit(keep_rows=0) > 0
    assert verify_audit()["ok"] and [e.operation for e in entries()] == ["prune"]


# -- one chain under concurrency ----------------------------------------------------

def test_one_chain_with_threads_writing(connect_db, db_url, backend):
    connect_db(MODELS)
    errors = []

    def work(n):
        try:
            for i in range(15):
                Product.create(name="t%d-%d" % (n, i))
        except Exception as exc:  # pragma: no cover  (reported below)
            errors.append(exc)
        finally:
            peestore.database.obj.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    result = verify_audit()
    assert result["ok"], result
    assert result["entries"] == 60


WRITER = """
import sys
import peestore
sys.path.insert(0, %r)
from tests.models import ALL, Product
peestore.connect(sys.argv[1], models=ALL, create_tables=False)
for i in range(20):
    Product.create(name="%%s-%%d" %% (sys.argv[2], i))
"""


def test_one_chain_with_processes_writing(connect_db, db_url, backend):
    connect_db(MODELS)
    User.create(name="first")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    procs = [subprocess.Popen([sys.executable, "-c", WRITER % root, db_url, "p%d" % n])
             for n in range(3)]
    for proc in procs:
        assert proc.wait(120) == 0
    # This process writes again: its head is stale, the INSERT notices.
    User.create(name="last")
    result = verify_audit()
    assert result["ok"], result
    assert result["entries"] == 62


# -- reasons -------------------------------------------------------------------------

def test_a_reason_from_every_place_an_actor_comes_from(connect_db):
    connect_db(MODELS)
    with peestore.actor("op-1", reason="shift start"):
        user = User.create(name="ada")
    user.name = "ada b"
    user.save(actor="op-2", reason="typo")
    user.delete_instance(reason="left the plant")
    user.restore(reason="came back")
    Product.create_many([{"name": "bolt"}], reason="new part")
    Product.update(price=3.0).reason("price list 2027").execute()
    Product.delete(permanently=True).actor("op-3", reason="discontinued").execute()
    assert [(e.operation, e.actor, e.reason) for e in entries()] == [
        ("create", "op-1", "shift start"), ("update", "op-2", "typo"),
        ("soft_delete", "internal", "left the plant"), ("restore", "internal", "came back"),
        ("create", "internal", "new part"), ("update", "internal", "price list 2027"),
        ("delete", "op-3", "discontinued")]
    assert user.history()[0].reason == "came back"
    assert verify_audit()["ok"]


def test_require_reason_refuses_a_write_without_one(connect_db):
    connect_db(MODELS)
    with pytest.raises(ValidationError) as info:
        Dose.create(name="saline", amount=1.0)
    assert info.value.errors == {"reason": "required"}
    assert Dose.select().count() == 0 and entries() == []
    dose = Dose(name="saline", amount=1.0)
    dose.save(reason="batch 7 recipe")
    dose.amount = 2.0
    with pytest.raises(ValidationError):
        dose.save()
    with peestore.actor("qa", reason="deviation 12"):
        dose.save()
    assert [e.reason for e in entries()] == ["batch 7 recipe", "deviation 12"]
    assert Dose.get_by_id(dose.id).amount == 2.0


def test_reasons_over_http(connect_db):
    connect_db(MODELS)
    app = peestore.bootstrap(models=MODELS, database_url=peestore.database.obj)
    client = webtest.TestApp(app)
    headers = {"X-User": "op-1"}
    refused = client.post_json("/doses/", {"name": "saline"}, headers=headers, status=422)
    assert refused.json["errors"] == {"reason": "required"} and Dose.select().count() == 0
    reason = "Ändern: Charge 7".encode().decode("latin-1")  # as WSGI hands it over
    created = client.post_json("/doses/", {"name": "saline"},
                               headers=dict(headers, **{"X-Reason": reason})).json
    history = client.get("/doses/%d/history" % created["id"]).json
    assert history[0]["reason"] == "Ändern: Charge 7"
    audit = client.get("/db/audit").json
    assert audit[0]["reason"] == "Ändern: Charge 7" and len(audit[0]["hash"]) == 64
    client.post_json("/doses/", {"name": "x"}, headers=dict(headers, **{
        "X-Reason": "x" * 2001}), status=400)
    verified = client.get("/db/audit/verify").json
    assert verified["ok"] and verified["entries"] == 1
    head = verified["head"]
    assert client.get("/db/audit/verify", {"head_id": head["id"],
                                           "head_hash": head["hash"]}).json["ok"]
    client.get("/db/audit/verify", {"head_id": "1"}, status=400)
    client.get("/db/audit/verify", {"head_id": "1", "head_hash": "zz"}, status=400)


def test_verify_is_admin_only_with_authenticate(connect_db):
    connect_db(MODELS)
    users = {"Bearer admin": {"name": "a", "roles": ["admin"]}, "Bearer op": {"name": "o"}}
    app = peestore.bootstrap(models=MODELS, database_url=peestore.database.obj)
    app.plugins[-1].authenticate = lambda request: users.get(
        request.headers.get("Authorization"))
    client = webtest.TestApp(app)
    client.get("/db/audit/verify", status=401)
    client.get("/db/audit/verify", headers={"Authorization": "Bearer op"}, status=403)
    assert client.get("/db/audit/verify", headers={"Authorization": "Bearer admin"}).json["ok"]


# -- an older database ---------------------------------------------------------------

OLD_AUDIT_LOG = """CREATE TABLE "audit_log" ("id" INTEGER NOT NULL PRIMARY KEY,
"timestamp" DATETIME NOT NULL, "component" VARCHAR(100) NOT NULL,
"record_id" VARCHAR(100) NOT NULL, "operation" VARCHAR(20) NOT NULL,
"actor" VARCHAR(200) NOT NULL, "before" TEXT, "after" TEXT)"""


def test_an_older_database_gains_the_columns_and_the_chain_starts_after_it(db_path):
    import sqlite3

    conn = sqlite3.connect(str(db_path))
    conn.execute(OLD_AUDIT_LOG)
    conn.executemany("INSERT INTO audit_log (timestamp, component, record_id, operation, "
                     "actor, before, after) VALUES ('2025-01-01 00:00:00', 'users', ?, "
                     "'create', 'old', NULL, '{}')", [("1",), ("2",)])
    conn.commit()
    conn.close()
    peestore.connect("sqlite:///%s" % db_path, models=MODELS)
    columns = [c.name for c in peestore.database.obj.get_columns("audit_log")]
    assert "reason" in columns and "hash" in columns
    User.create(name="new")
    result = verify_audit()
    assert result == {"ok": True, "entries": 1, "first_bad_id": None,
                      "head": {"id": 3, "hash": entries()[-1].hash}, "chain_start": 3,
                      "unchained": 2}


# -- the command line ----------------------------------------------------------------

def test_peestore_audit_verify_exit_codes(sqlite_db, db_path, capsys):
    sqlite_db(MODELS)
    User.create(name="ada")
    User.create(name="bob")
    url = "sqlite:///%s" % db_path
    assert main(["audit", "verify", "--db", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("chain ok: 2 entries, from entry 1")
    head = out.strip().splitlines()[-1].split(": ", 1)[1]
    assert main(["audit", "verify", "--db", url, "--expect-head", head, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    raw("UPDATE audit_log SET actor = 'mallory' WHERE id = 2")
    assert main(["audit", "verify", "--db", url]) == 1
    assert "first bad entry: 2" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", "verify", "--db", url, "--expect-head", "nonsense"])
    assert exit_info.value.code == 2
    assert main(["audit", "--db", url]) == 0
    assert "reason" in capsys.readouterr().out.splitlines()[0]


def test_verify_streams_a_large_log(sqlite_db):
    """A log of 50,000 entries verifies in one pass (the figure for a million is in
    docs/audit.md, from benchmarks/audit_verify.py)."""
    sqlite_db(MODELS)
    with peestore.database.obj.atomic():
        for start in range(0, 50000, 5000):
            Product.insert_many([{"name": "p%d" % i} for i in range(start, start + 5000)]
                                ).execute()
    result = verify_audit()
    assert result["ok"] and result["entries"] == 50000
