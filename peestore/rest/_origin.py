"""Refusing state-changing requests that a browser sends on another site's behalf.

A page on another site can make an operator's browser POST a form or a
``fetch`` to the machine (cross-site request forgery): the browser adds the
operator's cookies or Basic credentials by itself.  Browsers say where such
a request comes from: ``Sec-Fetch-Site`` (``cross-site``) and ``Origin``
(the scheme, host and port of the page that sent it).  A request that
carries neither (curl, a script, an older client) is not a browser's on
another site's behalf, and goes through.
"""
from __future__ import annotations

from urllib.parse import urlsplit

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Mapping, Optional, Tuple

__all__ = ["SAFE_METHODS", "cross_site"]

#: Methods that change nothing, so never refused.
SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _address(url: str, scheme: str = "") -> Tuple[Optional[str], Optional[int]]:
    """(lower-case host, port) of ``scheme://host[:port]``, or of ``//host[:port]``
    with ``scheme``'s default port; (None, None) when it names no host."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None, None
    if port is None:
        port = _DEFAULT_PORTS.get(parts.scheme.lower() or scheme)
    return parts.hostname or None, port


def cross_site(environ: Mapping[str, Any]) -> Optional[str]:
    """Why this request is a browser's from another site, or None when it is not.

    Only a method that may change something (not GET, HEAD or OPTIONS) is
    looked at.  It is cross-site when ``Sec-Fetch-Site`` says so, or when its
    ``Origin`` names another host or port than its ``Host`` header (an
    ``Origin`` of ``null``, from a sandboxed frame or a file, names none).
    """
    if environ.get("REQUEST_METHOD", "GET").upper() in SAFE_METHODS:
        return None
    if environ.get("HTTP_SEC_FETCH_SITE", "").strip().lower() == "cross-site":
        return "the browser marks it as sent from another site (Sec-Fetch-Site: cross-site)"
    origin = environ.get("HTTP_ORIGIN")
    if origin is None:
        return None
    host = environ.get("HTTP_HOST", "")
    sender = _address(origin)
    # A Host without a port is on the default port of the scheme the page used.
    scheme = origin.strip().split("://", 1)[0].lower() if "://" in origin else ""
    if sender[0] is None or sender != _address("//" + host, scheme):
        return ("it comes from a page on %s, not on this server (%s)"
                % (origin.strip()[:100] or "no site", host[:100] or "no Host header"))
    return None
