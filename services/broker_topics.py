"""Creating the distributed runtime's topics on the broker, with their partitions, replicas,
compaction and retention: what `waystation topics create` does, and the only way the topics
are made (workers never declare topics, brokers are run with automatic creation off)."""

from __future__ import annotations

from dataclasses import dataclass

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from streams.topics import TopicSpec, topic_specs
from waystation.settings import Settings


@dataclass(frozen=True)
class TopicCreated:
    spec: TopicSpec
    created: bool  # False: it was there already, left as it is


def create_topics(settings: Settings) -> list[TopicCreated]:
    """Create each topic `settings` needs; raises kafka.errors.KafkaError when the broker
    cannot be reached or refuses one."""
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    done = []
    try:
        for spec in topic_specs(settings):
            topic = NewTopic(
                spec.name,
                spec.partitions,
                settings.broker_replication_factor,
                topic_configs=spec.config,
            )
            try:
                admin.create_topics([topic])
                done.append(TopicCreated(spec, created=True))
            except TopicAlreadyExistsError:
                done.append(TopicCreated(spec, created=False))
    finally:
        admin.close()
    return done
