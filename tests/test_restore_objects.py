"""Restore against a crafted sqlite_master: kinds in any case, unknown kinds, rows that
are not what their SQL creates, huge or numerous objects, extra tables that act on
the models' tables.

Every hostile file is a real ``peestore.backup()`` altered with plain ``sqlite3``
(``writable_schema`` where the attack needs it), as an attacker would.
"""
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap

import peewee
import pytest

import peestore
from peestore import AuditLog
from peestore.tools import _schema


class Machine(peestore.BaseAuditedModel):
    name = peewee.CharField(unique=True)

    class Meta:
        table_name = "ro_machine"


class Recipe(peestore.BaseAuditedModel):
    name = peewee.CharField(unique=True)
    speed_rpm = peewee.FloatField(default=1.0)
    machine = peewee.ForeignKeyField(Machine, null=True, on_delete="CASCADE")

    class Meta:
        table_name = "recipe"


MODELS = [Machine, Recipe]


@pytest.fixture
def live(sqlite_db, tmp_path):
    """A live database with one recipe, and ``good.sqlite``: a backup of it with two."""
    db = sqlite_db(MODELS)
    press = Machine.create(name="press")
    Recipe.create(name="one", machine=press)
    Recipe.create(name="two", machine=press)
    peestore.backup(tmp_path / "good.sqlite")
    Recipe.get(Recipe.name == "two").delete_instance()
    return db


def _hostile(tmp_path, *statements, writable=False, name="hostile.sqlite"):
    path = tmp_path / name
    shutil.copy(str(tmp_path / "good.sqlite"), str(path))
    conn = sqlite3.connect(str(path), isolation_level=None)
    if writable:
        conn.execute("PRAGMA writable_schema=ON")
    for sql in statements:
        if isinstance(sql, tuple):
            conn.execute(*sql)
        else:
            conn.execute(sql)
    if writable:
        conn.execute("PRAGMA writable_schema=OFF")
    conn.close()
    return path


def _refused(path, message):
    """Both a dry run and a restore refuse ``path`` naming the problem; nothing changes."""
    for dry_run in (True, False):
        with pytest.raises(peestore.RestoreError) as info:
            peestore.restore(path, dry_run=dry_run)
        assert message in str(info.value)
    assert sorted(r.name for r in Recipe.select()) == ["one"]
    assert not AuditLog.select().where(AuditLog.component == "db").exists()
    return str(info.value)


EAT = ("CREATE TRIGGER eat AFTER INSERT ON audit_log BEGIN "
       "DELETE FROM audit_log WHERE id = new.id; END")


@pytest.mark.parametrize("stored", ["TRIGGER", "Trigger", "tRiGgEr"])
def test_a_trigger_stored_in_another_case_is_refused(live, tmp_path, stored):
    """sqlite_master's type is compared as SQLite compares it, whatever its case."""
    path = _hostile(tmp_path, EAT, ("UPDATE sqlite_master SET type = ? WHERE name = 'eat'",
                                    (stored,)), writable=True)
    _refused(path, "trigger eat on audit_log is not in the live database")
    last = AuditLog.select(peewee.fn.MAX(AuditLog.id)).scalar()
    Recipe.create(name="after")  # its audit entry is kept: no trigger came in
    assert [e.operation for e in AuditLog.select().where(AuditLog.id > last)] == ["create"]


def test_a_view_stored_in_upper_case_is_refused(live, tmp_path):
    path = _hostile(tmp_path, "CREATE VIEW speeds AS SELECT name FROM recipe",
                    "UPDATE sqlite_master SET type = 'VIEW' WHERE name = 'speeds'",
                    writable=True)
    _refused(path, "view speeds is not in the live database")


def test_a_check_table_stored_as_upper_case_table_is_refused(live, tmp_path):
    path = _hostile(tmp_path, "CREATE TABLE notes (body TEXT CHECK (length(body) < 10))",
                    "UPDATE sqlite_master SET type = 'TABLE' WHERE name = 'notes'",
                    writable=True)
    _refused(path, "table notes is not in the live database and has CHECK constraints")


