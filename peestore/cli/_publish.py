"""``peestore publish``: publish each audited change to an MQTT broker until stopped."""
from __future__ import annotations

import argparse
import signal
import threading

from ._main import arg, command, int_range


@command("publish", "publish each audited change to an MQTT broker (peestore[mqtt]), "
                    "until SIGTERM or Ctrl-C")
@arg("--broker", required=True, metavar="URL",
     help="the broker, mqtt://host:port (port 1883 by default)")
@arg("--components", metavar="A,B", default=None,
     help="only the changes of these components (default: all)")
@arg("--topic", metavar="TEMPLATE", default="peestore/{component}/{record_id}",
     help="the topic of each change; may name {component}, {record_id}, {operation} "
          "and {id} (default peestore/{component}/{record_id})")
@arg("--qos", type=int_range(0, 2), default=1, help="MQTT QoS, 0-2 (default 1)")
@arg("--client-id", metavar="ID", default=None,
     help="the MQTT client id, which also names this publisher's place in the audit log "
          "(default: a random id; the place is named by broker, topic and components)")
def run(args: argparse.Namespace) -> int:
    from ..mqtt import Publisher
    from ..rest._banner import database_label
    from ._data import _connect

    # The arguments (and paho-mqtt) are checked before the database is opened.
    publisher = Publisher(args.broker, components=args.components, topic=args.topic,
                          qos=args.qos, client_id=args.client_id)
    db = _connect(args)
    stopped = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopped.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        publisher.start()
        print("publishing the changes of %s to %s (topic %s) after entry %d; stop with "
              "Ctrl-C or SIGTERM" % (database_label(db), publisher.broker, publisher.topic,
                                     publisher.acknowledged), flush=True)
        while not stopped.wait(1.0):
            pass
    finally:
        publisher.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("stopped; the broker acknowledged every change up to entry %d"
          % publisher.acknowledged, flush=True)
    return 0
