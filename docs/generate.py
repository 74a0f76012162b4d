"""Generate the parts of the docs that are read from the code.

- ``docs/cli.md``: the command-line reference, from ``peestore.cli.build_parser()``;
- ``docs/api.md``: the API summary (name, signature, first docstring line) of
  every public name, from the package's ``__all__`` lists.

Each generated part sits between two marker comments in its page; the text
around them is written by hand and left alone.

    python docs/generate.py --write    # rewrite the generated parts
    python docs/generate.py --check    # exit 1 with a diff when one is stale

``tests/test_docs.py`` runs the check.  The output does not depend on the
Python version or the terminal width: it is rendered from the parser's
actions and from ``inspect.signature``, not from argparse's help formatter.
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
import pathlib
import sys

DOCS = pathlib.Path(__file__).resolve().parent
COMMAND = "python docs/generate.py --write"

#: The public modules the API summary lists, each with the names it exports
#: (None: the module's ``__all__``).
PUBLIC = [
    ("peestore", None),
    ("peestore.signals", None),
    ("peestore.errors", None),
    ("peestore.testing", None),
    ("peestore.rest", None),
    ("peestore.demo", None),
    ("peestore.mqtt", None),
    ("peestore.cli", ["main", "build_parser"]),
]


def _markers(name: str):
    return ("<!-- begin generated %s: %s -->" % (name, COMMAND),
            "<!-- end generated %s -->" % name)


# -- the command line ----------------------------------------------------------

def _subcommands(parser: argparse.ArgumentParser) -> dict:
    # argparse has no public way to list a parser's actions.
    for action in parser._actions:
        if isinstance(action.choices, dict):
            return action.choices
    return {}


def _options(parser: argparse.ArgumentParser) -> list:
    return [action for action in parser._actions
            if action.help != argparse.SUPPRESS and not isinstance(action.choices, dict)
            and not isinstance(action, argparse._HelpAction)]


def _metavar(action: argparse.Action) -> str:
    if action.metavar is not None:
        return action.metavar
    return action.dest if not action.option_strings else action.dest.upper()


def _takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0


def _synopsis(action: argparse.Action) -> str:
    """``--port PORT``, ``-o/--output OUT.svg``, ``--json``, ``APP``."""
    if not action.option_strings:
        return _metavar(action)
    names = "/".join(action.option_strings)
    return names + (" " + _metavar(action) if _takes_value(action) else "")


def _usage(prog: str, parser: argparse.ArgumentParser) -> str:
    words = [prog]
    positional = []
    for action in _options(parser):
        if not action.option_strings:
            positional.append(_metavar(action))
            continue
        word = action.option_strings[0]
        if _takes_value(action):
            word += " " + _metavar(action)
        words.append(word if action.required else "[%s]" % word)
    if _subcommands(parser):
        positional.append("COMMAND")
    return " ".join(words + positional)


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if "%" in text:
        text = text % dict(vars(action), default=action.default)
    extra = []
    if action.choices and not isinstance(action.choices, dict):
        extra.append("one of: " + ", ".join("`%s`" % c for c in action.choices))
    if action.option_strings and action.required:
        extra.append("required")
    if action.nargs in ("*", "+"):
        extra.append("takes several values")
    return "; ".join([text] + extra) if extra else text


def _command_section(prog: str, parser: argparse.ArgumentParser, level: str) -> list:
    lines = ["%s %s" % (level, prog), ""]
    if parser.description:
        lines += [parser.description.strip(), ""]
    lines += ["```text", _usage(prog, parser), "```", ""]
    # Positional arguments first, then the options, each in the parser's order.
    options = sorted(_options(parser), key=lambda action: bool(action.option_strings))
    if options:
        lines += ["- `%s`: %s" % (_synopsis(action), _help(action)) for action in options]
        lines.append("")
    return lines


def cli_reference() -> str:
    """The reference of every ``peestore`` sub-command, as Markdown."""
    from peestore.cli import build_parser

    parser = build_parser()
    lines = _command_section("peestore", parser, "###")
    lines += ["`-h`/`--help` shows the same text for any command.", ""]
    for name, sub in sorted(_subcommands(parser).items()):
        lines += _command_section("peestore " + name, sub, "###")
    return "\n".join(lines).rstrip("\n") + "\n"


# -- the API summary -------------------------------------------------------------

class _Annotation:
    """An annotation shown as written in the source (without quotes)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _unquoted(sig: inspect.Signature) -> inspect.Signature:
    def plain(annotation):
        if annotation is inspect.Parameter.empty:
            return annotation
        return _Annotation(annotation if isinstance(annotation, str)
                           else inspect.formatannotation(annotation))

    params = [p.replace(annotation=plain(p.annotation)) for p in sig.parameters.values()]
    return sig.replace(parameters=params, return_annotation=plain(sig.return_annotation))


