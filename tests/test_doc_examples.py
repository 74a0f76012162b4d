"""Every ```python block of README.md and docs/*.md runs, page by page, as a reader runs it.

A page's blocks run in order in one namespace, in a fresh Python process whose
working folder is a new temporary folder and whose default database
(``$PEESTORE_DATABASE_URL``) is a new SQLite file there.  ``__name__`` is not
``"__main__"``, so a block that would serve forever guards that part as a
script does.  A failing block fails the test with the page, the block's number
and its line in the page.
"""
import json
import os
import subprocess
import sys

import pytest

from . import docpages

# Runs in the child: the blocks come on stdin as JSON.  Each block is compiled
# with the page's path and its own line numbers, so a traceback points into
# the page.
RUNNER = r"""
import json, sys, traceback
spec = json.load(sys.stdin)
namespace = {"__name__": "peestore_docs_example"}
for number, (line, code) in enumerate(spec["blocks"], 1):
    try:
        exec(compile("\n" * (line - 1) + code, spec["path"], "exec"), namespace)
    except BaseException:
        sys.stdout.flush()
        print("%s: python block %d (line %d) failed:" % (spec["page"], number, line),
              file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
    sys.stdout.flush()
"""

WITH_CODE = [page for page in docpages.PAGES if docpages.python_blocks(docpages.read(page))]


def test_the_pages_have_python_blocks():
    """The README and the reference pages hold the blocks this file runs."""
    names = {docpages.name(page) for page in WITH_CODE}
    assert {"README.md", "docs/models.md", "docs/rest.md", "docs/data-tools.md"} <= names


@pytest.mark.parametrize("page", WITH_CODE, ids=docpages.name)
def test_every_python_block_runs(page, tmp_path):
    """The page's python blocks run in order, in a temporary folder, on a fresh SQLite file."""
    blocks = docpages.python_blocks(docpages.read(page))
    env = dict(os.environ, PYTHONPATH=str(docpages.ROOT),
               PEESTORE_DATABASE_URL="sqlite:///%s" % (tmp_path / "peestore.db"))
    spec = {"page": docpages.name(page), "path": str(page), "blocks": blocks}
    try:
        done = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(spec),
                              cwd=str(tmp_path), env=env, capture_output=True, text=True,
                              timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail("%s: its python blocks did not finish within 300 s (a server that is "
                    "not guarded by `if __name__ == \"__main__\":`?)" % docpages.name(page))
    if done.returncode != 0:
        pytest.fail("%s\n--- its output before that:\n%s"
                    % (done.stderr.strip(), done.stdout[-3000:]), pytrace=False)


def test_every_code_block_names_its_language():
    """A code block is tagged with a known language, so no Python escapes the run."""
    wrong = ["%s line %d: ```%s" % (docpages.name(page), line, language)
             for page in docpages.PAGES
             for language, line, _ in docpages.fences(docpages.read(page))
             if language not in docpages.LANGUAGES]
    assert wrong == [], ("tag each block with one of %s (only python blocks run):\n%s"
                         % (sorted(docpages.LANGUAGES), "\n".join(wrong)))
