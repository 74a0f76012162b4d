"""The database layer: ``connect``, the proxy models are bound to, the dialect of
each backend, the SQLite pool and its hardening, migrations and the request gate.

Internal: the public names are re-exported by ``peestore``.
"""
