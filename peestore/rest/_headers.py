"""Request headers as text, and the challenge of a 401.

WSGI hands header values over as latin-1 text: each byte one character
(PEP 3333), so ``X-User: Jürgen`` sent as UTF-8 arrives as ``JÃ¼rgen``.
``text_header`` gives the bytes back and decodes them as UTF-8.
"""
from __future__ import annotations

from ..errors import ConfigurationError
from ._responses import error

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Mapping, Optional

__all__ = ["text_header", "challenge"]

_KEYS: dict = {}  # header name -> its WSGI environ key


def text_header(environ: Mapping[str, Any], name: str) -> Optional[str]:
    """The header ``name`` (e.g. ``"X-User"``) as UTF-8 text, stripped; None when it
    is absent or blank.

    Raises a 400 response (``error``) when its bytes are not UTF-8.
    """
    key = _KEYS.get(name)
    if key is None:
        key = _KEYS[name] = "HTTP_" + name.upper().replace("-", "_")
    raw = environ.get(key)
    if raw is None:
        return None
    if not raw.isascii():
        try:
            raw = raw.encode("latin-1").decode("utf-8")
        except UnicodeEncodeError:
            pass  # a server that decoded the bytes itself: already text
        except UnicodeDecodeError:
            raise error(400, f"the {name} header is not UTF-8 text: send it as "
                             "UTF-8") from None
    return raw.strip() or None


def challenge(authenticate: Any) -> Optional[str]:
    """The ``WWW-Authenticate`` value that ``authenticate`` names in its ``scheme``
    attribute (e.g. ``'Basic realm="press-1"'``), or None when it names none."""
    scheme = getattr(authenticate, "scheme", None)
    if scheme is None:
        return None
    if not (isinstance(scheme, str) and scheme.strip() and scheme.isascii()
            and scheme.isprintable()):
        raise ConfigurationError("authenticate.scheme must be the text of a WWW-Authenticate "
                                 "header (printable ASCII), such as 'Basic realm=\"device\"'; "
                                 "got %r" % (scheme,))
    return scheme
