"""Ingest in distributed mode: validated events go to their Kafka topic, and the API answers
only once the broker has acknowledged every one of them (acks=all, idempotent producer).

Duplicates are not looked up here (that would be a read on every POST): a retried event is
produced again and answered `accepted`; the station stage drops the copy by its event_id,
which each station's table slot remembers for as long as a copy could still change anything.
The same id with different content is not detected in this mode: the first copy processed wins.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime

from kafka import KafkaProducer
from kafka.errors import KafkaError

from schemas.events import Event, EventType
from schemas.lifecycle import StationChange
from store.repositories import AppendOutcome, ArchivedEvent, canonical_json
from streams import topics
from streams.clock import Clock, SystemClock
from waystation.settings import Settings

log = logging.getLogger(__name__)

_MS = 1000


class BrokerUnavailableError(Exception):
    """The broker did not acknowledge in time: nothing in the request counts as accepted."""

    def __init__(self, retry_after_seconds: int, detail: str) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class KafkaSink:
    """An EventSink that produces to Kafka. The producer is made on first use and made again
    after a failure, so an API started while the broker is down recovers on its own."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def _connect(self) -> KafkaProducer:
        timeout_ms = int(self.settings.broker_ack_timeout_seconds * _MS)
        return KafkaProducer(
            bootstrap_servers=self.settings.bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            bootstrap_timeout_ms=timeout_ms,  # an unreachable broker: 503 within the timeout
            max_block_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
            delivery_timeout_ms=timeout_ms,
            retries=2**31 - 1,
        )

    def submit(self, events: Sequence[Event]) -> list[AppendOutcome]:
        received = self.clock.now()
        self._produce(
            [
                (_topic_of(event.type.value), event.station_id, canonical_json(event), received)
                for event in events
            ]
        )
        return [AppendOutcome.accepted] * len(events)

    def submit_archived(self, events: Sequence[ArchivedEvent]) -> None:
        """Re-feed archived events as they were accepted (body and received time unchanged),
        so that workers compute from them what they computed the first time."""
        self._produce([(_topic_of(e.type), e.station_id, e.body, e.received_at) for e in events])

    def publish_station_changes(self, changes: Sequence[StationChange]) -> None:
        """Registry changes, in the order they were made, to the station's partition; the
        worker applies each at the instant it was made."""
        self._produce(
            [(topics.STATION_CHANGES, c.station_id, c.model_dump_json(), c.at) for c in changes]
        )

    def _produce(self, items: Sequence[tuple[str, str, str, datetime]]) -> None:
        if not items:
            return
        timeout = self.settings.broker_ack_timeout_seconds
        try:
            with self._lock:
                if self._producer is None:
                    self._producer = self._connect()
                producer = self._producer
            futures = [
                producer.send(
                    topic,
                    key=station_id.encode(),
                    value=body.encode("utf-8"),
                    headers=[(topics.RECEIVED_AT, received.isoformat().encode())],
                )
                for topic, station_id, body, received in items
            ]
            producer.flush(timeout=timeout)
            for future in futures:
                future.get(timeout=timeout)
        except (KafkaError, OSError) as exc:
            log.warning("broker did not acknowledge: %s", exc)
            self._reset()
            raise BrokerUnavailableError(
                self.settings.broker_retry_after_seconds,
                "the event broker cannot be reached; nothing was accepted, retry later",
            ) from exc

    def _reset(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=0)
            except KafkaError:
                log.debug("closing a failed producer", exc_info=True)

    def close(self) -> None:
        self._reset()


def _topic_of(event_type: str) -> str:
    return topics.EVENT_TOPICS[EventType(event_type)]
