"""``peestore prune-audit``: delete old audit entries."""
import argparse
import datetime
import sys

from ..cli import arg, command


@command("prune-audit", "delete the oldest audit entries beyond a row count or an age")
@arg("--keep-rows", type=int, metavar="N", help="keep the newest N entries")
@arg("--older-than-days", type=float, metavar="N", help="delete entries older than N days")
def run(args: argparse.Namespace) -> int:
    import peestore

    if (args.keep_rows is None) == (args.older_than_days is None):
        print("peestore prune-audit: error: give one of --keep-rows or --older-than-days",
              file=sys.stderr)
        return 2
    peestore.connect(args.db, create_tables=False)
    older = None if args.older_than_days is None else datetime.timedelta(
        days=args.older_than_days)
    deleted = peestore.prune_audit(keep_rows=args.keep_rows, older_than=older)
    print("deleted %d audit entries" % deleted)
    return 0
