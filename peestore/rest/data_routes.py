"""The ``/db`` data routes: diagram, CSV export/import, backup and restore."""
import bottle

__all__ = ["add_data_routes"]


def add_data_routes(app: bottle.Bottle, plugin) -> None:
    """Add the data routes of SPEC section 6 to ``app`` (called by ``RestPlugin.setup``)."""
