"""Station counts by state and open alerts, taken from the one place that knows them: the
live runtime's ledger and alert book, over the stations the store has registered.

Every view that shows such a number (the dashboard's tiles and snapshot, `/v1/coverage`,
`/v1/stations`, the gap report, `/healthz`, `/metrics`) reads a `Tally`, so two of them
never disagree, whether or not a dashboard is connected. A station registered but never
heard from is `silent`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from schemas.alerts import Alert, AlertKind, AlertStatus
from schemas.state import StationRecord
from schemas.stations import StationState
from streams.embedded import EmbeddedRuntime

NEVER_HEARD = StationState.silent


@dataclass(frozen=True)
class Tally:
    """Counts at one instant, per district (None: every district)."""

    records: Mapping[str, StationRecord]
    areas: Mapping[str, tuple[str, str | None]]
    open_alerts: tuple[Alert, ...]
    _by_district: dict[str | None, Counter[StationState]] = field(default_factory=dict)
    _by_subdistrict: dict[tuple[str, str], Counter[StationState]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        by_district: defaultdict[str | None, Counter[StationState]] = defaultdict(Counter)
        by_sub: defaultdict[tuple[str, str], Counter[StationState]] = defaultdict(Counter)
        for station_id, (district, subdistrict) in self.areas.items():
            state = self.state_of(station_id)
            by_district[None][state] += 1
            by_district[district][state] += 1
            by_sub[(district, subdistrict or "")][state] += 1
        self._by_district.update(by_district)
        self._by_subdistrict.update(by_sub)

    def subdistrict_of(self, station_id: str) -> str | None:
        found = self.areas.get(station_id)
        return found[1] if found else None

    def stations_by_state_in(self, district: str, subdistrict: str) -> dict[StationState, int]:
        counts = self._by_subdistrict.get((district, subdistrict), Counter())
        return {state: counts[state] for state in StationState}

    def state_of(self, station_id: str) -> StationState:
        record = self.records.get(station_id)
        return record.state if record is not None else NEVER_HEARD

    def stations_by_state(self, district: str | None = None) -> dict[StationState, int]:
        counts = self._by_district.get(district, Counter())
        return {state: counts[state] for state in StationState}

    def stations_total(self, district: str | None = None) -> int:
        return sum(self._by_district.get(district, Counter()).values())

    def alerts(self, district: str | None = None) -> list[Alert]:
        """Open alerts, latest updated first (as the store lists them)."""
        mine = [a for a in self.open_alerts if district is None or a.district == district]
        return sorted(mine, key=lambda a: (-a.updated_at.timestamp(), a.alert_id))

    def open_alerts_by_kind(self, district: str | None = None) -> dict[AlertKind, int]:
        counts = Counter(a.kind for a in self.open_alerts if district in (None, a.district))
        return {kind: counts[kind] for kind in AlertKind}


def open_only(alerts: Iterable[Alert]) -> tuple[Alert, ...]:
    """Pending alerts are still in their grace period: nobody has been told of them."""
    return tuple(a for a in alerts if a.status is AlertStatus.open)


def take_tally(runtime: EmbeddedRuntime, timeout_s: float | None = None) -> Tally:
    """The counts now; with `timeout_s`, ProcessorBusyError if the live state stays held."""
    with runtime.store.transaction(readonly=True) as tx:
        areas = tx.stations.areas_of_each()
    with runtime.reading(timeout_s) as pipeline:
        records = dict(pipeline.ledger.records)
        alerts = open_only(pipeline.alert_book.alerts.values())
    return Tally(records=records, areas=areas, open_alerts=alerts)
