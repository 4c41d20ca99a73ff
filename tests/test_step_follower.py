"""The thread behind history points and visit rollups: it works after each runtime step,
survives a failed pass, and leaves the runtime's listeners when stopped."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from services.step_follower import StepFollower

IDLE_S = 3600.0  # longer than the test: only steps wake it
WAIT_S = 10.0


def test_each_step_wakes_it_and_a_failed_pass_does_not_end_it() -> None:
    passes: list[int] = []
    done = [threading.Event(), threading.Event()]

    def work() -> None:
        passes.append(len(passes))
        done[len(passes) - 1].set()
        if len(passes) == 1:
            raise OSError("disk full")

    runtime: Any = SimpleNamespace(listeners=[])
    follower = StepFollower("test-follower", work, IDLE_S, "a pass failed")
    follower.start(runtime)
    try:
        assert runtime.listeners == [follower.on_outcome]
        runtime.listeners[0](None)
        assert done[0].wait(WAIT_S)
        runtime.listeners[0](None)
        assert done[1].wait(WAIT_S)  # the failed first pass did not end the thread
        assert passes == [0, 1]
    finally:
        follower.stop()
    assert runtime.listeners == []
