"""API keys and what they allow.

A key reads `wsk_<key_id>_<secret>`: the id finds the row, the secret is checked against a
stored SHA-256 (the secret is 256 random bits, so a plain hash is enough; no salt or slow
hash is needed as it would be for a password).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from schemas.auth import ApiKeyInfo, Role
from services.recent_reads import RecentReads
from store.unit_of_work import Store
from streams.clock import Clock

KEY_PREFIX = "wsk"
KEY_ID_BYTES = 6
SECRET_BYTES = 32
BUCKETS_PER_BURST_BEFORE_PRUNING = 100


class AuthError(Exception):
    """401: no key, or one that is unknown, revoked or expired."""


class ForbiddenError(Exception):
    """403: a valid key asking for something outside its role or scope."""


class RateLimitedError(Exception):
    """429: the key is over its rate limit."""

    def __init__(self, retry_after_s: float, why: str = "this key is over its rate limit") -> None:
        super().__init__(retry_after_s)
        self.retry_after_s = retry_after_s
        self.why = why


@dataclass(frozen=True)
class Principal:
    """The caller, as its key describes it."""

    key: ApiKeyInfo

    @property
    def role(self) -> Role:
        return self.key.role

    @property
    def actor(self) -> str:
        """Who made a change, for audit logs: the role and key id (never the key)."""
        label = f" ({self.key.label})" if self.key.label else ""
        return f"{self.role.value} key {self.key.key_id}{label}"

    def require(self, *roles: Role) -> None:
        if self.role is not Role.admin and self.role not in roles:
            raise ForbiddenError(f"a {self.role.value} key cannot do this")

    def district_scope(self) -> frozenset[str] | None:
        """Districts this key may read; None for every district."""
        if self.role is Role.admin or self.key.districts is None:
            return None
        return frozenset(self.key.districts)

    def check_district(self, district: str) -> None:
        scope = self.district_scope()
        if scope is not None and district not in scope:
            raise ForbiddenError(f"this key may not read district {district!r}")

    def may_post_for(self, station_id: str) -> bool:
        return self.role is Role.admin or (
            self.role is Role.operator and station_id in self.key.stations
        )

    def may_read_station(self, station_id: str, district: str) -> bool:
        if self.role is Role.operator:
            return station_id in self.key.stations
        scope = self.district_scope()
        return scope is None or district in scope


@dataclass(frozen=True)
class IssuedKey:
    info: ApiKeyInfo
    secret: str  # the whole key, shown once


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_key(
    store: Store,
    *,
    role: Role,
    now: datetime,
    label: str = "",
    districts: Iterable[str] | None = None,
    stations: Iterable[str] = (),
    expires_at: datetime | None = None,
) -> IssuedKey:
    stations = tuple(sorted(set(stations)))
    if role is Role.operator and not stations:
        raise ValueError("an operator key needs at least one station")
    key_id = secrets.token_hex(KEY_ID_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    info = ApiKeyInfo(
        key_id=key_id,
        role=role,
        label=label,
        districts=tuple(sorted(set(districts))) if districts is not None else None,
        stations=stations,
        created_at=now,
        expires_at=expires_at,
    )
    with store.transaction() as tx:
        tx.keys.add(info, _hash(secret))
    return IssuedKey(info=info, secret=f"{KEY_PREFIX}_{key_id}_{secret}")


def _parts(presented: str) -> tuple[str, str]:
    """A presented key's id and secret; empty strings when it is not one of ours."""
    prefix, _, rest = presented.partition("_")
    key_id, _, secret = rest.partition("_")
    return (key_id, secret) if prefix == KEY_PREFIX else ("", "")


class KeyRing:
    """Checks presented keys against the store, remembering what it read of each key for
    `cache_seconds` (a key lookup was a quarter of a small request's cost): a key revoked from
    another process (the CLI) stops working within that time. An unknown key id is never
    remembered."""

    def __init__(
        self,
        store: Store,
        cache_seconds: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._read: RecentReads[str, tuple[ApiKeyInfo, str]] = RecentReads(cache_seconds, monotonic)

    def authenticate(self, presented: str | None, now: datetime) -> Principal:
        if not presented:
            raise AuthError("send an API key: Authorization: Bearer <key>")
        key_id, secret = _parts(presented)
        if not key_id or not secret:
            raise AuthError("the API key is malformed")
        found = self._lookup(key_id)
        if found is None or not hmac.compare_digest(found[1], _hash(secret)):
            raise AuthError("the API key is not valid")
        info = found[0]
        if info.revoked_at is not None:
            raise AuthError("the API key was revoked")
        if not info.active(now):
            raise AuthError("the API key has expired")
        return Principal(info)

    def remembers(self, presented: str | None) -> bool:
        """Whether checking this key needs no read of the store (what was read of it is still
        trusted), so that a caller on the event loop may check it there."""
        key_id, _ = _parts(presented or "")
        return bool(key_id) and self._read.get(key_id) is not None

    def _lookup(self, key_id: str) -> tuple[ApiKeyInfo, str] | None:
        found = self._read.get(key_id)
        if found is None:
            with self.store.transaction(readonly=True) as tx:  # never queue behind writers
                found = tx.keys.get(key_id)
            if found is not None:
                self._read.put(key_id, found)
        return found


class RateLimiter:
    """A token bucket per key: a steady rate with room for bursts."""

    def __init__(self, per_minute: float, burst: int) -> None:
        self.rate_per_s = per_minute / 60.0
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def retry_after_s(self, key_id: str) -> float:
        """0 when the request may go ahead (and is counted), else seconds to wait."""
        return self._take(key_id, count=True)

    def wait_s(self, key_id: str) -> float:
        """Seconds until one more would be allowed (0: now), counting nothing."""
        return self._take(key_id, count=False)

    def _take(self, key_id: str, *, count: bool) -> float:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate_per_s)
            if tokens >= 1.0:
                if count:
                    self._buckets[key_id] = (tokens - 1.0, now)
                    self._forget_full(now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / self.rate_per_s

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have filled up again, so that many callers (one bucket per client
        address for failed keys) cannot grow the table without bound."""
        if len(self._buckets) < self.burst * BUCKETS_PER_BURST_BEFORE_PRUNING:
            return
        refill_s = self.burst / self.rate_per_s
        self._buckets = {
            key: (tokens, last)
            for key, (tokens, last) in self._buckets.items()
            if now - last < refill_s
        }


@dataclass(frozen=True)
class Gatekeeper:
    """Every request's check: a valid key, within its rate limit. A client address that keeps
    presenting bad keys is slowed down (`failures`), so keys cannot be guessed at speed; once
    over its limit it is refused before its key is even looked at."""

    keys: KeyRing
    limiter: RateLimiter
    clock: Clock
    failures: RateLimiter

    def admit(self, presented: str | None, client: str = "") -> Principal:
        wait_s = self.failures.wait_s(client)
        if wait_s:
            raise RateLimitedError(wait_s, "too many failed authentications from this address")
        try:
            principal = self.keys.authenticate(presented, self.clock.now())
        except AuthError:
            self.failures.retry_after_s(client)
            raise
        wait_s = self.limiter.retry_after_s(principal.key.key_id)
        if wait_s:
            raise RateLimitedError(wait_s)
        return principal
