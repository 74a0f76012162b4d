"""How many SQL statements a write and a page cost, pinned (SQLite's own trace).

The fast paths (the pre-rendered INSERT, the audit entry through the cursor, the
pre-rendered page and count, the page as one JSON text) switch themselves off
for cases they cannot serve; these tests fail if the common cases stop taking
them, or if a write grows a statement.
"""
import threading

import pytest
import webtest

import peestore

from peestore.db._gate import gate
from peestore.demo import Machine, make_app
from peestore.testing import capture_statements


def verbs(statements):
    """Each statement's first words: what kind of statement, on which table."""
    out = []
    for sql in statements:
        words = sql.replace('"', "").split()
        if words[0] in ("INSERT", "DELETE"):
            out.append("%s %s" % (words[0], words[2]))
        elif words[0] == "UPDATE":
            out.append("UPDATE %s" % words[1])
        elif words[0] == "SELECT":
            # The head of the audit log's hash chain, read before its entries go in.
            out.append("SELECT head" if "audit_log" in sql and "ORDER BY id DESC" in sql else
                       "SELECT json" if "json_group_array" in sql else
                       "SELECT count" if "COUNT(" in sql.upper() else "SELECT")
        else:
            out.append(" ".join(words[:2]) if words[:2] == ["BEGIN", "IMMEDIATE"]
                       else words[0])
    return out


@pytest.fixture
def db_path_of_client(tmp_path):
    return tmp_path / "demo.db"


@pytest.fixture
def client(db_path_of_client):
    app = make_app("sqlite:///%s" % db_path_of_client)
    return webtest.TestApp(app, extra_environ={"HTTP_X_USER": "op"})


def test_a_create_is_one_transaction_of_two_inserts(client):
    with capture_statements() as statements:
        Machine.create(name="m-1", serial="s-1")
    assert verbs(statements) == ["BEGIN IMMEDIATE", "INSERT machine", "SELECT head",
                                 "INSERT audit_log", "COMMIT"]


def test_an_update_reads_the_row_it_does_not_hold(client):
    machine = Machine.create(name="m-1", serial="s-1", location="hall")
    loaded = Machine.get_by_id(machine.id)
    with capture_statements() as statements:
        loaded.location = "hall B"
        loaded.save()
    # The row as loaded is the "before": no read of its own.
    assert verbs(statements) == ["BEGIN IMMEDIATE", "UPDATE machine", "SELECT head",
                                 "INSERT audit_log", "COMMIT"]


def test_a_rest_create_costs_what_a_model_create_costs(client):
    client.post_json("/machines/", {"name": "warm", "serial": "warm"})
    with capture_statements() as statements:
        client.post_json("/machines/", {"name": "m-1", "serial": "s-1"}, status=201)
    assert verbs(statements) == ["BEGIN IMMEDIATE", "INSERT machine", "SELECT head",
                                 "INSERT audit_log", "COMMIT"]


def test_a_rest_patch_locks_reads_and_writes_once(client):
    created = client.post_json("/machines/", {"name": "m-1", "serial": "s-1"}).json
    with capture_statements() as statements:
        client.patch_json("/machines/%d" % created["id"], {"location": "hall B"})
    assert verbs(statements) == ["BEGIN IMMEDIATE", "SELECT", "UPDATE machine", "SELECT head",
                                 "INSERT audit_log", "COMMIT"]


def test_a_rest_read_is_one_select(client):
    created = client.post_json("/machines/", {"name": "m-1", "serial": "s-1"}).json
    with capture_statements() as statements:
        client.get("/machines/%d" % created["id"])
    assert verbs(statements) == ["SELECT"]


def test_a_page_is_one_select_and_a_count_only_when_full(client):
    for i in range(5):  # and the demo's own machine: 6
        client.post_json("/machines/", {"name": "m-%d" % i, "serial": "s-%d" % i})
    with capture_statements() as statements:
        assert len(client.get("/machines/?limit=10").json) == 6
    assert verbs(statements) == ["SELECT"]
    with capture_statements() as statements:
        page = client.get("/machines/?limit=3")
    assert verbs(statements) == ["SELECT", "SELECT count"]
    assert page.headers["X-Total-Count"] == "6"


def test_a_page_under_load_comes_as_one_json_text(client):
    """While another request is in flight, the common page is SQLite's JSON."""
    for i in range(5):
        client.post_json("/machines/", {"name": "m-%d" % i, "serial": "s-%d" % i})
    quiet = client.get("/machines/?limit=10").json
    inside, leave = threading.Event(), threading.Event()

    def other_request():
        with gate.shared():
            inside.set()
            leave.wait(10)

    other = threading.Thread(target=other_request)
    other.start()
    try:
        assert inside.wait(10)
        # The first such page checks SQLite's printf once per database class.
        client.get("/machines/?limit=10")
        with capture_statements() as statements:
            busy = client.get("/machines/?limit=10").json
    finally:
        leave.set()
        other.join(10)
    assert verbs(statements) == ["SELECT json"]
    assert busy == quiet


def test_a_bulk_insert_returns_every_stored_row(client):
    with capture_statements() as statements:
        Machine.insert_many([{"name": "m-%d" % i, "serial": "s-%d" % i}
                             for i in range(3)]).execute()
    # One INSERT ... RETURNING gives each row as stored; one INSERT of the entries.
    assert verbs(statements) == ["BEGIN IMMEDIATE", "INSERT machine", "SELECT head",
                                 "INSERT audit_log", "COMMIT"]
    assert "RETURNING" in statements[1]


def test_the_chain_head_is_read_in_every_write(client, db_path_of_client):
    """On SQLite every write reads the head of the hash chain under its write lock: one
    indexed SELECT, and a write by another process since needs nothing more."""
    with capture_statements() as statements:
        Machine.create(name="m-1", serial="s-1")
    assert verbs(statements) == ["BEGIN IMMEDIATE", "INSERT machine", "SELECT head",
                                 "INSERT audit_log", "COMMIT"]
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", (
        "import peestore; from peestore.demo import MODELS, Machine; "
        "peestore.connect('sqlite:///%s', models=MODELS); "
        "Machine.create(name='other', serial='other')") % db_path_of_client], check=True)
    with capture_statements() as statements:
        Machine.create(name="m-3", serial="s-3")
    assert verbs(statements) == ["BEGIN IMMEDIATE", "INSERT machine", "SELECT head",
                                 "INSERT audit_log", "COMMIT"]
    result = peestore.verify_audit()
    assert result["ok"], result
