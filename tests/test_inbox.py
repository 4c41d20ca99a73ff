"""A background thread's inbox: one pass takes a whole burst in order, a quiet one nothing."""

from __future__ import annotations

import queue

from services.inbox import take_waiting

QUIET_S = 0.01


def test_a_burst_is_taken_in_one_pass_in_order() -> None:
    inbox: queue.Queue[object] = queue.Queue()
    for n in range(5):
        inbox.put(n)
    assert take_waiting(inbox, QUIET_S) == [0, 1, 2, 3, 4]
    assert inbox.empty()


def test_a_quiet_inbox_gives_nothing_after_the_wait() -> None:
    assert take_waiting(queue.Queue(), QUIET_S) == []
