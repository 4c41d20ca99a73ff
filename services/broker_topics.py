"""Creating the distributed runtime's topics on the broker, with their partitions, replicas,
compaction and retention: what `waystation topics create` does, and the only way the topics
are made (workers never declare topics, brokers are run with automatic creation off)."""

from __future__ import annotations

from dataclasses import dataclass

from kafka.admin import KafkaAdminClient
from kafka.errors import NoError, TopicAlreadyExistsError, for_code

from streams.topics import TopicSpec, topic_specs
from waystation.settings import Settings


@dataclass(frozen=True)
class TopicCreated:
    spec: TopicSpec
    created: bool  # False: it was there already, left as it is


def create_topics(settings: Settings) -> list[TopicCreated]:
    """Create each topic `settings` needs in one request and return once all are ready;
    raises kafka.errors.KafkaError when the broker cannot be reached, refuses a topic for any
    reason but that it exists, or does not make them ready in time."""
    specs = topic_specs(settings)
    wanted = {
        spec.name: {
            "num_partitions": spec.partitions,
            "replication_factor": settings.broker_replication_factor,
            "configs": spec.config,
        }
        for spec in specs
    }
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        answer = admin.create_topics(wanted, raise_errors=False)
        errors = {topic["name"]: for_code(topic["error_code"]) for topic in answer["topics"]}
        for topic in answer["topics"]:
            error = errors[topic["name"]]
            if error not in (NoError, TopicAlreadyExistsError):
                raise error(f"creating topic {topic['name']}: {topic.get('error_message')}")
        # Accepted is not yet usable: wait until each partition has a leader, so that the
        # workers started next find whole topics.
        admin.wait_for_topics(
            list(wanted), timeout_ms=int(settings.broker_ack_timeout_seconds * 1000)
        )
    finally:
        admin.close()
    return [TopicCreated(spec, created=errors[spec.name] is NoError) for spec in specs]
