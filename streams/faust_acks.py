"""Which input offsets a Faust worker may commit: only those of messages whose effects are
durable.

Faust commits an input offset once the messages up to it are acked. Five things in it let a
commit pass messages no one processed (faust-streaming 0.15):

- a stream that takes a message off its queue while a rebalance is under way (flow control
  suspended) or from an earlier consumer generation skips it and acks it ("otherwise the lag
  would increase", faust/streams.py); during the revocation the offset is committed, and
  whoever owns the partition next starts after messages no one processed;
- `take()` and `take_events()` ack a batch in a `finally:`, so a batch whose processing
  raised is acked too;
- a message fetched below the last offset the consumer delivered is dropped, and that record
  is set back to the committed offset on an assignment and forward again by fetches still
  under way: messages read again after a rebalance are dropped unseen;
- a message whose offset is more than one past the last one the consumer delivered opens a
  "gap" that counts as acked, meant for compacted topics; a fetch that resumes past where a
  rebalance left the partition opens one too, over messages no stream was given (the lost
  runs of two or three events per partition in the rebalance test);
- the consumer commits acked offsets when the first of them is at most one past the committed
  one (`Consumer._new_offset`), but a committed offset already names the next message to
  read: a single unacked message there is committed past;
- records the client has fetched are dropped on their way to a stream (`getmany` stops
  handing out a batch when flow stops or the generation changes, skips partitions not active
  at that moment, a delivery is cancelled when flow is suspended) while the client has moved
  past them: on a partition nothing new arrives on they are never read (seen: a restarted
  worker left the last 25 events before its crash unprocessed).

So the consumer is gated: a stage marks a batch `done` only once its output is on the broker
and its store writes are committed, and any other ack is refused. A refused message of the
current generation is a floor: no commit of its partition passes it until it is processed
(read again after the next assignment, by this worker or another). On a topic that keeps
every offset (all but the compacted ones) no gap counts as acked, and a commit waits for the
message at the committed offset itself: when it has not been processed while later ones
have, the partition is read again from the committed offset, and no message read again is
dropped as already read (see `_ReadOffsets`); and a partition whose client position stays past
the last record a stream was given, with nothing in flight, is read again from there.
Table slot writes need no mark: Faust flushes the producer, changelogs included, before it
commits offsets."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import defaultdict
from collections.abc import Collection, Iterable
from typing import Any

import faust
from faust.types import TP, EventT

from streams import metrics

log = logging.getLogger(__name__)

STALL_CHECKS = 2  # a record in transit between the client and a stream is handed out by then


class Done:
    """Messages processed to the end, waiting for Faust's ack; and the offsets refused."""

    def __init__(self) -> None:
        self._messages: weakref.WeakSet[Any] = weakref.WeakSet()
        self._refused: dict[TP, set[int]] = defaultdict(set)

    def mark(self, batch: Iterable[EventT]) -> None:
        for event in batch:
            self._messages.add(event.message)

    def allows(self, message: Any, generation_id: int) -> bool:
        if message in self._messages:
            self._messages.discard(message)
            self._refused[message.tp].discard(message.offset)
            return True
        metrics.ACKS_REFUSED.labels(message.topic).inc()
        # One from an earlier generation is read again from the committed offset anyway.
        if message.generation_id == generation_id:
            self._refused[message.tp].add(message.offset)
        return False

    def floor(self, tp: TP) -> int | None:
        """The lowest offset of `tp` refused and not processed since: commits stop there."""
        refused = self._refused.get(tp)
        return min(refused) if refused else None

    def reassigned(self) -> None:
        """A new assignment reads every partition again from its committed offset, which no
        refused offset is below: the floors are moot."""
        self._refused.clear()


class _ReadOffsets(dict[TP, int | None]):
    """Faust's record of the last offset it delivered per partition, which it uses to drop
    any message fetched below it and to open gaps above it. After a rebalance it is set back
    to the committed offset while fetches of the old generation still set it forward, so the
    messages read again are dropped. On topics that keep every offset it reads as unknown:
    every fetched message is delivered (a copy at worst, and every effect is idempotent)."""

    def __init__(self, compacted: Collection[str]) -> None:
        super().__init__()
        self.compacted = compacted

    def __getitem__(self, tp: TP) -> int | None:
        return self.get(tp) if tp.topic in self.compacted else None


