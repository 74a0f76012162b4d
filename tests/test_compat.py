"""peestore/_compat.py: the one module that touches its dependencies' private names."""
import ast
import pathlib

import peewee
import pytest

import peestore
from peestore import _compat

PACKAGE = pathlib.Path(peestore.__file__).parent

# Private (or undocumented) names of peewee, playhouse, bottle and waitress that
# peestore uses, through _compat; no other module may touch them.
PRIVATE = {
    # peewee: instances, queries, databases, pools
    "_dirty", "_pk", "_pk_expr", "_prune_fields", "_populate_unsaved_relations",
    "_normalize_data", "_where", "_insert", "_update", "_columns", "_on_conflict",
    "_row_type", "_execute", "_state", "_pragmas", "_close", "_max_connections",
    "_stale_timeout", "_receivers", "_receiver_list", "__exception_wrapper__",
    "sorted_field_names", "auto_increment", "composite_key", "refs", "combined",
    "defaults", "rel_field", "formats", "get_sql_context", "returning_clause",
    "connect_params",
    # waitress
    "error_task_class", "channel_class", "last_activity", "will_close",
    "close_when_flushed", "total_outbufs_len", "effective_host", "effective_port",
    "effective_listen", "trigger", "parser_class",
}


# Undocumented attributes of a model's ``_meta`` (peewee's Metadata).
META_ONLY = {"sorted_field_names", "auto_increment", "composite_key", "refs", "combined",
             "defaults"}
# peestore's own objects, whose attributes may share a name with a private one.
OWN = {"self", "cls", "_compat"}


def attribute_uses(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr in PRIVATE):
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in OWN:
            continue
        if node.attr in META_ONLY and not (
                isinstance(owner, ast.Attribute) and owner.attr == "_meta"
                or isinstance(owner, ast.Name) and owner.id == "meta"):
            continue
        yield node.lineno, node.attr


def test_no_module_but_compat_touches_a_private_name():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "_compat.py":
            continue
        found += ["%s:%d %s" % (path.relative_to(PACKAGE.parent), line, name)
                  for line, name in attribute_uses(path)]
    assert found == [], "private dependency names belong in peestore/_compat.py"


def test_compat_checks_every_name_it_uses():
    """Each private name _compat uses on an object is one its check looks for."""
    source = (PACKAGE / "_compat.py").read_text(encoding="utf-8")
    used = {name for _, name in attribute_uses(PACKAGE / "_compat.py")}
    unchecked = [name for name in used if '"%s"' % name not in source]
    assert unchecked == []


def test_a_missing_name_is_named_with_its_dependency_and_version(monkeypatch):
    monkeypatch.delattr(peewee.Model, "_prune_fields")
    with pytest.raises(peestore.ConfigurationError) as info:
        _compat.check()
    message = str(info.value)
    assert "_prune_fields" in message
    assert "peewee %s" % peewee.__version__ in message


def test_a_missing_waitress_name_is_named_too(monkeypatch):
    import waitress.channel

    monkeypatch.delattr(waitress.channel.HTTPChannel, "error_task_class")
    with pytest.raises(peestore.ConfigurationError) as info:
        _compat.check_waitress()
    assert "error_task_class" in str(info.value) and "waitress" in str(info.value)
