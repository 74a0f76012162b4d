"""The sub-commands of ``peestore``; importing a module registers its commands."""
from . import demo  # noqa: F401
from . import serve  # noqa: F401
from . import prune  # noqa: F401
from . import data  # noqa: F401
from . import audit  # noqa: F401
