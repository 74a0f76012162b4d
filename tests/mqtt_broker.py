"""MQTT helpers for the tests: a subscriber that collects messages, and a Mosquitto
broker of the test's own (on a free port, stopped by its pid) for tests that stop one.

The shared broker is Mosquitto on 127.0.0.1:1883 (``PEESTORE_TEST_MQTT_PORT``).
Without paho-mqtt, the shared broker or the ``mosquitto`` program the tests
skip, unless ``PEESTORE_REQUIRE_MQTT`` is set (CI sets it): then they fail.
"""
import getpass
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid

import pytest

PORT = int(os.environ.get("PEESTORE_TEST_MQTT_PORT", "1883"))
BROKER = "mqtt://127.0.0.1:%d" % PORT


def missing(reason):
    """Skip the test (fail it when ``PEESTORE_REQUIRE_MQTT`` is set)."""
    if os.environ.get("PEESTORE_REQUIRE_MQTT"):
        pytest.fail(reason + " (PEESTORE_REQUIRE_MQTT is set)", pytrace=False)
    pytest.skip(reason)


def paho():
    try:
        import paho.mqtt.client as client
    except ImportError:
        missing("paho-mqtt is not installed (pip install 'peestore[mqtt]')")
    return client


def listening(port, seconds=0.0):
    """True once something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def shared_broker():
    """The URL of the shared broker, or a skip (a failure under PEESTORE_REQUIRE_MQTT)."""
    paho()
    if not listening(PORT):
        missing("no MQTT broker on 127.0.0.1:%d (start mosquitto)" % PORT)
    return BROKER


def prefix():
    """A topic prefix no other test uses."""
    return "peestore-test/%s" % uuid.uuid4().hex[:12]


class Subscriber:
    """Collects ``(topic, JSON payload)`` of every message under ``topic`` (QoS 1)."""

    def __init__(self, topic, port=PORT, client_id=None):
        mqtt = paho()
        self.topic = topic
        self.messages = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        clean = client_id is None
        client_id = client_id or "peestore-test-" + uuid.uuid4().hex[:12]
        if hasattr(mqtt, "CallbackAPIVersion"):
            self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                      clean_session=clean)
        else:
            self.client = mqtt.Client(client_id=client_id, clean_session=clean)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()
        assert self._subscribed.wait(10), "the subscription was not acknowledged"

    def _on_connect(self, client, *args):
        client.subscribe(self.topic + "/#", 1)

    def _on_message(self, client, userdata, message):
        with self._lock:
            self.messages.append((message.topic, json.loads(message.payload.decode("utf-8"))))

    def received(self):
        with self._lock:
            return list(self.messages)

    def ids(self):
        return [event["id"] for _, event in self.received()]

    def wait_for(self, condition, seconds=30):
        """Wait until ``condition(messages)`` holds; the messages."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            messages = self.received()
            if condition(messages):
                return messages
            time.sleep(0.05)
        raise AssertionError("not received within %s s; got %d messages: %r" % (
            seconds, len(self.received()), self.ids()))

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnBroker:
    """A ``mosquitto`` of the test's own on 127.0.0.1 and a free port, with persistent
    sessions (so a subscriber's queued messages survive its restart)."""

    def __init__(self, folder):
        paho()
        self.program = shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
        if self.program is None:
            missing("no mosquitto program (apt-get install mosquitto)")
        self.port = free_port()
        self.url = "mqtt://127.0.0.1:%d" % self.port
        folder.mkdir(exist_ok=True)
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            "listener %d 127.0.0.1\nallow_anonymous true\npersistence true\n"
            "persistence_location %s/\nlog_dest file %s\n"
            # Run as root, mosquitto would switch to user mosquitto, who cannot
            # write the persistence file here.
            "user %s\n" % (self.port, folder, folder / "mosquitto.log", getpass.getuser()))
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([self.program, "-c", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not listening(self.port, 10):
            self.stop()
            raise AssertionError("mosquitto did not listen on port %d" % self.port)

    def stop(self):
        """Stop this broker (by its pid) and wait until it is gone."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
