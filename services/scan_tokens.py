"""Signed station tokens for QR posters: `station_id.generation.mac`, the MAC an HMAC-SHA256
under a server key. Nothing secret is in the token and no API key is needed to use it; a
forged token fails the MAC, and a revoked one carries an older generation than the store's."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from store.unit_of_work import Store
from waystation.settings import Settings

MAC_BYTES = 16  # 128 bits: unforgeable in practice, and the QR code stays small
SCAN_KEY_LABEL = b"waystation scan token v1"


class ForgedTokenError(ValueError):
    """The token is malformed or its signature does not match."""


@dataclass(frozen=True)
class StationToken:
    station_id: str
    generation: int


def scan_secret(settings: Settings, worker_ref_secret: bytes) -> bytes:
    """The signing key: its own setting, or derived from the worker_ref key (one secret to
    keep, two independent keys)."""
    if settings.scan_token_secret is not None:
        return settings.scan_token_secret.get_secret_value().encode()
    return hmac.new(worker_ref_secret, SCAN_KEY_LABEL, hashlib.sha256).digest()


class TokenSigner:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def sign(self, station_id: str, generation: int) -> str:
        body = f"{station_id}.{generation}"
        return f"{body}.{self._mac(body)}"

    def read(self, token: str) -> StationToken:
        """The station and generation a genuine token names; ForgedTokenError otherwise."""
        body, _, mac = token.rpartition(".")
        station_id, _, generation = body.rpartition(".")
        if not station_id or not generation.isdigit():
            raise ForgedTokenError("malformed token")
        if not hmac.compare_digest(mac, self._mac(body)):
            raise ForgedTokenError("bad signature")
        return StationToken(station_id=station_id, generation=int(generation))

    def _mac(self, body: str) -> str:
        digest = hmac.new(self._secret, body.encode(), hashlib.sha256).digest()[:MAC_BYTES]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def scan_url(settings: Settings, token: str) -> str:
    return f"{settings.public_url}/scan/{token}"


def current_token(store: Store, signer: TokenSigner, station_id: str) -> str:
    """The token of the station's posters in force."""
    with store.transaction(readonly=True) as tx:
        generation = tx.scan_tokens.generation(station_id)
    return signer.sign(station_id, generation)


def rotate_token(store: Store, signer: TokenSigner, station_id: str, at: datetime) -> str:
    """Revoke every poster of the station; returns the new token."""
    with store.transaction() as tx:
        generation = tx.scan_tokens.rotate(station_id, at)
    return signer.sign(station_id, generation)