def test_an_expression_index_stored_as_upper_case_index_is_refused(live, tmp_path):
    path = _hostile(tmp_path, "CREATE TABLE notes (body TEXT)",
                    "CREATE INDEX notes_lower ON notes (lower(body))",
                    "UPDATE sqlite_master SET type = 'INDEX' WHERE name = 'notes_lower'",
                    writable=True)
    _refused(path, "index notes_lower on notes is not in the live database and indexes an "
                   "expression")


def test_a_row_of_an_unknown_type_is_refused_by_name(live, tmp_path):
    path = _hostile(tmp_path, EAT, "UPDATE sqlite_master SET type = 'widget' WHERE name = 'eat'",
                    writable=True)
    _refused(path, "object eat has the unknown type 'widget'")


@pytest.mark.parametrize("statements, message", [
    # Older SQLite builds the object its SQL says, whatever the row says.
    (["CREATE VIEW speeds AS SELECT name FROM recipe",
      "UPDATE sqlite_master SET type = 'table' WHERE name = 'speeds'"],
     "table speeds: its SQL creates a view"),
    (["CREATE TABLE notes (body TEXT)",
      "UPDATE sqlite_master SET name = 'other', tbl_name = 'other' WHERE name = 'notes'"],
     "table other: its SQL creates notes"),
    (["CREATE TABLE notes (body TEXT)", "CREATE INDEX notes_body ON notes (body)",
      "UPDATE sqlite_master SET tbl_name = 'recipe' WHERE name = 'notes_body'"],
     "index notes_body: its table is recipe, its SQL says notes"),
    (["CREATE TABLE notes (body TEXT)",
      "UPDATE sqlite_master SET sql = NULL WHERE name = 'notes'"],
     "table notes has no SQL"),
    (["CREATE TABLE notes (body TEXT)",
      "UPDATE sqlite_master SET name = 'notes' || char(0) || 'x' WHERE name = 'notes'"],
     "its name holds a NUL byte"),
    (["CREATE TABLE notes (body TEXT)", "CREATE TABLE notes2 (body TEXT)",
      "UPDATE sqlite_master SET name = 'NOTES', tbl_name = 'NOTES', "
      "sql = 'CREATE TABLE NOTES (body TEXT)' WHERE name = 'notes2'"],
     "a second object of that name"),
    (["CREATE TABLE notes (body TEXT)",
      "UPDATE sqlite_master SET sql = 'CREATE TEMP TABLE notes (body TEXT)' "
      "WHERE name = 'notes'"],
     "its SQL creates a temporary object"),
    (["CREATE TABLE notes (body TEXT)",
      "UPDATE sqlite_master SET sql = 'DROP TABLE recipe' WHERE name = 'notes'"],
     "its SQL is not a CREATE"),
    (["CREATE TABLE notes (body TEXT)",
      "UPDATE sqlite_master SET name = CAST(x'6e6f746573ff' AS TEXT) WHERE name = 'notes'"],
     "its name or SQL is not UTF-8"),
    (["CREATE TABLE sqlite_stat4(tbl, idx, neq, nlt, ndlt, sample)"],
     "planner samples are not taken from a backup"),
])
def test_a_row_that_is_not_what_its_sql_creates_is_refused(live, tmp_path, statements,
                                                            message):
    """type, name and tbl_name must be what the SQL makes, once each, and no NULL SQL."""
    _refused(_hostile(tmp_path, *statements, writable=True), message)


def test_odd_bytes_in_names_are_shown_escaped(live, tmp_path):
    """A name with control characters comes back escaped and cut, on one line."""
    name = "evil\n\x1b[31m" + "x" * 200
    path = _hostile(tmp_path, "CREATE VIEW \"%s\" AS SELECT 1" % name)
    message = _refused(path, "is not in the live database")
    assert "\n" not in message and "\x1b" not in message
    assert "evil\\n\\x1b[31m" in message and "x" * 100 not in message


def test_a_foreign_view_is_refused_without_being_tokenized(live, tmp_path, monkeypatch):
    """A trigger or view the live database lacks is refused by its name: its SQL is
    never tokenized, whatever its length."""
    lengths = []
    tokenize = _schema.tokenize
    monkeypatch.setattr(_schema, "tokenize", lambda sql: lengths.append(len(sql)) or
                        tokenize(sql))
    path = _hostile(tmp_path, "CREATE VIEW v AS SELECT 1 WHERE 1 IN (%s)"
                    % ",".join(["1"] * 20000))
    _refused(path, "view v is not in the live database")
    assert lengths and max(lengths) < 40000


