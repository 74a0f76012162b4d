"""GET /db/changes: the SPEC 12 change stream, against a real waitress server."""
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import bottle
import pytest

import peestore
from peestore.audit._log import AuditLog
from peestore.live import _stream
from peestore.live._events import event_from_entry
from peestore.rest._plugin import RestPlugin
from peestore.rest._server import background

from .models import Setting, User
from .processes import ROOT, environment

MODELS = [User, Setting]


@pytest.fixture(autouse=True)
def _reader_stopped():
    """Each test starts and ends with the process' audit-log reader stopped."""
    yield
    deadline = time.monotonic() + 10
    while _stream.hub._thread is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _stream.hub._thread is None, "the change reader still runs after its streams closed"


class Stream:
    """A client of one event stream: its status, headers, and parsed events."""

    def __init__(self, url, path="/db/changes", headers=None, timeout=15):
        parts = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self.conn.request("GET", path, headers=headers or {})
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.comments = []

    def json(self):
        return json.loads(self.response.read().decode("utf-8"))

    def block(self):
        """The next event: (id or None, event name, data) (comments are kept aside)."""
        fields = {}
        while True:
            line = self.response.readline()
            assert line, "the stream ended"
            line = line.decode("utf-8").rstrip("\n")
            if not line:
                if fields:
                    return (int(fields["id"]) if "id" in fields else None,
                            fields.get("event"), json.loads(fields["data"]))
                continue
            if line.startswith(":"):
                self.comments.append(line)
                continue
            name, _, value = line.partition(": ")
            fields[name] = value

    def events(self, count):
        return [self.block() for _ in range(count)]

    def close(self):
        self.response.close()  # its file object keeps the socket open otherwise
        self.conn.close()


@pytest.fixture
def serve(connect_db):
    """``serve(**plugin_options)``: the models' app on a loopback port; yields its URL."""
    servers = []

    def _serve(threads=4, **options):
        connect_db(MODELS)
        app = bottle.Bottle()
        app.install(RestPlugin(MODELS, **options))
        server = background(app, threads=threads)
        servers.append(server)
        return server.__enter__()

    yield _serve
    for server in servers:
        server.__exit__(None, None, None)


def _entries():
    return [event_from_entry(entry) for entry in AuditLog.select().order_by(AuditLog.id)]


def test_every_kind_of_change_is_an_event_in_commit_order(serve):
    """create, update, soft_delete, restore, revert, delete: one event each, as SPEC 12."""
    url = serve()
    stream = Stream(url)
    assert stream.status == 200
    assert stream.response.getheader("Content-Type") == "text/event-stream"
    with peestore.actor("op-1", reason="shift start"):
        user = User.create(name="ada")
        user.name = "ada l."
        user.save()
        user.delete_instance()
        user.restore()
        first = AuditLog.select().order_by(AuditLog.id).first()
        User.get_by_id(user.id).revert_to(first.id)
        User.get_by_id(user.id).delete_instance(permanently=True)
    got = stream.events(6)
    expected = _entries()
    assert [op for _, _, op in [(i, e, d["operation"]) for i, e, d in got]] == \
        ["create", "update", "soft_delete", "restore", "update", "delete"]
    assert [data for _, _, data in got] == json.loads(json.dumps(expected))
    assert [entry_id for entry_id, _, _ in got] == [e["id"] for e in expected]
    assert {name for _, name, _ in got} == {"change"}
    assert got[0][2]["actor"] == "op-1" and got[0][2]["reason"] == "shift start"
    assert got[1][2]["before"]["name"] == "ada" and got[1][2]["values"]["name"] == "ada l."
    stream.close()


def test_a_prune_is_an_event_and_a_replay_skips_what_it_removed(serve):
    """Pruning the log is a ``prune`` event; a replay from before it starts at what is left."""
    url = serve()
    for n in range(4):
        User.create(name="p%d" % n)
    stream = Stream(url)
    peestore.prune_audit(keep_rows=2)
    got = stream.block()
    assert (got[2]["component"], got[2]["operation"]) == ("audit_log", "prune")
    stream.close()
    prunes = Stream(url, "/db/changes?since=0&components=audit_log")
    assert prunes.block()[2]["operation"] == "prune"
    prunes.close()
    replay = Stream(url, "/db/changes?since=0")
    left = _entries()
    assert [replay.block()[0] for _ in left] == [e["id"] for e in left]
    replay.close()


