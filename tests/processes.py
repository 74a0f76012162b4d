"""Helpers for tests that run a server in a subprocess: its first line, a bounded stop."""
import os
import re
import selectors
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
URL = re.compile(r"http://127\.0\.0\.1:\d+/")


def environment(**extra):
    """os.environ with this checkout importable and no $PEESTORE_DATABASE_URL (unless given)."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("PEESTORE_DATABASE_URL", None)
    env.update(extra)
    return env


def start(argv, cwd, seconds=30, env=None):
    """Run ``python ARGV`` in ``cwd`` until it prints a line with its URL:
    (process, that line, the URL).  stderr is discarded: a full pipe must not stall it."""
    proc = subprocess.Popen([sys.executable] + list(argv), cwd=str(cwd),
                            env=env or environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        line = first_line(proc, seconds)
        found = URL.search(line)
        assert found, "no URL in its first line: %r" % line
        return proc, line, found.group(0)
    except BaseException:
        stop(proc)
        raise


def first_line(proc, seconds):
    """The first line ``proc`` prints on stdout, waiting at most ``seconds``."""
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if selector.select(timeout=0.2):
                return proc.stdout.readline()
            if proc.poll() is not None:
                raise AssertionError("exited with %s before printing" % proc.returncode)
    finally:
        selector.close()
    raise AssertionError("printed nothing in %s s" % seconds)


def stop(proc):
    """Stop ``proc`` (started by the test) by its pid; returns the rest of its stdout."""
    proc.terminate()
    try:
        return proc.communicate(timeout=10)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate(timeout=10)[0]
