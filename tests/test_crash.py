"""Crash safety: SIGKILL the serving process while clients write, then check the file.

The demo app (``python -m peestore demo --port 0``) runs as a real process on
a SQLite file in a temporary folder.  Client threads POST machines and PATCH
the ones they made; the process is killed with SIGKILL in the middle of that
load, a few rounds in a row on the same file.  After each kill, plain
``sqlite3`` (not peestore) checks that

- ``PRAGMA integrity_check`` is ``ok``;
- every create the server answered 201 to is in the table, with its
  ``create`` audit entry, and no audit entry exists without its row (a write
  and its audit entry commit together or not at all);
- every PATCH answered 200 is in the row (or a later one that was in flight
  when the process died) and has its ``update`` audit entry;

and the app starts again on the file, serves, and takes a new create.
"""
import http.client
import json
import os
import random
import selectors
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

if not hasattr(signal, "SIGKILL"):  # pragma: no cover
    pytest.skip("needs SIGKILL (POSIX)", allow_module_level=True)

ROUNDS = 4
CLIENTS = 6
MAX_REQUESTS = 400          # per client per round: the load is bounded
MIN_ANSWERED = 40           # creates answered before the kill may come
TIMEOUT = 10


def start_demo(cwd):
    """``python -m peestore demo --port 0`` in ``cwd``: (process, host, port)."""
    env = dict(os.environ)
    env.pop("PEESTORE_DATABASE_URL", None)
    # stderr to a file: waitress's warnings must never fill a pipe and stall it.
    with open(str(cwd / "demo-stderr.txt"), "ab") as errors:
        proc = subprocess.Popen([sys.executable, "-m", "peestore", "demo", "--port", "0",
                                 "--threads", "4"], cwd=str(cwd), env=env,
                                stdout=subprocess.PIPE, stderr=errors)
    try:
        line = _read_line(proc, 20, cwd / "demo-stderr.txt")
        marker = b"http://"   # the console's URL, on the first line
        assert marker in line, line
        address = line.split(marker, 1)[1].split(b"/", 1)[0].decode()
        host, port = address.rsplit(":", 1)
        assert host == "127.0.0.1"
        return proc, host, int(port)
    except BaseException:
        kill(proc)
        raise


def _read_line(proc, seconds, errors):
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if selector.select(timeout=0.2):
                line = proc.stdout.readline()
                if line:
                    return line
            if proc.poll() is not None:
                raise AssertionError("demo exited with %s: %s"
                                     % (proc.returncode, errors.read_text()[-2000:]))
        raise AssertionError("demo printed no URL in %d s" % seconds)
    finally:
        selector.close()


