"""Restore treats the uploaded file as hostile: its schema must be the live database's.

Every hostile file here is a real ``peestore.backup()`` of a database with
models, altered afterwards with plain ``sqlite3`` as an attacker would.
"""
import shutil
import sqlite3

import peewee
import pytest

import peestore
from peestore import AuditLog
from peestore.db._hardening import DEFENSIVE_AVAILABLE, open_sqlite


class Machine(peestore.BaseAuditedModel):
    name = peewee.CharField(unique=True)

    class Meta:
        table_name = "rs_machine"


class Recipe(peestore.BaseAuditedModel):
    name = peewee.CharField(unique=True)
    speed_rpm = peewee.FloatField(default=1.0)
    state = peewee.CharField(default="idle", constraints=[peewee.SQL("DEFAULT 'idle'")])
    machine = peewee.ForeignKeyField(Machine, null=True, on_delete="CASCADE")
    note = peewee.TextField(null=True)

    class Meta:
        table_name = "recipe"


MODELS = [Machine, Recipe]


@pytest.fixture
def live(sqlite_db, db_path, tmp_path):
    """A live database with one recipe, and ``good.sqlite``: a backup of it with two."""
    db = sqlite_db(MODELS)
    press = Machine.create(name="press")
    Recipe.create(name="one", machine=press)
    Recipe.create(name="two", machine=press)
    peestore.backup(tmp_path / "good.sqlite")
    Recipe.get(Recipe.name == "two").delete_instance()
    return db


def _hostile(tmp_path, *statements, table=None, rewrite=None, sound=True):
    """A copy of ``good.sqlite`` altered by ``statements``, and/or with the stored
    CREATE TABLE of ``table`` rewritten by ``rewrite(sql)`` (writable_schema)."""
    path = tmp_path / "hostile.sqlite"
    shutil.copy(str(tmp_path / "good.sqlite"), str(path))
    conn = sqlite3.connect(str(path))
    for sql in statements:
        conn.execute(sql)
    if rewrite is not None:
        old = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                           (table,)).fetchone()[0]
        new = rewrite(old)
        assert new != old
        conn.execute("PRAGMA writable_schema=ON")
        conn.execute("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
                     (new, table))
    conn.commit()
    conn.close()
    if sound:  # the file itself is sound: only its schema lies
        check = sqlite3.connect(str(path))
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        check.close()
    return path


def _live_schema(db_path):
    conn = sqlite3.connect(str(db_path))
    try:
        return sorted(conn.execute("SELECT type, name, sql FROM sqlite_master"))
    finally:
        conn.close()


def _assert_refused(path, db_path, message):
    """restore() refuses ``path`` naming the object; the live database is as it was."""
    before = _live_schema(db_path)
    for dry_run in (True, False):
        with pytest.raises(peestore.RestoreError) as info:
            peestore.restore(path, dry_run=dry_run)
        assert message in str(info.value)
    assert _live_schema(db_path) == before
    assert sorted(r.name for r in Recipe.select()) == ["one"]
    assert not (db_path.parent / (db_path.name + ".pre-restore")).exists()
    assert [p.name for p in db_path.parent.iterdir() if p.name.endswith(".restore")] == []
    assert not AuditLog.select().where(AuditLog.component == "db").exists()


def _assert_live_still_works():
    """Creates and updates store what they say, each with its audit entry."""
    last = AuditLog.select(peewee.fn.MAX(AuditLog.id)).scalar()
    recipe = Recipe.create(name="after", speed_rpm=50.0)
    recipe.speed_rpm = 75.0
    recipe.save()
    assert Recipe.get_by_id(recipe.id).speed_rpm == 75.0
    new = AuditLog.select().where(AuditLog.id > last).order_by(AuditLog.id)
    assert [(e.component, e.record_id, e.operation) for e in new] == [
        ("recipe", str(recipe.id), "create"), ("recipe", str(recipe.id), "update")]


