"""The Bottle plugin: REST routes per model and the /db routes."""
from .plugin import RestPlugin, bootstrap
from .responses import install_error_pages

__all__ = ["RestPlugin", "bootstrap", "install_error_pages"]
