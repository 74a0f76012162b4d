"""``peestore demo``: the built-in demo machine app."""
import argparse
import sys

from ..cli import arg, command


@command("demo", "serve the built-in demo machine app on SQLite in this folder")
@arg("--port", type=int, default=8000, help="TCP port on 127.0.0.1 (default 8000)")
def run(args: argparse.Namespace) -> int:
    print("peestore demo: the demo app arrives with the REST plugin (issue 4); "
          "nothing to serve yet", file=sys.stderr)
    return 1


run.needs_db = False