def test_rest_writes_and_bulk_queries_are_events(serve):
    """Writes through the REST API and a bulk query arrive as events too."""
    url = serve()
    stream = Stream(url)
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(url).hostname,
                                      urllib.parse.urlsplit(url).port, timeout=10)
    conn.request("POST", "/users/", body=json.dumps({"name": "bob"}),
                 headers={"Content-Type": "application/json", "X-User": "op-2"})
    assert conn.getresponse().read() and True
    User.update(email="x@y").where(User.name == "bob").execute()
    got = stream.events(2)
    assert [(d["operation"], d["actor"]) for _, _, d in got] == \
        [("create", "op-2"), ("update", "internal")]
    conn.close()
    stream.close()


def test_audited_false_models_are_live_only_without_id(serve):
    """A change to an audited = False model is sent live, with no id line and id null."""
    url = serve()
    stream = Stream(url)
    with peestore.actor("op-3"):
        Setting.create(key="mode", value="auto")
        User.create(name="cy")
    got = stream.events(2)
    assert got[0][0] is None and got[0][2]["id"] is None
    assert got[0][2]["component"] == "setting" and got[0][2]["values"]["value"] == "auto"
    assert got[0][2]["actor"] == "op-3"
    assert got[1][0] == got[1][2]["id"] and got[1][2]["component"] == "users"
    stream.close()
    # Not in the log, so not replayed.
    replay = Stream(url, "/db/changes?since=0")
    assert [d["component"] for _, _, d in replay.events(1)] == ["users"]
    replay.close()


@pytest.mark.parametrize("how", ["header", "since"])
def test_resume_replays_from_the_log_then_goes_live(serve, how):
    """Last-Event-ID (or ?since=) sends every change after that id once, then live ones."""
    url = serve()
    users = [User.create(name="u%d" % n) for n in range(5)]
    ids = [e["id"] for e in _entries()]
    if how == "header":
        stream = Stream(url, headers={"Last-Event-ID": str(ids[1])})
    else:
        stream = Stream(url, "/db/changes?since=%d" % ids[1])
    replayed = stream.events(3)
    assert [i for i, _, _ in replayed] == ids[2:]
    users[0].name = "live"
    users[0].save()
    live = stream.block()
    assert live[2]["operation"] == "update" and live[0] > ids[-1]
    stream.close()


def test_resume_during_writes_misses_nothing_and_repeats_nothing(serve, monkeypatch):
    """A replay longer than a page while another thread writes: every id once, in order."""
    monkeypatch.setattr(_stream, "PAGE", 7)
    url = serve()
    for n in range(30):
        User.create(name="r%d" % n)
    done = threading.Event()

    def writer():
        for n in range(30):
            User.create(name="w%d" % n)
        done.set()

    stream = Stream(url, "/db/changes?since=0")
    thread = threading.Thread(target=writer)
    thread.start()
    got = stream.events(60)
    thread.join()
    ids = [i for i, _, _ in got]
    assert ids == [e["id"] for e in _entries()]
    assert len(set(ids)) == 60
    stream.close()


def test_last_event_id_wins_over_since(serve):
    """A reconnecting EventSource keeps its ?since= URL: its Last-Event-ID counts."""
    url = serve()
    for n in range(3):
        User.create(name="s%d" % n)
    ids = [e["id"] for e in _entries()]
    stream = Stream(url, "/db/changes?since=0", headers={"Last-Event-ID": str(ids[1])})
    assert stream.block()[0] == ids[2]
    stream.close()


def test_an_id_past_the_end_of_the_log_starts_at_its_end(serve):
    """A Last-Event-ID from a longer log (a restored database): the live changes come."""
    url = serve()
    User.create(name="before")
    stream = Stream(url, headers={"Last-Event-ID": "1000000"})
    User.create(name="after")
    got = stream.block()
    assert got[2]["values"]["name"] == "after" and got[0] == _entries()[-1]["id"]
    stream.close()