def kill(proc):
    """SIGKILL ``proc`` (if it still runs) and reap it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(TIMEOUT)
    proc.stdout.close()


def request(conn, method, path, body=None, headers=None):
    """(status, parsed body, headers) over a kept-alive connection."""
    hdrs = {"X-User": "crash-test"}
    data = None
    if body is not None:
        data = json.dumps(body)
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    conn.request(method, path, body=data, headers=hdrs)
    res = conn.getresponse()
    raw = res.read()
    return res.status, json.loads(raw) if raw else None, res


class Client(threading.Thread):
    """Creates machines and patches its own last one until stopped or the server dies.

    Only what the server answered is recorded: ``created`` (id -> name) for
    each 201, ``patched`` (id -> (location answered 200, location in flight)).
    """

    def __init__(self, host, port, tag, stop):
        super().__init__(daemon=True)
        self.host, self.port, self.tag, self.stop = host, port, tag, stop
        self.created = {}
        self.patched = {}
        self.unexpected = []

    def run(self):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
        try:
            for i in range(MAX_REQUESTS):
                if self.stop.is_set():
                    return
                if i % 3 == 2 and self.created:
                    mid = max(self.created)
                    location = "bay-%d" % i
                    answered = self.patched.get(mid, (None, None))[0]
                    self.patched[mid] = (answered, location)
                    status, body, _ = request(conn, "PATCH", "/machines/%d" % mid,
                                              {"location": location})
                    if status == 200:
                        self.patched[mid] = (location, None)
                    else:
                        self.unexpected.append((status, body))
                    continue
                name = "%s-%d" % (self.tag, i)
                status, body, _ = request(conn, "POST", "/machines/",
                                          {"name": name, "serial": "S-" + name})
                if status == 201:
                    self.created[body["id"]] = name
                else:
                    self.unexpected.append((status, body))
        except (OSError, http.client.HTTPException):
            return  # the server was killed under us: expected
        finally:
            conn.close()


def check_file(path, clients):
    """The database file after a kill, read with plain sqlite3; returns the machine count."""
    con = sqlite3.connect(str(path), timeout=TIMEOUT)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        machines = dict(con.execute("SELECT id, name FROM machine"))
        locations = dict(con.execute("SELECT id, location FROM machine"))
        creates = [int(rid) for (rid,) in con.execute(
            "SELECT record_id FROM audit_log WHERE component = 'machines' "
            "AND operation = 'create'")]
        updates = {}
        for rid, after in con.execute(
                "SELECT record_id, after FROM audit_log WHERE component = 'machines' "
                "AND operation = 'update'"):
            updates.setdefault(int(rid), []).append(json.loads(after)["location"])
    finally:
        con.close()
    # A row and its audit entry commit together: one create entry per row, no orphan.
    assert sorted(creates) == sorted(machines)
    for client in clients:
        for mid, name in client.created.items():
            assert machines.get(mid) == name, "answered 201 but lost: machine %d" % mid
        for mid, (answered, in_flight) in client.patched.items():
            if answered is None and in_flight is None:
                continue
            allowed = {answered} if in_flight is None else {answered, in_flight}
            assert locations[mid] in allowed, (mid, locations[mid], allowed)
            if answered is not None:
                assert answered in updates.get(mid, []), "PATCH %d answered, not audited" % mid
    return len(machines)


def check_serves(host, port, expected_count):
    """The restarted app reads what the file holds and takes a new create."""
    conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        status, body, _ = request(conn, "GET", "/db/health")
        assert status == 200 and body["status"] == "ok", body
        status, _, res = request(conn, "GET", "/machines/?limit=1")
        assert status == 200 and res.getheader("X-Total-Count") == str(expected_count)
        name = "after-restart-%d" % expected_count
        status, body, _ = request(conn, "POST", "/machines/", {"name": name,
                                                               "serial": "S-" + name})
        assert status == 201, body
        status, history, _ = request(conn, "GET", "/machines/%d/history" % body["id"])
        assert status == 200 and [e["operation"] for e in history] == ["create"]
    finally:
        conn.close()


def test_sigkill_under_write_load_loses_no_answered_write(tmp_path):
    """Kill -9 mid-load, several rounds: answered writes survive, the file is sound."""
    path = tmp_path / "peestore.db"  # the demo uses every tool's default database
    rng = random.Random(7)
    proc, host, port = start_demo(tmp_path)
    total_answered = 0
    try:
        for round_no in range(ROUNDS):
            stop = threading.Event()
            clients = [Client(host, port, "r%dc%d" % (round_no, n), stop)
                       for n in range(CLIENTS)]
            for client in clients:
                client.start()
            deadline = time.monotonic() + 10
            while sum(len(c.created) for c in clients) < MIN_ANSWERED \
                    and time.monotonic() < deadline and any(c.is_alive() for c in clients):
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.3))       # somewhere in the middle of the load
            busy = sum(c.is_alive() for c in clients)
            kill(proc)
            stop.set()
            for client in clients:
                client.join(TIMEOUT)
                assert not client.is_alive()
            answered = sum(len(c.created) for c in clients)
            assert answered >= MIN_ANSWERED and busy == CLIENTS, (answered, busy)
            assert [u for c in clients for u in c.unexpected] == []
            total_answered += answered

            count = check_file(path, clients)
            proc, host, port = start_demo(tmp_path)   # the app starts again on the file
            check_serves(host, port, count)
        assert total_answered >= ROUNDS * MIN_ANSWERED
    finally:
        kill(proc)