TRIGGERS = {
    "audit entries vanish": (
        "CREATE TRIGGER audit_guard AFTER INSERT ON audit_log BEGIN "
        "DELETE FROM audit_log WHERE id = new.id; END",
        "trigger audit_guard on audit_log is not in the live database"),
    "a column rewritten after UPDATE": (
        "CREATE TRIGGER speed_rewrite AFTER UPDATE ON recipe BEGIN "
        "UPDATE recipe SET speed_rpm = 99999 WHERE id = new.id; END",
        "trigger speed_rewrite on recipe is not in the live database"),
    "every write aborted": (
        "CREATE TRIGGER no_writes BEFORE INSERT ON recipe BEGIN "
        "SELECT RAISE(ABORT, 'no writes'); END",
        "trigger no_writes on recipe is not in the live database"),
    "recursive": (
        "CREATE TRIGGER again AFTER UPDATE ON recipe BEGIN "
        "UPDATE recipe SET note = coalesce(note, '') || 'x' WHERE id = new.id; END",
        "trigger again on recipe is not in the live database"),
}


@pytest.mark.parametrize("case", sorted(TRIGGERS))
def test_a_foreign_trigger_is_refused(live, db_path, tmp_path, case):
    """A trigger the live database does not have is refused, naming it; the live
    database keeps working and keeps writing its audit entries."""
    sql, message = TRIGGERS[case]
    _assert_refused(_hostile(tmp_path, sql), db_path, message)
    _assert_live_still_works()


def _replace(old, new):
    def rewrite(sql):
        assert old in sql
        return sql.replace(old, new)
    return rewrite


CONSTRAINTS = {
    "a view": (
        dict(statements=["CREATE VIEW recipe_speeds AS SELECT name, speed_rpm FROM recipe"]),
        "view recipe_speeds is not in the live database"),
    "UNIQUE stripped": (
        dict(statements=["DROP INDEX recipe_name", "CREATE INDEX recipe_name ON recipe (name)"]),
        "index recipe_name on recipe differs"),
    "NOT NULL stripped": (
        dict(table="recipe", rewrite=_replace('"speed_rpm" REAL NOT NULL', '"speed_rpm" REAL')),
        "table recipe: column speed_rpm differs: REAL NOT NULL vs REAL"),
    "a changed type": (
        dict(table="recipe", rewrite=_replace('"speed_rpm" REAL', '"speed_rpm" NUMERIC')),
        "table recipe: column speed_rpm differs: REAL NOT NULL vs NUMERIC NOT NULL"),
    "a changed default": (
        dict(table="recipe", rewrite=_replace("DEFAULT 'idle'", "DEFAULT 'running'")),
        "table recipe: column state differs: VARCHAR(255) NOT NULL DEFAULT 'idle' vs "
        "VARCHAR(255) NOT NULL DEFAULT 'running'"),
    "an added CHECK": (
        dict(table="recipe", rewrite=lambda sql: sql[:-1] + ', CHECK ("speed_rpm" < 1e9))'),
        'table recipe: constraint CHECK ("speed_rpm" < 1e9) is not in the live database'),
    "ON CONFLICT REPLACE": (
        dict(table="recipe", rewrite=_replace('"name" VARCHAR(255) NOT NULL',
                                              '"name" VARCHAR(255) NOT NULL ON CONFLICT REPLACE')),
        "table recipe: column name differs: VARCHAR(255) NOT NULL vs "
        "VARCHAR(255) NOT NULL ON CONFLICT REPLACE"),
    "a collation": (
        dict(table="recipe", rewrite=_replace('"note" TEXT', '"note" TEXT COLLATE NOCASE')),
        "table recipe: column note differs: TEXT vs TEXT COLLATE NOCASE"),
    "ON DELETE changed": (
        dict(table="recipe", rewrite=_replace("ON DELETE CASCADE", "ON DELETE SET NULL")),
        'table recipe: constraint FOREIGN KEY ("machine_id") REFERENCES "rs_machine" ("id") '
        "ON DELETE SET NULL is not in the live database"),
    "an index removed": (
        dict(statements=["DROP INDEX recipe_machine_id"]),
        "index recipe_machine_id on recipe is missing"),
    "an index duplicated": (
        dict(statements=["CREATE UNIQUE INDEX recipe_name_again ON recipe (name)"]),
        "index recipe_name_again on recipe is not in the live database"),
    "an index added": (
        dict(statements=["CREATE INDEX recipe_speed ON recipe (speed_rpm)"]),
        "index recipe_speed on recipe is not in the live database"),
    "a column dropped": (
        dict(statements=["ALTER TABLE recipe DROP COLUMN note"]),
        "table recipe: column note is missing"),
    "a column added": (
        dict(statements=["ALTER TABLE recipe ADD COLUMN secret TEXT"]),
        "table recipe: column secret is not in the live database"),
    "the audit log's NOT NULL stripped": (
        dict(table="audit_log", rewrite=_replace('"actor" VARCHAR(200) NOT NULL',
                                                 '"actor" VARCHAR(200)')),
        "table audit_log: column actor differs: VARCHAR(200) NOT NULL vs VARCHAR(200)"),
    "a model's table missing": (
        dict(statements=["DROP TABLE recipe"]),
        "table recipe is missing"),
    "a virtual table": (
        dict(statements=["CREATE VIRTUAL TABLE notes USING fts5(body)"]),
        "table notes is a virtual table that is not in the live database"),
    "an extra table with a CHECK": (
        dict(statements=["CREATE TABLE notes (body TEXT CHECK (length(body) < 10))"]),
        "table notes is not in the live database and has CHECK constraints"),
    "an extra table with an expression index": (
        dict(statements=["CREATE TABLE notes (body TEXT)",
                         "CREATE INDEX notes_body ON notes (lower(body))"]),
        "index notes_body on notes is not in the live database and indexes an expression"),
}


