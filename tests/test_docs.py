"""The README documents the public API."""
import pathlib
import re

import peestore

README = (pathlib.Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_public_name_is_in_the_readme():
    """Each name in peestore.__all__ appears in the README."""
    missing = [name for name in peestore.__all__ if not re.search(r"\b%s\b" % name, README)]
    assert missing == []


def test_all_names_exist():
    """__all__ lists only names the package has."""
    for name in peestore.__all__:
        assert hasattr(peestore, name), name


def test_quick_start_has_two_commands():
    """The quick start is exactly two commands."""
    section = README.split("## Quick start", 1)[1].split("##", 1)[0]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line for line in block.strip().splitlines() if line.strip()]
    assert len(commands) == 2
    assert "peestore demo" in commands[0]
    assert "pytest" in commands[1]
