"""Tests of export_csv and import_csv, on SQLite, PostgreSQL and MariaDB."""
import csv
import datetime
import decimal
import io
import uuid
import zipfile

import peewee
import pytest

import peestore
from peestore import AuditLog


class Line(peestore.BaseAuditedModel):
    name = peewee.CharField()
    running = peewee.BooleanField(default=False)

    class Meta:
        table_name = "csv_line"
        component = "lines"


class Batch(peestore.BaseAuditedModel):
    line = peewee.ForeignKeyField(Line, backref="batches")
    code = peewee.CharField(max_length=50)
    started = peewee.DateTimeField()
    weight = peewee.DecimalField(max_digits=10, decimal_places=3)
    ratio = peewee.FloatField(null=True)
    day = peewee.DateField(null=True)
    tag = peewee.UUIDField(null=True)
    blob = peewee.BlobField(null=True)
    note = peewee.TextField(default="")
    deleted_at = peewee.DateTimeField(null=True, index=True)

    class Meta:
        table_name = "csv_batch"


MODELS = [Line, Batch]
STARTED = datetime.datetime(2024, 5, 17, 8, 30, 15)
TAG = uuid.UUID("12345678-1234-5678-1234-567812345678")


def _fill():
    a = Line.create(name="Line A", running=True)
    b = Line.create(name='Line "B", west')
    Batch.create(line=a, code="B-1", started=STARTED, weight=decimal.Decimal("12.500"),
                 ratio=0.25, day=datetime.date(2024, 5, 17), tag=TAG, blob=b"\x00\xffbin",
                 note="multi\nline, with comma")
    Batch.create(line=b, code="B-2", started=STARTED, weight=decimal.Decimal("1"))
    Batch.create(line=b, code="B-3", started=STARTED, weight=decimal.Decimal("2")
                 ).delete_instance()  # soft-deleted rows are exported too
    return a, b


def _read_zip(path):
    with zipfile.ZipFile(str(path)) as zf:
        return {name: list(csv.reader(io.TextIOWrapper(zf.open(name), encoding="utf-8",
                                                       newline="")))
                for name in zf.namelist()}


def _make_zip(path, files):
    with zipfile.ZipFile(str(path), "w") as zf:
        for name, rows in files.items():
            buf = io.StringIO()
            csv.writer(buf).writerows(rows)
            zf.writestr(name, buf.getvalue())
    return path


def _batches():
    return [(b.code, b.line_id, b.started, b.weight, b.ratio, b.day, b.tag,
             None if b.blob is None else bytes(b.blob), b.note, b.deleted_is_set)
            for b in Batch.select().with_deleted().order_by(Batch.code)]


Batch.deleted_is_set = property(lambda self: self.deleted_at is not None)


def test_export_has_one_csv_per_table_with_header_in_table_order(connect_db, tmp_path):
    """Every table, the audit log included, with its columns in table order."""
    db = connect_db(MODELS)
    _fill()
    out = peestore.export_csv(tmp_path / "out.zip")
    assert out == tmp_path / "out.zip"
    files = _read_zip(out)
    assert sorted(files) == ["audit_log.csv", "csv_batch.csv", "csv_line.csv"]
    with db.connection_context() if db.is_closed() else _null():
        for name in files:
            table = name[:-4]
            assert files[name][0] == [c.name for c in db.get_columns(table)]
    assert len(files["csv_batch.csv"]) == 4
    assert len(files["audit_log.csv"]) == 1 + AuditLog.select().count()


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def test_export_values_read_as_typed(connect_db, tmp_path):
    """ISO 8601 datetimes, true/false, base64 bytes, empty for null; no Python reprs."""
    connect_db(MODELS)
    _fill()
    files = _read_zip(peestore.export_csv(tmp_path / "out.zip"))
    header, *rows = files["csv_batch.csv"]
    first = dict(zip(header, rows[0]))
    assert first["started"] == "2024-05-17T08:30:15"
    assert decimal.Decimal(first["weight"]) == decimal.Decimal("12.5")
    assert first["ratio"] == "0.25"
    assert first["day"] == "2024-05-17"
    assert first["tag"] == str(TAG)
    assert first["blob"] == "AP9iaW4="
    assert first["note"] == "multi\nline, with comma"
    assert first["deleted_at"] == ""
    lines = {r[1]: r for r in files["csv_line.csv"][1:]}
    assert lines["Line A"][2] == "true" and lines['Line "B", west'][2] == "false"
    cells = [cell for rows in files.values() for row in rows for cell in row]
    assert not [c for c in cells if c in ("None", "True", "False") or c.startswith("b'")
                or any(r in c for r in ("datetime.", "Decimal(", "UUID("))]
    audit_header, *audit_rows = files["audit_log.csv"]
    entry = dict(zip(audit_header, audit_rows[0]))
    assert entry["operation"] == "create" and entry["after"].startswith("{")
    assert "T" in entry["timestamp"]


