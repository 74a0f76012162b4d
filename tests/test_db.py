"""peestore.connect and the database proxy."""
import peewee
import pytest

import peestore
from peestore.db._connect import get_database

from .models import ALL, User


def test_connect_returns_database_and_binds_proxy(connect_db):
    """connect returns the real Database and the models use it."""
    db = connect_db(ALL)
    assert isinstance(db, peewee.Database)
    assert peestore.database.obj is db
    assert User._meta.database.obj is db
    assert get_database() is db


def test_create_tables_is_idempotent(connect_db):
    """Tables of the models and of AuditLog exist, and connecting twice is fine."""
    db = connect_db(ALL)
    User.create(name="a")
    db = connect_db(ALL)
    tables = set(db.get_tables())
    assert {"user", "product", "reading", "setting", "audit_log"} <= tables
    assert User.select().count() == 1


def test_create_tables_false(sqlite_db):
    """create_tables=False leaves the database empty."""
    db = sqlite_db(ALL, create_tables=False)
    assert db.get_tables() == []


def test_sqlite_pragmas(sqlite_db):
    """WAL, synchronous=normal, foreign keys and a busy timeout by default."""
    db = sqlite_db(ALL)
    assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute_sql("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute_sql("PRAGMA busy_timeout").fetchone()[0] == 5000


def test_sqlite_pragmas_override(sqlite_db):
    """pragmas= overrides a default."""
    db = sqlite_db(ALL, pragmas={"synchronous": "full"})
    assert db.execute_sql("PRAGMA synchronous").fetchone()[0] == 2


def test_database_instance(tmp_path):
    """A Database instance is used as it is, with the default pragmas merged in."""
    mine = peewee.SqliteDatabase(str(tmp_path / "x.db"), pragmas={"cache_size": -2000})
    db = peestore.connect(mine, models=ALL)
    assert db is mine
    assert db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute_sql("PRAGMA cache_size").fetchone()[0] == -2000
    db.close()


def test_environment_variable(tmp_path, monkeypatch):
    """Without a URL, PEESTORE_DATABASE_URL is used."""
    path = tmp_path / "env.db"
    monkeypatch.setenv("PEESTORE_DATABASE_URL", "sqlite:///%s" % path)
    db = peestore.connect(models=ALL)
    assert db.database == str(path)
    User.create(name="env")
    assert path.exists()
    db.close()


def test_default_url(tmp_path, monkeypatch):
    """Without a URL or the variable, peestore.db in the current folder."""
    monkeypatch.delenv("PEESTORE_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    db = peestore.connect(models=ALL)
    assert db.database == "peestore.db"
    assert (tmp_path / "peestore.db").exists()
    db.close()


def test_reconnect_switches_database(tmp_path):
    """Calling connect again points the proxy at the new database."""
    peestore.connect("sqlite:///%s" % (tmp_path / "a.db"), models=ALL)
    User.create(name="in a")
    db = peestore.connect("sqlite:///%s" % (tmp_path / "b.db"), models=ALL)
    assert User.select().count() == 0
    db.close()


def test_unknown_scheme():
    """An unknown URL scheme is a ConfigurationError that lists the known ones."""
    with pytest.raises(peestore.ConfigurationError, match="sqlite"):
        peestore.connect("nosuchdb://x/y")


def test_get_database_before_connect(monkeypatch):
    """Using peestore before connect says to call connect."""
    monkeypatch.setattr(peestore.database, "obj", None)
    with pytest.raises(peestore.ConfigurationError, match="connect"):
        get_database()


def test_pooled_connections(db_url, backend):
    """A +pool URL gives a playhouse.pool database; connections go back to the pool."""
    if backend == "sqlite":
        url = db_url.replace("sqlite://", "sqlite+pool://") + "?max_connections=4"
    else:
        scheme, rest = db_url.split("://", 1)
        url = "%s+pool://%s?max_connections=4&stale_timeout=300" % (scheme, rest)
    from playhouse.pool import PooledDatabase
    db = peestore.connect(url, models=ALL)
    assert isinstance(db, PooledDatabase)
    for i in range(3):
        with db.connection_context():
            User.create(name="u%d" % i)
    assert len(db._in_use) == 0
    assert User.select().count() == 3
    db.close_all()


def test_sqlite_url_is_pooled_and_reuses_its_connection(tmp_path):
    db = peestore.connect("sqlite:///%s" % (tmp_path / "p.db"))
    assert isinstance(db, peewee.SqliteDatabase) and hasattr(db, "close_idle")
    with db.connection_context():
        first = db.connection()
    # Closed for the app, kept by the pool: the next unit of work gets it back
    # with its pragmas already set.
    with db.connection_context():
        assert db.connection() is first
        assert db.execute_sql("PRAGMA foreign_keys").fetchone() == (1,)
    db.close_idle()


def test_sqlite_url_options_are_pragmas(tmp_path):
    db = peestore.connect("sqlite:///%s?synchronous=full&cache_size=-4000"
                          % (tmp_path / "o.db"))
    with db.connection_context():
        assert db.execute_sql("PRAGMA synchronous").fetchone() == (2,)
        assert db.execute_sql("PRAGMA cache_size").fetchone() == (-4000,)
        assert db.execute_sql("PRAGMA journal_mode").fetchone() == ("wal",)
    # pragmas= still wins over the URL.
    db = peestore.connect("sqlite:///%s?synchronous=full" % (tmp_path / "o.db"),
                          pragmas={"synchronous": "normal"})
    with db.connection_context():
        assert db.execute_sql("PRAGMA synchronous").fetchone() == (1,)


def test_memory_url_is_not_pooled():
    db = peestore.connect("sqlite:///:memory:")
    assert not hasattr(db, "close_idle")
