"""Group commit: the posts that arrive while one transaction commits share the next one.

Callers queue their items and wait; one committer thread takes everything queued (up to a
limit), commits it in one transaction (one fsync) and hands every caller its own outcomes.
Callers wait in either of two ways: a thread blocks on its own event (`submit`), a request on
the event loop awaits a future (`submit_async`), so that a post costs no hop through a thread
pool. The committer starts with the first post and stops once no post has come for a while,
so an idle system holds no thread for it.

A caller that waited past its deadline while still queued is taken out before anything of it
is stored and told so; once its items are in a group, it gets their outcomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

_Item = TypeVar("_Item")
_Outcome = TypeVar("_Outcome")

COMMITTER_LINGER_S = 1.0  # the committer waits this long for another post before it stops


class CommitTimeoutError(Exception):
    """The caller's turn did not come before its deadline; nothing of it was stored."""


@dataclass
class _Request(Generic[_Item, _Outcome]):
    items: Sequence[_Item]
    wake: Callable[[], None]  # tells the caller its outcomes (or its error) are ready
    outcomes: list[_Outcome] = field(default_factory=list)
    error: BaseException | None = None

    def answer(self) -> list[_Outcome]:
        if self.error is not None:
            raise self.error
        return self.outcomes


class GroupCommit(Generic[_Item, _Outcome]):
    def __init__(
        self,
        commit: Callable[[list[_Item]], list[_Outcome]],
        *,
        max_items: int,
        after_commit: Callable[[list[_Item], list[_Outcome]], None] | None = None,
    ) -> None:
        """`commit` stores a group and returns one outcome per item, in order; `after_commit`
        runs in the committer, still in commit order, before any caller is answered."""
        self._commit = commit
        self._after_commit = after_commit
        self.max_items = max_items
        self._ready = threading.Condition(threading.Lock())
        self._queued: deque[_Request[_Item, _Outcome]] = deque()
        self._running = False  # a committer thread is alive
        self.groups = 0  # transactions committed, for metrics and tests
        self.grouped_items = 0

    def submit(self, items: Sequence[_Item], timeout_s: float) -> list[_Outcome]:
        """Store `items` in a group; returns their outcomes. Raises CommitTimeoutError when
        not taken into a group within `timeout_s` (then nothing of them is stored), or what
        the commit raised."""
        if not items:
            return []
        answered = threading.Event()
        request: _Request[_Item, _Outcome] = _Request(items, answered.set)
        self._enqueue(request)
        if not answered.wait(timeout_s):
            if self._withdraw(request):
                raise CommitTimeoutError(f"not committed within {timeout_s:g} s")
            answered.wait()  # taken into a group just now: its commit is under way
        return request.answer()

    async def submit_async(self, items: Sequence[_Item], timeout_s: float) -> list[_Outcome]:
        """`submit` for a caller on an event loop: the loop serves other requests meanwhile.
        Cancelled while still queued, nothing of it is stored and the cancellation goes on;
        cancelled once its group is committing, it waits for the commit and returns its
        outcomes, so that whoever answers the request can say what was stored."""
        if not items:
            return []
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, answered)

        request: _Request[_Item, _Outcome] = _Request(items, wake)
        self._enqueue(request)
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(answered)
        except TimeoutError:
            if self._withdraw(request):
                raise CommitTimeoutError(f"not committed within {timeout_s:g} s") from None
            await _committed(answered)
        except asyncio.CancelledError:
            if self._withdraw(request):
                raise
            await _committed(answered)  # the answer tells what was stored, not "cancelled"
        return request.answer()

    def _enqueue(self, request: _Request[_Item, _Outcome]) -> None:
        with self._ready:
            self._queued.append(request)
            if self._running:
                self._ready.notify()
                return
            self._running = True
        threading.Thread(target=self._commit_loop, name="waystation-commit", daemon=True).start()

    def _withdraw(self, request: _Request[_Item, _Outcome]) -> bool:
        """Take a caller out that is still queued; False when it is already in a group."""
        with self._ready:
            if request in self._queued:
                self._queued.remove(request)
                return True
            return False

    def _commit_loop(self) -> None:
        while True:
            with self._ready:
                if not self._queued:
                    self._ready.wait(COMMITTER_LINGER_S)
                if not self._queued:
                    self._running = False
                    return
                group = self._take()
            self._run(group)

    def _take(self) -> list[_Request[_Item, _Outcome]]:
        """The queued requests, oldest first, up to `max_items` (always at least one)."""
        group: list[_Request[_Item, _Outcome]] = []
        count = 0
        while self._queued and (not group or count + len(self._queued[0].items) <= self.max_items):
            request = self._queued.popleft()
            group.append(request)
            count += len(request.items)
        return group

    def _run(self, group: list[_Request[_Item, _Outcome]]) -> None:
        items = [item for request in group for item in request.items]
        try:
            outcomes = self._commit(items)
            if self._after_commit is not None:
                self._after_commit(items, outcomes)
        except BaseException as exc:  # every caller of the group learns of it
            for request in group:
                request.error = exc
                request.wake()
            return
        start = 0
        for request in group:
            request.outcomes = outcomes[start : start + len(request.items)]
            start += len(request.items)
            request.wake()
        self.groups += 1
        self.grouped_items += len(items)


def _settle(answered: asyncio.Future[None]) -> None:
    if not answered.done():
        answered.set_result(None)


async def _committed(answered: asyncio.Future[None]) -> None:
    """Wait for a group that is committing, through any cancellation: the commit cannot be
    taken back, and it takes no longer than one transaction."""
    while not answered.done():
        try:
            await asyncio.shield(answered)
        except asyncio.CancelledError:
            continue
