"""The Kafka client hands back only records Faust will take.

Faust's consumer thread asks the client for the records of the partitions active when the
fetch was requested, and the client moves its position past every record it hands back. By
then the event loop may have stopped the flow (a rebalance) or paused those partitions, and
Faust drops what it is handed. On an input topic it seeks back to the committed offset; on a
table's changelog there is none, so records a recovery had just sought to were gone and the
worker waited for them for ever ("No event received for active tp"). Worse, Faust passes the
live set, which a rebalance may empty, and the client reads an empty set as every partition.

So the client is given a view, not a set: a partition is in it only while it is active and
the flow runs, asked at the moment the client hands records over. A record is then handed
over only when Faust takes it, but for a rebalance starting in between; and every rebalance
makes the recovery seek its changelogs again from what it has applied."""

from __future__ import annotations

from collections.abc import Set
from typing import Any

import faust
from faust.types import TP


class FlowingPartitions:
    """The partitions whose records Faust takes now: active ones, while the flow runs. Never
    empty to the client (which would read that as every partition), only to membership."""

    def __init__(self, consumer: Any, active: Set[TP]) -> None:
        self._consumer = consumer
        self._active = active

    def __contains__(self, tp: object) -> bool:
        return bool(self._consumer.flow_active) and tp in self._active

    def __bool__(self) -> bool:
        return True


def gate_fetches(app: faust.App) -> None:
    """Make the consumer `app` creates fetch through `FlowingPartitions`."""
    transport = app.transport
    base = transport.Consumer

    class _GatedFetchConsumer(base):  # type: ignore[misc, valid-type]
        async def _getmany(self, active_partitions: Set[TP] | None, timeout: float) -> Any:
            if active_partitions is None:  # a client-only app: every partition, by design
                return await super()._getmany(active_partitions, timeout)
            return await super()._getmany(FlowingPartitions(self, active_partitions), timeout)

    transport.Consumer = _GatedFetchConsumer
