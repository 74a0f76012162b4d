"""Refusing a request whose ``Host`` header is not a name of this machine (DNS rebinding).

A page on an attacker's site can make its own name resolve to the machine's
address (DNS rebinding: first the attacker's server, then, with a short
time to live, 127.0.0.1 or the machine's LAN address).  To the browser the
page and the API are then one origin: it may read the API's answers and
send it writes, with an ``Origin`` that matches ``Host``, so the cross-site
refusal (``peestore.rest._origin``) lets them through.  What gives such a
request away is its ``Host`` header: the attacker's name.  The plugin
answers only a ``Host`` that names the machine: an IP address (a browser
never rebinds an address), ``localhost``, the host name, its ``.local``
(mDNS) name and its fully qualified name, on any port; or the names an app
lists in ``allowed_hosts``.
"""
from __future__ import annotations

import functools
import ipaddress
import re
import socket

from ..errors import ConfigurationError

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict, FrozenSet, Iterable, Optional

__all__ = ["HostCheck", "local_names"]

# The port after a host: none, or ":" and up to 5 digits (an empty one is allowed).
_PORT = re.compile(r"(?::[0-9]{0,5})?\Z")
# A DNS name, lower case (an international one in its xn-- form); "_" as some LANs use.
_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*\Z")
_MAX_HOST = 300       # characters of a Host header worth parsing (a name is at most 253)
_MAX_VERDICTS = 64    # Host values whose verdict is remembered
_UNKNOWN = object()


@functools.cache
def local_names() -> FrozenSet[str]:
    """The names the machine answers to by default, lower case: ``localhost``,
    ``socket.gethostname()``, its ``.local`` (mDNS) name and ``socket.getfqdn()``.

    Computed once, on the first request whose ``Host`` is a name rather than an
    address (``getfqdn`` may ask the resolver).
    """
    names = {"localhost"}
    try:
        hostname = socket.gethostname()
        fqdn = socket.getfqdn()
    except OSError:
        return frozenset(names)
    for name in (hostname, hostname.split(".")[0] + ".local", fqdn):
        name = name.strip().lower().rstrip(".")
        if name and _NAME.match(name):
            names.add(name)
    return frozenset(names)


def _host(value: str) -> Any:
    """The host a ``Host`` header names: an ``ipaddress`` address for an IP literal,
    else the lower-case name without its trailing dot; None when it is malformed."""
    value = value.strip()
    if value.startswith("["):
        end = value.find("]")
        if end < 0 or not _PORT.match(value, end + 1):
            return None
        try:
            return ipaddress.IPv6Address(value[1:end])
        except ValueError:
            return None
    at = value.find(":")
    name = value if at < 0 else value[:at]
    if at >= 0 and not _PORT.match(value, at):
        return None
    try:
        return ipaddress.IPv4Address(name)
    except ValueError:
        pass
    name = name.lower()
    if name.endswith("."):
        name = name[:-1]
    if len(name) > 253 or not _NAME.match(name):
        return None
    return name


def _entry(value: Any) -> Any:
    """One ``allowed_hosts`` entry as ``_host`` gives a Host's host."""
    if not isinstance(value, str):
        raise ConfigurationError("allowed_hosts takes host names (strings), got %r" % (value,))
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    host = _host(text)
    if ":" in text or not isinstance(host, str):
        raise ConfigurationError(
            "allowed_hosts: %r is not a host name or an IP address (any port is allowed: "
            "give the name without one)" % (value,))
    return host


class HostCheck:
    """Which ``Host`` headers a ``RestPlugin`` answers (its ``allowed_hosts``).

    ``allowed``: None for the machine's own (any IP address, ``local_names()``);
    a list of names and IP addresses to answer only those; ``"*"`` in it for
    any Host.
    """

    def __init__(self, allowed: Optional[Iterable[str]] = None) -> None:
        self.any = False
        self.allowed: Optional[FrozenSet[Any]] = None  # None: the machine's own names
        if allowed is not None:
            if isinstance(allowed, (str, bytes)) or not hasattr(allowed, "__iter__"):
                raise ConfigurationError("allowed_hosts takes a list of host names, got %r"
                                         % (allowed,))
            entries = list(allowed)
            if not entries:
                raise ConfigurationError("allowed_hosts is empty, which would refuse every "
                                         "browser: list the names, or give ['*'] for any")
            self.any = "*" in entries
            if not self.any:
                self.allowed = frozenset(_entry(entry) for entry in entries)
        self._verdicts: Dict[str, Optional[str]] = {}

    def refusal(self, host: Optional[str]) -> Optional[str]:
        """Why a request with this ``Host`` header (None: without one) is refused, or None.

        A request without ``Host`` (HTTP/1.0, a direct WSGI call) is no
        browser's and is not refused.
        """
        if self.any or not host:
            return None
        if len(host) > _MAX_HOST:
            return self._judge(host)
        verdict = self._verdicts.get(host, _UNKNOWN)
        if verdict is _UNKNOWN:
            verdict = self._judge(host)
            if len(self._verdicts) >= _MAX_VERDICTS:
                self._verdicts.clear()
            self._verdicts[host] = verdict
        return verdict  # type: ignore[return-value]

    def _judge(self, host: str) -> Optional[str]:
        parsed = _host(host) if len(host) <= _MAX_HOST else None
        if parsed is not None:
            if self.allowed is not None:
                if parsed in self.allowed:
                    return None
            elif not isinstance(parsed, str) or parsed in local_names():
                return None
        shown = host if len(host) <= 100 else host[:100] + "..."
        return ("Host header %r is not a name of this server (a page on another site that "
                "made its name resolve here: DNS rebinding?); a name the server has goes in "
                "RestPlugin(allowed_hosts=...)" % shown)
