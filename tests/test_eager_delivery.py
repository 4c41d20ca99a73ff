"""The consumer's eager delivery gives the drain loop what mode's `wait_first` gives it, for a
callback that finishes at once, one that has to wait, one the flow's suspension interrupts,
one that fails, and a stopped consumer; and it finishes the first kind without a loop turn."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import mode
import pytest
from mode.services import WaitResults

from streams.eager_delivery import deliver_eagerly

WAIT_S = 0.02


class _Transport:
    Consumer: type[mode.Service] = mode.Service


class _App:
    def __init__(self) -> None:
        self.transport = _Transport()


def _consumers() -> dict[str, type[mode.Service]]:
    app = _App()
    deliver_eagerly(app)  # type: ignore[arg-type]  # only its transport is used
    return {"stock": mode.Service, "eager": app.transport.Consumer}


CONSUMERS = _consumers()


def _run(kind: str, scenario: Callable[[mode.Service, asyncio.Event], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        return await scenario(CONSUMERS[kind](), asyncio.Event())

    return asyncio.run(main())


def _shape(results: WaitResults, flow: Any) -> tuple[list[str], list[Any], bool]:
    """What the drain loop could read: which argument won (the callback or the flow), the
    results, whether the consumer stopped."""
    names = ["flow" if winner is flow else "callback" for winner in results.done]
    return names, list(results.results), results.stopped


async def _at_once(consumer: mode.Service, suspended: asyncio.Event) -> Any:
    async def deliver() -> str:
        return "delivered"

    flow = suspended.wait()
    return _shape(await consumer.wait_first(deliver(), flow), flow)


async def _after_a_wait(consumer: mode.Service, suspended: asyncio.Event) -> Any:
    async def deliver() -> str:
        await asyncio.sleep(WAIT_S)  # a full stream buffer, say
        return "delivered late"

    flow = suspended.wait()
    results = await consumer.wait_first(deliver(), flow)
    return ["flow" if winner is flow else "callback" for winner in results.done], results.results


async def _interrupted(consumer: mode.Service, suspended: asyncio.Event) -> Any:
    seen: list[str] = []

    async def deliver() -> None:
        try:
            await asyncio.Event().wait()  # never room in the buffer
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    flow = suspended.wait()
    asyncio.get_running_loop().call_later(WAIT_S, suspended.set)
    results = await consumer.wait_first(deliver(), flow)
    await asyncio.sleep(0)  # the cancelled delivery runs its handler
    return _shape(results, flow), seen


async def _fails_at_once(consumer: mode.Service, suspended: asyncio.Event) -> Any:
    async def deliver() -> None:
        raise ValueError("undecodable")

    with pytest.raises(ValueError, match="undecodable"):
        await consumer.wait_first(deliver(), suspended.wait())
    return "raised"


async def _fails_after_a_wait(consumer: mode.Service, suspended: asyncio.Event) -> Any:
    async def deliver() -> None:
        await asyncio.sleep(WAIT_S)
        raise ValueError("undecodable")

    with pytest.raises(ValueError, match="undecodable"):
        await consumer.wait_first(deliver(), suspended.wait())
    return "raised"


async def _stopped(consumer: mode.Service, suspended: asyncio.Event) -> Any:
    async def deliver() -> str:
        return "delivered"

    consumer._stopped.set()
    flow = suspended.wait()
    return _shape(await consumer.wait_first(deliver(), flow), flow)


SCENARIOS = {
    "at once": _at_once,
    "after a wait": _after_a_wait,
    "interrupted by the flow": _interrupted,
    "fails at once": _fails_at_once,
    "fails after a wait": _fails_after_a_wait,
    "stopped": _stopped,
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_eager_delivery_answers_as_mode_does(scenario: str) -> None:
    stock = _run("stock", SCENARIOS[scenario])
    eager = _run("eager", SCENARIOS[scenario])
    assert eager == stock


def test_a_delivery_that_needs_no_wait_finishes_without_a_loop_turn() -> None:
    async def main() -> tuple[list[str], int]:
        order: list[str] = []
        consumer = CONSUMERS["eager"]()

        async def deliver() -> None:
            order.append("delivered")

        asyncio.get_running_loop().call_soon(order.append, "loop turned")
        before = len(asyncio.all_tasks())
        await consumer.wait_first(deliver(), asyncio.Event().wait())
        return list(order), len(asyncio.all_tasks()) - before

    order, tasks_left = asyncio.run(main())
    assert order == ["delivered"]  # the loop never ran in between
    assert tasks_left == 0
