"""The peestore command line."""
import subprocess
import sys

from peestore.cli._main import main


def test_help_lists_commands():
    """peestore --help works and lists the sub-commands."""
    result = subprocess.run([sys.executable, "-m", "peestore", "--help"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "demo" in result.stdout and "prune-audit" in result.stdout


def test_usage_error_exits_2(capsys):
    """An unknown option is a usage error: exit status 2."""
    try:
        main(["prune-audit", "--no-such-option"])
    except SystemExit as exc:
        assert exc.code == 2
    else:
        raise AssertionError("no usage error")


def test_error_is_one_line_exit_1(tmp_path, capsys):
    """A failing command prints one line on stderr and exits 1."""
    assert main(["prune-audit", "--db", "nosuch://x", "--keep-rows", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0]