@pytest.mark.parametrize("case", sorted(CONSTRAINTS))
def test_a_changed_schema_is_refused(live, db_path, tmp_path, case):
    """Each change to a model's table (or a view, or an extra table that would run
    SQL of its own) is refused, naming the object; nothing changes."""
    alteration, message = CONSTRAINTS[case]
    path = _hostile(tmp_path, *alteration.get("statements", ()),
                    table=alteration.get("table"), rewrite=alteration.get("rewrite"))
    _assert_refused(path, db_path, message)
    _assert_live_still_works()


def test_unique_stripped_would_have_let_duplicates_in(live, db_path, tmp_path):
    """The file refused above really is what the issue found: duplicates go in."""
    path = _hostile(tmp_path, "DROP INDEX recipe_name",
                    "CREATE INDEX recipe_name ON recipe (name)")
    conn = sqlite3.connect(str(path))
    conn.execute("INSERT INTO recipe (name, speed_rpm, state) VALUES ('one', 1, 'idle')")
    conn.execute("INSERT INTO recipe (name, speed_rpm, state) VALUES ('one', 1, 'idle')")
    conn.close()
    with pytest.raises(peestore.RestoreError, match="index recipe_name on recipe differs"):
        peestore.restore(path)
    with pytest.raises(peewee.IntegrityError):
        Recipe.create(name="one")


def test_an_extra_plain_table_is_accepted(live, db_path, tmp_path):
    """A table no model owns may come along, with plain indexes, if it runs no SQL."""
    path = _hostile(tmp_path, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
                    "CREATE INDEX notes_body ON notes (body)",
                    "INSERT INTO notes (body) VALUES ('kept')")
    assert peestore.restore(path)["restored"] is True
    assert sorted(r.name for r in Recipe.select()) == ["one", "two"]
    assert live.execute_sql("SELECT body FROM notes").fetchall() == [("kept",)]
    _assert_live_still_works()


def test_layout_differences_are_not_differences(live, tmp_path):
    """Whitespace, comments, identifier quoting and keyword case do not count."""
    path = _hostile(tmp_path, table="recipe", rewrite=_replace(
        '"speed_rpm" REAL NOT NULL', "speed_rpm   real /* rpm */\n  not  null"))
    assert peestore.restore(path)["restored"] is True


