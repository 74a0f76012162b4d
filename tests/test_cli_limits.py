"""The command line's limits: out-of-range arguments, missing databases and folders, bugs."""
import datetime
import sqlite3
import subprocess
import sys

import peewee
import pytest

import peestore
from peestore import AuditLog
from peestore.cli._main import COMMANDS, main

from . import processes
from .models import ALL, Product


class Gauge(peestore.BaseAuditedModel):
    name = peewee.CharField()

    class Meta:
        table_name = "cli_gauge"
        component = "gauges"


@pytest.fixture
def url(db_path):
    """A SQLite database with three audit entries, closed, as a command-line user finds it."""
    url = "sqlite:///%s" % db_path
    db = peestore.connect(url, models=[Gauge])
    with peestore.actor("alice"):
        for name in ("a", "b", "c"):
            Gauge.create(name=name)
    db.close()
    return url


def _audit_rows(path):
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    finally:
        conn.close()


def _one_line(err):
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


OUT_OF_RANGE = [
    (["prune-audit", "--older-than-days", "-1"], "--older-than-days"),
    (["prune-audit", "--older-than-days", "9999999999"], "--older-than-days"),
    (["prune-audit", "--older-than-days", "36501"], "--older-than-days"),
    (["prune-audit", "--older-than-days", "nan"], "--older-than-days"),
    (["prune-audit", "--older-than-days", "inf"], "--older-than-days"),
    (["prune-audit", "--older-than-days", "ten"], "--older-than-days"),
    (["prune-audit", "--keep-rows", "-1"], "--keep-rows"),
    (["prune-audit", "--keep-rows", "9223372036854775808"], "--keep-rows"),
    (["prune-audit", "--keep-rows", "99999999999999999999999"], "--keep-rows"),
    (["prune-audit", "--keep-rows", "9" * 5000], "--keep-rows"),
    (["prune-audit", "--keep-rows", "1.5"], "--keep-rows"),
    (["audit", "--limit", "0"], "--limit"),
    (["audit", "--limit", "999999999999999999999"], "--limit"),
    (["demo", "--port", "99999"], "--port"),
    (["demo", "--port", "-1"], "--port"),
    (["demo", "--threads", "0"], "--threads"),
    (["serve", "somewhere:app", "--port", "65536"], "--port"),
    (["serve", "somewhere:app", "--threads", "1001"], "--threads"),
]


@pytest.mark.parametrize("argv, option", OUT_OF_RANGE,
                         ids=[" ".join(a)[:40] for a, _ in OUT_OF_RANGE])
def test_out_of_range_is_a_one_line_usage_error(url, db_path, argv, option, capsys):
    """An argument out of its range: exit 2, one line naming the option, nothing changed."""
    before = _audit_rows(db_path)
    with pytest.raises(SystemExit) as info:
        main(argv[:1] + ["--db", url] + argv[1:])
    assert info.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("peestore %s: error: argument %s" % (argv[0], option)), line
    assert _audit_rows(db_path) == before == 3


def test_largest_arguments_in_range_work(url, db_path, capsys):
    """The edges of the ranges are accepted and do what they say."""
    assert main(["audit", "--db", url, "--limit", str(2 ** 63 - 1), "--json"]) == 0
    assert main(["prune-audit", "--db", url, "--keep-rows", str(2 ** 63 - 1)]) == 0
    assert main(["prune-audit", "--db", url, "--older-than-days", "36500"]) == 0
    assert _audit_rows(db_path) == 3
    assert main(["prune-audit", "--db", url, "--keep-rows", "0"]) == 0
    assert _audit_rows(db_path) == 1  # the prune entry, which says what went
    assert capsys.readouterr().out.splitlines()[-1] == "deleted 3 audit entries"


def test_prune_audit_refuses_a_negative_or_overflowing_age(connect_db):
    """prune_audit() raises ValueError, deleting nothing, for an age that is negative or too
    large for a date, and for keep_rows past 2**63-1."""
    connect_db(ALL)
    Product.insert_many([{"name": "p%d" % i} for i in range(3)]).execute()
    with pytest.raises(ValueError, match="negative"):
        peestore.prune_audit(older_than=datetime.timedelta(days=-1))
    with pytest.raises(ValueError, match="year 1"):
        peestore.prune_audit(older_than=datetime.timedelta(days=999999999))
    with pytest.raises(ValueError, match="2\\*\\*63-1"):
        peestore.prune_audit(keep_rows=2 ** 63)
    assert AuditLog.select().count() == 3
    assert peestore.prune_audit(older_than=datetime.timedelta(0)) == 3


