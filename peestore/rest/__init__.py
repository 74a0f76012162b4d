"""The Bottle plugin: REST routes per model and the /db routes."""
from ._plugin import RestPlugin, bootstrap
from ._responses import install_error_pages

__all__ = ["RestPlugin", "bootstrap", "install_error_pages"]