def test_a_trigger_the_live_database_has_is_accepted(live, db_path, tmp_path):
    """Triggers are compared, not banned: the live database's own come along."""
    trigger = ("CREATE TRIGGER recipe_touch AFTER UPDATE ON recipe BEGIN "
               "UPDATE recipe SET note = 'touched' WHERE id = new.id; END")
    live.execute_sql(trigger)
    peestore.backup(tmp_path / "good.sqlite")
    assert peestore.restore(tmp_path / "good.sqlite")["restored"] is True
    # ... and a file without it is refused: it is part of the model's table.
    path = _hostile(tmp_path, "DROP TRIGGER recipe_touch")
    with pytest.raises(peestore.RestoreError, match="trigger recipe_touch on recipe is missing"):
        peestore.restore(path)
    # ... as is one whose trigger does something else under the same name.
    path = _hostile(tmp_path, "DROP TRIGGER recipe_touch",
                    trigger.replace("'touched'", "'owned'"))
    with pytest.raises(peestore.RestoreError,
                       match="trigger recipe_touch on recipe differs from the live database's"):
        peestore.restore(path)


def test_the_refusal_comes_before_integrity_check(live, tmp_path):
    """A foreign CHECK is refused before PRAGMA integrity_check would evaluate it."""
    path = _hostile(tmp_path, table="recipe", sound=False,
                    rewrite=lambda sql: sql[:-1] + ", CHECK (speed_rpm < 0))")
    with pytest.raises(peestore.RestoreError) as info:
        peestore.restore(path)
    assert "is not in the live database" in str(info.value)
    assert "integrity_check" not in str(info.value)


# -- a live database migrated, a backup made fresh (and the other way round) --

def _recipe_versions():
    class RecipeV1(peestore.BaseAuditedModel):
        name = peewee.CharField(unique=True)
        speed_rpm = peewee.FloatField(default=1.0)

        class Meta:
            table_name = "mig_recipe"

    class RecipeV2(peestore.BaseAuditedModel):
        name = peewee.CharField(unique=True)
        # Added by migrate=True after the table existed: nullable (ALTER TABLE
        # ADD COLUMN, the column comes last), defaulted, and a foreign key
        # (written inline as REFERENCES, where CREATE TABLE has FOREIGN KEY).
        note = peewee.TextField(null=True, index=True)
        kind = peewee.CharField(default="plain", max_length=10)
        machine = peewee.ForeignKeyField(Machine, null=True, on_delete="CASCADE")
        speed_rpm = peewee.FloatField(default=1.0)

        class Meta:
            table_name = "mig_recipe"

    return RecipeV1, RecipeV2


def _columns(db):
    return [c.name for c in db.get_columns("mig_recipe")]


def test_migrated_and_fresh_databases_match_both_ways(tmp_path):
    """A live database that gained columns by migration (they come last) and a
    backup created fresh from the same models (model order) match, both ways."""
    v1, v2 = _recipe_versions()
    migrated_url = "sqlite:///%s" % (tmp_path / "migrated.db")
    fresh_url = "sqlite:///%s" % (tmp_path / "fresh.db")

    peestore.connect(migrated_url, models=[Machine, v1])
    v1.create(name="from v1")
    db = peestore.connect(migrated_url, models=[Machine, v2], migrate=True)
    migrated_columns = _columns(db)
    v2.create(name="migrated")
    peestore.backup(tmp_path / "migrated.sqlite")

    db = peestore.connect(fresh_url, models=[Machine, v2])
    fresh_columns = _columns(db)
    v2.create(name="fresh")
    peestore.backup(tmp_path / "fresh.sqlite")
    assert migrated_columns != fresh_columns  # the case this test is about
    assert sorted(migrated_columns) == sorted(fresh_columns)

    # Live fresh, file migrated.
    assert peestore.restore(tmp_path / "migrated.sqlite")["restored"] is True
    assert sorted(r.name for r in v2.select()) == ["from v1", "migrated"]
    db.close()

    # Live migrated, file fresh.
    db = peestore.connect(migrated_url, models=[Machine, v2])
    assert peestore.restore(tmp_path / "fresh.sqlite")["restored"] is True
    assert [r.name for r in v2.select()] == ["fresh"]
    v2.create(name="after", kind="x")
    db.close()

    # The command line (no registered models) compares every table the same way.
    db = peestore.connect(migrated_url, create_tables=False)
    assert peestore.restore(tmp_path / "migrated.sqlite", dry_run=True)["restored"] is False
    db.close()


