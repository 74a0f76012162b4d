"""Where peestore writes and reads files: outputs that are no regular file or are the
live database are refused, inputs must be regular files, and the temporary files a
killed process left behind are removed when a server starts or a data command runs."""
import os
import socket
import stat
import time

import bottle
import peewee
import pytest

import peestore
from peestore.cli._main import main
from peestore.rest._server import make_server
from peestore.tools._files import (STALE_AFTER, TEMP_PREFIX, check_input, check_output,
                                   remove_stale, sqlite_file_name, temp_file)


class Drum(peestore.BaseAuditedModel):
    name = peewee.CharField()

    class Meta:
        table_name = "fl_drum"
        component = "drums"


MODELS = [Drum]
OLD = time.time() - STALE_AFTER - 60  # an mtime older than the staleness limit


def _specials(tmp_path):
    """A FIFO and a Unix socket made in ``tmp_path`` (never anything under /dev)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    return {"a FIFO": fifo, "a socket": sock_path}, sock


@pytest.fixture
def live(sqlite_db, db_path):
    db = sqlite_db(MODELS)
    Drum.create(name="d1", actor="t")
    return db


def test_backup_refuses_outputs_that_are_not_regular_files(live, tmp_path):
    """backup() over a FIFO or a socket: one-line PeestoreError, the node is still
    what it was (renaming over it would have made it a plain file)."""
    specials, sock = _specials(tmp_path)
    try:
        for kind, path in specials.items():
            with pytest.raises(peestore.PeestoreError, match=kind):
                peestore.backup(path)
            mode = os.stat(path).st_mode
            assert stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
    finally:
        sock.close()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_backup_refuses_a_device_node(live, tmp_path):
    """A character device (made in tmp, like /dev/null) stays a device."""
    node = tmp_path / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    with pytest.raises(peestore.PeestoreError, match="character device"):
        peestore.backup(node)
    assert stat.S_ISCHR(os.stat(node).st_mode)


def test_backup_refuses_the_live_database_and_its_side_files(live, db_path, tmp_path):
    """The live database, its -wal/-shm (existing or not) and a link to it are refused;
    the database keeps its rows."""
    link = tmp_path / "alias.db"
    link.symlink_to(db_path)
    for target in (db_path, str(db_path) + "-wal", str(db_path) + "-shm",
                   str(db_path) + "-journal", link):
        with pytest.raises(peestore.PeestoreError, match="live database"):
            peestore.backup(target)
    assert Drum.select().count() == 1
    peestore.backup(tmp_path / "fine.sqlite")  # any other file is fine


def test_check_output_and_input_directly(tmp_path):
    """The shared checks export uses too: a regular file or nothing is fine."""
    regular = tmp_path / "x.zip"
    check_output(regular, database=None)
    regular.write_bytes(b"old")
    check_output(regular, database=None)
    with pytest.raises(peestore.PeestoreError, match="folder"):
        check_output(tmp_path, database=None)
    check_input(regular)
    with pytest.raises(peestore.PeestoreError, match="no file"):
        check_input(tmp_path / "missing.zip")
    specials, sock = _specials(tmp_path)
    try:
        for kind, path in specials.items():
            with pytest.raises(peestore.PeestoreError, match=kind):
                check_input(path)
    finally:
        sock.close()


@pytest.mark.parametrize("name, expected", [
    ("data.db", "data.db"),
    ("file:data.db", "data.db"),
    ("file:data%20x.db?mode=ro", "data x.db"),
    ("file:///var/lib/a.db", "/var/lib/a.db"),
    ("file://localhost/var/lib/a.db", "/var/lib/a.db"),
    ("", None), (":memory:", None), ("file::memory:", None),
    ("file:x.db?mode=memory&cache=shared", None),
])
def test_the_file_sqlite_opens(name, expected):
    assert sqlite_file_name(name) == expected


def _leftovers(folder, database_name="test.db"):
    """Temporary files as a killed peestore leaves them: (stale, fresh, not ours)."""
    stale, fresh, others = [], [], []
    for kind, suffix in (("upload", ".zip"), ("upload", ".restore"), ("download", ".sqlite"),
                         ("backup", ".sqlite")):
        fd, path = temp_file(folder, kind, suffix)
        os.close(fd)
        os.utime(path, (OLD, OLD))
        stale.append(os.path.basename(path))
    for name in (".upload.abcd1234.zip", ".backup.x_y9zz00.sqlite",
                 f".{database_name}.k2j4h6g8.restore"):  # earlier versions' names
        (folder / name).write_bytes(b"x")
        os.utime(folder / name, (OLD, OLD))
        stale.append(name)
    fd, path = temp_file(folder, "upload", ".zip")  # another process's upload, running
    os.close(fd)
    fresh.append(os.path.basename(path))
    for name in ("notes.txt", ".upload.zip", ".hidden", "backup.sqlite"):
        (folder / name).write_bytes(b"mine")
        os.utime(folder / name, (OLD, OLD))
        others.append(name)
    return stale, fresh, others


def test_remove_stale_takes_only_old_temporary_files(tmp_path):
    stale, fresh, others = _leftovers(tmp_path)
    assert all(name.startswith(TEMP_PREFIX) for name in stale[:4])
    removed = remove_stale(tmp_path, database_name="test.db")
    assert sorted(removed) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(fresh + others)


def test_a_server_start_removes_what_a_killed_one_left(live, db_path):
    """make_server: the stale uploads and copies beside the database go, the rest stays."""
    stale, fresh, others = _leftovers(db_path.parent)
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=MODELS))
    server = make_server(app, port=0)
    server.close()
    left = {p.name for p in db_path.parent.iterdir()}
    assert not left & set(stale)
    assert set(fresh + others) <= left


def test_a_data_command_removes_them_too(live, db_path, tmp_path, capsys):
    """A data command cleans the database's folder and its output's folder."""
    live.close()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    stale, fresh, _ = _leftovers(db_path.parent)
    fd, leftover = temp_file(out_dir, "backup", ".sqlite")
    os.close(fd)
    os.utime(leftover, (OLD, OLD))
    assert main(["backup", "--db", f"sqlite:///{db_path}", str(out_dir / "b.sqlite")]) == 0
    left = {p.name for p in db_path.parent.iterdir()}
    assert not left & set(stale) and set(fresh) <= left
    assert sorted(p.name for p in out_dir.iterdir()) == ["b.sqlite"]
