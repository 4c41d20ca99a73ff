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
  read: a single unacked message there is committed past.

So the consumer is gated: a stage marks a batch `done` only once its output is on the broker
and its store writes are committed, and any other ack is refused. A refused message of the
current generation is a floor: no commit of its partition passes it until it is processed
(read again after the next assignment, by this worker or another). On a topic that keeps
every offset (all but the compacted ones) no gap counts as acked, and a commit waits for the
message at the committed offset itself: when it has not been processed while later ones
have, the partition is read again from the committed offset, and no message read again is
dropped as already read (see `_ReadOffsets`). Table slot writes need no
mark: Faust flushes the producer, changelogs included, before it commits offsets."""

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


def gate_acks(app: faust.App, done: Done, compacted: Collection[str]) -> None:
    """Make the consumer `app` creates ack and commit only what `done` allows; `compacted`
    names the topics whose offsets may legitimately jump."""
    transport = app.transport
    base = transport.Consumer
    rereading: dict[TP, int] = {}
    seeks: set[asyncio.Future[None]] = set()

    class _GatedConsumer(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._read_offset = _ReadOffsets(compacted)

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
                    seeking = asyncio.ensure_future(self._read_again(tp, committed))
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

        async def _read_again(self, tp: TP, offset: int) -> None:
            if tp not in self.assignment():
                return  # moved on: its next owner reads it from the committed offset
            log.info("reading %s[%d] again from %d: not all of it was processed", *tp, offset)
            try:
                await self.seek(tp, offset)
            except Exception as exc:  # revoked meanwhile: the next assignment reads it again
                log.warning("could not read %s[%d] again from %d: %r", *tp, offset, exc)

        async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
            done.reassigned()
            rereading.clear()
            await super().on_partitions_assigned(assigned, generation_id)

    transport.Consumer = _GatedConsumer
