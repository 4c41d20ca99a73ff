"""Ingest in distributed mode: validated events go to their Kafka topic, and the API answers
only once the broker has acknowledged every one of them (acks=all, idempotent producer).

Answers are the embedded runtime's: before producing, the event ids are looked up in the
store's receipts (ids already handed to the broker, with their content hash). A retry is
answered `duplicate` and not produced again; an id reused with other content is refused
(409). Ids are recorded once the broker has acknowledged them, so a failed produce leaves
nothing behind and the client's retry is accepted. Posts are handed to the broker in groups,
one group at a time, so within one API process the ids of concurrent posts are judged against
each other too. Two API processes racing with the same new id may both produce it: the
station stage drops the copy by its event_id (each station's table slot remembers the ids it
has seen), so nothing is counted twice.
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
from store.repositories import AppendOutcome, ArchivedEvent, canonical_json, content_hash
from store.unit_of_work import Store
from streams import topics
from streams.backlog import commit_wait_s, turn_taken
from streams.clock import Clock, SystemClock
from streams.group_commit import GroupCommit
from streams.wire import DemandReplaced
from waystation.settings import Settings

log = logging.getLogger(__name__)

_MS = 1000

Message = tuple[str, bytes, bytes, int | None, list[tuple[str, bytes]]]
"""topic, key, value, partition (None: by key), headers"""


class BrokerUnavailableError(Exception):
    """The broker did not acknowledge in time: nothing in the request counts as accepted."""

    def __init__(self, retry_after_seconds: int, detail: str) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class KafkaSink:
    """An EventSink that produces to Kafka. The producer is made on first use and made again
    after a failure, so an API started while the broker is down recovers on its own."""

    def __init__(self, settings: Settings, store: Store, clock: Clock | None = None) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock or SystemClock()
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()
        # kafka-python's producer blocks until the broker acknowledges: the group's producing
        # runs in the committer thread, never on the event loop.
        self._groups: GroupCommit[Event, AppendOutcome] = GroupCommit(
            self._submit_group, max_items=settings.group_commit_max_events
        )

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
        """Hand events to the broker together with the other posts waiting meanwhile (one
        receipts check, one produce and one receipts write for them all), then answer."""
        with turn_taken(self.settings.broker_retry_after_seconds):
            return self._groups.submit(events, self._wait_s())

    async def submit_async(self, events: Sequence[Event]) -> list[AppendOutcome]:
        """`submit` for a request on the event loop, which serves others while it waits."""
        with turn_taken(self.settings.broker_retry_after_seconds):
            return await self._groups.submit_async(events, self._wait_s())

    def _wait_s(self) -> float:
        settings = self.settings
        return commit_wait_s(settings.commit_wait_seconds, settings.broker_retry_after_seconds)

    def _submit_group(self, events: list[Event]) -> list[AppendOutcome]:
        received = self.clock.now()
        bodies = [canonical_json(event) for event in events]
        keys = [
            (str(e.event_id), content_hash(body)) for e, body in zip(events, bodies, strict=True)
        ]
        with self.store.transaction(readonly=True) as tx:
            outcomes = tx.receipts.judge(keys)
        new = [i for i, outcome in enumerate(outcomes) if outcome is AppendOutcome.accepted]
        self._produce(
            [
                (_topic_of(events[i].type.value), events[i].station_id, bodies[i], received)
                for i in new
            ]
        )
        if new:
            with self.store.transaction() as tx:
                tx.receipts.record([keys[i] for i in new], received)
        return outcomes

    def announce_demand(self) -> None:
        """Tell the workers the demand layer in the store was replaced: a marker on every
        partition of the clock topic, so that every partition's owner acts on it, in order
        with the events before and after it."""
        marker = DemandReplaced(at=self.clock.now()).model_dump_json().encode()
        partitions = range(self.settings.broker_partitions)
        self._send([(topics.CLOCK, topics.DEMAND_KEY, marker, p, []) for p in partitions])

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
        self._send(
            [
                (
                    topic,
                    station_id.encode(),
                    body.encode("utf-8"),
                    None,
                    [(topics.RECEIVED_AT, received.isoformat().encode())],
                )
                for topic, station_id, body, received in items
            ]
        )

    def _send(self, messages: Sequence[Message]) -> None:
        """Produce and wait for the broker's acknowledgement of every message, or raise
        BrokerUnavailableError."""
        timeout = self.settings.broker_ack_timeout_seconds
        try:
            with self._lock:
                if self._producer is None:
                    self._producer = self._connect()
                producer = self._producer
            futures = [
                producer.send(topic, key=key, value=value, partition=partition, headers=headers)
                for topic, key, value, partition, headers in messages
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
