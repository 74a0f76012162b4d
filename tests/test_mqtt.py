"""peestore.mqtt.Publisher and ``peestore publish`` against a real Mosquitto: every change
arrives as the SPEC 12 event, nothing is skipped across a broker outage, a kill -9 or
a restart, and the acknowledged id is kept in the database on every backend."""
import datetime
import json
import signal
import subprocess
import sys
import time

import peewee
import pytest

import peestore
from peestore.audit._log import OPERATIONS, OUTBOX_TABLE, AuditLog, data_tables
from peestore.cli import main
from peestore.live._events import event_from_entry
from peestore.mqtt import Publisher

from . import mqtt_broker, processes
from .models import Product, Setting, User

class Tag(peestore.BaseAuditedModel):
    code = peewee.CharField(primary_key=True)


SPEC_KEYS = {"id", "component", "operation", "record_id", "actor", "reason", "timestamp",
             "values", "before"}


@pytest.fixture
def broker():
    """The shared broker's URL (127.0.0.1:1883)."""
    return mqtt_broker.shared_broker()


@pytest.fixture
def subscribe():
    """``subscribe(topic, **kwargs)``: a Subscriber, closed after the test."""
    opened = []

    def _subscribe(topic, **kwargs):
        sub = mqtt_broker.Subscriber(topic, **kwargs)
        opened.append(sub)
        return sub

    yield _subscribe
    for sub in opened:
        sub.close()


@pytest.fixture
def publishers():
    """``publishers(...)``: a started Publisher (fast retries), stopped after the test."""
    started = []

    def _start(*args, **kwargs):
        publisher = Publisher(*args, **kwargs)
        publisher.backoff = (0.05, 0.5)
        publisher.poll_interval = 0.1
        publisher.start()
        started.append(publisher)
        return publisher

    yield _start
    for publisher in started:
        publisher.stop()


def stored_ack(db, name):
    """The acknowledged id stored in mqtt_outbox for publisher ``name``."""
    param = "%s" if not isinstance(db, peewee.SqliteDatabase) else "?"
    with db.connection_context():
        row = db.execute_sql("SELECT last_id FROM %s WHERE name = %s" % (OUTBOX_TABLE, param),
                             (name,)).fetchone()
    return None if row is None else int(row[0])


def all_ids(db):
    with db.connection_context():
        return [entry.id for entry in AuditLog.select(AuditLog.id).order_by(AuditLog.id)]


def test_every_event_kind_arrives_as_the_spec_json(sqlite_db, broker, subscribe, publishers,
                                                   tmp_path):
    """create, update, soft_delete, restore, delete, import and prune each arrive once,
    in id order, as the event object of SPEC 12, on peestore/{component}/{record_id}."""
    db = sqlite_db([User, Product, Setting])
    top = mqtt_broker.prefix()
    sub = subscribe(top)
    publishers(broker, topic=top + "/{component}/{record_id}")
    with peestore.actor("op-1"):
        user = User.create(name="ann")
        user.email = "ann@example.com"
        user.save(reason="typo")
        user.delete_instance()
        User.get_by_id(user.id, include_deleted=True).restore()
        product = Product.create(name="bolt", price=1.5)
        product.delete_instance()
        Setting.create(key="k", value="v")   # audited = False: not published
        export = peestore.export_csv(tmp_path / "export.zip", tables=["product"])
        Product.create(name="nut")
        peestore.import_csv(export, mode="replace")

    def events():
        with db.connection_context():
            entries = list(AuditLog.select().order_by(AuditLog.id))
        return [json.loads(json.dumps(event_from_entry(e), default=str)) for e in entries]

    expected = events()
    sub.wait_for(lambda messages: len(messages) >= len(expected))
    # Pruned once published (a prune of entries not yet sent would lose them).
    with peestore.actor("op-1"):
        peestore.prune_audit(keep_rows=3)
    expected.append(events()[-1])
    got = sub.wait_for(lambda messages: len(messages) >= len(expected))
    time.sleep(0.3)  # nothing more comes
    assert [event for _, event in sub.received()] == expected
    assert {event["operation"] for event in expected} == set(OPERATIONS)
    for topic, event in got:
        assert set(event) == SPEC_KEYS
        assert topic == "%s/%s/%s" % (top, event["component"], event["record_id"])
    update = next(event for _, event in got if event["operation"] == "update")
    assert update["actor"] == "op-1" and update["reason"] == "typo"
    assert update["values"]["email"] == "ann@example.com"
    assert update["before"]["email"] == ""
    datetime.datetime.fromisoformat(update["timestamp"])


