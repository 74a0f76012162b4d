"""The data tools: backup, restore (and the schema gate it applies), CSV export
and import, and the schema diagram.  Each loads on first use.

Internal: the public names are re-exported by ``peestore``.
"""
