"""worker_ref never leaves ingest in clear: it is replaced by a keyed hash, so visits by the
same worker can be linked without anyone being able to reverse the reference."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from schemas.events import Event, VisitEvent
from waystation.settings import Settings

SECRET_FILE_NAME = "worker_ref.key"
_SECRET_BYTES = 32


def load_or_create_secret(data_dir: Path) -> bytes:
    """The deployment's hashing key, made on first start and readable only by its owner."""
    path = data_dir / SECRET_FILE_NAME
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(_SECRET_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex())
    return key


def worker_ref_secret(settings: Settings) -> bytes:
    """The configured key, or the one kept in data_dir."""
    if settings.worker_ref_secret is not None:
        return settings.worker_ref_secret.get_secret_value().encode()
    return load_or_create_secret(settings.data_dir)


def hash_worker_ref(event: Event, secret: bytes) -> Event:
    if not isinstance(event, VisitEvent) or event.payload.worker_ref is None:
        return event
    digest = hmac.new(secret, event.payload.worker_ref.encode(), hashlib.sha256).hexdigest()
    payload = event.payload.model_copy(update={"worker_ref": f"h1:{digest}"})
    return event.model_copy(update={"payload": payload})
