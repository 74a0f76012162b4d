"""The benchmark scripts run (a smoke run with small counts): their figures are not checked."""
import os
import re
import subprocess
import sys

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "benchmarks")


def test_run_py_quick_prints_every_figure(tmp_path):
    out = subprocess.run([sys.executable, os.path.join(BENCHMARKS, "run.py"), "--quick",
                          "--rounds", "1", "--same-server"], cwd=str(tmp_path),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout
    text = out.stdout
    for label in ("RSS after start", "RSS after", "creates/s", "reads by id/s",
                  "pages of 100 rows/s", "audited create vs unaudited",
                  "export 2000 rows: peak over idle", "backup 5 MB: peak over idle"):
        line = next((row for row in text.splitlines() if row.startswith(label)), None)
        assert line is not None, "%s missing from:\n%s" % (label, text)
        assert re.search(r"\d", line[len(label):]), line
    assert "machine:" in text
    header = next(row for row in text.splitlines() if row.startswith("figure"))
    assert "floor, peestore's server" in header


def test_bulk_update_script_runs():
    out = subprocess.run([sys.executable, os.path.join(BENCHMARKS, "bulk_update.py"),
                          "--rows", "500", "--repeat", "1"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=300)
    assert out.returncode == 0, out.stdout


def test_synchronous_script_runs(tmp_path):
    out = subprocess.run([sys.executable, os.path.join(BENCHMARKS, "synchronous.py"),
                          "--rows", "100", "--repeat", "1", "--dir", str(tmp_path)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout
    assert re.search(r"\d", out.stdout), out.stdout


def test_device_wear_script_runs(tmp_path):
    """benchmarks/device_wear.py prints bytes written per create and per audit entry."""
    out = subprocess.run([sys.executable, os.path.join(BENCHMARKS, "device_wear.py"),
                          "--rows", "50", "--dir", str(tmp_path)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=300)
    assert out.returncode == 0, out.stdout
    assert "per audit entry" in out.stdout and "write_bytes" in out.stdout, out.stdout


def test_audit_verify_script_runs():
    out = subprocess.run([sys.executable, os.path.join(BENCHMARKS, "audit_verify.py"),
                          "--entries", "2000", "--key", "k"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=300)
    assert out.returncode == 0, out.stdout
    assert "ok=True entries=2000" in out.stdout, out.stdout


def test_console_memory_script_runs():
    """benchmarks/console_memory.py prints the memory the console adds and its page weights."""
    out = subprocess.run([sys.executable, os.path.join(BENCHMARKS, "console_memory.py"),
                          "--runs", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout
    assert re.search(r"RSS gained when the console is first opened: -?\d+ KB", out.stdout)
    assert "console modules loaded before it was opened: none" in out.stdout
    assert re.search(r"heaviest page: [\d.]+ KB", out.stdout)


def test_csv_reader_and_export_http_memory_scripts_run(tmp_path):
    for script, args in (("csv_reader.py", ["--mb", "1"]),
                         ("export_http_memory.py", ["--rows", "20", "--row-kb", "4",
                                                    "--dir", str(tmp_path)])):
        out = subprocess.run([sys.executable, os.path.join(BENCHMARKS, script)] + args,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stdout
        assert re.search(r"\d+\.\d+ MB", out.stdout), out.stdout


def test_live_streams_script_runs():
    """benchmarks/live_streams.py prints memory per stream and REST latency with streams open."""
    out = subprocess.run([sys.executable, os.path.join(BENCHMARKS, "live_streams.py"),
                          "--streams", "3", "--requests", "5"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=300)
    assert out.returncode == 0, out.stdout
    assert re.search(r"-?\d+ KiB per stream", out.stdout), out.stdout
    assert re.search(r"with 3 streams open: median [\d.]+ ms", out.stdout), out.stdout
    assert re.search(r"another process in [\d.]+ ms", out.stdout), out.stdout


def test_mqtt_publish_script_runs():
    """benchmarks/mqtt_publish.py drains a backlog and times single changes (a broker is
    needed: the shared Mosquitto)."""
    from . import mqtt_broker

    broker = mqtt_broker.shared_broker()
    out = subprocess.run([sys.executable, os.path.join(BENCHMARKS, "mqtt_publish.py"),
                          "--changes", "200", "--latency", "3", "--broker", broker],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout
    assert re.search(r"backlog of 200 changes: [\d.]+ s, \d+ changes/s", out.stdout), out.stdout
    assert re.search(r"3 single changes: median \d+ ms", out.stdout), out.stdout
