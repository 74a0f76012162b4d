"""Request headers as text, and the challenge of a 401.

WSGI hands header values over as latin-1 text: each byte one character
(PEP 3333), so ``X-User: Jürgen`` sent as UTF-8 arrives as ``JÃ¼rgen``.
``text_header`` gives the bytes back and decodes them as UTF-8.

A name is also normalised to Unicode NFC, so ``Jürgen`` typed with a
combined ``ü`` and with ``u`` plus a combining diaeresis is one actor, and a
name holding a control or format character (Unicode categories Cc and Cf:
zero-width spaces and joiners, bidi overrides) is refused: two actors the
audit log prints alike must be the same actor.
"""
from __future__ import annotations

import unicodedata

from ..errors import ConfigurationError
from ._responses import error

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Mapping, Optional

__all__ = ["text_header", "challenge", "clean_name"]

_KEYS: dict = {}  # header name -> its WSGI environ key


def clean_name(text: str, what: str) -> str:
    """``text`` in Unicode NFC; raises ``ValueError`` (its message names ``what``) when
    it holds a control or format character (categories Cc, Cf)."""
    if text.isascii():
        if text.isprintable():
            return text
        bad = next(c for c in text if not c.isprintable())
    else:
        text = unicodedata.normalize("NFC", text)
        bad = next((c for c in text if unicodedata.category(c) in ("Cc", "Cf")), None)
        if bad is None:
            return text
    raise ValueError(f"{what} holds the control or format character U+{ord(bad):04X}; "
                     "send the name as plain text")


def text_header(environ: Mapping[str, Any], name: str) -> Optional[str]:
    """The header ``name`` (e.g. ``"X-User"``) as UTF-8 text in Unicode NFC, stripped;
    None when it is absent or blank.

    Raises a 400 response (``error``) when its bytes are not UTF-8 or it holds a
    control or format character (``clean_name``).
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
    raw = raw.strip()
    if not raw:
        return None
    try:
        return clean_name(raw, f"the {name} header")
    except ValueError as exc:
        raise error(400, str(exc)) from None


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
