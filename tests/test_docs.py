"""The docs match the code: generated parts current, every public name documented
with its real signature and in prose, every command and route documented."""
import inspect
import re

import pytest

import peestore
# Imported with the module, not first inside a test: the fixtures that remove the
# hooks a test registers would remove the demo's own hooks for every later test.
import peestore.demo  # noqa: F401

from . import docpages

README = docpages.read(docpages.ROOT / "README.md")
API = docpages.DOCS / "api.md"
CLI = docpages.DOCS / "cli.md"
REST = docpages.DOCS / "rest.md"
#: The pages written by hand (api.md is generated whole).
PROSE = [page for page in docpages.PAGES if page != API]

#: The routes of SPEC section 6, with ``C`` for a model's component.
SPEC_ROUTES = [
    "GET /C/", "GET /C/<id>", "POST /C/", "PUT /C/<id>", "PATCH /C/<id>", "DELETE /C/<id>",
    "POST /C/<id>/restore", "GET /C/<id>/history", "POST /C/<id>/revert",
    "GET /db/health", "GET /db/audit", "GET /db/diagram.svg", "GET /db/export.zip",
    "POST /db/import", "GET /db/backup.sqlite", "POST /db/restore", "GET /openapi.json",
    "GET /db/backups",  # SPEC section 14
]


def generated(page, what):
    """The generated part ``what`` of ``page``, and the rest of it."""
    begin = "<!-- begin generated %s:" % what
    end = "<!-- end generated %s -->" % what
    text = docpages.read(page)
    head, rest = text.split(begin, 1)
    inside, tail = rest.split(end, 1)
    return inside, head + tail


def test_generated_parts_are_current():
    """docs/cli.md and docs/api.md hold what docs/generate.py renders from the code now."""
    gen = docpages.generator()
    stale = gen.stale()
    if stale:
        pytest.fail("".join("docs/%s is stale: run `%s` and commit the result.\n%s\n"
                            % (path.name, gen.COMMAND, diff) for path, diff in stale),
                    pytrace=False)


def test_all_names_exist():
    """__all__ lists only names the package has."""
    for name in peestore.__all__:
        assert hasattr(peestore, name), name


def test_every_public_function_and_class_is_in_api_md_with_its_signature():
    """Each public function and class of peestore is in docs/api.md with the signature
    inspect.signature gives now."""
    gen = docpages.generator()
    text = docpages.read(API)
    public = {name for _, name, _ in gen.public_names()}
    missing = [name for name in peestore.__all__ if name not in public]
    assert missing == [], "docs/generate.py does not list %s" % missing
    stale = []
    for module, name, obj in gen.public_names():
        if inspect.isclass(obj) or inspect.isfunction(obj):
            line = gen.signature_line(name, obj)
            if "### `%s.%s`\n\n```text\n%s\n```" % (module, name, line) not in text:
                stale.append("%s.%s: %s" % (module, name, line))
    assert stale == [], ("docs/api.md lacks these signatures; run `%s`:\n%s"
                         % (gen.COMMAND, "\n".join(stale)))


def _in_code(module, name, text):
    """``name`` (bare, or as ``module.name``) as a word in inline code or a code block."""
    pattern = re.compile(r"(?<![\w.])(?:%s\.)?%s\b" % (re.escape(module), re.escape(name)))
    spans = re.findall(r"`([^`\n]+)`", docpages.without_code(text))
    blocks = [code for _, _, code in docpages.fences(text)]
    return any(pattern.search(piece) for piece in spans + blocks)


def test_every_public_name_is_used_in_a_prose_page():
    """Each public name appears as code (not just as a word) in a page written by hand."""
    gen = docpages.generator()
    texts = [docpages.read(page) for page in PROSE]
    missing = ["%s.%s" % (module, name) for module, name, _ in gen.public_names()
               if not any(_in_code(module, name, text) for text in texts)]
    assert missing == [], ("no page but docs/api.md shows these names in code; document them "
                           "in README.md or a docs/ page: %s" % ", ".join(missing))


