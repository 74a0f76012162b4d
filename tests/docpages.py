"""The documentation pages and their code blocks, for the tests that keep them honest."""
import importlib.util
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
#: Every page a reader sees: the README first, then docs/ in name order.
PAGES = [ROOT / "README.md"] + sorted(DOCS.glob("*.md"))
#: The languages a code block may be tagged with.  Only ``python`` blocks run,
#: so a Python snippet tagged anything else would escape the test.
LANGUAGES = {"python", "sh", "json", "http", "text"}

FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)


def name(page):
    """``README.md`` or ``docs/models.md``."""
    return page.relative_to(ROOT).as_posix()


def read(page):
    return page.read_text(encoding="utf-8")


def fences(text):
    """(language, first line number of the code, code) of every fenced block."""
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start(2)) + 1
        found.append((match.group(1).strip(), line, match.group(2)))
    return found


def python_blocks(text):
    """(first line number, code) of every ```python block, in order."""
    return [(line, code) for language, line, code in fences(text) if language == "python"]


def without_code(text):
    """``text`` without its fenced blocks (the prose, with its inline code)."""
    return FENCE.sub("", text)


def generator():
    """docs/generate.py, imported as a module."""
    spec = importlib.util.spec_from_file_location("docs_generate", str(DOCS / "generate.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