def test_export_selected_tables(connect_db, tmp_path):
    """tables= limits the export; an unknown table is an error naming it."""
    connect_db(MODELS)
    _fill()
    files = _read_zip(peestore.export_csv(tmp_path / "out.zip", tables=["csv_line"]))
    assert list(files) == ["csv_line.csv"]
    with pytest.raises(peestore.PeestoreError, match="nope"):
        peestore.export_csv(tmp_path / "bad.zip", tables=["nope"])
    assert not (tmp_path / "bad.zip").exists()


def test_round_trip_replace_into_the_same_database(connect_db, tmp_path):
    """Export then import with replace gives the same rows, one import entry per table."""
    connect_db(MODELS)
    _fill()
    before = _batches()
    zpath = peestore.export_csv(tmp_path / "out.zip")
    Batch.delete().execute()
    entries = AuditLog.select().count()
    with peestore.actor("operator"):
        counts = peestore.import_csv(zpath, mode="replace")
    assert counts == {"csv_line": 2, "csv_batch": 3}  # audit_log.csv is skipped
    order = list(counts)
    assert order.index("csv_line") < order.index("csv_batch")  # parents first
    assert _batches() == before
    imports = list(AuditLog.select().where(AuditLog.operation == "import")
                   .order_by(AuditLog.id))
    assert sorted(e.component for e in imports) == ["csv_batch", "lines"]
    assert AuditLog.select().count() == entries + 2  # replace never empties the audit log
    line_entry = [e for e in imports if e.component == "lines"][0]
    assert line_entry.record_id == "*" and line_entry.actor == "operator"
    assert line_entry.after == {"table": "csv_line", "rows": 2, "mode": "replace"}
    # The restored keys do not collide with new rows.
    Line.create(name="after import")


def test_import_into_a_fresh_database_converts_types(connect_db, tmp_path, db_url):
    """Values come back as the field types: datetime, Decimal, bool, UUID, bytes."""
    connect_db(MODELS)
    _fill()
    before = _batches()
    zpath = peestore.export_csv(tmp_path / "out.zip", tables=["csv_line", "csv_batch"])
    Batch.delete(permanently=True).execute()
    Line.delete().execute()
    counts = peestore.import_csv(zpath)
    assert counts == {"csv_line": 2, "csv_batch": 3}
    assert _batches() == before
    first = Batch.get(Batch.code == "B-1")
    assert isinstance(first.started, datetime.datetime)
    assert first.weight == decimal.Decimal("12.5") and first.tag == TAG
    assert Line.get(Line.name == "Line A").running is True
    assert Batch.create(line=first.line, code="new", started=STARTED, weight=1).id == 4


def test_header_mismatch_is_rejected_naming_table_and_columns(connect_db, tmp_path):
    """A header that does not match names the table, the missing and the unknown columns."""
    connect_db(MODELS)
    bad = _make_zip(tmp_path / "bad.zip", {
        "csv_line.csv": [["id", "nam", "running"], ["1", "x", "true"]]})
    with pytest.raises(peestore.ValidationError) as info:
        peestore.import_csv(bad)
    message = str(info.value)
    assert "csv_line" in message and "missing columns: name" in message
    assert "unknown columns: nam" in message
    assert Line.select().count() == 0


def test_header_in_another_order_is_accepted(connect_db, tmp_path):
    """Columns may come in any order, as long as they are the table's."""
    connect_db(MODELS)
    good = _make_zip(tmp_path / "good.zip", {
        "csv_line.csv": [["running", "name", "id"], ["true", "x", "7"]]})
    assert peestore.import_csv(good) == {"csv_line": 1}
    assert Line.get_by_id(7).running is True


def test_import_failing_half_way_imports_nothing(connect_db, tmp_path):
    """A bad value in the second table rolls back the first table too."""
    connect_db(MODELS)
    bad = _make_zip(tmp_path / "bad.zip", {
        "csv_batch.csv": [
            ["id", "line_id", "code", "started", "weight", "ratio", "day", "tag", "blob",
             "note", "deleted_at"],
            ["1", "1", "ok", "2024-01-01T00:00:00", "1.5", "", "", "", "", "", ""],
            ["2", "1", "bad", "yesterday", "1.5", "", "", "", "", "", ""]],
        "csv_line.csv": [["id", "name", "running"], ["1", "x", "true"]]})
    with pytest.raises(peestore.ValidationError) as info:
        peestore.import_csv(bad)
    assert "csv_batch.csv line 3, column started" in str(info.value)
    assert Line.select().count() == 0 and Batch.select().with_deleted().count() == 0
    assert AuditLog.select().count() == 0