def test_a_migrated_file_still_refuses_a_stripped_constraint(tmp_path):
    """Column order is free, the columns' definitions are not."""
    v1, v2 = _recipe_versions()
    url = "sqlite:///%s" % (tmp_path / "live.db")
    peestore.connect(url, models=[Machine, v1])
    db = peestore.connect(url, models=[Machine, v2], migrate=True)
    peestore.backup(tmp_path / "copy.sqlite")
    conn = sqlite3.connect(str(tmp_path / "copy.sqlite"))
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'mig_recipe'").fetchone()[0]
    conn.execute("PRAGMA writable_schema=ON")
    conn.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'mig_recipe'",
                 (sql.replace(" ON DELETE CASCADE", ""),))
    conn.commit()
    conn.close()
    with pytest.raises(peestore.RestoreError, match="mig_recipe: constraint FOREIGN KEY"):
        peestore.restore(tmp_path / "copy.sqlite")
    db.close()


def test_a_model_table_the_live_database_lacks_is_checked_against_the_model(tmp_path):
    """connect(create_tables=False) on an empty file: the file must match the models."""
    good = "sqlite:///%s" % (tmp_path / "good.db")
    peestore.connect(good, models=MODELS)
    Recipe.create(name="seed")
    peestore.backup(tmp_path / "seed.sqlite")
    shutil.copy(str(tmp_path / "seed.sqlite"), str(tmp_path / "bad.sqlite"))
    conn = sqlite3.connect(str(tmp_path / "bad.sqlite"))
    conn.execute("DROP INDEX recipe_name")
    conn.commit()
    conn.close()

    empty = tmp_path / "empty.db"
    sqlite3.connect(str(empty)).close()
    db = peestore.connect("sqlite:///%s" % empty, models=MODELS, create_tables=False)
    with pytest.raises(peestore.RestoreError, match="index recipe_name on recipe is missing"):
        peestore.restore(tmp_path / "bad.sqlite")
    assert peestore.restore(tmp_path / "seed.sqlite")["restored"] is True
    assert [r.name for r in Recipe.select()] == ["seed"]
    db.close()


# -- trusted_schema and defensive mode -------------------------------------

def _trusted_schema(db):
    with db.connection_context():
        return db.execute_sql("PRAGMA trusted_schema").fetchone()[0]


def test_connections_do_not_trust_the_schema(db_path, tmp_path):
    """Every SQLite connection peestore opens reports trusted_schema = 0."""
    db = peestore.connect("sqlite:///%s" % db_path)
    assert _trusted_schema(db) == 0
    own = peewee.SqliteDatabase(str(tmp_path / "own.db"), pragmas={"cache_size": -1000})
    db = peestore.connect(own)
    assert _trusted_schema(db) == 0
    db = peestore.connect("sqlite:///:memory:")
    assert db.execute_sql("PRAGMA trusted_schema").fetchone()[0] == 0
    db.close()
    db = peestore.connect("sqlite+pool:///%s" % (tmp_path / "pool.db"))
    assert _trusted_schema(db) == 0
    conn = open_sqlite(str(db_path))  # what backup and restore open
    assert conn.execute("PRAGMA trusted_schema").fetchone()[0] == 0
    conn.close()


@pytest.mark.parametrize("how", ["pragmas", "url", "database"])
def test_trusted_schema_cannot_be_turned_on(db_path, how):
    """pragmas that would trust the schema again are a ConfigurationError."""
    with pytest.raises(peestore.ConfigurationError, match="trusted_schema"):
        if how == "pragmas":
            peestore.connect("sqlite:///%s" % db_path, pragmas={"trusted_schema": 1})
        elif how == "url":
            peestore.connect("sqlite:///%s?trusted_schema=on" % db_path)
        else:
            peestore.connect(peewee.SqliteDatabase(str(db_path),
                                                   pragmas={"trusted_schema": "1"}))
    db = peestore.connect("sqlite:///%s" % db_path, pragmas={"trusted_schema": "off"})
    assert _trusted_schema(db) == 0


