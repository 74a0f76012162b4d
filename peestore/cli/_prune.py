"""``peestore prune-audit``: delete old audit entries."""
import argparse
import datetime
import sys

from ._main import MAX_INT64, arg, command, float_range, int_range

# --older-than-days goes up to 100 years: older than any device's log, and far
# from where "now minus N days" would fall before year 1 (an overflow).
MAX_AGE_DAYS = 36500


@command("prune-audit", "delete the oldest audit entries beyond a row count or an age")
@arg("--keep-rows", type=int_range(0, MAX_INT64), metavar="N",
     help="keep the newest N entries")
@arg("--older-than-days", type=float_range(0, MAX_AGE_DAYS), metavar="N",
     help="delete entries older than N days (0 to %d)" % MAX_AGE_DAYS)
def run(args: argparse.Namespace) -> int:
    import peestore

    from ._data import _connect

    if (args.keep_rows is None) == (args.older_than_days is None):
        print("peestore prune-audit: error: give one of --keep-rows or --older-than-days",
              file=sys.stderr)
        return 2
    _connect(args)
    older = None if args.older_than_days is None else datetime.timedelta(
        days=args.older_than_days)
    deleted = peestore.prune_audit(keep_rows=args.keep_rows, older_than=older)
    print("deleted %d audit entries" % deleted)
    return 0
