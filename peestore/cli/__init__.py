"""The ``peestore`` command line: one sub-command per function of the library.

``main`` is the console script's entry point; ``build_parser`` gives the
argument parser (the CLI reference in the docs is generated from it).  Each
command lives in a private module of its own and registers itself with
``command`` when imported.
"""
from ._main import build_parser, main

__all__ = ["main", "build_parser"]
