"""Short-lived signed download links, so that a signed-in planner's browser can open an HTML
report or save a CSV without putting the API key in a URL or a header by hand.

A link carries what to render and for which scope, an expiry, and an HMAC over both; the
secret lives in the API process only, so links die with it (they are meant to be used at once)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import datetime
from typing import Any

SECRET_BYTES = 32


class LinkError(ValueError):
    """A link that was tampered with, is malformed or has expired."""


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: bytes, what: dict[str, Any], expires_at: datetime) -> str:
    body = json.dumps({"what": what, "exp": expires_at.timestamp()}, sort_keys=True).encode()
    mac = hmac.new(secret, body, hashlib.sha256).digest()
    return f"{_b64(body)}.{_b64(mac)}"


def verify(secret: bytes, token: str, now: datetime) -> dict[str, Any]:
    body_text, _, mac_text = token.partition(".")
    try:
        body = _unb64(body_text)
        mac = _unb64(mac_text)
    except ValueError as exc:
        raise LinkError("the link is malformed") from exc
    if not hmac.compare_digest(mac, hmac.new(secret, body, hashlib.sha256).digest()):
        raise LinkError("the link is not valid here")
    content = json.loads(body)
    if content["exp"] < now.timestamp():
        raise LinkError("the link has expired; ask for a new one")
    what: dict[str, Any] = content["what"]
    return what
