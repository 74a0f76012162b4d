"""restore(SRC) of a file that is not the whole database: a WAL-mode source whose
committed rows are still in SRC-wal, or one with a hot -journal, is refused."""
import shutil
import sqlite3

import peewee
import pytest

import peestore
from peestore.cli._main import main


class Part(peestore.BaseAuditedModel):
    name = peewee.CharField()

    class Meta:
        table_name = "rsrc_part"


@pytest.fixture
def live(sqlite_db, tmp_path):
    """A live database with one part; ``src.sqlite``: a copy of it another process
    holds open in WAL mode, with 50 more parts committed to its -wal only."""
    db = sqlite_db([Part])
    Part.create(name="first")
    peestore.backup(tmp_path / "base.sqlite")
    src = tmp_path / "src.sqlite"
    shutil.copy(str(tmp_path / "base.sqlite"), str(src))
    holder = sqlite3.connect(str(src))
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("PRAGMA wal_autocheckpoint=0")
    holder.executemany("INSERT INTO rsrc_part (name) VALUES (?)",
                       [("p%d" % i,) for i in range(50)])
    holder.commit()
    yield db
    holder.close()


def test_a_source_with_a_non_empty_wal_is_refused(live, db_path, tmp_path):
    src = tmp_path / "src.sqlite"
    assert (tmp_path / "src.sqlite-wal").stat().st_size > 0
    with pytest.raises(peestore.RestoreError) as info:
        peestore.restore(src)
    message = str(info.value)
    assert "src.sqlite-wal is not empty" in message
    assert "peestore backup --db sqlite:///%s OUT.sqlite" % src in message
    assert [p.name for p in Part.select()] == ["first"]
    assert not (db_path.parent / (db_path.name + ".pre-restore")).exists()


def test_the_command_line_says_so_in_one_line_and_the_advice_works(live, db_path, tmp_path,
                                                                   capsys):
    """Exit 1 with one line; the backup it advises restores every committed row."""
    url = "sqlite:///%s" % db_path
    src = tmp_path / "src.sqlite"
    live.close()
    assert main(["restore", "--db", url, str(src)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "make a backup of it first" in err
    out = tmp_path / "out.sqlite"
    assert main(["backup", "--db", "sqlite:///%s" % src, str(out)]) == 0
    assert main(["restore", "--db", url, str(out)]) == 0
    conn = sqlite3.connect(str(db_path))
    assert conn.execute("SELECT count(*) FROM rsrc_part").fetchone()[0] == 51
    conn.close()


def test_a_hot_journal_is_refused_and_an_empty_wal_is_not(live, tmp_path):
    src = tmp_path / "plain.sqlite"
    shutil.copy(str(tmp_path / "base.sqlite"), str(src))
    (tmp_path / "plain.sqlite-journal").write_bytes(b"\xd9\xd5\x05\xf9\x20\xa1\x63\xd7" * 64)
    with pytest.raises(peestore.RestoreError, match="plain.sqlite-journal is not empty"):
        peestore.restore(src, dry_run=True)
    (tmp_path / "plain.sqlite-journal").unlink()
    (tmp_path / "plain.sqlite-wal").write_bytes(b"")
    assert peestore.restore(src, dry_run=True)["restored"] is False
