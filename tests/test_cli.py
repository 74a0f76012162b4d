"""The peestore command line."""
import subprocess
import sys

from peestore.cli._main import build_parser, main


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


def test_each_command_runs_with_only_its_own_module():
    """``main`` imports only the module of the command it runs; the table that says
    which module that is names every command, and a command's parser is the same
    alone as among all."""
    from peestore.cli._main import COMMAND_MODULES, _parser

    full = build_parser()
    actions = [a for a in full._actions if a.dest == "command"][0]
    assert set(actions.choices) == set(COMMAND_MODULES)
    for name in COMMAND_MODULES:
        alone = [a for a in _parser(name)._actions if a.dest == "command"][0]
        assert list(alone.choices) == [name]
        assert alone.choices[name].format_help() == actions.choices[name].format_help()
    code = ("import sys; from peestore.cli import main\n"
            "try:\n    main(['demo', '--port', 'x'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('peestore.cli.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "['peestore.cli._demo', 'peestore.cli._main']", out.stderr
