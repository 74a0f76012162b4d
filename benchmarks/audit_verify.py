"""Verifying the audit log's hash chain: time and peak memory for a large log.

    python benchmarks/audit_verify.py                 # 1,000,000 entries
    python benchmarks/audit_verify.py --entries 100000 --key secret

Writes the entries through peestore (bulk inserts of 5,000 rows: one audited
``create`` entry each, chained), then runs ``peestore.verify_audit()`` in a
fresh process and prints its time and its peak resident memory over the
process' idle (VmHWM from /proc, Linux).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

VERIFY = """
import sys, time
sys.path.insert(0, %r)
import peestore

def hwm():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

peestore.connect(sys.argv[1], create_tables=False, audit_key=sys.argv[2] or None)
idle = hwm()
started = time.perf_counter()
result = peestore.verify_audit()
elapsed = time.perf_counter() - started
print(result["ok"], result["entries"], "%%.2f" %% elapsed, "%%.1f" %% ((hwm() - idle) / 1024.0))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1000000)
    parser.add_argument("--key", default="")
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    import peewee

    import peestore

    class Part(peestore.BaseAuditedModel):
        name = peewee.CharField()

    folder = tempfile.mkdtemp(prefix="peestore-verify-")
    url = "sqlite:///%s" % os.path.join(folder, "audit.db")
    peestore.connect(url, models=[Part], audit_key=args.key or None)
    started = time.perf_counter()
    db = peestore.database.obj
    for start in range(0, args.entries, 5000):
        count = min(5000, args.entries - start)
        with db.atomic():
            Part.insert_many([{"name": "p%d" % i} for i in range(start, start + count)]
                             ).execute()
    written = time.perf_counter() - started
    db.close()
    size = os.path.getsize(os.path.join(folder, "audit.db"))
    out = subprocess.run([sys.executable, "-c", VERIFY % ROOT, url, args.key],
                         check=True, stdout=subprocess.PIPE, text=True).stdout.split()
    print("entries written        %d in %.1f s (bulk inserts of 5,000)" % (args.entries, written))
    print("database size          %.1f MB" % (size / 1e6))
    print("verify_audit           ok=%s entries=%s in %s s" % (out[0], out[1], out[2]))
    print("peak memory over idle  %s MB" % out[3])


if __name__ == "__main__":
    main()
