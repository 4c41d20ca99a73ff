"""The ack gate's bookkeeping (streams/faust_acks.py): only messages a stage marked done may be
acked, and a refused message of the current generation holds its partition's commits."""

from __future__ import annotations

from dataclasses import dataclass, field

from faust.types import TP

from streams.faust_acks import Done

GENERATION = 3
TOPIC = "waystation.events.visit"


@dataclass(eq=False)
class FakeMessage:
    """The fields of a Faust message the gate reads (compared by identity, as Faust's are)."""

    offset: int
    partition: int = 0
    generation_id: int = GENERATION
    topic: str = TOPIC
    tp: TP = field(init=False)

    def __post_init__(self) -> None:
        self.tp = TP(self.topic, self.partition)


@dataclass
class FakeEvent:
    message: FakeMessage


def test_only_messages_marked_done_are_acked_and_only_once() -> None:
    done = Done()
    processed, skipped = FakeMessage(10), FakeMessage(11)
    done.mark([FakeEvent(processed)])
    assert done.allows(processed, GENERATION)
    assert not done.allows(processed, GENERATION), "a second ack of one mark"
    assert not done.allows(skipped, GENERATION)


def test_a_refused_message_is_the_floor_until_its_copy_is_processed() -> None:
    done = Done()
    tp = TP(TOPIC, 0)
    for offset in (12, 14):
        done.allows(FakeMessage(offset), GENERATION)
    assert done.floor(tp) == 12
    assert done.floor(TP(TOPIC, 1)) is None
    again = FakeMessage(12)  # read again after a seek: a new message object
    done.mark([FakeEvent(again)])
    assert done.allows(again, GENERATION)
    assert done.floor(tp) == 14


def test_earlier_generations_and_a_new_assignment_leave_no_floor() -> None:
    done = Done()
    tp = TP(TOPIC, 0)
    done.allows(FakeMessage(5, generation_id=GENERATION - 1), GENERATION)
    assert done.floor(tp) is None, "read again from the committed offset anyway"
    done.allows(FakeMessage(6), GENERATION)
    assert done.floor(tp) == 6
    done.reassigned()
    assert done.floor(tp) is None
