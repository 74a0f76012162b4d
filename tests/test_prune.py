"""prune_audit and peestore prune-audit."""
import datetime

import pytest

import peestore
from peestore import AuditLog
from peestore.cli._main import main

from .models import ALL, Product


def fill(n):
    Product.insert_many([{"name": "p%d" % i} for i in range(n)]).execute()


def test_keep_rows(connect_db):
    """keep_rows keeps the newest N entries and returns how many went."""
    connect_db(ALL)
    fill(10)
    newest = [e.id for e in AuditLog.select().order_by(AuditLog.id.desc()).limit(3)]
    assert peestore.prune_audit(keep_rows=3) == 7
    # The newest three, and the prune entry that says what went.
    kept = list(AuditLog.select().order_by(AuditLog.id))
    assert [e.id for e in kept[:3]] == sorted(newest)
    assert kept[3].operation == "prune" and kept[3].after["deleted"] == 7
    assert kept[3].after["last_removed_id"] == min(newest) - 1
    assert peestore.verify_audit()["ok"]
    assert peestore.prune_audit(keep_rows=4) == 0


def test_older_than(connect_db):
    """older_than deletes entries older than the age."""
    connect_db(ALL)
    fill(4)
    old = datetime.datetime(2020, 1, 1)
    AuditLog.update(timestamp=old).where(AuditLog.id <= 2).execute()
    assert peestore.prune_audit(older_than=datetime.timedelta(days=30)) == 2
    assert [e.operation for e in AuditLog.select().order_by(AuditLog.id)] == [
        "create", "create", "prune"]


def test_older_than_removes_only_the_oldest_by_id(connect_db):
    """An old entry after a newer one (a clock set back) stays: the chain is whole."""
    connect_db(ALL)
    fill(4)
    old = datetime.datetime(2020, 1, 1)
    AuditLog.update(timestamp=old).where(AuditLog.id.in_([1, 3])).execute()
    assert peestore.prune_audit(older_than=datetime.timedelta(days=30)) == 1
    assert [e.id for e in AuditLog.select().order_by(AuditLog.id)][:3] == [2, 3, 4]


def test_prune_needs_a_rule(connect_db):
    """Without a rule, or with a bad one, prune_audit raises and deletes nothing."""
    connect_db(ALL)
    fill(2)
    with pytest.raises(ValueError):
        peestore.prune_audit()
    with pytest.raises(ValueError):
        peestore.prune_audit(keep_rows=-1)
    with pytest.raises(ValueError):
        peestore.prune_audit(older_than=30)
    assert AuditLog.select().count() == 2


def test_prune_a_million_entries(sqlite_db):
    """One indexed delete clears a large log."""
    db = sqlite_db(ALL)
    with db.atomic():
        db.execute_sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000) "
            "INSERT INTO audit_log (timestamp, component, record_id, operation, actor) "
            "SELECT '2026-01-01 00:00:00', 'product', i, 'create', 'internal' FROM n")
    assert peestore.prune_audit(keep_rows=1000) == 999000
    assert AuditLog.select().count() == 1001  # and the prune entry


def test_cli_prune(db_path, capsys):
    """peestore prune-audit --keep-rows N prunes and says how many."""
    url = "sqlite:///%s" % db_path
    peestore.connect(url, models=ALL)
    fill(5)
    assert main(["prune-audit", "--db", url, "--keep-rows", "2"]) == 0
    assert "deleted 3" in capsys.readouterr().out
    assert main(["prune-audit", "--db", url, "--older-than-days", "1"]) == 0
    assert main(["prune-audit", "--db", url]) == 2
