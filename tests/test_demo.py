"""The demo machine app: its models and hooks over WSGI, and `peestore demo` for real."""
import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import webtest

from peestore.db._connect import get_database
from peestore.demo import Machine, OperatorLog, Recipe, make_app

from . import processes

W = {"X-User": "op"}


@pytest.fixture
def demo(tmp_path):
    app = make_app("sqlite:///%s" % (tmp_path / "demo.db"))
    yield webtest.TestApp(app)
    get_database().close()


def test_seeded(demo):
    """A fresh demo has a machine with two recipes and a log line."""
    machines = demo.get("/machines/").json
    assert [m["name"] for m in machines] == ["press-1"]
    assert len(demo.get("/recipes/?machine=%d" % machines[0]["id"]).json) == 2
    assert len(demo.get("/operator_logs/").json) == 1
    assert demo.get("/").json["components"] == ["machines", "recipes", "operator_logs"]


def test_recipe_hooks_validate(demo):
    """The recipe hook rejects a speed over the machine's limit and a missing machine."""
    machine = demo.get("/machines/").json[0]
    res = demo.post_json("/recipes/", {"machine": machine["id"], "name": "fast",
                                       "speed_rpm": 99999.0}, headers=W, status=422)
    assert "speed_rpm" in res.json["errors"]
    res = demo.post_json("/recipes/", {"machine": 424242, "name": "x"}, headers=W, status=422)
    assert res.json["errors"] == {"machine": "no such machine"}
    ok = demo.post_json("/recipes/", {"machine": machine["id"], "name": "slow",
                                      "speed_rpm": 100.0}, headers=W, status=201).json
    demo.patch_json("/recipes/%d" % ok["id"], {"temperature_c": 999.0}, headers=W,
                    status=422)


def test_machine_and_log_hooks(demo):
    """Blank names and messages and a bad status are refused with the field named."""
    res = demo.post_json("/machines/", {"name": " ", "serial": "S2"}, headers=W, status=422)
    assert res.json["errors"] == {"name": "may not be blank"}
    res = demo.post_json("/machines/", {"name": "m", "serial": "S2", "status": "melting"},
                         headers=W, status=422)
    assert "status" in res.json["errors"]
    demo.post_json("/operator_logs/", {"operator": "op", "message": ""}, headers=W, status=422)


def test_recipe_soft_delete_and_history(demo):
    """Recipes are soft-deleted, restorable and audited; log lines are not audited."""
    recipe = demo.get("/recipes/").json[0]
    demo.delete("/recipes/%d" % recipe["id"], headers=W)
    assert Recipe.select().with_deleted().count() == 2
    assert demo.post("/recipes/%d/restore" % recipe["id"], headers=W).json["restored"]
    ops = [h["operation"] for h in demo.get("/recipes/%d/history" % recipe["id"]).json]
    assert ops == ["restore", "soft_delete", "create"]
    line = demo.post_json("/operator_logs/", {"operator": "op", "message": "hi"},
                          headers=W).json
    assert demo.get("/operator_logs/%d/history" % line["id"]).json == []
    assert OperatorLog._meta.audited is False and Machine._meta.audited is True


def _start_demo(cwd, *args):
    """``python -m peestore demo --port 0 ARGS`` in ``cwd``: (process, the start line,
    base URL), after checking that the first line names the console's URL."""
    proc, first, url = processes.start(["-m", "peestore", "demo", "--port", "0"] + list(args),
                                       cwd)
    try:
        assert first.startswith("peestore demo: open %sdb/console/ in a browser" % url), first
        # Printed in one write with the first line: already read into the pipe's buffer.
        return proc, proc.stdout.readline(), url
    except BaseException:
        processes.stop(proc)
        raise


def _get_json(url):
    deadline = time.time() + 20
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as res:
                return json.loads(res.read())
        except (urllib.error.URLError, OSError):
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def test_peestore_demo_command(tmp_path):
    """`peestore demo --db URL` serves the demo there; its first line is the console's URL,
    the next names the URL and the database, and the console answers."""
    mine = tmp_path / "mine.db"
    proc, first, url = _start_demo(tmp_path, "--db", "sqlite:///%s" % mine)
    try:
        body = _get_json(url + "machines/")
        assert body and body[0]["name"] == "press-1"
        with urllib.request.urlopen(url + "db/console/", timeout=10) as res:
            assert res.status == 200 and b"Operator console" in res.read()
    finally:
        processes.stop(proc)
    assert first.startswith("peestore demo: serving on %s" % url)
    assert "(database sqlite:///%s)" % mine in first
    assert mine.exists() and not (tmp_path / "peestore.db").exists()


def test_backup_next_to_the_running_demo(tmp_path):
    """The demo and the tools share the default database: `peestore backup` just works."""
    proc, first, url = _start_demo(tmp_path)
    try:
        assert "(database sqlite:///%s)" % (tmp_path / "peestore.db") in first
        assert _get_json(url + "machines/")[0]["name"] == "press-1"
        done = subprocess.run([sys.executable, "-m", "peestore", "backup", "out.sqlite"],
                              cwd=str(tmp_path), env=processes.environment(),
                              capture_output=True, text=True, timeout=60)
    finally:
        processes.stop(proc)
    assert done.returncode == 0, done.stderr
    conn = sqlite3.connect(str(tmp_path / "out.sqlite"))
    try:
        assert conn.execute("SELECT name FROM machine").fetchall() == [("press-1",)]
    finally:
        conn.close()


def test_make_app_uses_the_default_database(tmp_path, monkeypatch):
    """make_app() without a URL opens $PEESTORE_DATABASE_URL, else ./peestore.db."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PEESTORE_DATABASE_URL", raising=False)
    make_app()
    assert get_database().database == "peestore.db"
    get_database().close()
    monkeypatch.setenv("PEESTORE_DATABASE_URL", "sqlite:///%s" % (tmp_path / "env.db"))
    make_app()
    assert get_database().database == str(tmp_path / "env.db")
    get_database().close()


def test_example_machine_app(tmp_path):
    """examples/machine_app.py: its own routes run through the plugin (actor, JSON errors)."""
    import importlib.util

    import peestore
    from peestore.demo import MODELS, seed

    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples",
                        "machine_app.py")
    spec = importlib.util.spec_from_file_location("machine_app_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    peestore.bootstrap(module.app, models=MODELS,
                       database_url="sqlite:///%s" % (tmp_path / "m.db"))
    with get_database().connection_context():
        seed()
    api = webtest.TestApp(module.app)
    assert api.post_json("/machines/1/start", {"recipe": 1}, headers=W).json["status"] == \
        "running"
    assert api.get("/machines/1/summary").json["log"][0]["operator"] == "op"
    assert "detail" in api.post_json("/machines/1/start", {"recipe": 1}, status=400).json
    assert "detail" in api.get("/machines/9/summary", status=404).json
    get_database().close()