def gate_acks(app: faust.App, done: Done, compacted: Collection[str], stall_check_s: float) -> None:
    """Make the consumer `app` creates ack and commit only what `done` allows; `compacted`
    names the topics whose offsets may legitimately jump; every `stall_check_s` the agents'
    partitions whose fetched records never reached a stream are read again."""
    transport = app.transport
    base = transport.Consumer
    rereading: dict[TP, int] = {}
    seeks: set[asyncio.Future[None]] = set()

    class _GatedConsumer(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._read_offset = _ReadOffsets(compacted)
            self._handed: dict[TP, int] = {}  # the last offset given to a stream, this assignment
            self._stalled: dict[TP, tuple[int, int, int]] = {}  # (handed, position, checks)
            self._tried: dict[TP, tuple[int, int]] = {}  # (from, position) read again once

        def track_message(self, message: Any) -> None:
            super().track_message(message)
            tp = message.tp
            self._handed[tp] = max(self._handed.get(tp, -1), message.offset)

        async def read_stalled_again(self, inputs: Collection[str]) -> None:
            """Read again any partition of `inputs` whose client has moved past records no
            stream was given, when nothing of it is in flight and that has stayed so for
            STALL_CHECKS checks in a row."""
            busy = {message.tp for message in list(self._unacked_messages)}
            for tp in self.assignment():
                if tp.topic not in inputs or tp in busy:
                    self._stalled.pop(tp, None)
                    continue
                handed = self._handed.get(tp)
                committed = self._committed_offset.get(tp) or 0
                expected = committed if handed is None else max(handed + 1, committed)
                if (self.highwater(tp) or 0) <= expected:  # nothing past it: no stall here
                    self._stalled.pop(tp, None)
                    continue
                position = await self.position(tp)  # a call into the client's thread
                if position is None or position <= expected:
                    self._stalled.pop(tp, None)
                    continue
                seen = self._stalled.get(tp)
                checks = seen[2] + 1 if seen and seen[:2] == (expected, position) else 1
                self._stalled[tp] = (expected, position, checks)
                if checks >= STALL_CHECKS and self._tried.get(tp) != (expected, position):
                    self._tried[tp] = (expected, position)
                    self._stalled.pop(tp, None)
                    await self._read_again(tp, expected, "fetched but never given to a stream")

        def ack(self, message: Any) -> bool:
            if done.allows(message, self.app.consumer_generation_id):
                return bool(super().ack(message))
            # Not to be waited for by a revocation: it will never be acked.
            self._unacked_messages.discard(message)
            return False

        async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
            if tp.topic in compacted:
                await super()._add_gap(tp, offset_from, offset_to)

        def _new_offset(self, tp: TP) -> int | None:
            acked, committed = self._acked[tp], self._committed_offset[tp]
            if committed is None and rereading.get(tp) is None:
                committed = 0  # Faust's None: nothing committed yet (or 0); read from the start
            waiting = acked and committed is not None and min(acked) > committed
            if waiting and tp.topic not in compacted:
                # The message at the committed offset was never given to a stream, or its ack
                # refused: read the partition again from there (once per committed offset).
                if rereading.get(tp) != committed:
                    rereading[tp] = committed
                    seeking = asyncio.ensure_future(
                        self._read_again(tp, committed, "not all of it was processed")
                    )
                    seeks.add(seeking)
                    seeking.add_done_callback(seeks.discard)
                return None
            floor = done.floor(tp)
            if floor is None:
                return super()._new_offset(tp)
            above = [offset for offset in acked if offset >= floor]
            acked[:] = [offset for offset in acked if offset < floor]
            try:
                return super()._new_offset(tp)
            finally:
                acked.extend(above)
                acked.sort()

        async def _read_again(self, tp: TP, offset: int, why: str) -> None:
            if tp not in self.assignment():
                return  # moved on: its next owner reads it from the committed offset
            metrics.REREADS.labels(tp.topic).inc()
            log.info("reading %s[%d] again from %d: %s", *tp, offset, why)
            try:
                await self.seek(tp, offset)
            except Exception as exc:  # revoked meanwhile: the next assignment reads it again
                log.warning("could not read %s[%d] again from %d: %r", *tp, offset, exc)

        async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
            done.reassigned()
            rereading.clear()
            self._handed.clear()
            self._stalled.clear()
            await super().on_partitions_assigned(assigned, generation_id)

    transport.Consumer = _GatedConsumer

    @app.timer(interval=stall_check_s)
    async def read_stalled_partitions_again() -> None:
        inputs = {topic for agent in app.agents.values() for topic in agent.channel.topics}
        await app.consumer.read_stalled_again(inputs)
