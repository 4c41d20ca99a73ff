"""The topics of the distributed runtime: names, keys, and how each is kept.

Everything station-keyed (the three event topics, registry changes, the clock) shares one
partition count, so that one worker owns a station's events, its clock ticks and its table
state together.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from aiokafka.partitioner import murmur2

from schemas.events import EventType
from waystation.settings import Settings

EVENT_TOPICS: dict[EventType, str] = {
    EventType.visit: "waystation.events.visit",
    EventType.check_in: "waystation.events.check_in",
    EventType.health_check: "waystation.events.health_check",
}
STATION_CHANGES = "waystation.stations.changes"  # registry changes (StationChange) by station_id
CLOCK = "waystation.clock"  # ticks, one per station partition: silence and grace periods
STATION_STATE = "waystation.station-state"  # compacted; StationRecord by station_id
COVERAGE_DELTAS = "waystation.coverage.deltas"  # CoverageDelta by zone, and tick markers
ZONE_COVERAGE = "waystation.coverage.zones"  # compacted; ZoneSummary by zone
ALERTS = "waystation.alerts"  # AlertEvent by alert key
DEAD_LETTER = "waystation.dead-letter"  # original bytes; where from and why in headers

# Tables, and the compacted changelog topics Faust keeps them in.
STATION_SLOTS = "station-slots"
ZONE_SLOTS = "zone-slots"
ZONE_CLOCKS = "zone-clocks"
TABLES = (STATION_SLOTS, ZONE_SLOTS, ZONE_CLOCKS)

PARTITION_KEYS_KEPT = 1 << 18  # keys whose partition is remembered: a national network's
# stations and zones
DEMAND_KEY = b"demand-replaced"  # key of DemandReplaced on the clock topic (ticks have none)

# Headers
RECEIVED_AT = "waystation-received-at"  # when the API accepted the event (RFC 3339)
DEAD_LETTER_TOPIC = "dead-letter-topic"
DEAD_LETTER_PARTITION = "dead-letter-partition"
DEAD_LETTER_OFFSET = "dead-letter-offset"
DEAD_LETTER_REASON = "dead-letter-reason"

_MS_PER_HOUR = 3_600_000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool
    retention_ms: int | None  # None: kept until compaction replaces it

    @property
    def config(self) -> dict[str, str]:
        if self.compacted:
            return {"cleanup.policy": "compact"}
        return {"cleanup.policy": "delete", "retention.ms": str(self.retention_ms)}


def changelog_topic(settings: Settings, table: str) -> str:
    return f"{settings.worker_app_id}-{table}-changelog"


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the runtime uses, Faust's table changelogs included (workers never
    declare topics themselves: brokers in production refuse it, and the tests' has none)."""
    parts = settings.broker_partitions
    events_ms = int(settings.broker_event_retention_hours * _MS_PER_HOUR)
    dead_ms = int(settings.broker_dead_letter_retention_hours * _MS_PER_HOUR)
    specs = [TopicSpec(name, parts, False, events_ms) for name in EVENT_TOPICS.values()]
    specs += [
        TopicSpec(CLOCK, parts, False, events_ms),
        TopicSpec(STATION_CHANGES, parts, False, events_ms),
        TopicSpec(STATION_STATE, parts, True, None),
        TopicSpec(COVERAGE_DELTAS, parts, False, events_ms),
        TopicSpec(ZONE_COVERAGE, parts, True, None),
        TopicSpec(ALERTS, parts, False, events_ms),
        TopicSpec(DEAD_LETTER, parts, False, dead_ms),
    ]
    specs += [TopicSpec(changelog_topic(settings, t), parts, True, None) for t in TABLES]
    return specs


@lru_cache(maxsize=PARTITION_KEYS_KEPT)
def partition_for(key: str, partitions: int) -> int:
    """The partition the producers' default partitioner (murmur2, as in the Java client)
    gives `key`: which worker partition owns a station or a zone. Remembered: a stage asks
    for each station of every event it handles, and murmur2 is pure Python."""
    return (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions
