"""Prometheus metrics, named by the Prometheus conventions (unit suffixes, _total counters)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram

EVENTS_INGESTED = Counter(
    "waystation_events_ingested_total",
    "Events posted to the API, by event type and result (accepted, duplicate, rejected)",
    ["type", "result"],
)
EVENTS_PROCESSED = Counter(
    "waystation_events_processed_total",
    "Events run through the processors, by event type and what the ledger did with them",
    ["type", "applied"],
)
PROCESSING_SECONDS = Histogram(
    "waystation_processing_seconds",
    "Time from taking a batch off the queue to having its results durable, per event",
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
ALERT_TRANSITIONS = Counter(
    "waystation_alert_transitions_total",
    "Alert lifecycle steps, by kind and transition",
    ["kind", "transition"],
)
UNAPPLIED_EVENTS = Gauge(
    "waystation_unapplied_events",
    "Events acknowledged (or being committed) and not yet applied by the processor",
)
LAG_SECONDS = Gauge(
    "waystation_lag_seconds",
    "Age of the oldest event acknowledged and not yet applied (0 when none waits)",
)
COMMIT_GROUPS = Counter(
    "waystation_commit_groups_total",
    "Transactions that archived posted events (group commit: several posts share one)",
)
COMMITTED_POSTS = Counter(
    "waystation_committed_posts_total", "Posts whose events were archived by a group commit"
)
DEAD_LETTERS = Counter(
    "waystation_dead_letters_total",
    "Messages a worker could not process and sent to the dead-letter topic, by source topic",
    ["topic"],
)
ACKS_REFUSED = Counter(
    "waystation_acks_refused_total",
    "Acks of input messages a worker had not processed (skipped in a rebalance, or in a batch "
    "that failed), refused so that their offsets are not committed; by source topic",
    ["topic"],
)
REREADS = Counter(
    "waystation_rereads_total",
    "Times a worker read a partition again from an earlier offset because messages it had "
    "fetched were never processed (dropped in a rebalance or a pause); by source topic",
    ["topic"],
)


def record_processed(processed: Sequence[tuple[str, str]], elapsed_s: float) -> None:
    """A batch's (event type, what the ledger did) pairs and the time it took: one counter
    step per kind, not per event (a labelled child is looked up by its labels each time)."""
    if not processed:
        return
    for (event_type, applied), count in Tally(processed).items():
        EVENTS_PROCESSED.labels(event_type, applied).inc(count)
    per_event = elapsed_s / len(processed)
    for _ in processed:
        PROCESSING_SECONDS.observe(per_event)