def test_every_command_has_a_section_in_cli_md():
    """Each ``peestore`` sub-command has a generated reference section and a prose section."""
    gen = docpages.generator()
    from peestore.cli import build_parser

    reference, prose = generated(CLI, "cli")
    commands = sorted(gen._subcommands(build_parser()))
    assert commands
    no_reference = [c for c in commands if "\n### peestore %s\n" % c not in reference]
    no_prose = [c for c in commands
                if not re.search(r"^#+ .*`peestore %s`" % re.escape(c), prose, re.M)]
    assert no_reference == [], "docs/cli.md reference lacks %s: run `%s`" % (
        no_reference, gen.COMMAND)
    assert no_prose == [], ("docs/cli.md has no heading naming `peestore %s` above its "
                            "generated reference" % "`, `peestore ".join(no_prose))


def test_every_route_is_in_rest_md():
    """Each route of SPEC section 6, and each route the plugin adds, is in docs/rest.md."""
    import bottle

    from peestore.demo import Machine

    app = bottle.Bottle()
    app.install(peestore.RestPlugin(models=[Machine]))
    routes = ["%s %s" % (route.method, route.rule.replace("/machines/", "/C/"))
              for route in app.routes]
    text = docpages.read(REST)
    missing = [route for route in SPEC_ROUTES + routes if "`%s`" % route not in text]
    assert missing == [], "docs/rest.md does not show these routes (as `METHOD /path`): %s" % (
        missing)


def _public():
    """(the public modules, the dotted names of their public objects)."""
    gen = docpages.generator()
    modules = {module for module, _ in gen.PUBLIC}
    objects = set()
    for module, names in gen.PUBLIC:   # re-exports too, e.g. peestore.rest.RestPlugin
        exported = names if names is not None else __import__(module, fromlist=["_"]).__all__
        objects.update("%s.%s" % (module, name) for name in exported)
    return modules, objects


def test_the_docs_name_only_public_modules():
    """Pages refer to peestore's public names only, never to an internal module or file,
    so that moving a module inside the package leaves the docs true."""
    modules, objects = _public()
    dotted = re.compile(r"(?<![\w/.-])peestore(?:\.[A-Za-z_]\w*)+")
    wrong = []
    for page in docpages.PAGES:
        text = docpages.read(page)
        for match in dotted.finditer(text):
            ref = match.group(0)
            if ref == "peestore.db":   # the default database file, not the module
                continue
            # A public module, a public object, or an attribute of one.
            if ref in modules or any(ref == o or ref.startswith(o + ".") for o in objects):
                continue
            wrong.append("%s: %s" % (docpages.name(page), ref))
        for path in re.findall(r"[\w./-]*/[\w/-]*\.py\b", text):
            if not path.startswith(("benchmarks/", "examples/", "tests/", "docs/")):
                wrong.append("%s: %s" % (docpages.name(page), path))
    assert wrong == [], ("the docs name internal modules; name public ones (the package's "
                         "__all__, peestore.signals, .testing, .errors, .rest, .demo, "
                         "peestore.cli.main/build_parser) instead:\n%s" % "\n".join(wrong))


def test_quick_start_has_two_commands():
    """The quick start is exactly two commands."""
    section = README.split("## Quick start", 1)[1].split("##", 1)[0]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line for line in block.strip().splitlines() if line.strip()]
    assert len(commands) == 2
    assert "peestore demo" in commands[0]
    assert "pytest" in commands[1]


def test_the_readme_is_a_front_door():
    """README.md stays short and links the changelog, the index and every docs/ page;
    docs/index.md links every page."""
    assert README.count("\n") <= 300, "README.md has %d lines" % README.count("\n")
    pages = sorted(page.name for page in docpages.DOCS.glob("*.md"))
    missing = [name for name in ["CHANGELOG.md"] + ["docs/" + name for name in pages]
               if "(%s" % name not in README]
    assert missing == [], "README.md does not link %s" % missing
    index = docpages.read(docpages.DOCS / "index.md")
    missing = [name for name in pages if name != "index.md" and "(%s" % name not in index]
    assert missing == [], "docs/index.md does not link %s" % missing