def test_components_filter_topic_template_and_stored_ack(sqlite_db, broker, subscribe,
                                                         publishers):
    """Only the named components are sent, on the topic template; the acknowledged id
    (past the changes left out) is stored, and a new publisher starts after it."""
    db = sqlite_db([User, Product])
    top = mqtt_broker.prefix()
    sub = subscribe(top)
    template = top + "/{operation}/{component}/{id}"
    with peestore.actor("op"):
        users = [User.create(name="u%d" % i) for i in range(3)]
        Product.create(name="p")
    publisher = publishers(broker, components=["users"], topic=template)
    got = sub.wait_for(lambda messages: len(messages) >= 3)
    assert [(topic, event["component"]) for topic, event in got] == [
        ("%s/create/users/%d" % (top, event["id"]), "users") for _, event in got]
    assert [event["record_id"] for _, event in got] == [str(u.id) for u in users]
    last = all_ids(db)[-1]
    deadline = time.monotonic() + 10
    while stored_ack(db, publisher.name) != last and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored_ack(db, publisher.name) == last   # the product's change is passed too
    publisher.stop()
    assert publisher.acknowledged == last
    with peestore.actor("op"):
        User.create(name="late")
        Product.create(name="q")
    again = publishers(broker, components="users", topic=template)
    assert again.name == publisher.name and again.acknowledged == last
    got = sub.wait_for(lambda messages: len(messages) >= 4)
    time.sleep(0.3)
    assert [event["values"]["name"] for _, event in sub.received()] == ["u0", "u1", "u2",
                                                                        "late"]


def test_outbox_on_every_backend(connect_db, broker, subscribe, publishers):
    """On SQLite, PostgreSQL and MariaDB: the mqtt_outbox table is made, holds the last
    acknowledged id after a stop, is left out of the data tables, and a restart sends
    only what came after it."""
    db = connect_db([User])
    top = mqtt_broker.prefix()
    sub = subscribe(top)
    with peestore.actor("op"):
        for i in range(5):
            User.create(name="a%d" % i)
    publisher = publishers(broker, topic=top + "/{id}")
    sub.wait_for(lambda messages: len(messages) >= 5)
    publisher.stop()
    ids = all_ids(db)
    assert stored_ack(db, publisher.name) == ids[-1] == publisher.acknowledged
    with db.connection_context():
        assert OUTBOX_TABLE in db.get_tables()
        assert OUTBOX_TABLE not in data_tables(db)
    with peestore.actor("op"):
        for i in range(3):
            User.create(name="b%d" % i)
    publishers(broker, topic=top + "/{id}")
    sub.wait_for(lambda messages: len(messages) >= 8)
    time.sleep(0.3)
    assert sub.ids() == all_ids(db)


def test_a_record_id_makes_a_valid_topic(sqlite_db, broker, subscribe, publishers):
    """Characters that mean something in a topic (/ + #) are percent-encoded."""
    sqlite_db([Tag])
    top = mqtt_broker.prefix()
    sub = subscribe(top)
    publishers(broker, topic=top + "/{component}/{record_id}")
    with peestore.actor("op"):
        Tag.create(code="a/b+c#d%e")
    got = sub.wait_for(lambda messages: len(messages) >= 1)
    assert got[0][0] == top + "/tag/a%2Fb%2Bc%23d%25e"
    assert got[0][1]["record_id"] == "a/b+c#d%e"


