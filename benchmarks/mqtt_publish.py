"""The MQTT publisher: how fast it drains a backlog, and how long a change takes to arrive.

    python benchmarks/mqtt_publish.py                         # 10,000 changes, 100 latencies
    python benchmarks/mqtt_publish.py --changes 1000 --latency 20 --broker mqtt://127.0.0.1:1883

Writes ``--changes`` audited creates into a fresh SQLite file, then starts a
``peestore.mqtt.Publisher`` and times until a subscriber on the same broker
(Mosquitto on this machine) has every change: the backlog a device sends
after a broker outage.  Then, with the publisher running, writes one change
at a time and times each from the write to its arrival.  Prints the
figures; needs paho-mqtt and a broker.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=10000)
    parser.add_argument("--latency", type=int, default=100, help="single changes timed")
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    args = parser.parse_args()

    import paho.mqtt.client as mqtt
    import peewee

    import peestore
    from peestore.mqtt import Publisher, parse_broker

    class Item(peestore.BaseAuditedModel):
        name = peewee.CharField()
        value = peewee.IntegerField(default=0)

    host, port, _, _ = parse_broker(args.broker)
    folder = tempfile.mkdtemp(prefix="peestore-mqtt-bench-")
    db = peestore.connect("sqlite:///%s" % os.path.join(folder, "bench.db"), models=[Item])
    topic = "peestore-bench/%s" % uuid.uuid4().hex[:12]

    arrived = {}
    lock = threading.Lock()
    subscribed = threading.Event()

    def on_message(client, userdata, message):
        event = json.loads(message.payload)
        with lock:
            arrived.setdefault(event["id"], time.perf_counter())

    if hasattr(mqtt, "CallbackAPIVersion"):
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    else:
        sub = mqtt.Client()
    sub.on_message = on_message
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.connect(host, port, 30)
    sub.subscribe(topic + "/#", 1)
    sub.loop_start()
    subscribed.wait(10)

    def wait_for(entry_id: int, seconds: float) -> bool:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            with lock:
                if entry_id in arrived:
                    return True
            time.sleep(0.001)
        return False

    with peestore.actor("bench"), db.atomic():
        for i in range(args.changes):
            Item.create(name="item-%d" % i, value=i)
    with db.connection_context():
        last = peestore.AuditLog.select(peewee.fn.MAX(peestore.AuditLog.id)).scalar()
    publisher = Publisher(args.broker, topic=topic + "/{component}/{id}")
    started = time.perf_counter()
    publisher.start()
    # Timed to the arrival of the last change (a subscriber slower than the publisher
    # may have some of the others dropped by the broker: its queue limit).
    if not wait_for(last, 600):
        print("the backlog did not arrive within 600 s")
        return 1
    elapsed = time.perf_counter() - started
    import paho.mqtt

    print("machine: %s, %d CPUs; paho-mqtt %s" % (
        sys.platform, os.cpu_count() or 0, paho.mqtt.__version__))
    print("backlog of %d changes: %.2f s, %.0f changes/s (window %d, QoS %d)" % (
        args.changes, elapsed, args.changes / elapsed, publisher.window, publisher.qos))

    latencies = []
    for i in range(args.latency):
        written = time.perf_counter()
        with peestore.actor("bench"):
            Item.create(name="single-%d" % i)
        if not wait_for(last + i + 1, 30):   # one audit entry per create
            print("a single change did not arrive within 30 s")
            return 1
        with lock:
            latencies.append(arrived[last + i + 1] - written)
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
    print("write to arrival, %d single changes: median %.0f ms, p95 %.0f ms, max %.0f ms "
          "(poll interval %.1f s)" % (len(latencies), statistics.median(latencies) * 1000,
                                      p95 * 1000, latencies[-1] * 1000,
                                      publisher.poll_interval))
    publisher.stop()
    sub.disconnect()
    sub.loop_stop()
    db.close()
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
