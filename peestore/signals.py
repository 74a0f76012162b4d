"""Lifecycle hooks: ``playhouse.signals.Signal`` instances peestore sends.

Receivers are called ``receiver(sender, instance)`` inside the write's
transaction; an exception in one rolls the write back and reaches the caller.
"""
from playhouse.signals import Signal

__all__ = ["before_insert", "after_insert", "before_update", "after_update",
           "before_delete", "after_delete", "Signal"]

before_insert = Signal()
after_insert = Signal()
before_update = Signal()
after_update = Signal()
before_delete = Signal()
after_delete = Signal()