def test_a_restore_ends_every_stream(serve, backend, tmp_path):
    """After a restore the log is another one: open streams end (clients reconnect)."""
    if backend != "sqlite":
        pytest.skip("restore is SQLite's")
    url = serve()
    User.create(name="kept")
    peestore.backup(tmp_path / "b.sqlite")
    stream = Stream(url)
    peestore.restore(tmp_path / "b.sqlite")
    deadline = time.monotonic() + 10
    while stream.response.readline():
        assert time.monotonic() < deadline, "the stream did not end"
    stream.close()
    again = Stream(url)
    User.create(name="after restore")
    assert again.block()[2]["values"]["name"] == "after restore"
    again.close()


def test_filters_narrow_the_stream(serve):
    """?components= and ?operations= pick the events sent (live and replayed)."""
    url = serve()
    stream = Stream(url, "/db/changes?components=users&operations=update,delete")
    replay = Stream(url, "/db/changes?since=0&operations=create")
    user = User.create(name="f")
    Setting.create(key="k", value="v")
    user.email = "f@x"
    user.save()
    user.delete_instance(permanently=True)
    assert [d["operation"] for _, _, d in stream.events(2)] == ["update", "delete"]
    assert [d["operation"] for _, _, d in replay.events(2)] == ["create", "create"]
    stream.close()
    replay.close()
    only_settings = Stream(url, "/db/changes?components=setting")
    User.create(name="g")
    Setting.create(key="k2", value="v2")
    assert only_settings.block()[2]["values"]["key"] == "k2"
    only_settings.close()


@pytest.mark.parametrize("path, headers, word", [
    ("/db/changes?components=nope", {}, "nope"),
    ("/db/changes?components=users,nope", {}, "nope"),
    ("/db/changes?components=", {}, "components"),
    ("/db/changes?operations=explode", {}, "explode"),
    ("/db/changes?since=abc", {}, "since"),
    ("/db/changes?since=-1", {}, "since"),
    ("/db/changes?since=99999999999999999999999", {}, "since"),
    ("/db/changes", {"Last-Event-ID": "12a"}, "Last-Event-ID"),
    ("/db/changes", {"Last-Event-ID": "1.5"}, "Last-Event-ID"),
    ("/db/changes?limit=3", {}, "limit"),
])
def test_bad_input_is_400_before_the_stream(serve, path, headers, word):
    """Unknown filter names, a malformed resume id: 400 JSON, no stream opened."""
    url = serve(max_streams=1)
    client = Stream(url, path, headers)
    assert client.status == 400
    assert client.response.getheader("Content-Type").startswith("application/json")
    assert word in client.json()["detail"]
    client.close()
    ok = Stream(url)  # the refused request took no place
    assert ok.status == 200
    ok.close()


def test_heartbeat_comments(serve):
    """A comment line every ``heartbeat`` seconds keeps the connection visibly alive."""
    url = serve(heartbeat=0.2)
    stream = Stream(url)
    while len(stream.comments) < 3:
        line = stream.response.readline().decode()
        if line.startswith(":"):
            stream.comments.append(line)
    assert stream.comments[1:] == [": heartbeat\n", ": heartbeat\n"]
    stream.close()


def test_the_stream_needs_the_same_access_as_the_audit_log(connect_db):
    """With ``authenticate``, an anonymous client gets 401, a known one the stream."""
    connect_db(MODELS)
    app = bottle.Bottle()
    app.install(RestPlugin(MODELS, authenticate=lambda request: {"name": "op", "roles": []}
                           if request.headers.get("Authorization") == "Bearer ok" else None))
    with background(app) as url:
        anonymous = Stream(url)
        assert anonymous.status == 401
        anonymous.close()
        known = Stream(url, headers={"Authorization": "Bearer ok"})
        assert known.status == 200
        User.create(name="z")
        assert known.block()[2]["component"] == "users"
        known.close()


def test_a_change_from_another_process_arrives(serve, db_url):
    """A write by another process on the same database reaches the open stream."""
    url = serve()
    stream = Stream(url)
    code = "\n".join([
        "import peestore",
        "from tests.models import Setting, User",
        "peestore.connect(%r, models=[User, Setting])" % db_url,
        "with peestore.actor('cli-op'):",
        "    User.create(name='from-outside')"])
    subprocess.run([sys.executable, "-c", code], env=environment(), cwd=ROOT, check=True,
                   timeout=60)
    got = stream.block()
    assert got[2]["values"]["name"] == "from-outside" and got[2]["actor"] == "cli-op"
    stream.close()


