"""``--app MODULE[:ATTR]``: the models (and so the hooks) of an app, for the data tools."""
from __future__ import annotations

import importlib
import os
import sys

from ..errors import ConfigurationError

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, List


def app_models(spec: str) -> List[type]:
    """The models of the app named by ``module[:attr]``, its module imported first.

    Importing the module runs its ``@before_insert``... decorators, so the
    hooks apply.  ``attr`` may name a Bottle app (its ``RestPlugin``'s
    models), a list of models or a module; without it, the module's own
    models.
    """
    import bottle

    from ..rest import RestPlugin
    from ._serve import _models_in

    module_name, _, attr = spec.partition(":")
    if not module_name:
        raise ConfigurationError("--app is MODULE or MODULE:ATTR (e.g. myapp), got %r" % spec)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        value: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError("cannot import %s: %s" % (module_name, exc)) from None
    except Exception as exc:  # the app's own code failed: one line, not a traceback
        raise ConfigurationError("importing %s failed: %s: %s"
                                 % (module_name, type(exc).__name__, exc)) from None
    for part in filter(None, attr.split(".")):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise ConfigurationError("%s has no attribute %r" % (module_name, attr)) from None
    if isinstance(value, bottle.Bottle):
        models = [m for p in value.plugins if isinstance(p, RestPlugin) for m in p.models]
    else:
        models = _models_in(value)
    if not models:
        raise ConfigurationError("%s holds no peestore models (give MODULE:ATTR naming a "
                                 "Bottle app, a list of models or a module of models)" % spec)
    return models
