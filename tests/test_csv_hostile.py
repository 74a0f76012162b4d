"""Hostile zips for import_csv: each a clear error, nothing imported, bounded time and memory.

The big files are made on disk in chunks (never a 1 GiB string in memory).
The imports that could hang or take the memory run in a subprocess with a
timeout, which reports its peak memory over idle (``VmHWM``, Linux).
Over HTTP, through a real waitress server: a bomb is a 413, a hook's refusal
a 422 that names the file, the line and the field, and the audit log's file
is skipped with the reason in the answer.
"""
import csv
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
import zipfile

import pytest

import peestore
from peestore import AuditLog, TooLargeError, ValidationError
from peestore.demo import MODELS, Machine, OperatorLog, Recipe
from peestore.rest._server import background

HEADER = "id,name,serial,status,location,max_speed_rpm,created_at\r\n"
ROW_TAIL = ",SN-1,idle,,100,2026-01-01T00:00:00\r\n"
MIB = 1 << 20

# Runs one import in a fresh process: prints what happened and the peak memory over idle.
_CHILD = textwrap.dedent("""
    import json, sys
    import peestore
    from peestore.demo import MODELS, Machine

    def status(field):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])

    db = peestore.connect("sqlite:///" + sys.argv[1], models=MODELS)
    db.connect(reuse_if_open=True)
    idle = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    try:
        peestore.import_csv(sys.argv[2])
        outcome = ["imported", ""]
    except peestore.PeestoreError as exc:
        outcome = [[k.__name__ for k in type(exc).__mro__], str(exc)]
    peak_kb = status("VmHWM") - idle
    print(json.dumps({"error": outcome[0], "message": outcome[1], "peak_kb": peak_kb,
                      "machines": Machine.select().count(),
                      "entries": peestore.AuditLog.select().count()}))
""")