def _public_class(obj: object) -> type:
    """The first class of ``obj``'s type that is not peestore's own."""
    for klass in type(obj).__mro__:
        if not klass.__module__.startswith("peestore"):
            return klass
    return type(obj)


def _qualified(klass: type) -> str:
    if klass.__module__ == "builtins":
        return klass.__qualname__
    return "%s.%s" % (klass.__module__, klass.__qualname__)


def _constructor_owner(klass: type) -> type:
    for base in klass.__mro__:
        if "__init__" in vars(base):
            return base
    return object


def signature_line(name: str, obj: object) -> str:
    """``name(signature)`` as the API summary shows it, from ``inspect.signature``."""
    if inspect.isclass(obj):
        owner = _constructor_owner(obj)
        if not owner.__module__.startswith("peestore"):
            return "class %s(...): the constructor of %s" % (name, _qualified(owner))
        sig = _unquoted(inspect.signature(obj))
        return "class %s%s" % (name, sig.replace(return_annotation=inspect.Signature.empty))
    return "%s%s" % (name, _unquoted(inspect.signature(obj)))


def _bases(klass: type) -> str:
    names = []
    for base in klass.__bases__:
        if base is object or base.__name__.startswith("_"):
            continue
        names.append(base.__name__ if base.__module__.startswith("peestore")
                     else _qualified(base))
    return ", ".join("`%s`" % name for name in names)


def _first_line(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().split("\n\n", 1)[0].replace("\n", " ")


def public_names() -> list:
    """(module name, name, object) for every name of the public modules, first
    occurrence only (``peestore.rest.RestPlugin`` is ``peestore.RestPlugin``)."""
    seen = set()
    found = []
    for module_name, names in PUBLIC:
        module = importlib.import_module(module_name)
        for name in names if names is not None else module.__all__:
            obj = getattr(module, name)
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            found.append((module_name, name, obj))
    return found


def api_summary() -> str:
    """Every public name: its signature and the first line of its docstring."""
    lines = []
    current = None
    for module_name, name, obj in public_names():
        if module_name != current:
            current = module_name
            lines += ["## `%s`" % module_name, ""]
        lines += ["### `%s.%s`" % (module_name, name), ""]
        if inspect.isclass(obj) or inspect.isfunction(obj):
            lines += ["```text", signature_line(name, obj), "```", ""]
            if inspect.isclass(obj) and _bases(obj):
                lines += ["Subclass of %s." % _bases(obj), ""]
            summary = _first_line(obj)
            if summary:
                lines += [summary, ""]
        else:
            lines += ["An instance of `%s`." % _qualified(_public_class(obj)), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


# -- the pages -------------------------------------------------------------------

GENERATED = {
    "cli": (DOCS / "cli.md", cli_reference),
    "api": (DOCS / "api.md", api_summary),
}


def render(name: str, text: str) -> str:
    """``text`` with its generated part ``name`` rendered afresh."""
    begin, end = _markers(name)
    if text.count(begin) != 1 or text.count(end) != 1:
        raise SystemExit("%s needs exactly one pair of markers:\n%s\n%s"
                         % (GENERATED[name][0], begin, end))
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    return "%s%s\n\n%s\n%s%s" % (head, begin, GENERATED[name][1]().rstrip("\n"), end, tail)


def stale() -> list:
    """(page, unified diff) for each page whose generated part is not current."""
    found = []
    for name, (path, _) in GENERATED.items():
        text = path.read_text(encoding="utf-8")
        fresh = render(name, text)
        if fresh != text:
            diff = "".join(difflib.unified_diff(
                text.splitlines(True), fresh.splitlines(True),
                "docs/%s (as it is)" % path.name, "docs/%s (generated)" % path.name))
            found.append((path, diff))
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--write", action="store_true", help="rewrite the generated parts")
    what.add_argument("--check", action="store_true",
                      help="exit 1 and print a diff when a generated part is stale")
    args = parser.parse_args(argv)
    if args.write:
        for name, (path, _) in GENERATED.items():
            text = path.read_text(encoding="utf-8")
            fresh = render(name, text)
            if fresh != text:
                path.write_text(fresh, encoding="utf-8")
                print("rewrote the generated part of docs/%s" % path.name)
        return 0
    problems = stale()
    for path, diff in problems:
        print("docs/%s is stale; run %s\n%s" % (path.name, COMMAND, diff))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
