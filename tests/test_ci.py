"""The tested dependency ranges: .ci/lowest.txt pins exactly the lower bounds of setup.cfg."""
import configparser
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def requirements():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = config["options"]["install_requires"].split("\n")
    return [line.strip() for line in lines if line.strip()]


def test_every_runtime_dependency_has_a_lower_and_an_upper_bound():
    for requirement in requirements():
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)
        assert ">=" in requirement and "<" in requirement.replace("<=", "<"), (
            "%s: declare the range CI tests (>=lowest,<next major)" % name)
        assert name in ("peewee", "bottle", "waitress"), name


def test_the_lowest_run_installs_the_lower_bounds():
    pins = {}
    for line in (ROOT / ".ci" / "lowest.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    for requirement in requirements():
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()
        lower = re.search(r">=\s*([0-9][^,;\s]*)", requirement).group(1)
        assert pins.get(name) == lower, (
            ".ci/lowest.txt must pin %s==%s, the lower bound in setup.cfg" % (name, lower))
