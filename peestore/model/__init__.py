"""The model layer: ``BaseAuditedModel``, the soft-delete query, audited bulk
queries, and how field values convert to JSON and back.

Internal: the public names are re-exported by ``peestore``.
"""