def test_the_schema_cannot_call_the_applications_functions(db_path):
    """With trusted_schema off, a view cannot call a function the app registered."""
    db = peestore.connect("sqlite:///%s" % db_path, models=MODELS)
    calls = []

    @db.func("app_side_effect")
    def app_side_effect(value):
        calls.append(value)
        return value

    with db.connection_context():
        db.execute_sql("CREATE VIEW probe AS SELECT app_side_effect(name) AS n FROM recipe")
        Recipe.create(name="x")
        assert db.execute_sql("SELECT app_side_effect('direct')").fetchone() == ("direct",)
        with pytest.raises(peewee.OperationalError, match="unsafe use of app_side_effect"):
            db.execute_sql("SELECT n FROM probe").fetchall()
    assert calls == ["direct"]


@pytest.mark.skipif(not DEFENSIVE_AVAILABLE, reason="defensive mode needs Python 3.12+")
def test_defensive_mode_on_python_312(db_path):
    """Where Python exposes it, connections run in SQLite's defensive mode."""
    db = peestore.connect("sqlite:///%s" % db_path, models=MODELS)
    with db.connection_context():
        conn = db.connection()
        assert conn.getconfig(sqlite3.SQLITE_DBCONFIG_DEFENSIVE)
        db.execute_sql("PRAGMA writable_schema=ON")
        with pytest.raises(peewee.OperationalError):
            db.execute_sql("UPDATE sqlite_master SET sql = sql")
    conn = open_sqlite(str(db_path))
    assert conn.getconfig(sqlite3.SQLITE_DBCONFIG_DEFENSIVE)
    conn.close()


def test_the_docs_recipe_for_a_backup_older_than_the_schema_runs(tmp_path, monkeypatch, capsys):
    """docs/data-tools.md "Restoring a backup made before a schema change": its blocks
    run; the old backup is refused as it is, and restored once a copy is upgraded."""
    import pathlib
    import re

    page = pathlib.Path(__file__).parent.parent / "docs" / "data-tools.md"
    section = page.read_text(encoding="utf-8").split(
        "\n## Restoring a backup made before a schema change\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    (tmp_path / "backups").mkdir()
    namespace = {"peestore": peestore}
    exec(compile(blocks[0], str(page), "exec"), namespace)
    assert "table note: column author is missing" in capsys.readouterr().out
    exec(compile(blocks[1], str(page), "exec"), namespace)
    note = namespace["Note"]
    assert [(n.text, n.author) for n in note.select()] == [("written by version 1", None)]
    assert (tmp_path / "backups" / "old.sqlite").exists()
    peestore.database.obj.close()


def test_the_schema_parser_takes_any_text():
    """Whatever a crafted file stores as SQL, reading it raises nothing (a hostile
    schema is refused, never a 500)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from peestore.tools import _schema as schema

    pieces = st.sampled_from([
        "CREATE", "TABLE", "VIRTUAL", "INDEX", "ON", "t", '"q""x"', "`b`", "[s]", "'str''s'",
        "(", ")", ",", "REFERENCES", "CONSTRAINT", "FOREIGN", "KEY", "DELETE", "UPDATE",
        "SET", "NULL", "NO", "ACTION", "NOT", "DEFERRABLE", "INITIALLY", "MATCH", "CHECK",
        "AS", "WHERE", "UNIQUE", "PRIMARY", "x'0f'", "1.5e3", "--c\n", "/* c", "*/", ";",
        "IF", "EXISTS", "STRICT", "WITHOUT", "ROWID", "'", '"', "é", "\x00", "||"])

    @settings(max_examples=300, deadline=None)
    @given(st.lists(pieces, max_size=40), st.text(max_size=40))
    def parse(words, noise):
        for sql in (" ".join(words), noise, " ".join(words) + noise):
            table = schema.Table("t", sql)
            schema.Index("i", sql, ())
            schema._plain_index(schema.tokenize(sql))
            assert isinstance(table.constraints, dict)

    parse()