def test_a_long_statement_is_refused_unread(live, tmp_path):
    """An extra table's statement over 64 KiB, a model table's over 4 times the live
    one's (and 64 KiB), are refused by their length."""
    path = _hostile(tmp_path, "CREATE TABLE wide (a TEXT DEFAULT '%s')" % ("x" * 70000))
    _refused(path, "table wide: its SQL is")
    check = ", CHECK (speed_rpm IN (%s)))" % ",".join(["1"] * 40000)
    path = _hostile(tmp_path, ("UPDATE sqlite_master SET sql = substr(sql, 1, length(sql) - 1)"
                               " || ? WHERE name = 'recipe'", (check,)), writable=True)
    _refused(path, "table recipe: its SQL is")


def test_too_many_objects_are_refused_naming_the_count_and_limit(live, tmp_path):
    """More objects than the live database's plus 1,000 are refused as the file is read."""
    path = _hostile(tmp_path, "BEGIN", *["CREATE TABLE extra_%d (a)" % i for i in range(1020)],
                    "COMMIT")
    message = _refused(path, "the backup's schema has more than")
    assert "objects, the limit for this database" in message
    # ... and the same number of objects fewer is fine.
    path = _hostile(tmp_path, "BEGIN", *["CREATE TABLE extra_%d (a)" % i for i in range(900)],
                    "COMMIT")
    assert peestore.restore(path, dry_run=True)["restored"] is False


HUGE_VIEW = textwrap.dedent("""
    import resource, sys
    import peestore
    from tests.test_restore_objects import MODELS
    peestore.connect("sqlite:///" + sys.argv[1], models=MODELS)
    with open("/proc/self/status") as f:
        size = next(int(l.split()[1]) for l in f if l.startswith("VmSize")) * 1024
    # Room for 200 MB more: SQLite parsing the view would take about 500 MB.
    resource.setrlimit(resource.RLIMIT_AS, (size + (200 << 20), size + (200 << 20)))
    try:
        peestore.restore(sys.argv[2], dry_run=True)
    except peestore.RestoreError as exc:
        print("refused:", exc)
""")


def test_a_huge_view_is_refused_in_bounded_memory(live, db_path, tmp_path):
    """A 6 MB view, which SQLite's parser and a tokenizer would each take hundreds of
    MB to read, is refused within 200 MB of address space (in a subprocess)."""
    path = _hostile(tmp_path, "CREATE VIEW v AS SELECT 1 WHERE 1 IN (%s)"
                    % ",".join(["1"] * 3000000))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", HUGE_VIEW, str(db_path), str(path)], cwd=root,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout
    assert "refused: the backup's schema is over" in out.stdout
    assert "(at view v)" in out.stdout


def test_the_schema_table_reader_refuses_damage(live, tmp_path):
    """A schema table whose pages lie is refused as damaged, never a crash."""
    path = tmp_path / "damaged.sqlite"
    data = bytearray((tmp_path / "good.sqlite").read_bytes())
    data[100] = 0x02  # page 1 says it is an index page
    path.write_bytes(bytes(data))
    with pytest.raises(peestore.RestoreError, match="schema table is damaged"):
        peestore.restore(path, dry_run=True)
    data[100] = 0x0D
    data[103:105] = b"\xff\xff"  # more cells than fit
    path.write_bytes(bytes(data))
    with pytest.raises(peestore.RestoreError, match="schema table is damaged"):
        peestore.restore(path, dry_run=True)


