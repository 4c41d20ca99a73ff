"""A worker's QR scan, from token to recorded visit: the token is checked (genuine, not
revoked, for a registered station), the form read, the phone's and the station's rate limits
applied, and a `visit` with `source=qr_scan` goes through the same ingest as any other event.
No personal data: the phone is known only by a random cookie, and an optional union member
number becomes the visit's worker_ref, which ingest replaces by a keyed hash."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from schemas import SCHEMA_VERSION
from schemas.api import EventResult
from schemas.events import EventType, Service, VisitSource, WorkerKind
from schemas.stations import Station
from services.auth import RateLimiter
from services.recent_reads import RecentReads
from services.scan_tokens import (
    ForgedTokenError,
    StationToken,
    TokenSigner,
    current_token,
    rotate_token,
    scan_secret,
)
from services.system import EmbeddedSystem

DEVICE_ID_BYTES = 16
MEMBER_NUMBER_MAX_CHARS = 32
MINUTES_PER_HOUR = 60.0


class ScanOutcome(StrEnum):
    ready = "ready"  # the page may be shown
    recorded = "recorded"
    forged = "forged"
    revoked = "revoked"
    unknown_station = "unknown_station"
    rate_limited = "rate_limited"
    rejected = "rejected"  # the form was not valid


@dataclass(frozen=True)
class ScanResult:
    outcome: ScanOutcome
    station: Station | None = None
    retry_after_s: float = 0.0
    problems: tuple[str, ...] = ()
    services: tuple[str, ...] = field(default=())


def new_device_id() -> str:
    return secrets.token_urlsafe(DEVICE_ID_BYTES)


def services_offered(station: Station) -> tuple[str, ...]:
    """What a worker can tick: the station's amenities, then the union's services."""
    return tuple(a.value for a in station.amenities) + tuple(s.value for s in Service)


@dataclass(frozen=True)
class _Known:
    station: Station | None
    generation: int


class ScanDesk:
    def __init__(self, system: EmbeddedSystem) -> None:
        self.system = system
        settings = system.settings
        self.signer = TokenSigner(scan_secret(settings, system.ingest.secret))
        self.devices = RateLimiter(
            settings.scan_device_per_hour / MINUTES_PER_HOUR, settings.scan_device_burst
        )
        self.stations = RateLimiter(settings.scan_station_per_minute, settings.scan_station_burst)
        self._known: RecentReads[str, _Known] = RecentReads(settings.scan_station_cache_seconds)

    def token_for(self, station_id: str) -> str:
        return current_token(self.system.store, self.signer, station_id)

    def rotate(self, station_id: str) -> str:
        """Revoke every poster of the station; returns the new token."""
        token = rotate_token(self.system.store, self.signer, station_id, self.system.clock.now())
        self._known.forget(station_id)
        return token

    def _lookup(self, station_id: str) -> _Known:
        """The station and its poster generation, read at most every few seconds."""
        known = self._known.get(station_id)
        if known is None:
            with self.system.store.transaction(readonly=True) as tx:
                known = _Known(tx.stations.get(station_id), tx.scan_tokens.generation(station_id))
            self._known.put(station_id, known)
        return known

    def open(self, token: str) -> ScanResult:
        try:
            read = self.signer.read(token)
        except ForgedTokenError:
            return ScanResult(ScanOutcome.forged)
        return self._check(read)

    def _check(self, read: StationToken) -> ScanResult:
        known = self._lookup(read.station_id)
        station = known.station
        if station is None:
            return ScanResult(ScanOutcome.unknown_station)
        if read.generation != known.generation:
            return ScanResult(ScanOutcome.revoked, station)
        return ScanResult(ScanOutcome.ready, station, services=services_offered(station))

    async def record(
        self, token: str, device_id: str, form: Mapping[str, Sequence[str]]
    ) -> ScanResult:
        """Check the scan, then store its visit: scans arriving together share the archive's
        group commit, so many phones at once cost a few transactions, not one each."""
        checked = self._visit(token, device_id, form)
        if isinstance(checked, ScanResult):
            return checked
        station, chosen, item = checked
        answer = await self.system.ingest.handle_async([item], self.system.clock.now())
        outcome = answer.results[0]
        if outcome.result is not EventResult.accepted:
            fields = tuple(e.field for e in outcome.errors)
            return ScanResult(ScanOutcome.rejected, station, problems=fields or ("visit",))
        return ScanResult(ScanOutcome.recorded, station, services=chosen)

    def _visit(
        self, token: str, device_id: str, form: Mapping[str, Sequence[str]]
    ) -> ScanResult | tuple[Station, tuple[str, ...], dict[str, object]]:
        """The visit event a scan asks to record, or the answer refusing it."""
        opened = self.open(token)
        if opened.outcome is not ScanOutcome.ready or opened.station is None:
            return opened
        station = opened.station
        kind = _one(form, "worker_kind")
        chosen = tuple(dict.fromkeys(form.get("services", ())))
        member = (_one(form, "member_number") or "").strip()
        problems = []
        if kind not in WorkerKind.__members__:
            problems.append("worker_kind")
        if not set(chosen) <= set(opened.services):
            problems.append("services")
        if len(member) > MEMBER_NUMBER_MAX_CHARS:
            problems.append("member_number")
        if problems:
            return ScanResult(ScanOutcome.rejected, station, problems=tuple(problems))
        for limiter, key in ((self.devices, device_id), (self.stations, station.station_id)):
            wait_s = limiter.retry_after_s(key)
            if wait_s:
                return ScanResult(ScanOutcome.rate_limited, station, retry_after_s=wait_s)
        payload: dict[str, object] = {
            "worker_kind": kind,
            "party_size": 1,
            "services_used": list(chosen),
            "source": VisitSource.qr_scan.value,
        }
        if member:
            payload["worker_ref"] = member
        item: dict[str, object] = {
            "event_id": str(uuid.uuid4()),
            "type": EventType.visit.value,
            "schema_version": SCHEMA_VERSION,
            "station_id": station.station_id,
            "occurred_at": self.system.clock.now().isoformat(),
            "payload": payload,
        }
        return station, chosen, item


def _one(form: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None