def test_import_constraint_failure_imports_nothing(connect_db, tmp_path):
    """A duplicate key found by the database rolls back everything."""
    connect_db(MODELS)
    Line.create(id=2, name="existing")
    bad = _make_zip(tmp_path / "dup.zip", {
        "csv_line.csv": [["id", "name", "running"], ["1", "new", "false"],
                         ["2", "clash", "false"]]})
    with pytest.raises(peestore.ValidationError, match="csv_line.csv line"):
        peestore.import_csv(bad)
    assert [line.name for line in Line.select()] == ["existing"]
    assert AuditLog.select().where(AuditLog.operation == "import").count() == 0


def test_replace_with_children_left_behind_fails_cleanly(connect_db, tmp_path):
    """Replacing a parent table whose rows are referenced by a table not in the zip fails."""
    connect_db(MODELS)
    _fill()
    zpath = _make_zip(tmp_path / "lines.zip", {
        "csv_line.csv": [["id", "name", "running"], ["1", "only", "false"]]})
    with pytest.raises(peestore.ValidationError, match="csv_line"):
        peestore.import_csv(zpath, mode="replace")
    assert Line.select().count() == 2


@pytest.mark.parametrize("mode", ["append", "replace"])
def test_audit_log_csv_is_skipped(connect_db, tmp_path, mode):
    """audit_log.csv is never imported, in either mode; the result says it was skipped."""
    from peestore.tools._import import load_zip

    connect_db(MODELS)
    _fill()
    zpath = peestore.export_csv(tmp_path / "out.zip", tables=["audit_log", "csv_line"])
    forged = _make_zip(tmp_path / "forged.zip", {
        "audit_log.csv": [["id", "timestamp", "component", "record_id", "operation", "actor",
                           "before", "after"],
                          ["999", "2020-01-01T00:00:00", "lines", "1", "delete", "ceo", "",
                           ""]]})
    Batch.delete(permanently=True).execute()
    Line.delete().execute()
    before = [(e.id, e.actor, e.operation) for e in AuditLog.select().order_by(AuditLog.id)]
    assert peestore.import_csv(forged, mode=mode) == {}
    assert [(e.id, e.actor, e.operation) for e in AuditLog.select().order_by(AuditLog.id)
            ] == before
    with peestore.actor("restorer"):
        result = load_zip(zpath, mode=mode)
    assert result.imported == {"csv_line": 2}
    assert "never imported" in result.skipped["audit_log"]
    after = list(AuditLog.select().order_by(AuditLog.id))
    assert [(e.id, e.actor, e.operation) for e in after[:len(before)]] == before
    assert [(e.component, e.operation, e.actor) for e in after[len(before):]] == [
        ("lines", "import", "restorer")]
    assert not AuditLog.select().where(AuditLog.actor == "ceo").exists()


def test_import_rejects_what_is_not_an_export(connect_db, tmp_path):
    """Not a zip, an unknown table, no CSV, a bad mode: each a ValidationError."""
    connect_db(MODELS)
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(peestore.ValidationError, match="not a zip"):
        peestore.import_csv(junk)
    with pytest.raises(peestore.ValidationError, match="no table or component ghosts"):
        peestore.import_csv(_make_zip(tmp_path / "g.zip", {"ghosts.csv": [["id"]]}))
    with pytest.raises(peestore.ValidationError, match="no <table>.csv"):
        peestore.import_csv(_make_zip(tmp_path / "e.zip", {"readme.txt": [["hi"]]}))
    with pytest.raises(peestore.ValidationError, match="mode"):
        peestore.import_csv(junk, mode="merge")


def test_import_empty_required_value_names_line_and_column(connect_db, tmp_path):
    """An empty field is null where the column allows it, else an error."""
    connect_db(MODELS)
    zpath = _make_zip(tmp_path / "z.zip", {
        "csv_line.csv": [["id", "name", "running"], ["1", "", ""]]})
    with pytest.raises(peestore.ValidationError, match="line 2, column running"):
        peestore.import_csv(zpath)


def test_import_accepts_a_byte_order_mark_and_file_objects(connect_db, tmp_path):
    """A spreadsheet's UTF-8 BOM is ignored; src may be an open binary file."""
    connect_db(MODELS)
    path = tmp_path / "bom.zip"
    with zipfile.ZipFile(str(path), "w") as zf:
        zf.writestr("csv_line.csv", "\ufeffid,name,running\r\n1,Zoë,true\r\n".encode())
    with open(str(path), "rb") as f:
        assert peestore.import_csv(f) == {"csv_line": 1}
    assert Line.get_by_id(1).name == "Zoë"


