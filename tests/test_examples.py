"""Every file in examples/ runs as the README's "Examples" section says, and fails politely."""
import json
import pathlib
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile

import pytest

from . import processes

EXAMPLES = pathlib.Path(processes.ROOT) / "examples"
README = (pathlib.Path(processes.ROOT) / "README.md").read_text(encoding="utf-8")
W = {"X-User": "op", "Content-Type": "application/json"}


def run_example(name, *args, cwd):
    return subprocess.run([sys.executable, str(EXAMPLES / name)] + list(args), cwd=str(cwd),
                          env=processes.environment(), capture_output=True, text=True,
                          timeout=120)


def post(url, data, headers=W):
    """(status, parsed JSON body) of one POST with a raw body."""
    req = urllib.request.Request(url, data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_readme_says_how_to_run_each_example():
    """The "Examples" section names every file in examples/ with the command that runs it."""
    section = README.split("\n## Examples\n", 1)[1].split("\n## ", 1)[0]
    for path in sorted(EXAMPLES.glob("*.py")):
        assert "python examples/%s" % path.name in section, path.name


def test_machine_app_and_backup_export(tmp_path):
    """machine_app.py serves (and seeds) the default database; its own routes answer 4xx,
    never 500, to bad bodies; backup_export.py then backs up, exports and draws it."""
    proc, first, url = processes.start([str(EXAMPLES / "machine_app.py"), "--port", "0"],
                                       tmp_path)
    try:
        assert "(database sqlite:///%s)" % (tmp_path / "peestore.db") in first
        start = url + "machines/1/start"
        bad = {
            b"[1]": 400, b"null": 400, b"1": 400, b'"recipe"': 400, b"{nope": 400,
            b"{}": 422, b'{"recipe": "1"}': 422, b'{"recipe": true}': 422,
            b'{"recipe": 1.5}': 422, b'{"recipe": [1]}': 422, b'{"recipe": {"id": 1}}': 422,
            b'{"recipe": null}': 422, b'{"recipe": 0}': 422, b'{"recipe": -1}': 422,
            b'{"recipe": 99999999999999999999999}': 422, b'{"recipe": 424242}': 422,
        }
        answers = {body: post(start, body) for body in bad}
        assert {body: status for body, (status, _) in answers.items()} == bad
        assert all("detail" in answer for _, answer in answers.values())
        assert answers[b"{}"][1]["errors"] == {"recipe": "must be a recipe id (a whole number)"}
        # Without a JSON content type, or without X-User: 400, not a 500.
        assert post(start, b'{"recipe": 1}', {"X-User": "op"})[0] == 400
        assert post(start, b'{"recipe": 1}', {"Content-Type": "application/json"})[0] == 400
        assert post(url + "machines/77/start", b'{"recipe": 1}')[0] == 404
        status, machine = post(start, b'{"recipe": 1}')
        assert status == 200 and machine["status"] == "running"
        with urllib.request.urlopen(url + "machines/1/summary", timeout=10) as res:
            summary = json.loads(res.read())
        assert summary["log"][0]["message"] == "started with recipe steel 2mm"

        # The nightly script, next to the running app, on the same default database.
        done = run_example("backup_export.py", "--out", "nightly", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    finally:
        processes.stop(proc)
    out = tmp_path / "nightly"
    backups = sorted(out.glob("backup-*.sqlite"))
    assert len(backups) == 1
    conn = sqlite3.connect(str(backups[0]))
    try:
        assert conn.execute("SELECT status FROM machine WHERE id = 1").fetchone() == ("running",)
    finally:
        conn.close()
    (export,) = out.glob("export-*.zip")
    assert "machine.csv" in zipfile.ZipFile(str(export)).namelist()
    assert (out / "schema.svg").read_text(encoding="utf-8").startswith("<svg")


def test_backup_export_without_a_database_is_one_line(tmp_path):
    """No database here: one line naming it, exit 1, and nothing created."""
    done = run_example("backup_export.py", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "backup_export.py: error: no database at %s; run examples/machine_app.py (or peestore "
        "demo) here first, or give --db URL" % (tmp_path / "peestore.db")]
    assert list(tmp_path.iterdir()) == []


def test_examples_bad_arguments_are_one_line(tmp_path):
    """Bad arguments or a bad database URL: one line on stderr, never a traceback."""
    for name, args, code in [("backup_export.py", ["--nope"], 2),
                             ("backup_export.py", ["--db", "nosuch://x"], 1),
                             ("machine_app.py", ["--port", "99999"], 2),
                             ("machine_app.py", ["--port", "eighty"], 2),
                             ("machine_app.py", ["--db", "nosuch://x"], 1),
                             ("fleet_consumer.py", ["--seconds", "x"], 2),
                             ("fleet_consumer.py", ["--topic", "a/#"], 2),
                             ("fleet_consumer.py", ["--broker", "http://x"], 1),
                             ("fleet_consumer.py", ["--db", "nosuch://x"], 1)]:
        done = run_example(name, *args, cwd=tmp_path)
        assert done.returncode == code, (name, args, done.stderr)
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(name + ": error:"), (name, args, lines)
    assert list(tmp_path.iterdir()) == []


def test_fleet_consumer_stores_each_change_of_each_device_once(tmp_path):
    """Two devices publish to the broker; fleet_consumer.py writes their changes into
    PostgreSQL keyed by (device, audit id), and a device that sends them all again
    adds nothing."""
    import os
    import signal
    import time

    import peestore
    from peestore.mqtt import Publisher

    from . import conftest, mqtt_broker
    from .models import User

    broker = mqtt_broker.shared_broker()
    if "postgres" not in conftest.BACKENDS:
        pytest.skip("PostgreSQL is not among PEESTORE_TEST_BACKENDS")
    central = conftest.backend_url("postgres", tmp_path)
    top = mqtt_broker.prefix()
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "fleet_consumer.py"), "--db", central, "--broker",
         broker, "--topic", top, "--client-id", "fleet-" + os.path.basename(top),
         "--seconds", "120"],
        cwd=str(tmp_path), env=processes.environment(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    publishers = []
    try:
        assert "consuming %s/+/# from %s" % (top, broker) in processes.first_line(proc, 30)
        devices = {}
        for device in ("press-1", "press-2"):
            db = peestore.connect("sqlite:///%s" % (tmp_path / (device + ".db")), models=[User])
            with peestore.actor("op"):
                for i in range(5):
                    User.create(name="%s-%d" % (device, i))
            devices[device] = db
            publishers.append(Publisher(broker, database=db,
                                        topic=top + "/" + device + "/{component}/{record_id}"))
            publishers[-1].start()
        # press-1 sends everything again (a publisher of another name starts at 0).
        publishers.append(Publisher(broker, database=devices["press-1"], client_id=top,
                                    topic=top + "/press-1/{component}/{record_id}"))
        publishers[-1].start()
        check = peestore.connect(central)
        wanted = sorted((device, i) for device in devices for i in range(1, 6))
        deadline = time.monotonic() + 60
        rows = []
        while time.monotonic() < deadline:
            with check.connection_context():
                rows = sorted(check.execute_sql(
                    "SELECT device, audit_id FROM fleet_change").fetchall())
            if rows == wanted and all(p.acknowledged == 5 for p in publishers):
                break
            time.sleep(0.1)
        assert rows == wanted
        with check.connection_context():
            names = check.execute_sql(
                "SELECT after FROM fleet_change WHERE device = 'press-2' ORDER BY audit_id"
            ).fetchall()
        assert [json.loads(v)["name"] for (v,) in names] == ["press-2-%d" % i for i in range(5)]
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert out.splitlines()[-1] == "stored 10 changes (5 were stored already, 0 skipped)"
    finally:
        for publisher in publishers:
            publisher.stop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
        if peestore.database.obj is not None:
            peestore.database.obj.close()
