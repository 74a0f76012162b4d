"""The audit layer: the audit log, the one function every audited write goes
through, the actor, change listeners and pruning.

Internal: the public names are re-exported by ``peestore``.
"""