def test_export_and_import_a_table_without_a_model(connect_db, tmp_path):
    """A table no model describes is exported and imported through reflection."""
    db = connect_db(MODELS)
    with db.connection_context() if db.is_closed() else _null():
        db.execute_sql("CREATE TABLE extra (id INTEGER PRIMARY KEY, label VARCHAR(20), "
                       "amount INTEGER)")
        db.execute_sql("INSERT INTO extra (id, label, amount) VALUES (1, 'x', 5)")
    zpath = peestore.export_csv(tmp_path / "out.zip", tables=["extra"])
    assert _read_zip(zpath)["extra.csv"] == [["id", "label", "amount"], ["1", "x", "5"]]
    assert peestore.import_csv(zpath, mode="replace") == {"extra": 1}
    entry = AuditLog.get(AuditLog.operation == "import")
    assert entry.component == "extra"


def test_export_pages_through_large_tables(connect_db, tmp_path, monkeypatch):
    """On every backend, a table larger than one page comes out whole and in order."""
    from peestore.tools import _export as export
    monkeypatch.setattr(export, "PAGE_ROWS", 7)
    connect_db(MODELS)
    Line.insert_many([{"name": f"l{i}"} for i in range(50)]).execute()
    rows = _read_zip(peestore.export_csv(tmp_path / "o.zip", tables=["csv_line"]))
    assert [r[1] for r in rows["csv_line.csv"][1:]] == [f"l{i}" for i in range(50)]


def test_export_pages_of_large_rows_hold_fewer_rows(connect_db, tmp_path, monkeypatch,
                                                    backend, caplog):
    """On PostgreSQL and MariaDB pages are sized by the bytes of their rows (here about
    5 rows of 200 bytes a page, after a first page of 10): the table comes out whole."""
    import logging

    from peestore.tools import _export as export

    monkeypatch.setattr(export, "PAGE_BYTES", 1000)
    connect_db(MODELS)
    Line.insert_many([{"name": "%03d" % i + "x" * 200} for i in range(40)]).execute()
    with caplog.at_level(logging.DEBUG, logger="peewee"):
        rows = _read_zip(peestore.export_csv(tmp_path / "o.zip", tables=["csv_line"]))
    assert [r[1][:3] for r in rows["csv_line.csv"][1:]] == ["%03d" % i for i in range(40)]
    pages = [r.msg[1][-1] for r in caplog.records if isinstance(r.msg, tuple)
             and 'FROM "csv_line"' in r.msg[0].replace("`", '"') and "LIMIT" in r.msg[0]]
    if backend != "sqlite":
        assert pages[0] == 10 and 1 <= max(pages[1:]) <= 5, pages


def test_export_memory_stays_flat(sqlite_db, tmp_path):
    """Python memory during an export does not grow with the table (traced, 50,000 rows)."""
    import tracemalloc

    db = sqlite_db(MODELS)
    with db.atomic():
        db.execute_sql("INSERT INTO csv_line (id, name, running) VALUES (1, 'l', 1)")
        db.cursor().executemany(
            "INSERT INTO csv_batch (line_id, code, started, weight, note) "
            "VALUES (1, ?, '2024-01-01 00:00:00', 1.5, ?)",
            [(f"code {i}", "x" * 40) for i in range(50000)])
    tracemalloc.start()
    try:
        peestore.export_csv(tmp_path / "big.zip", tables=["csv_batch"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024, peak
    with zipfile.ZipFile(str(tmp_path / "big.zip")) as zf:
        assert zf.read("csv_batch.csv").count(b"\n") == 50001


class Gauge(peestore.BaseAuditedModel):
    reading = peewee.FloatField()

    class Meta:
        table_name = "csv_gauge"


FLOATS = [1e-50, 1e300, 0.1, -0.1, 1 / 3, 2.2250738585072014e-308]


def test_floats_are_doubles_and_round_trip_on_every_backend(connect_db, tmp_path, backend):
    """A FloatField holds a double on every backend (a DOUBLE column on MariaDB and
    PostgreSQL, not the 4-byte FLOAT or REAL that rounds to 7 digits and cannot hold
    1e-50, which MariaDB stores as 0): stored, read back, exported and imported, each
    value is exactly itself."""
    db = connect_db([Gauge])
    for value in FLOATS:
        Gauge.create(reading=value)
    assert [g.reading for g in Gauge.select().order_by(Gauge.id)] == FLOATS
    if backend != "sqlite":
        schema = "DATABASE()" if backend == "mysql" else "current_schema()"
        (kind,) = db.execute_sql(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = %s AND "
            "table_name = 'csv_gauge' AND column_name = 'reading'" % schema).fetchone()
        assert kind.lower() in ("double", "double precision")
    path = peestore.export_csv(tmp_path / "g.zip", tables=["csv_gauge"])
    with peestore.actor("importer"):
        assert peestore.import_csv(path, mode="replace") == {"csv_gauge": len(FLOATS)}
    assert [g.reading for g in Gauge.select().order_by(Gauge.id)] == FLOATS
