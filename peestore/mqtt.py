"""Publish every audited change to an MQTT broker (extra ``peestore[mqtt]``, paho-mqtt).

The audit log is the outbox: the publisher reads it in id order and keeps, in
the database (table ``mqtt_outbox``), the id up to which the broker has
acknowledged every change.  A broker that is down, or a publisher that is
stopped or killed, loses nothing: it starts again after that id.  A change may
be sent twice after a crash, never skipped: consumers de-duplicate on ``id``.
"""
from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from urllib.parse import unquote, urlsplit

from .errors import ConfigurationError
from .live._events import event_from_entry

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, Optional, Tuple, Union

    import peewee

__all__ = ["Publisher"]

DEFAULT_TOPIC = "peestore/{component}/{record_id}"
#: The fields a topic template may name.
TOPIC_FIELDS = ("component", "record_id", "operation", "id")
INSTALL = "peestore.mqtt needs paho-mqtt: install peestore[mqtt] (pip install 'peestore[mqtt]')"


def _paho() -> Any:
    try:
        import paho.mqtt.client as client
    except ImportError:
        raise ConfigurationError(INSTALL) from None
    return client


def parse_broker(url: str) -> Tuple[str, int, Optional[str], Optional[str]]:
    """``(host, port, username, password)`` of ``mqtt://[user[:password]@]host[:port]``
    (port 1883 by default); a ``ConfigurationError`` saying what is wrong otherwise."""
    if not isinstance(url, str):
        raise ConfigurationError("the broker is a URL mqtt://host:port, got %r" % (url,))
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError("bad broker URL %r (%s); expected mqtt://host:port"
                                 % (url, exc)) from None
    if parts.scheme != "mqtt":
        raise ConfigurationError("bad broker URL %r: the scheme must be mqtt:// (as in "
                                 "mqtt://host:1883)" % url)
    if not parts.hostname:
        raise ConfigurationError("bad broker URL %r: no host (expected mqtt://host:port)" % url)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError("bad broker URL %r: expected mqtt://host:port, with no "
                                 "path or query" % url)
    if port == 0:
        raise ConfigurationError("bad broker URL %r: port 0 (expected 1-65535)" % url)
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return parts.hostname, port or 1883, user, password


def _check_topic(topic: str) -> None:
    sample = {"component": "c", "record_id": "1", "operation": "create", "id": 1}
    if not isinstance(topic, str) or not topic:
        raise ConfigurationError("topic must be a non-empty template such as %r" % DEFAULT_TOPIC)
    try:
        text = topic.format(**sample)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise ConfigurationError("bad topic template %r (%s: %s); it may name only %s" % (
            topic, type(exc).__name__, exc,
            ", ".join("{%s}" % name for name in TOPIC_FIELDS))) from None
    if "+" in text or "#" in text or "\0" in text:
        raise ConfigurationError("bad topic template %r: a topic to publish to may not "
                                 "hold + or # (wildcards) or NUL" % topic)


def _topic_part(value: Any) -> str:
    """A value for a topic level: the characters MQTT gives a meaning (``/``, ``+``,
    ``#``, NUL) and ``%`` percent-encoded, so any record id makes a valid topic."""
    text = str(value)
    for char in "%/+#\0":
        if char in text:
            text = text.replace(char, "%%%02X" % ord(char))
    return text


def _components(components: Union[str, Iterable[str], None]) -> Optional[Tuple[str, ...]]:
    if components is None:
        return None
    names = components.split(",") if isinstance(components, str) else list(components)
    if not all(isinstance(name, str) for name in names):
        raise ConfigurationError("components must be component names, got %r" % (components,))
    names = [name.strip() for name in names]
    if not names or not all(names):
        raise ConfigurationError("components must be non-empty component names, got %r"
                                 % (components,))
    return tuple(sorted(set(names)))


class _Unreachable(Exception):
    """The broker cannot be reached or refused the connection."""