def test_the_broker_stopped_during_20_writes(sqlite_db, tmp_path, subscribe, publishers,
                                             capsys):
    """A broker stopped after 5 of 20 writes and started again after 15: all 20 arrive,
    in order, and the outage is one line on stderr, not one per retry."""
    db = sqlite_db([User])
    own = mqtt_broker.OwnBroker(tmp_path / "broker")
    own.start()
    try:
        top = mqtt_broker.prefix()
        # A persistent session: the broker keeps what arrives while the subscriber is away.
        sub = subscribe(top, port=own.port, client_id="peestore-test-outage")
        publishers(own.url, topic=top + "/{id}")
        with peestore.actor("op"):
            for i in range(5):
                User.create(name="n%d" % i)
            sub.wait_for(lambda messages: len(messages) >= 5)
            own.stop()
            for i in range(5, 15):
                User.create(name="n%d" % i)
            time.sleep(1.5)   # several retries while it is down
            own.start()
            for i in range(15, 20):
                User.create(name="n%d" % i)
        sub.wait_for(lambda messages: len(set(m[1]["id"] for m in messages)) >= 20, 60)
        assert sorted(set(sub.ids())) == all_ids(db)
        err = capsys.readouterr().err.splitlines()
        assert len([line for line in err if "unreachable" in line]) == 1, err
        assert len([line for line in err if "again" in line]) == 1, err
    finally:
        own.stop()


