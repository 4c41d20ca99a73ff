"""Consumer lag per partition, as a worker sees it: for a Prometheus scrape of the worker."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

Lags = Mapping[tuple[str, int], int]
"""(topic, partition) -> messages on the partition not yet committed by this worker"""


class ConsumerLag(Collector):
    """`waystation_consumer_lag_messages{topic,partition}` for the partitions a worker owns,
    read at scrape time (nothing to keep up to date in between)."""

    def __init__(self, read: Callable[[], Lags]) -> None:
        self.read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "waystation_consumer_lag_messages",
            "Messages on each partition this worker owns that it has not committed yet",
            labels=["topic", "partition"],
        )
        for (topic, partition), messages in sorted(self.read().items()):
            lag.add_metric([topic, str(partition)], messages)
        yield lag