def _import_in_child(db_path, zip_path, timeout=120):
    peestore.connect("sqlite:///%s" % db_path, models=MODELS).close()
    done = subprocess.run([sys.executable, "-c", _CHILD, str(db_path), str(zip_path)],
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _write_member(path, name, parts, method=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(str(path), "w", method) as zf:
        with zf.open(name, "w", force_zip64=True) as out:
            for part in parts:
                out.write(part if isinstance(part, bytes) else part.encode("utf-8"))
    return path


def _repeat(unit, total):
    block = unit * (MIB // len(unit))
    left = total
    while left >= len(block):
        yield block
        left -= len(block)
    yield unit * (left // len(unit))


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    """A zip of about 1 MB whose one field inflates to 1 GiB of zeros."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    return _write_member(path, "machine.csv", [HEADER, b"1,"] + list(
        _repeat(b"0", 1 << 30)) + [ROW_TAIL])


def _assert_bounded(result):
    assert result["machines"] == 0 and result["entries"] == 0
    assert result["peak_kb"] < 20 * 1024, result


def test_zip_bomb_is_refused_before_it_inflates(bomb, tmp_path):
    """A 1 MB zip inflating to 1 GiB: TooLargeError, nothing imported, memory near idle."""
    assert os.path.getsize(str(bomb)) < 2 * MIB
    result = _import_in_child(tmp_path / "t.db", bomb)
    assert "TooLargeError" in result["error"]
    assert "machine.csv inflates to more than" in result["message"]
    _assert_bounded(result)


def test_a_directory_that_understates_the_size_is_caught_while_reading(bomb, tmp_path):
    """The same bomb whose directory claims 1000 bytes: an error, memory near idle."""
    data = bytearray(bomb.read_bytes())
    where = data.rfind(b"PK\x01\x02")
    assert struct.unpack_from("<L", data, where + 24)[0] > 1 << 29
    struct.pack_into("<L", data, where + 24, 1000)  # the uncompressed size
    lying = tmp_path / "lying.zip"
    lying.write_bytes(bytes(data))
    result = _import_in_child(tmp_path / "t.db", lying)
    assert "PeestoreError" in result["error"], result
    assert "machine.csv" in result["message"]
    _assert_bounded(result)


def _lying_compressed_size(path, declared):
    """A member of 10 MiB of blank lines (about 1000:1), then 200 KB of random bytes in a
    member import ignores (room the member's declared size can claim); the member's
    directory entry declares ``declared(real, room)`` compressed bytes."""
    with zipfile.ZipFile(str(path), "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("machine.csv", "w") as out:
            out.write(HEADER.encode())
            for _ in range(10):
                out.write(b"\n" * MIB)
        zf.writestr("pad.bin", os.urandom(200 << 10), zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    where = data.find(b"PK\x01\x02")
    real = struct.unpack_from("<L", data, where + 20)[0]
    room = where - (30 + len("machine.csv"))
    struct.pack_into("<L", data, where + 20, declared(real, room))
    path.write_bytes(bytes(data))
    return path


def test_a_declared_compressed_size_larger_than_the_file_is_refused(tmp_path):
    """The directory claims 4 GB of compressed data in a 220 KB zip (so that 1000:1 would
    pass the ratio check): refused before anything is inflated."""
    path = _lying_compressed_size(tmp_path / "lie.zip", lambda real, room: 0xFFFFFFF0)
    result = _import_in_child(tmp_path / "t.db", path)
    assert "ValidationError" in result["error"], result
    assert "machine.csv: damaged in the zip (its directory entry declares 4294967280 " \
           "compressed bytes" in result["message"]
    _assert_bounded(result)


def test_the_ratio_is_measured_on_the_compressed_bytes_really_read(tmp_path):
    """The directory claims all the room up to the directory (220 KB, a ratio under 100 for
    10 MiB): the member inflates from 10 KB, and is refused past 100 times that."""
    path = _lying_compressed_size(tmp_path / "lie.zip", lambda real, room: room)
    info = zipfile.ZipFile(str(path)).getinfo("machine.csv")
    assert info.file_size < 100 * info.compress_size
    result = _import_in_child(tmp_path / "t.db", path)
    assert "TooLargeError" in result["error"], result
    assert "machine.csv inflates to more than 100 times its compressed size" \
        in result["message"]
    _assert_bounded(result)


def test_a_member_whose_crc_does_not_match_is_refused(sqlite_db, tmp_path):
    """The inflated bytes are checked against the directory's CRC and size."""
    sqlite_db(MODELS)
    path = _zip_text(tmp_path / "g.zip", HEADER + "1,m" + ROW_TAIL)
    data = bytearray(path.read_bytes())
    where = data.find(b"PK\x01\x02")
    struct.pack_into("<L", data, where + 16, 12345)  # the CRC
    path.write_bytes(bytes(data))
    with pytest.raises(ValidationError, match="machine.csv: damaged in the zip .*CRC"):
        peestore.import_csv(path)
    assert Machine.select().count() == 0


def test_a_million_column_header_is_refused_at_once(tmp_path):
    """1,000,000 columns: refused past the table's 7, nothing imported, no quadratic wait."""
    path = _write_member(tmp_path / "wide.zip", "machine.csv", (
        ",".join("c%d" % i for i in range(start, start + 1000)) + (
            "," if start < 999000 else "\r\n") for start in range(0, 1000000, 1000)))
    result = _import_in_child(tmp_path / "t.db", path, timeout=60)
    assert "ValidationError" in result["error"]
    assert result["message"].startswith("machine.csv: the header has more than the 7 columns")
    _assert_bounded(result)


def test_a_row_of_a_million_fields_is_refused(tmp_path):
    """A valid header, then 1,000,000 short fields: refused at the 8th."""
    path = _write_member(tmp_path / "row.zip", "machine.csv", [HEADER] + list(
        _repeat("ab,", 3 * 1000000)) + ["\r\n"], method=zipfile.ZIP_STORED)
    result = _import_in_child(tmp_path / "t.db", path, timeout=60)
    assert "ValidationError" in result["error"]
    assert "machine.csv line 2: more values than the header's 7 columns" in result["message"]
    _assert_bounded(result)


def test_a_100_mb_field_is_refused_while_it_is_read(tmp_path):
    """One 100 MB field: TooLargeError at max_field_bytes, nothing imported."""
    path = _write_member(tmp_path / "field.zip", "machine.csv", [HEADER, "1,"] + list(
        _repeat("x", 100 * MIB)) + [ROW_TAIL], method=zipfile.ZIP_STORED)
    result = _import_in_child(tmp_path / "t.db", path, timeout=60)
    assert "TooLargeError" in result["error"]
    assert result["message"].startswith(
        "machine.csv line 2: a field is longer than 1048576 bytes (max_field_bytes)")
    _assert_bounded(result)


def _zip_text(path, text, method=zipfile.ZIP_DEFLATED, name="machine.csv"):
    with zipfile.ZipFile(str(path), "w", method) as zf:
        zf.writestr(name, text)
    return path


def test_max_field_bytes_and_max_bytes_are_parameters(sqlite_db, tmp_path):
    """A field at the limit imports, one byte more does not; max_bytes caps a file."""
    sqlite_db(MODELS)
    row = "1,%s,SN-1,idle,,100,2026-01-01T00:00:00\r\n"
    at_limit = _zip_text(tmp_path / "a.zip", HEADER + row % ("é" * 50))
    over = _zip_text(tmp_path / "b.zip", HEADER + row % ("é" * 50 + "x"))
    with pytest.raises(TooLargeError, match="line 2: a field is longer than 100 bytes"):
        peestore.import_csv(over, max_field_bytes=100)
    assert Machine.select().count() == 0
    with pytest.raises(TooLargeError, match="inflates to more than 50 bytes"):
        peestore.import_csv(at_limit, max_bytes=50)
    assert peestore.import_csv(at_limit, max_field_bytes=100) == {"machine": 1}


def test_small_repetitive_files_pass_the_ratio_check(sqlite_db, tmp_path):
    """Over 100:1 is refused past the first MiB of a file, and allowed within it."""
    sqlite_db(MODELS)
    header = "id,machine_id,operator,level,message,created_at\r\n"
    row = "1,,op,info,%s,2026-01-01T00:00:00\r\n"
    name = "operatorlog.csv"
    small = _zip_text(tmp_path / "small.zip", header + row % ("x" * 900000), name=name)
    info = zipfile.ZipFile(str(small)).infolist()[0]
    assert info.file_size > 100 * info.compress_size
    big = _zip_text(tmp_path / "big.zip", header + row % ("x" * (2 * MIB)), name=name)
    with pytest.raises(TooLargeError, match="more than 100 times its compressed size"):
        peestore.import_csv(big, max_field_bytes=4 * MIB)
    assert peestore.import_csv(small) == {"operatorlog": 1}


def _with_end_record(data, entries=None, size=None):
    data = bytearray(data)
    where = data.rfind(b"PK\x05\x06")
    if entries is not None:
        struct.pack_into("<HH", data, where + 8, entries, entries)
    if size is not None:
        struct.pack_into("<L", data, where + 12, size)
    return bytes(data)


def test_a_crafted_directory_is_refused_before_zipfile_reads_it(sqlite_db, tmp_path):
    """An end record claiming 60,000 files or a 100 MB directory, or a real zip of 5,000
    files: TooLargeError before zipfile parses the directory."""
    sqlite_db(MODELS)
    good = _zip_text(tmp_path / "g.zip", HEADER).read_bytes()
    for name, data, message in (
            ("count.zip", _with_end_record(good, entries=60000), "lists 60000 files"),
            ("size.zip", _with_end_record(good, size=100 * MIB), "list of files is"),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(TooLargeError, match=message):
            peestore.import_csv(path)
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(str(many), "w") as zf:
        for i in range(5000):
            zf.writestr("f%d.txt" % i, "")
    with pytest.raises(TooLargeError, match="files"):
        peestore.import_csv(many)


def test_members_import_cannot_read_are_clear_errors(sqlite_db, tmp_path):
    """bzip2, encrypted, not UTF-8, a stream that cannot seek: each a ValidationError."""
    sqlite_db(MODELS)
    path = _zip_text(tmp_path / "bz.zip", HEADER, method=zipfile.ZIP_BZIP2)
    with pytest.raises(ValidationError, match="compressed with method 12"):
        peestore.import_csv(path)
    data = bytearray(_zip_text(tmp_path / "e.zip", HEADER).read_bytes())
    central = data.rfind(b"PK\x01\x02")
    data[central + 8] |= 1  # the encryption flag
    (tmp_path / "e.zip").write_bytes(bytes(data))
    with pytest.raises(ValidationError, match="encrypted"):
        peestore.import_csv(tmp_path / "e.zip")
    path = _zip_text(tmp_path / "latin.zip", (HEADER + "1,Jürgen" + ROW_TAIL).encode("latin-1"))
    with pytest.raises(ValidationError, match="machine.csv is not UTF-8 text"):
        peestore.import_csv(path)

    class Pipe(io.RawIOBase):
        def readable(self):
            return True

        def seekable(self):
            return False

    with pytest.raises(ValidationError, match="seek"):
        peestore.import_csv(Pipe())
    assert Machine.select().count() == 0


def test_import_leaves_the_csv_module_alone(sqlite_db, tmp_path):
    """No process-wide csv.field_size_limit change."""
    sqlite_db(MODELS)
    limit = csv.field_size_limit()
    peestore.import_csv(_zip_text(tmp_path / "a.zip", HEADER + "1,m" + ROW_TAIL))
    assert csv.field_size_limit() == limit


# -- over HTTP, through waitress ------------------------------------------------------

def _post_zip(url, path, headers=None, query=""):
    with open(str(path), "rb") as f:
        data = f.read()
    body = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.zip"\r\n'
            b'Content-Type: application/zip\r\n\r\n' + data + b"\r\n--b--\r\n")
    request = urllib.request.Request(
        url.rstrip("/") + "/db/import" + query, data=body, method="POST", headers=dict(
            {"X-User": "ops", "Content-Type": "multipart/form-data; boundary=b"},
            **(headers or {})))
    try:
        with urllib.request.urlopen(request, timeout=60) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def demo_url(db_path):
    """The demo app (its models and hooks), served by waitress on an ephemeral port."""
    from peestore.demo import make_app

    app = make_app("sqlite:///%s" % db_path)
    with background(app) as url:
        yield url


def test_http_bomb_is_413(demo_url, bomb):
    """A zip bomb uploaded to /db/import: 413, nothing imported."""
    machines = Machine.select().count()
    status, body = _post_zip(demo_url, bomb)
    assert status == 413 and "inflates to more than" in body["detail"]
    assert Machine.select().count() == machines


def test_http_hook_refusal_is_422_naming_file_line_field(demo_url, tmp_path):
    """A recipe over its machine's max speed (the demo's check_recipe): 422, nothing in."""
    recipes = Recipe.select().with_deleted().count()
    text = ("id,machine_id,name,speed_rpm,temperature_c,duration_s,active,notes,deleted_at\r\n"
            "10,1,ok,100,,30,true,,\r\n"
            "11,1,too fast,99999,,30,true,,\r\n")
    status, body = _post_zip(demo_url, _zip_text(tmp_path / "r.zip", text, name="recipes.csv"))
    assert status == 422
    assert body["detail"].startswith("recipes.csv line 3: field speed_rpm: must be between")
    assert list(body["errors"]) == ["speed_rpm"]
    assert Recipe.select().with_deleted().count() == recipes


def test_http_audit_log_is_skipped_and_says_why(demo_url, tmp_path):
    """audit_log.csv in the upload is skipped; the answer says so; one import entry."""
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(str(path), "w") as zf:
        zf.writestr("audit_log.csv", "id,timestamp,component,record_id,operation,actor,"
                                     "before,after\r\n1,2020-01-01T00:00:00,machines,1,delete,"
                                     "ceo,,\r\n")
        zf.writestr("machine.csv", HEADER + "50,m50" + ROW_TAIL.replace("SN-1", "SN-50"))
    status, body = _post_zip(demo_url, path)
    assert status == 200
    assert body["imported"] == {"machine": 1}
    assert "never imported" in body["skipped"]["audit_log"]
    assert not AuditLog.select().where(AuditLog.actor == "ceo").exists()
    imports = list(AuditLog.select().where(AuditLog.operation == "import"))
    assert [(e.component, e.actor) for e in imports] == [("machines", "ops")]


def test_http_replace_of_a_parent_alone_is_422_and_changes_nothing(demo_url, tmp_path):
    """The attack: machine.csv alone, exactly as exported, with mode=replace. The recipes
    (CASCADE) and the log line (SET NULL) would go silently; it is a 422 naming them."""
    status, data = _get(demo_url + "/db/export.zip?tables=machines")
    assert status == 200
    path = tmp_path / "machines.zip"
    path.write_bytes(data)
    recipes = Recipe.select().with_deleted().count()
    entries = AuditLog.select().count()
    status, body = _post_zip(demo_url + "/", path, query="?mode=replace")
    assert status == 422, body
    assert "tables outside the zip refer to" in body["detail"]
    assert set(body["errors"]) == {"recipe", "operatorlog"}
    assert Recipe.select().with_deleted().count() == recipes == 2
    assert OperatorLog.select().where(OperatorLog.machine.is_null(False)).count() == 1
    assert AuditLog.select().count() == entries


def _get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_http_export_needs_admin_and_takes_component_names(sqlite_db):
    """/db/export.zip: 401 without identity, 403 without admin, 200 for an admin;
    ?tables= takes component names; an unknown name is a 400 listing both kinds."""
    import bottle

    sqlite_db(MODELS)
    Machine.create(name="m1", serial="S1")

    def authenticate(request):
        name = request.headers.get("X-Name")
        if not name:
            return None
        return {"name": name, "roles": ["admin"] if name == "boss" else ["operator"]}

    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=MODELS, authenticate=authenticate))
    with background(app) as url:
        assert _get(url + "/db/export.zip")[0] == 401
        assert _get(url + "/db/export.zip", {"X-Name": "op"})[0] == 403
        status, data = _get(url + "/db/export.zip?tables=machines", {"X-Name": "boss"})
        assert status == 200
        assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["machine.csv"]
        status, data = _get(url + "/db/export.zip?tables=machinez", {"X-Name": "boss"})
        detail = json.loads(data)["detail"]
        assert status == 400 and "machinez" in detail
        assert "machine" in detail and "machines (table machine)" in detail


@pytest.mark.parametrize("tail, message", [
    ('9,"never closed', "a quoted field is not closed"),
    ("9,m9,SN-9,idle,,1,2026-01-01T00:00:00,extra\r\n", "more values than the header's 7"),
    ("9,m9\r\n", "2 values for 7 columns"),
    ("9," + "x" * 5000 + ROW_TAIL, "a field is longer than 4096 bytes"),
])
def test_a_malformed_file_fails_before_the_write_lock(sqlite_db, tmp_path, tail, message):
    """Every file is read through once before BEGIN IMMEDIATE: a malformed record or a
    field over the limit at the end of a file fails with no write lock ever taken."""
    from peestore.testing import capture_statements

    sqlite_db(MODELS)
    rows = "".join("%d,m%d,SN-%d,idle,,1,2026-01-01T00:00:00\r\n" % (i, i, i)
                   for i in range(1, 5))
    blank = "\r\n\r" * 1000
    path = _zip_text(tmp_path / "m.zip", HEADER + rows + blank + tail)
    with capture_statements() as statements, pytest.raises(peestore.PeestoreError,
                                                           match=message):
        peestore.import_csv(path, max_field_bytes=4096)
    assert not [s for s in statements if s.startswith("BEGIN")]
    assert Machine.select().count() == 0


def test_blank_lines_are_no_rows(sqlite_db, tmp_path):
    """A file of its header and blank lines (CR, LF, CRLF) imports no row, with its entry;
    rows after blank lines are numbered by their line."""
    sqlite_db(MODELS)
    path = _zip_text(tmp_path / "b.zip", HEADER + "\r\r\n\n\r" * 100000)
    with peestore.actor("ops"):
        assert peestore.import_csv(path) == {"machine": 0}
    assert [(e.operation, e.after["rows"]) for e in AuditLog.select()] == [("import", 0)]
    path = _zip_text(tmp_path / "c.zip", HEADER + "\r\r\n\n\r" + "1,m,SN,idle,,0,x\r\n")
    with pytest.raises(ValidationError, match="machine.csv line 6, column created_at"):
        peestore.import_csv(path)


EMOJI = "\U0001F600"


@pytest.mark.parametrize("fields", [
    # four fields just under 1 MiB of UTF-8, one emoji each: 4 bytes a character
    ["a" * (MIB - 40) + EMOJI] * 4,
    # one such field, then one of emoji only (4 MiB of UTF-8, 1M characters)
    ["a" * (MIB - 40) + EMOJI, EMOJI * (MIB - 8)],
    # ASCII then the emoji-only field
    ["a" * (MIB - 40), "b" * (MIB - 40), EMOJI * (MIB - 8)],
], ids=["four-wide", "wide-then-emoji", "ascii-then-emoji"])
def test_wide_characters_keep_a_record_within_its_memory(tmp_path, fields):
    """A record's limit counts the bytes Python keeps its strings in (1, 2 or 4 a
    character), and a field's UTF-8 bytes are counted as it is read: records of wide
    characters are refused holding not much more than the record's 5 MiB (the rule is
    20 MB of idle; the reader used to reach 17 MB on its own here)."""
    texts = fields + ["x"] * (4 - len(fields))  # name, serial, status, location
    row = "7,%s,1.0,2026-01-01T00:00:00\r\n" % ",".join(texts)
    path = _write_member(tmp_path / "w.zip", "machine.csv", [HEADER, row],
                         method=zipfile.ZIP_STORED)
    result = _import_in_child(tmp_path / "t.db", path)
    assert "TooLargeError" in result["error"], result
    assert "machine.csv line 2: " in result["message"]
    _assert_bounded(result)
    assert result["peak_kb"] < 10 * 1024, result
