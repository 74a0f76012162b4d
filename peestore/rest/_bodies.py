"""Reading a JSON request body: size limit, content type, syntax, shape.

The body is read from ``wsgi.input`` directly, never more than the limit plus
one byte, so an oversized upload costs neither memory nor a temporary file.
"""
from __future__ import annotations

import json

import bottle

from ._responses import error

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Any, Dict

__all__ = ["read_json_object", "is_json_type"]


def is_json_type(content_type: str) -> bool:
    """True for ``application/json`` and ``application/*+json``, any parameters."""
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (mime.startswith("application/")
                                          and mime.endswith("+json"))


def _reject_constant(name: str) -> Any:
    raise ValueError("%s is not valid JSON" % name)


# One decoder for every body: ``json.loads`` with an option builds a new one
# each call.  A decoder keeps no state between calls, so threads share it.
_decode = json.JSONDecoder(parse_constant=_reject_constant).decode


def read_body(max_bytes: int) -> bytes:
    """The raw request body; 413 when it is (or claims to be) over ``max_bytes``."""
    environ = bottle.request.environ
    length_text = environ.get("CONTENT_LENGTH") or ""
    if length_text:
        try:
            length = int(length_text)
        except ValueError:
            raise error(400, "invalid Content-Length header") from None
        if length < 0:
            raise error(400, "invalid Content-Length header")
        if length > max_bytes:
            raise error(413, "request body of %d bytes is over the limit of %d bytes"
                        % (length, max_bytes))
        to_read = length
    elif "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        # Servers that pass a chunked body on unchanged give no length: read
        # up to the limit and one byte more, to know it was too long.
        to_read = max_bytes + 1
    else:
        return b""
    stream = environ["wsgi.input"]
    chunks = []
    remaining = to_read
    while remaining > 0:
        chunk = stream.read(min(remaining, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    body = b"".join(chunks)
    if len(body) > max_bytes:
        raise error(413, "request body is over the limit of %d bytes" % max_bytes)
    return body


def read_json_object(max_bytes: int) -> Dict[str, Any]:
    """The request body as a JSON object (a dict).

    415 without a JSON content type, 413 over ``max_bytes``, 400 when the
    body is empty, not JSON, or not an object.
    """
    content_type = bottle.request.environ.get("CONTENT_TYPE", "")
    if not is_json_type(content_type):
        raise error(415, "send the body as JSON, with Content-Type: application/json")
    raw = read_body(max_bytes)
    if not raw or raw.isspace():
        raise error(400, "the request body is empty; send a JSON object")
    try:
        data = _decode(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise error(400, "the request body is not UTF-8 text") from None
    except ValueError as exc:
        raise error(400, "malformed JSON: %s" % exc) from None
    except RecursionError:
        raise error(400, "malformed JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise error(400, "the request body must be a JSON object, not %s"
                    % type(data).__name__.replace("NoneType", "null"))
    return data
