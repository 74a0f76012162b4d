"""Tests of peestore backup / restore / export / import / diagram / audit on the command line."""
import io
import json
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile

import peewee
import pytest

import peestore
from peestore.cli._main import main


class Valve(peestore.BaseAuditedModel):
    name = peewee.CharField()
    open_pct = peewee.FloatField(default=0.0)

    class Meta:
        table_name = "cli_valve"
        component = "valves"


@pytest.fixture
def url(db_path):
    """A SQLite database holding two valves, closed, as a command-line user finds it."""
    url = f"sqlite:///{db_path}"
    db = peestore.connect(url, models=[Valve])
    with peestore.actor("alice"):
        Valve.create(name="inlet")
    with peestore.actor("bob"):
        outlet = Valve.create(name="outlet")
        outlet.open_pct = 50.0
        outlet.save()
    db.close()
    return url


def _count(path, table):
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def test_backup_and_restore(url, db_path, tmp_path, capsys):
    """backup writes a file; restore brings it back; --dry-run changes nothing."""
    out = tmp_path / "b.sqlite"
    assert main(["backup", "--db", url, str(out)]) == 0
    assert "backed up to" in capsys.readouterr().out
    assert _count(out, "cli_valve") == 2
    conn = sqlite3.connect(str(db_path))
    conn.execute("DELETE FROM cli_valve")
    conn.commit()
    conn.close()
    assert main(["restore", "--db", url, str(out), "--dry-run"]) == 0
    assert "nothing changed" in capsys.readouterr().out
    assert _count(db_path, "cli_valve") == 0
    assert main(["restore", "--db", url, str(out), "--no-integrity-check"]) == 0
    said = capsys.readouterr().out
    assert "restored" in said
    assert _count(db_path, "cli_valve") == 2
    # The message names the real file the previous database was kept as.
    kept = tmp_path / "test.db.pre-restore"
    assert said.strip().endswith("kept as %s" % kept)
    assert kept.exists()


def test_restore_rejects_a_bad_file_with_one_line(url, tmp_path, capsys):
    """A bad backup is a one-line error and exit status 1."""
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"garbage" * 100)
    assert main(["restore", "--db", url, str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("peestore restore: error:") and err.count("\n") == 1


def test_backup_on_a_server_database_is_an_error(capsys):
    """backup on PostgreSQL says to use pg_dump (no connection needed to know)."""
    assert main(["backup", "--db", "postgresql://nobody@127.0.0.1:1/none", "x.sqlite"]) == 1
    assert "pg_dump" in capsys.readouterr().err


def test_export_and_import(url, tmp_path, capsys):
    """export writes a zip; import --replace loads it back, blamed on --actor."""
    out = tmp_path / "e.zip"
    assert main(["export", "--db", url, str(out)]) == 0
    assert sorted(zipfile.ZipFile(str(out)).namelist()) == ["audit_log.csv", "cli_valve.csv"]
    only = tmp_path / "v.zip"
    assert main(["export", "--db", url, str(only), "--table", "cli_valve"]) == 0
    assert zipfile.ZipFile(str(only)).namelist() == ["cli_valve.csv"]
    capsys.readouterr()
    assert main(["import", "--db", url, str(only), "--replace", "--actor", "carol"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "cli_valve: 2 rows"
    # Without --app the command line knows no model: it says how the rows were checked.
    assert lines[1].startswith("note: cli_valve checked by column types only")
    assert main(["audit", "--db", url, "--actor", "carol", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    # The command line does not know the models: the entry names the table.
    assert [(e["operation"], e["component"], e["record_id"]) for e in entries] == [
        ("import", "cli_valve", "*")]


def test_import_errors_are_one_line(url, tmp_path, capsys):
    """A bad zip: one line on stderr, status 1; usage errors are status 2."""
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"nope")
    assert main(["import", "--db", url, str(junk)]) == 1
    err = capsys.readouterr().err
    assert "not a zip" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as info:
        main(["import", "--db", url])
    assert info.value.code == 2


def test_diagram_to_file_and_stdout(url, tmp_path, capsys):
    """diagram -o writes SVG; without -o it goes to stdout."""
    out = tmp_path / "d.svg"
    assert main(["diagram", "--db", url, "-o", str(out)]) == 0
    ET.fromstring(out.read_text(encoding="utf-8"))
    capsys.readouterr()
    assert main(["diagram", "--db", url]) == 0
    assert "cli_valve" in capsys.readouterr().out


def test_audit_table_and_filters(url, capsys):
    """audit prints a plain table, newest first, filtered by component, record and actor."""
    assert main(["audit", "--db", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "timestamp", "operation", "component", "record_id",
                                "actor", "reason", "changed"]
    assert [line.split()[3] for line in lines[2:]] == ["update", "create", "create"]
    assert "open_pct" in lines[2]
    assert main(["audit", "--db", url, "--record-id", "1", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["actor"] for e in entries] == ["alice"]
    assert entries[0]["after"]["name"] == "inlet"
    assert main(["audit", "--db", url, "--component", "valves", "--actor", "bob",
                 "--limit", "1", "--json"]) == 0
    assert [e["operation"] for e in json.loads(capsys.readouterr().out)] == ["update"]
    with pytest.raises(SystemExit) as info:
        main(["audit", "--db", url, "--limit", "0"])
    assert info.value.code == 2


def test_audit_on_a_database_without_audit_log(tmp_path, capsys):
    """A database peestore never opened is a one-line error, not a traceback."""
    other = tmp_path / "other.db"
    sqlite3.connect(str(other)).close()
    assert main(["audit", "--db", f"sqlite:///{other}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("peestore audit: error: cannot read the audit log") \
        and err.count("\n") == 1


def test_progress_only_on_a_terminal(url, tmp_path, monkeypatch, capsys):
    """Progress goes to stderr when it is a terminal, and not otherwise."""
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    main(["backup", "--db", url, str(tmp_path / "a.sqlite")])
    assert capsys.readouterr().err == ""
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    main(["backup", "--db", url, str(tmp_path / "b.sqlite")])
    main(["export", "--db", url, str(tmp_path / "c.zip")])
    assert "backup: 100%" in term.getvalue() and "export: cli_valve: 2 rows" in term.getvalue()


def test_console_entry_point(url, tmp_path):
    """python -m peestore runs the same commands."""
    out = tmp_path / "m.sqlite"
    done = subprocess.run([sys.executable, "-m", "peestore", "backup", "--db", url, str(out)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert out.exists()
