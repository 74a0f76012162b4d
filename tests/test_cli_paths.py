"""The data commands and the paths they are given: no output over a device, a FIFO or
the live database, no input that is not a regular file, no database made up from a
mistyped --db, and usage errors for what cannot be a database URL or an actor."""
import os
import sqlite3
import stat
import subprocess
import sys

import peewee
import pytest

import peestore
from peestore.cli._main import main

from . import processes

TIMEOUT = 60  # a subprocess that would block (a FIFO) is killed after this


class Tank(peestore.BaseAuditedModel):
    name = peewee.CharField()

    class Meta:
        table_name = "cp_tank"
        component = "tanks"


@pytest.fixture
def url(db_path):
    db = peestore.connect(f"sqlite:///{db_path}", models=[Tank])
    with peestore.actor("alice"):
        Tank.create(name="t1")
    db.close()
    return f"sqlite:///{db_path}"


def _one_line(capsys, command):
    err = capsys.readouterr().err
    assert err.startswith(f"peestore {command}: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "unexpected" not in err
    return err


def _run(args, cwd):
    """``python -m peestore ARGS`` in a subprocess, killed after TIMEOUT seconds."""
    return subprocess.run([sys.executable, "-m", "peestore"] + args, cwd=str(cwd),
                          env=processes.environment(), capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("command", ["backup", "export"])
def test_an_output_fifo_stays_a_fifo(url, tmp_path, capsys, command):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert main([command, "--db", url, str(fifo)]) == 1
    assert "a FIFO, not a regular file" in _one_line(capsys, command)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_diagram_does_not_write_into_a_fifo(url, tmp_path):
    """diagram -o FIFO used to block in open(): now refused at once."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    done = _run(["diagram", "--db", url, "-o", str(fifo)], tmp_path)
    assert done.returncode == 1
    assert "a FIFO, not a regular file" in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
@pytest.mark.parametrize("command", ["backup", "export"])
def test_an_output_device_stays_a_device(url, tmp_path, capsys, command):
    node = tmp_path / "full"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    assert main([command, "--db", url, str(node)]) == 1
    assert "character device" in _one_line(capsys, command)
    assert stat.S_ISCHR(os.stat(node).st_mode)


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm"])
@pytest.mark.parametrize("command", ["backup", "export", "diagram"])
def test_the_live_database_is_no_output(url, db_path, capsys, command, suffix):
    target = str(db_path) + suffix
    args = [command, "--db", url] + (["-o", target] if command == "diagram" else [target])
    assert main(args) == 1
    assert "is the live database" in _one_line(capsys, command)
    conn = sqlite3.connect(str(db_path))
    try:
        assert conn.execute("SELECT count(*) FROM cp_tank").fetchone() == (1,)
    finally:
        conn.close()


def test_import_from_a_fifo_is_refused_not_blocked(url, tmp_path):
    fifo = tmp_path / "in.zip"
    os.mkfifo(fifo)
    done = _run(["import", "--db", url, str(fifo)], tmp_path)
    assert done.returncode == 1
    assert "a FIFO, not a regular file" in done.stderr and done.stderr.count("\n") == 1


def test_restore_from_a_fifo_is_refused_not_blocked(url, tmp_path):
    fifo = tmp_path / "in.sqlite"
    os.mkfifo(fifo)
    done = _run(["restore", "--db", url, str(fifo)], tmp_path)
    assert done.returncode == 1
    assert "a FIFO, not a regular file" in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.parametrize("db, made", [
    ("sqlite:///file:typo.db", "typo.db"),
    ("sqlite:///file:typo.db?mode=rwc", "typo.db"),
    ("sqlite:///", None),
    ("sqlite:///:memory:", None),
    ("sqlite:///file::memory:", None),
    ("sqlite:///typo.db", "typo.db"),
])
@pytest.mark.parametrize("command", [["export", "out.zip"], ["prune-audit", "--keep-rows", "0"],
                                     ["audit"], ["diagram"]])
def test_a_database_that_does_not_exist_is_refused(tmp_path, monkeypatch, capsys, db, made,
                                                    command):
    """Whatever the URL's form: exit 1, one line, and no file made (no empty zip either)."""
    monkeypatch.chdir(tmp_path)
    assert main([command[0], "--db", db] + command[1:]) == 1
    err = _one_line(capsys, command[0])
    assert "no database" in err or "names no database file" in err
    assert sorted(os.listdir(tmp_path)) == []


def test_an_existing_database_by_file_uri_works(url, db_path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(db_path.parent)
    assert main(["export", "--db", f"sqlite:///file:{db_path.name}?mode=ro",
                 str(tmp_path / "out.zip")]) == 0
    assert (tmp_path / "out.zip").stat().st_size > 100


@pytest.mark.parametrize("db", ["sqlite://localhost/x.db", "sqlite://host/abs/x.db"])
def test_a_sqlite_url_with_a_host_is_a_usage_error(url, db_path, capsys, db):
    assert main(["audit", "--db", db]) == 2
    err = capsys.readouterr().err
    assert err.startswith("peestore audit: error: ") and err.count("\n") == 1
    assert "three slashes" in err and "unexpected" not in err


@pytest.mark.parametrize("actor, word", [("", "needs a name"), ("   ", "needs a name"),
                                         ("x" * 201, "over 200"),
                                         ("admin\u200b", "U+200B")])
def test_a_bad_actor_is_a_usage_error(url, tmp_path, capsys, actor, word):
    zip_path = tmp_path / "in.zip"
    assert main(["export", "--db", url, str(zip_path)]) == 0
    capsys.readouterr()
    assert main(["import", "--actor", actor, "--db", url, str(zip_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("peestore import: error: ") and word in err
    assert "unexpected" not in err
