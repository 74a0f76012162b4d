"""Shared fixtures: a fresh database per test, on SQLite and the server backends.

``PEESTORE_TEST_BACKENDS`` (comma-separated: sqlite, postgres, mysql) picks the
backends; by default all three run.  The server URLs come from
``PEESTORE_TEST_POSTGRES_URL`` and ``PEESTORE_TEST_MYSQL_URL``.
"""
import os

import peewee
import pytest
from playhouse import db_url as playhouse_db_url

import peestore
from peestore.testing import isolated_hooks, isolated_listeners

BACKENDS = [b.strip() for b in os.environ.get(
    "PEESTORE_TEST_BACKENDS", "sqlite,postgres,mysql").split(",") if b.strip()]
SERVER_URLS = {
    "postgres": os.environ.get("PEESTORE_TEST_POSTGRES_URL",
                               "postgresql://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("PEESTORE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
}
# Each test run works in a database of its own on each server, made from the
# configured one and dropped at the end, so runs on one machine never collide.
PRIVATE_NAME = "peestore_test_%d" % os.getpid()
_private_urls = {}


def _admin(url: str, sql: str) -> None:
    db = playhouse_db_url.connect(url)
    db.connect()
    try:
        if isinstance(db, peewee.PostgresqlDatabase):
            db.connection().autocommit = True
        db.execute_sql(sql)
    finally:
        db.close()


def server_url(backend: str) -> str:
    """URL of this run's private database on ``backend``, created on first use."""
    if backend not in _private_urls:
        base = SERVER_URLS[backend]
        _admin(base, "CREATE DATABASE %s" % PRIVATE_NAME)
        _private_urls[backend] = base.rsplit("/", 1)[0] + "/" + PRIVATE_NAME
    return _private_urls[backend]


def pytest_sessionfinish(session, exitstatus):
    if peestore.database.obj is not None and not peestore.database.obj.is_closed():
        peestore.database.obj.close()
    for backend in list(_private_urls):
        sql = "DROP DATABASE IF EXISTS %s" % PRIVATE_NAME
        if backend == "postgres":
            sql += " WITH (FORCE)"
        _admin(SERVER_URLS[backend], sql)
        del _private_urls[backend]


def _wipe_server(url: str) -> None:
    """Drop every table in the test database, whatever an earlier run left there."""
    db = peestore.connect(url, create_tables=False)
    with db.connection_context():
        if isinstance(db, peewee.PostgresqlDatabase):
            db.execute_sql("DROP SCHEMA IF EXISTS public CASCADE")
            db.execute_sql("CREATE SCHEMA public")
        else:
            db.execute_sql("SET FOREIGN_KEY_CHECKS=0")
            for (name,) in db.execute_sql("SHOW TABLES").fetchall():
                db.execute_sql("DROP TABLE `%s`" % name)
            db.execute_sql("SET FOREIGN_KEY_CHECKS=1")


def backend_url(backend: str, tmp_path) -> str:
    """A URL for an empty database on ``backend``."""
    if backend == "sqlite":
        return "sqlite:///%s" % (tmp_path / "test.db")
    url = server_url(backend)
    _wipe_server(url)
    return url


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The name of the backend this test runs on."""
    return request.param


@pytest.fixture
def db_url(backend, tmp_path):
    """URL of a fresh, empty database on the test's backend."""
    return backend_url(backend, tmp_path)


@pytest.fixture
def connect_db(db_url):
    """``connect_db(models, **kwargs)``: connect to a fresh database with these models."""
    opened = []

    def _connect(models=(), **kwargs):
        db = peestore.connect(db_url, models=models, **kwargs)
        opened.append(db)
        return db

    yield _connect
    for db in opened:
        if not db.is_closed():
            db.close()


@pytest.fixture
def db_path(tmp_path):
    """Path of a fresh SQLite file."""
    return tmp_path / "test.db"


@pytest.fixture
def sqlite_db(db_path):
    """``sqlite_db(models, **kwargs)``: connect to a fresh SQLite file with these models."""
    opened = []

    def _connect(models=(), **kwargs):
        db = peestore.connect("sqlite:///%s" % db_path, models=models, **kwargs)
        opened.append(db)
        return db

    yield _connect
    for db in opened:
        if not db.is_closed():
            db.close()


@pytest.fixture(autouse=True)
def _no_leftover_listeners():
    """Listeners registered by one test never hear another test's writes."""
    with isolated_listeners():
        yield


@pytest.fixture(autouse=True)
def _no_leftover_receivers():
    """Hook receivers connected by one test are gone after it."""
    with isolated_hooks():
        yield