def test_a_publisher_killed_and_restarted_skips_nothing(tmp_path, broker, subscribe):
    """``peestore publish`` killed with SIGKILL in the middle of a stream of writes and
    started again: every change arrives (some maybe twice), and SIGTERM stops it, exit 0."""
    url = "sqlite:///%s" % (tmp_path / "app.db")
    db = peestore.connect(url, models=[User])
    top = mqtt_broker.prefix()
    sub = subscribe(top)
    argv = ["-m", "peestore", "publish", "--broker", broker, "--db", url,
            "--topic", top + "/{id}"]
    proc, first, _ = start_publisher(argv, tmp_path)
    try:
        assert "after entry 0" in first
        with peestore.actor("op"):
            for i in range(100):
                User.create(name="k%d" % i)
                if i == 30:
                    sub.wait_for(lambda messages: len(messages) >= 10)
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(10)
        proc, first, _ = start_publisher(argv, tmp_path)
        ids = all_ids(db)
        sub.wait_for(lambda messages: set(m[1]["id"] for m in messages) >= set(ids), 60)
        assert sorted(set(sub.ids())) == ids
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=20)[0]
        assert proc.returncode == 0
        assert "acknowledged every change up to entry %d" % ids[-1] in out
        assert stored_ack(db, "%s %s/{id}" % (broker, top)) == ids[-1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        db.close()


def start_publisher(argv, cwd):
    """``python ARGV`` (a publisher): (process, its first line, None)."""
    proc = subprocess.Popen([sys.executable] + argv, cwd=str(cwd), env=processes.environment(),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        return proc, processes.first_line(proc, 30), None
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise


def test_unreachable_broker_is_one_line_and_stop_is_prompt(sqlite_db, publishers, capsys):
    """A broker that never answers: one line on stderr however many retries; stop()
    returns at once."""
    sqlite_db([User])
    publisher = publishers("mqtt://127.0.0.1:%d" % mqtt_broker.free_port())
    time.sleep(1.5)
    started = time.monotonic()
    publisher.stop()
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "unreachable" in err[0] and "retrying" in err[0], err


@pytest.mark.parametrize("kwargs, message", [
    ({"broker": "http://h:1883"}, "scheme must be mqtt://"),
    ({"broker": "mqtt://"}, "no host"),
    ({"broker": "mqtt://h:70000"}, "bad broker URL"),
    ({"broker": "mqtt://h:1883/path"}, "no path"),
    ({"broker": 1883}, "is a URL"),
    ({"topic": "a/{nope}"}, "may name only"),
    ({"topic": "a/#"}, "wildcards"),
    ({"topic": ""}, "non-empty"),
    ({"components": ["ok", ""]}, "non-empty component names"),
    ({"qos": 3}, "qos must be"),
    ({"client_id": ""}, "client_id"),
])
def test_bad_arguments_say_what_is_wrong(kwargs, message):
    """Each bad argument is a ConfigurationError naming the mistake, before connecting."""
    mqtt_broker.paho()
    kwargs = dict({"broker": "mqtt://127.0.0.1:1883"}, **kwargs)
    with pytest.raises(peestore.ConfigurationError, match=message):
        Publisher(kwargs.pop("broker"), **kwargs)


def test_broker_url_forms():
    """Default port 1883; a user and password in the URL are not in ``broker``."""
    mqtt_broker.paho()
    assert Publisher("mqtt://plant-broker").broker == "mqtt://plant-broker:1883"
    publisher = Publisher("mqtt://dev%40ice:s3cret@10.0.0.5:1884/")
    assert publisher.broker == "mqtt://10.0.0.5:1884"
    assert (publisher._user, publisher._password) == ("dev@ice", "s3cret")


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    """``peestore publish`` with a bad broker, topic or database: one line, exit 1."""
    mqtt_broker.paho()
    url = "sqlite:///%s" % (tmp_path / "app.db")
    peestore.connect(url, models=[User]).close()
    for argv, text in [(["--broker", "nope://x"], "scheme must be mqtt://"),
                       (["--broker", "mqtt://h:0"], "port 0"),
                       (["--broker", "mqtt://h", "--topic", "{x}"], "may name only"),
                       (["--broker", "mqtt://h", "--db", "sqlite:///%s" % (tmp_path / "no.db")],
                        "no database at")]:
        if "--db" not in argv:
            argv = argv + ["--db", url]
        assert main(["publish"] + argv) == 1
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith("peestore publish: error: ") and text in \
            err[0], (argv, err)
    assert not (tmp_path / "no.db").exists()


def test_cli_without_paho_says_what_to_install(tmp_path):
    """Without paho-mqtt: one line naming peestore[mqtt], exit 1."""
    code = ("import sys; sys.modules['paho'] = None; from peestore.cli import main; "
            "sys.exit(main(['publish', '--broker', 'mqtt://127.0.0.1:1883']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path),
                          env=processes.environment(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "peestore publish: error: peestore.mqtt needs paho-mqtt: install peestore[mqtt] "
        "(pip install 'peestore[mqtt]')"]


def test_a_backup_from_before_the_publisher_restores(sqlite_db, tmp_path, broker, publishers,
                                                     capsys):
    """mqtt_outbox is bookkeeping: a backup made before the publisher ran is still a
    valid backup for ``peestore restore`` (which compares every other table)."""
    db = sqlite_db([User])
    with peestore.actor("op"):
        User.create(name="a")
    old = peestore.backup(tmp_path / "old.sqlite")
    publishers(broker, topic=mqtt_broker.prefix() + "/{id}").stop()
    with db.connection_context():
        assert OUTBOX_TABLE in db.get_tables()
    url = "sqlite:///%s" % db.database
    assert main(["restore", str(old), "--db", url, "--dry-run"]) == 0, capsys.readouterr().err
    assert main(["restore", str(old), "--db", url]) == 0, capsys.readouterr().err


def test_start_leaves_the_callers_connection_open(sqlite_db, broker, publishers):
    """start() in a thread that has its connection open (a request, a script) keeps it."""
    db = sqlite_db([User])
    db.connect()
    with db.atomic():
        publishers(broker, topic=mqtt_broker.prefix() + "/{id}")
        assert not db.is_closed()
    db.close()
