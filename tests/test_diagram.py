"""Tests of diagram_svg: valid SVG, every table, keys and arrows, no overlap or overflow."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import peewee
import pytest

import peestore

from . import browser

SVG = "{http://www.w3.org/2000/svg}"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A monospace glyph is 0.6 em wide; the diagram must fit text measured so.
GLYPH = 0.6


class Plant(peestore.BaseAuditedModel):
    name = peewee.CharField()

    class Meta:
        table_name = "dg_plant"


class Cell(peestore.BaseAuditedModel):
    plant = peewee.ForeignKeyField(Plant)
    parent = peewee.ForeignKeyField("self", null=True)
    a_rather_long_column_name_for_testing_widths = peewee.DecimalField(max_digits=12,
                                                                       decimal_places=4)

    class Meta:
        table_name = "dg_cell"


class Job(peestore.BaseAuditedModel):
    cell = peewee.ForeignKeyField(Cell)
    plant = peewee.ForeignKeyField(Plant)
    started = peewee.DateTimeField()

    class Meta:
        table_name = "dg_job"


MODELS = [Plant, Cell, Job]


def _parse(svg):
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg"
    boxes = {}
    for g in root.iter(SVG + "g"):
        rect = g.find(SVG + "rect")
        geometry = {k: float(rect.get(k)) for k in ("x", "y", "width", "height")}
        texts = []
        for t in g.findall(SVG + "text"):
            size = float(t.get("font-size", 12))
            width = len(t.text or "") * size * GLYPH
            x = float(t.get("x"))
            left = x - width if t.get("text-anchor") == "end" else x
            texts.append((left, left + width, float(t.get("y")), t.text))
        boxes[g.get("data-table")] = (geometry, texts)
    return root, boxes


def test_diagram_is_valid_svg_with_every_table(connect_db):
    """Every table (the audit log too), its columns and types, on every backend."""
    connect_db(MODELS)
    root, boxes = _parse(peestore.diagram_svg())
    assert set(boxes) == {"audit_log", "dg_plant", "dg_cell", "dg_job"}
    texts = [t[3] for t in boxes["dg_job"][1]]
    assert "dg_job" in texts and "started" in texts and "cell_id" in texts
    assert any(t and ("timestamp" in t or "datetime" in t) for t in texts)
    marks = {t[3] for t in boxes["dg_cell"][1] if t[3] in ("PK", "FK", "PK/FK")}
    assert marks == {"PK", "FK"}


def test_one_arrow_per_foreign_key(sqlite_db):
    """Four foreign keys, four arrows, each with an arrowhead."""
    sqlite_db(MODELS)
    root, _ = _parse(peestore.diagram_svg())
    arrows = [p for p in root.iter(SVG + "path") if p.get("marker-end")]
    assert len(arrows) == 4


def test_boxes_never_overlap_and_text_stays_inside(sqlite_db):
    """No two boxes intersect; every text fits inside its box, measured at 0.6 em a glyph."""
    db = sqlite_db(MODELS)
    for i in range(12):
        db.execute_sql(f"CREATE TABLE loose_{i} (id INTEGER PRIMARY KEY, "
                       f"{'x' * (3 + i * 3)} VARCHAR({i + 1}))")
    root, boxes = _parse(peestore.diagram_svg())
    rects = [(name, g) for name, (g, _) in boxes.items()]
    for i, (a, ra) in enumerate(rects):
        for b, rb in rects[i + 1:]:
            apart = (ra["x"] + ra["width"] <= rb["x"] or rb["x"] + rb["width"] <= ra["x"] or
                     ra["y"] + ra["height"] <= rb["y"] or rb["y"] + rb["height"] <= ra["y"])
            assert apart, (a, b)
    width = float(root.get("width"))
    height = float(root.get("height"))
    for name, (g, texts) in boxes.items():
        assert g["x"] + g["width"] <= width and g["y"] + g["height"] <= height
        for left, right, y, text in texts:
            assert g["x"] < left and right < g["x"] + g["width"], (name, text)
            assert g["y"] < y < g["y"] + g["height"], (name, text)
        # In a row, the name ends before the type begins.
        rows = {}
        for left, right, y, _ in texts:
            rows.setdefault(y, []).append((left, right))
        for spans in rows.values():
            spans.sort()
            for (_, r1), (l2, _) in zip(spans, spans[1:]):
                assert r1 <= l2, (name, spans)


def test_names_are_escaped(sqlite_db):
    """Table and column names with XML characters stay valid XML."""
    db = sqlite_db([])
    db.execute_sql('CREATE TABLE "a<b>&c" ("x&y" INTEGER PRIMARY KEY, "q\'>" TEXT)')
    _, boxes = _parse(peestore.diagram_svg())
    assert "a<b>&c" in boxes
    assert "x&y" in [t[3] for t in boxes["a<b>&c"][1]]


def test_empty_database_still_draws(tmp_path):
    """A database with no tables gives a small valid SVG."""
    db = peewee.SqliteDatabase(str(tmp_path / "empty.db"))
    svg = peestore.diagram_svg(database=db)
    assert "0 tables" in svg
    ET.fromstring(svg)


def test_renders_in_a_browser(sqlite_db, tmp_path):
    """Headless Chromium renders the SVG to a non-empty picture (kept for a look).

    Skipped without Chromium, failed instead under PEESTORE_REQUIRE_BROWSER=1 (CI)."""
    browser.require(driver=False)
    sqlite_db(MODELS)
    svg = peestore.diagram_svg()
    width, height = (int(v) for v in re.search(r'width="(\d+)" height="(\d+)"', svg).groups())
    (tmp_path / "d.svg").write_text(svg, encoding="utf-8")
    png = tmp_path / "d.png"
    subprocess.run([browser.chromium()] + browser.FLAGS + [
                    "--user-data-dir=" + tempfile.mkdtemp(), "--screenshot=" + str(png),
                    f"--window-size={width},{height}", (tmp_path / "d.svg").as_uri()],
                   check=True, timeout=120, capture_output=True)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    if os.environ.get("PEESTORE_KEEP_DIAGRAM"):
        shutil.copy(str(png), os.environ["PEESTORE_KEEP_DIAGRAM"])


def _chain(db, tables, extra_columns=0):
    """``tables`` tables, each with a foreign key to the next one (the last to itself),
    named so that the first table drawn is the deepest of the chain."""
    sql = []
    for i in range(tables):
        columns = ["a INTEGER PRIMARY KEY",
                   "b INTEGER REFERENCES ch%05d(a)" % min(i + 1, tables - 1)]
        columns += ["c%d TEXT" % k for k in range(extra_columns)]
        sql.append("CREATE TABLE ch%05d (%s)" % (i, ", ".join(columns)))
    conn = db.connection()
    conn.executescript(";".join(sql))


def test_a_deep_chain_of_foreign_keys_is_laid_out_in_layers(sqlite_db):
    """499 tables (and the audit log: the limit of 500), each referencing the next:
    drawn, one layer per table (the layering used to recurse once per table and
    overflow Python's stack)."""
    db = sqlite_db([])
    _chain(db, 499)
    root, boxes = _parse(peestore.diagram_svg())
    assert len(boxes) == 500
    xs = [boxes["ch%05d" % i][0]["x"] for i in range(499)]
    # The parent is left of its child: the last table of the chain is leftmost.
    assert xs == sorted(xs, reverse=True) and len(set(xs)) == 499
    assert "500 tables, 499 foreign keys" in ET.tostring(root, encoding="unicode")


def test_layers_of_a_cycle_and_a_long_chain():
    """The layering needs no recursion, and a cycle still gives every table a layer."""
    from peestore.tools._diagram import _layers

    count = 20_000
    parents = {"t%05d" % i: ["t%05d" % (i + 1)] for i in range(count - 1)}
    parents["t%05d" % (count - 1)] = []
    layer = _layers(sorted(parents), parents)
    assert layer["t00000"] == count - 1 and layer["t%05d" % (count - 1)] == 0
    cycle = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a", "d"]}
    layer = _layers(sorted(cycle), cycle)
    assert set(layer) == set(cycle) and layer["b"] == layer["a"] - 1
    assert layer["d"] == layer["a"] + 1


@pytest.mark.parametrize("tables", [1500, 5000])
def test_a_schema_over_the_limit_is_a_clear_error(sqlite_db, db_path, tables):
    """1,500 or 5,000 tables (a restored file may add them): a ValidationError naming
    the limit from the function, a 422 from /db/diagram.svg, one line from the command."""
    import webtest

    import bottle

    db = sqlite_db([])
    _chain(db, tables)
    db.close()
    # The audit log is one more table.
    with pytest.raises(peestore.ValidationError, match=f"has {tables + 1} tables; the "
                                                       "schema diagram draws at most 500"):
        peestore.diagram_svg()
    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=[]))
    res = webtest.TestApp(app).get("/db/diagram.svg", status=422)
    assert res.json["detail"].startswith(f"the database has {tables + 1} tables")
    done = subprocess.run([sys.executable, "-m", "peestore", "diagram", "--db",
                           f"sqlite:///{db_path}"], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONPATH=ROOT))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("peestore diagram: error: the database has")
    assert done.stderr.count("\n") == 1


def test_too_many_columns_or_foreign_keys_is_a_clear_error(sqlite_db):
    db = sqlite_db([])
    _chain(db, 6, extra_columns=1800)  # 6 x 1802 columns > 10,000
    with pytest.raises(peestore.ValidationError,
                       match=r"has 1\d{4} columns; the schema diagram draws at most 10000"):
        peestore.diagram_svg()
    db.execute_sql("DROP TABLE ch00000")
    for t in range(1, 6):
        db.execute_sql("DROP TABLE ch%05d" % t)
    for t in range(3):
        keys = ", ".join("k%d INTEGER REFERENCES fk0(a)" % k for k in range(700))
        db.execute_sql("CREATE TABLE fk%d (a INTEGER PRIMARY KEY, %s)" % (t, keys))
    with pytest.raises(peestore.ValidationError, match="2100 foreign keys"):
        peestore.diagram_svg()