def test_the_reader_takes_any_bytes(live, tmp_path):
    """Whatever page 1 holds, reading the schema raises RestoreError or nothing."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    good = (tmp_path / "good.sqlite").read_bytes()
    path = tmp_path / "fuzzed.sqlite"

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.tuples(st.integers(100, 4095), st.integers(0, 255)), max_size=8))
    def read(changes):
        data = bytearray(good)
        for at, value in changes:
            data[at] = value
        path.write_bytes(bytes(data))
        try:
            peestore.restore(path, dry_run=True)
        except peestore.RestoreError:
            pass

    read()


def test_a_utf16_backup_is_refused(live, tmp_path):
    path = tmp_path / "utf16.sqlite"
    conn = sqlite3.connect(str(path))
    conn.execute("PRAGMA encoding = 'UTF-16le'")
    conn.execute("CREATE TABLE t (a)")
    conn.close()
    with pytest.raises(peestore.RestoreError, match="text encoding is UTF-16le"):
        peestore.restore(path, dry_run=True)


# -- extra tables that would act on the models' tables --------------------

@pytest.mark.parametrize("parent", ["ro_machine", "audit_log", "RECIPE"])
def test_an_extra_table_referring_to_an_owned_table_is_refused(live, tmp_path, parent):
    """Its foreign key would veto deletes of the model's rows (and audit pruning)."""
    path = _hostile(tmp_path, "CREATE TABLE pin (m INTEGER REFERENCES %s(id))" % parent,
                    "INSERT INTO pin VALUES (1)")
    _refused(path, "table pin is not in the live database and has a foreign key into %s"
             % parent.lower())


def test_an_extra_table_referring_to_another_extra_table_is_accepted(live, tmp_path):
    path = _hostile(tmp_path, "CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)",
                    "CREATE TABLE tag (note_id INTEGER REFERENCES note(id), tag TEXT)")
    assert peestore.restore(path)["restored"] is True
    Machine.get(Machine.name == "press").delete_instance(recursive=True)


def test_a_table_the_models_refer_to_must_be_the_live_ones(sqlite_db, tmp_path):
    """An owned table's foreign key into a table no model owns: that table must be the
    live database's, or every write to the owned table could fail."""

    class Site(peewee.Model):
        code = peewee.CharField(unique=True)

        class Meta:
            table_name = "ro_site"

    class Line(peestore.BaseAuditedModel):
        site = peewee.ForeignKeyField(Site, field=Site.code, null=True)

        class Meta:
            table_name = "ro_line"

    db = sqlite_db([Line])
    db.execute_sql('CREATE TABLE ro_site (id INTEGER PRIMARY KEY, code VARCHAR(255) NOT NULL)')
    db.execute_sql('CREATE UNIQUE INDEX ro_site_code ON ro_site (code)')
    peestore.backup(tmp_path / "good.sqlite")
    assert peestore.restore(tmp_path / "good.sqlite", dry_run=True)["restored"] is False
    path = _hostile(tmp_path, "DROP INDEX ro_site_code", "DROP TABLE ro_site",
                    "CREATE TABLE ro_site (id INTEGER PRIMARY KEY, code TEXT)")
    with pytest.raises(peestore.RestoreError,
                       match="table ro_site differs from the live database's, and table "
                             "ro_line refers to it"):
        peestore.restore(path, dry_run=True)


def test_planner_statistics_of_owned_tables_are_not_taken(live, db_path, tmp_path):
    """sqlite_stat1 rows for the models' tables are dropped from the restored file
    (ANALYZE makes them again); those of other tables stay."""
    path = _hostile(tmp_path, "CREATE TABLE notes (body TEXT)",
                    "CREATE INDEX notes_body ON notes (body)", "ANALYZE",
                    "DELETE FROM sqlite_stat1",
                    "INSERT INTO sqlite_stat1 VALUES ('recipe', 'recipe_name', '1000000 1000000')",
                    "INSERT INTO sqlite_stat1 VALUES ('notes', 'notes_body', '10 1')")
    assert peestore.restore(path)["restored"] is True
    rows = live.execute_sql("SELECT tbl FROM sqlite_stat1").fetchall()
    assert rows == [("notes",)]


def test_the_hostile_restore_benchmark_runs(tmp_path):
    """benchmarks/restore_hostile.py runs (small sizes) and prints each figure."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, os.path.join(root, "benchmarks", "restore_hostile.py"),
                          "--view-mb", "0.5", "--tables", "1100", "--mb", "1",
                          "--dir", str(tmp_path)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout
    for label in ("dry run, the good backup", "dry run, a 0.5 MB view",
                  "dry run, 1100 extra tables", "SQLite alone reads",
                  "dry run, integrity_check=True (rows checked)", "the row checks alone"):
        assert label in out.stdout, out.stdout
    assert "MB peak" in out.stdout and "RestoreError" in out.stdout