def test_one_reader_feeds_every_stream(serve):
    """Three streams, one audit-log reader thread; each gets every change."""
    url = serve()
    streams = [Stream(url) for _ in range(3)]
    User.create(name="one")
    readers = [t for t in threading.enumerate() if t.name == "peestore-changes"]
    assert len(readers) == 1
    assert [s.block()[2]["values"]["name"] for s in streams] == ["one"] * 3
    for s in streams:
        s.close()


def test_stream_limit_is_503_with_retry_after(serve):
    """Past ``max_streams`` open streams: 503 with Retry-After; a freed place is taken again."""
    url = serve(max_streams=2, heartbeat=1)
    first, second = Stream(url), Stream(url)
    assert (first.status, second.status) == (200, 200)
    third = Stream(url)
    assert third.status == 503
    assert third.response.getheader("Retry-After") == "1"
    assert "change streams" in third.json()["detail"]
    third.close()
    first.close()
    _open_within(url, 10).close()
    second.close()


def _open_within(url, seconds):
    """A stream opened before ``seconds`` pass (once the place of a closed one is free)."""
    deadline = time.monotonic() + seconds
    while True:
        stream = Stream(url)
        if stream.status == 200:
            return stream
        stream.close()
        assert time.monotonic() < deadline, "no place freed within %s s" % seconds
        time.sleep(0.1)


def test_a_client_that_hung_up_frees_its_place(serve):
    """Closing the connection (a page reload) frees the stream's place."""
    url = serve(max_streams=1, heartbeat=2)
    stream = Stream(url)
    assert stream.status == 200
    for _ in range(3):  # more reloads than places
        stream.close()
        stream = _open_within(url, 10)
    stream.close()


def test_rest_routes_answer_with_every_stream_open(serve):
    """With max_streams streams open, REST routes still answer (own threads)."""
    url = serve(threads=2, max_streams=8)
    streams = [Stream(url) for _ in range(8)]
    assert [s.status for s in streams] == [200] * 8
    parts = urllib.parse.urlsplit(url)
    for _ in range(6):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.request("GET", "/users/")
        assert conn.getresponse().status == 200
        conn.close()
    for s in streams:
        s.close()


def _server_threads():
    return sum(1 for thread in threading.enumerate() if "waitress" in thread.name)


def test_each_open_stream_has_a_thread_of_its_own_while_it_is_open(serve):
    """Each stream adds a worker thread while it is open and takes it back when it
    ends: the server runs only its ``threads`` when no stream is open."""
    url = serve(threads=2, max_streams=3)
    base = _server_threads()
    assert base == 2
    streams = [Stream(url) for _ in range(3)]
    assert [s.status for s in streams] == [200] * 3
    assert _server_threads() == base + 3
    for s in streams:
        s.close()
    deadline = time.monotonic() + 10
    while _server_threads() != base:
        assert time.monotonic() < deadline, "the streams' threads were not taken back"
        time.sleep(0.05)
    # The places and the threads come back for the next streams.
    again = [Stream(url) for _ in range(3)]
    assert [s.status for s in again] == [200] * 3 and _server_threads() == base + 3
    for s in again:
        s.close()


def test_a_client_that_stops_reading_is_dropped(serve, monkeypatch):
    """A client that leaves more than the stream's buffer unread for a heartbeat is
    dropped, and its place freed."""
    monkeypatch.setattr(_stream, "STREAM_BUFFER", 4096)
    url = serve(max_streams=1, heartbeat=0.5)
    parts = urllib.parse.urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((parts.hostname, parts.port))
    sock.sendall(b"GET /db/changes HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    try:
        sock.settimeout(10)
        assert sock.recv(12) == b"HTTP/1.1 200"  # the stream is open, then left unread
        sock.settimeout(None)
        deadline = time.monotonic() + 60
        freed = False
        while not freed:
            assert time.monotonic() < deadline, "the stalled client was never dropped"
            with peestore.actor("bulk"):
                # Audited one by one: 500 events of about 700 bytes.
                User.insert_many([{"name": "x" * 250}] * 500).execute()
            probe = Stream(url)
            freed = probe.status == 200
            probe.close()
    finally:
        sock.close()