def test_unexpected_exception_is_one_line_naming_it(monkeypatch, capsys):
    """Whatever a command raises, the user sees one line (type and message), exit 1."""
    help_text, run = COMMANDS["audit"]

    def broken(args):
        raise TypeError("something peestore did not expect\nsecond line")

    monkeypatch.setitem(COMMANDS, "audit", (help_text, broken))
    assert main(["audit"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("peestore audit: error: unexpected TypeError: something peestore "
                           "did not expect")
    assert "bug" in line


def _database_commands(tmp_path):
    """Each command that reads or maintains a database, with arguments that are all fine."""
    zip_path, backup = tmp_path / "in.zip", tmp_path / "in.sqlite"
    zip_path.write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip
    backup.write_bytes(b"")
    return {
        "audit": ["audit"],
        "export": ["export", str(tmp_path / "out.zip")],
        "diagram": ["diagram", "-o", str(tmp_path / "out.svg")],
        "prune-audit": ["prune-audit", "--keep-rows", "10"],
        "import": ["import", str(zip_path)],
        "restore": ["restore", str(backup)],
        "backup": ["backup", str(tmp_path / "out.sqlite")],
    }


DATABASE_COMMANDS = ["audit", "export", "diagram", "prune-audit", "import", "restore", "backup"]


def _created(tmp_path, before):
    return sorted(p.name for p in tmp_path.iterdir() if p.name not in before)


@pytest.mark.parametrize("name", DATABASE_COMMANDS)
def test_missing_database_is_refused_not_created(tmp_path, name, capsys):
    """A mistyped --db: one line naming the path and --db, exit 1, no file created."""
    argv = _database_commands(tmp_path)[name]
    before = {p.name for p in tmp_path.iterdir()}
    typo = tmp_path / "typo.db"
    assert main(argv[:1] + ["--db", "sqlite:///%s" % typo] + argv[1:]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("peestore %s: error: no database at %s" % (name, typo)), line
    assert "--db" in line
    assert _created(tmp_path, before) == []


@pytest.mark.parametrize("name", ["audit", "backup"])
def test_missing_default_database_is_refused(tmp_path, monkeypatch, name, capsys):
    """Without --db, the default ./peestore.db (or $PEESTORE_DATABASE_URL) must exist too."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PEESTORE_DATABASE_URL", raising=False)
    argv = _database_commands(tmp_path)[name]
    before = {p.name for p in tmp_path.iterdir()}
    assert main(argv) == 1
    line = _one_line(capsys.readouterr().err)
    assert "no database at %s (the default)" % (tmp_path / "peestore.db") in line
    monkeypatch.setenv("PEESTORE_DATABASE_URL", "sqlite:///elsewhere.db")
    assert main(argv) == 1
    line = _one_line(capsys.readouterr().err)
    assert "no database at %s (from $PEESTORE_DATABASE_URL)" % (tmp_path / "elsewhere.db") \
        in line
    assert _created(tmp_path, before) == []


@pytest.mark.parametrize("argv", [["backup", "{}/out.sqlite"], ["export", "{}/out.zip"],
                                  ["diagram", "-o", "{}/out.svg"]], ids=lambda a: a[0])
def test_missing_output_folder_is_named(url, tmp_path, argv, capsys):
    """An output folder that does not exist is reported by its name, exit 1, nothing made."""
    folder = tmp_path / "no" / "such"
    argv = [a.format(folder) for a in argv]
    before = {p.name for p in tmp_path.iterdir()}
    assert main(argv[:1] + ["--db", url] + argv[1:]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("peestore %s: error: no folder %s " % (argv[0], folder)), line
    assert ".tmp" not in line
    assert _created(tmp_path, before) == []


def test_a_reader_that_leaves_early_gets_no_error(db_path, tmp_path):
    """`peestore audit | head -1`: the closed pipe is not reported, and there is no traceback."""
    url = "sqlite:///%s" % db_path
    db = peestore.connect(url, models=[Gauge])
    with peestore.actor("alice"):
        Gauge.insert_many([{"name": "g%d" % i} for i in range(3000)]).execute()
        for gauge in Gauge.select():
            gauge.name += "!"
            gauge.save()
    db.close()
    proc = subprocess.Popen([sys.executable, "-m", "peestore", "audit", "--db", url,
                             "--limit", "5000", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=processes.environment())
    assert proc.stdout.read(10).startswith(b"[")
    proc.stdout.close()
    try:
        err = proc.stderr.read()
        assert proc.wait(timeout=60) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
    assert err == b""