class Publisher:
    """Publish each audited change to the MQTT broker at ``broker`` (``mqtt://host:port``)
    as the JSON change event, from a thread of its own (``start``, ``stop``).

    ``database``: a peewee ``Database`` (default: the one ``peestore.connect``
    opened).  ``components``: only these components (default: all).
    ``topic``: a template naming ``{component}``, ``{record_id}``,
    ``{operation}`` and ``{id}``.  ``qos``: 0, 1 or 2 (at 1 and 2 nothing is
    skipped).  ``client_id``: the MQTT client id (default: a new random one per
    connection); when given it also names the publisher's row in ``mqtt_outbox``.
    """

    #: At most this many changes are sent and not yet acknowledged at once.
    window = 100
    #: Seconds between two reads of the audit log for new changes.
    poll_interval = 0.5
    #: The first and the longest wait, in seconds, before connecting again.
    backoff = (0.5, 10.0)
    #: Seconds between MQTT keep-alive pings.
    keepalive = 15

    def __init__(self, broker: str, *, database: Optional[peewee.Database] = None,
                 components: Union[str, Iterable[str], None] = None,
                 topic: str = DEFAULT_TOPIC, qos: int = 1,
                 client_id: Optional[str] = None) -> None:
        self.host, self.port, self._user, self._password = parse_broker(broker)
        self.broker = "mqtt://%s:%d" % (self.host, self.port)
        self.components = _components(components)
        _check_topic(topic)
        self.topic = topic
        if qos not in (0, 1, 2) or isinstance(qos, bool):
            raise ConfigurationError("qos must be 0, 1 or 2, got %r" % (qos,))
        self.qos = qos
        if client_id is not None and (not isinstance(client_id, str) or not client_id
                                      or len(client_id) > 100):
            raise ConfigurationError("client_id must be a name of 1 to 100 characters")
        self.client_id = client_id
        self._mqtt = _paho()
        self._database = database
        self._outbox: Any = None
        self._thread: Optional[threading.Thread] = None
        self._stopping = threading.Event()
        self._woken = threading.Event()
        self._acknowledged = 0

    @property
    def name(self) -> str:
        """This publisher's row in ``mqtt_outbox``: its client id if given, else the
        broker, the topic and the components."""
        if self.client_id is not None:
            return self.client_id
        name = "%s %s" % (self.broker, self.topic)
        if self.components is not None:
            name += " " + ",".join(self.components)
        if len(name) > 200:
            import hashlib

            name = name[:135] + " " + hashlib.sha256(name.encode("utf-8")).hexdigest()
        return name

    @property
    def acknowledged(self) -> int:
        """The id up to which the broker has acknowledged every change this publisher
        sends (as last stored in the database)."""
        return self._acknowledged

    def start(self) -> None:
        """Make the ``mqtt_outbox`` table if missing and start publishing, in a
        thread, after the last acknowledged change."""
        from .audit._listeners import after_commit
        from .db._connect import get_database
        from .live._outbox import Outbox

        if self._thread is not None and self._thread.is_alive():
            raise ConfigurationError("this publisher is running already")
        db = get_database(self._database)
        self._outbox = Outbox(db, self.name, self.components)
        self._acknowledged = self._outbox.create()
        self._stopping.clear()
        # A commit in this process wakes the reader at once; other processes'
        # changes are found by reading the log every ``poll_interval``.
        after_commit(self._wake_up)
        self._thread = threading.Thread(target=self._run, name="peestore-mqtt", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop publishing: wait briefly for the acknowledgements of what was sent,
        store the last acknowledged id and disconnect."""
        from .audit._listeners import remove_listener

        remove_listener(self._wake_up)
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> Publisher:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- the thread ------------------------------------------------------------------

    def _wake_up(self, changes: Any) -> None:
        self._woken.set()

    def _say(self, text: str) -> None:
        try:
            sys.stderr.write("peestore.mqtt: %s\n" % text)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass

    def _run(self) -> None:
        delay = self.backoff[0]
        down = False
        try:
            while not self._stopping.is_set():
                try:
                    client, state = self._connect()
                except _Unreachable as exc:
                    if not down:
                        self._say("broker %s unreachable (%s); changes wait in the audit "
                                  "log, retrying" % (self.broker, exc))
                        down = True
                    self._stopping.wait(delay)
                    delay = min(delay * 2, self.backoff[1])
                    continue
                if down:
                    self._say("connected to %s again" % self.broker)
                    down = False
                delay = self.backoff[0]
                try:
                    self._pump(client, state)
                except Exception as exc:  # a bug must not end publishing for good
                    self._say("unexpected %s: %s; connecting again" % (
                        type(exc).__name__, str(exc).strip().split("\n")[0]))
                    self._stopping.wait(self.backoff[1])
                finally:
                    try:
                        client.disconnect()
                        client.loop(0.1)
                    except Exception:  # the connection is gone already
                        pass
        finally:
            try:
                self._outbox.db.close()
            except Exception:  # closing only: nothing is left to lose
                pass

    def _connect(self) -> Tuple[Any, Dict[str, Any]]:
        """A client connected to the broker (CONNACK received), or ``_Unreachable``."""
        mqtt = self._mqtt
        client_id = self.client_id or "peestore-" + uuid.uuid4().hex[:16]
        if hasattr(mqtt, "CallbackAPIVersion"):  # paho-mqtt 2
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                 clean_session=True)
        else:
            client = mqtt.Client(client_id=client_id, clean_session=True)
        state: Dict[str, Any] = {"connack": None, "connected": False, "acked": []}
        # The callbacks' arguments differ between paho-mqtt 1 and 2; the ones read
        # here (the CONNACK code, the message id) are at the same places in both.

        def on_connect(client: Any, userdata: Any, flags: Any, code: Any, *rest: Any) -> None:
            state["connack"] = code
            state["connected"] = _code(code) == 0

        def on_disconnect(*args: Any) -> None:
            state["connected"] = False

        def on_publish(client: Any, userdata: Any, mid: int, *rest: Any) -> None:
            state["acked"].append(mid)

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_publish = on_publish
        client.max_inflight_messages_set(self.window)
        if self._user is not None:
            client.username_pw_set(self._user, self._password)
        try:
            client.connect(self.host, self.port, self.keepalive)
            deadline = time.monotonic() + 10
            while state["connack"] is None and time.monotonic() < deadline:
                if client.loop(0.1) != mqtt.MQTT_ERR_SUCCESS:
                    break
        except (OSError, ValueError) as exc:
            raise _Unreachable(str(exc) or type(exc).__name__) from None
        if not state["connected"]:
            try:
                client.disconnect()
            except Exception:
                pass
            code = state["connack"]
            raise _Unreachable("no answer to CONNECT" if code is None
                               else "connection refused: %s" % (code,))
        return client, state

    def _pump(self, client: Any, state: Dict[str, Any]) -> None:
        """Send the changes after the acknowledged one and take the acknowledgements,
        until the connection drops or ``stop``; the outbox row follows the acks."""
        import peewee

        mqtt = self._mqtt
        outbox = self._outbox
        inflight: Dict[int, int] = {}   # message id -> audit entry id
        read_to = self._acknowledged    # every change up to here is sent (or skipped)
        next_read = 0.0
        saved_at = time.monotonic()
        db_down = False
        stop_by: Optional[float] = None
        caught_up = False
        while state["connected"]:
            now = time.monotonic()
            if self._stopping.is_set():
                # Send what the log holds now and give it a moment to be
                # acknowledged, then stop.
                if stop_by is None:
                    stop_by, next_read, caught_up = now + 1.0, now, False
                elif (caught_up and not inflight) or now >= stop_by:
                    break
            if client.loop(0.05) != mqtt.MQTT_ERR_SUCCESS:
                break
            for mid in state["acked"]:
                inflight.pop(mid, None)
            del state["acked"][:]
            if self._woken.is_set():
                self._woken.clear()
                next_read = now
            room = self.window - len(inflight)
            if room > 0 and now >= next_read:
                try:
                    if outbox.db.is_closed():
                        outbox.db.connect()
                    entries, high = outbox.read(read_to, room)
                    if high < read_to:
                        # The log was replaced by an older one (a restore): go back to
                        # the place stored with it.
                        read_to = min(outbox.acknowledged() or 0, high)
                        self._acknowledged = read_to
                        inflight.clear()
                        continue
                    if db_down:
                        self._say("database readable again")
                        db_down = False
                except peewee.PeeweeException as exc:
                    if not db_down:
                        self._say("cannot read the audit log (%s); retrying"
                                  % str(exc).strip().split("\n")[0])
                        db_down = True
                    try:
                        outbox.db.close()
                    except peewee.PeeweeException:
                        pass
                    next_read = now + self.backoff[1] / 4
                    continue
                for entry in entries:
                    info = client.publish(self._topic(entry), self._payload(entry), self.qos)
                    if info.rc != mqtt.MQTT_ERR_SUCCESS:
                        state["connected"] = False
                        break
                    if self.qos:
                        inflight[info.mid] = entry.id
                    read_to = entry.id
                else:
                    caught_up = len(entries) < room
                    read_to = high if caught_up else read_to
                    # A full batch: read on at once; else wait for new changes.
                    next_read = now if len(entries) == room else now + self.poll_interval
            if self.qos == 0:
                del state["acked"][:]
            done = (min(inflight.values()) - 1) if inflight else read_to
            if done > self._acknowledged and (not inflight or now - saved_at >= 1.0
                                              or self._stopping.is_set()):
                if self._store(done):
                    saved_at = now
        done = (min(inflight.values()) - 1) if inflight else read_to
        if done > self._acknowledged:
            self._store(done)

    def _store(self, done: int) -> bool:
        import peewee

        try:
            if self._outbox.db.is_closed():
                self._outbox.db.connect()
            self._outbox.save(done)
        except peewee.PeeweeException:
            return False  # stored at the next chance; until then a restart resends more
        self._acknowledged = done
        return True

    def _topic(self, entry: Any) -> str:
        return self.topic.format(component=_topic_part(entry.component),
                                 record_id=_topic_part(entry.record_id),
                                 operation=_topic_part(entry.operation), id=entry.id)

    def _payload(self, entry: Any) -> bytes:
        return json.dumps(event_from_entry(entry), ensure_ascii=False,
                          separators=(",", ":"), default=str).encode("utf-8")


def _code(code: Any) -> int:
    """A CONNACK code as a number: an int (paho-mqtt 1) or a ``ReasonCode`` (2)."""
    value = getattr(code, "value", code)
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1
