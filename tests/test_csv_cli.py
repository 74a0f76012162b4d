"""peestore export / import on the command line: --app, component names, skips, limits."""
import zipfile

import pytest

import peestore
from peestore import AuditLog
from peestore.cli._main import main

from .test_csv_import import JOB_HEADER, MODELS, PRESS_HEADER, Job, Press, _zip

APP = "tests.test_csv_import"


@pytest.fixture
def url(db_path):
    url = "sqlite:///%s" % db_path
    peestore.connect(url, models=MODELS).close()
    return url


def _good_zip(path):
    return _zip(path, {"imp_press.csv": [PRESS_HEADER, ["1", "p", "idle", "100"]],
                       "imp_job.csv": [JOB_HEADER, ["1", "1", "50", "10", "", ""]],
                       "audit_log.csv": [["id", "timestamp", "component", "record_id",
                                          "operation", "actor", "before", "after"],
                                         ["1", "2020-01-01T00:00:00", "x", "1", "delete",
                                          "ceo", "", ""]]})


def test_import_without_app_says_rows_were_checked_by_column_types_only(url, tmp_path,
                                                                        capsys):
    """Without --app: the counts, the skipped audit log and a note on how rows were checked."""
    assert main(["import", "--db", url, str(_good_zip(tmp_path / "z.zip"))]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["imp_press: 1 rows", "imp_job: 1 rows"]
    assert lines[2].startswith("audit_log: skipped (the audit log is never imported")
    assert lines[3].startswith("note: imp_press, imp_job checked by column types only")
    assert "--app" in lines[3]


def test_import_with_app_applies_its_models_and_hooks(url, tmp_path, capsys):
    """--app imports the module first: its hooks refuse a bad row (one line, exit 1),
    and a good zip imports under the models' component names, with no note."""
    bad = _zip(tmp_path / "bad.zip", {
        "imp_press.csv": [PRESS_HEADER, ["1", "p", "idle", "100"]],
        "imp_job.csv": [JOB_HEADER, ["1", "1", "99999", "10", "", ""]]})
    assert main(["import", "--db", url, str(bad)]) == 0  # no model: the hook cannot run
    capsys.readouterr()
    peestore.connect(url, models=MODELS, create_tables=False)
    Job.delete(permanently=True).execute()
    Press.delete().execute()
    AuditLog.delete().execute()
    assert main(["import", "--db", url, "--app", APP, str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "imp_job.csv line 2: field speed: must be between 0 and" in err
    assert main(["import", "--db", url, "--app", APP, "--actor", "carol",
                 str(_good_zip(tmp_path / "z.zip"))]) == 0
    out = capsys.readouterr().out
    assert "note:" not in out and "audit_log: skipped" in out
    peestore.connect(url, create_tables=False)
    entries = [(e.component, e.actor) for e in AuditLog.select().order_by(AuditLog.id)]
    assert entries == [("presses", "carol"), ("jobs", "carol")]


def test_export_table_takes_component_names_with_app(url, tmp_path, capsys):
    """--table machines needs --app to know components; without it the error says so."""
    out = tmp_path / "o.zip"
    assert main(["export", "--db", url, "--table", "presses", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no table or component presses" in err
    assert "imp_press" in err and "component names come from the app's models" in err
    assert main(["export", "--db", url, "--app", APP, "--table", "presses", "--table", "jobs",
                 str(out)]) == 0
    assert zipfile.ZipFile(str(out)).namelist() == ["imp_press.csv", "imp_job.csv"]
    assert main(["export", "--db", url, "--table", "imp_press", str(out)]) == 0


def test_bad_app_and_hostile_zip_are_one_line_errors(url, tmp_path, capsys):
    """An app that does not import, and an oversized file: one line on stderr, exit 1."""
    assert main(["import", "--db", url, "--app", "no_such_module_x", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot import no_such_module_x" in err
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(str(path), "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("imp_press.csv", ",".join(PRESS_HEADER) + "\r\n1," + "0" * (3 << 20)
                    + ",idle,5\r\n")
    assert main(["import", "--db", url, str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "100 times its compressed size" in err


def test_the_docs_csv_section_runs_and_prints_what_it_says(capsys, tmp_path, monkeypatch):
    """The first Python block of docs/data-tools.md "CSV export and import" runs on its
    own; its comments are its output."""
    import pathlib
    import re

    monkeypatch.chdir(tmp_path)
    page = pathlib.Path(__file__).parent.parent / "docs" / "data-tools.md"
    section = page.read_text(encoding="utf-8").split(
        "\n## CSV export and import\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    exec(compile(blocks[0], str(page), "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out == ["{'machine': 1, 'operatorlog': 1, 'recipe': 2}",
                   "recipes.csv line 2: field speed_rpm: must be between 0 and the machine's "
                   "max_speed_rpm (2400) (refused by a before_insert hook); nothing was imported",
                   "replace would delete rows that tables outside the zip refer to: operatorlog "
                   "(operatorlog.machine_id -> machine.id); recipe (recipe.machine_id -> "
                   "machine.id); put operatorlog, recipe in the zip too, or import with mode "
                   "append; nothing was imported"]


def test_import_memory_benchmark_runs(tmp_path):
    """benchmarks/import_memory.py runs (a small smoke run); its figures are not checked."""
    import os
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "benchmarks", "import_memory.py")
    done = subprocess.run([sys.executable, script, "--rows", "200", "--cases",
                           "legit,wide_row", "--dir", str(tmp_path)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)
    assert done.returncode == 0, done.stdout
    assert "imported {'machine': 200}" in done.stdout
    assert "more values than the header's 7 columns" in done.stdout
