"""Group commit: the posts that arrive while one transaction commits share the next one.

Each caller queues its items and waits. Whoever finds no commit running becomes the leader:
it takes everything queued (up to a limit), commits it in one transaction (one fsync), hands
every waiter its own outcomes, and steps down; the next waiter still queued leads the next
group. No thread of its own, so it works the same whether or not the processor runs.

A caller that waited past its deadline while still queued is taken out before anything of it
is stored and told so; once its items are in a group, it gets their outcomes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

_Item = TypeVar("_Item")
_Outcome = TypeVar("_Outcome")


class CommitTimeoutError(Exception):
    """The caller's turn did not come before its deadline; nothing of it was stored."""


@dataclass
class _Request(Generic[_Item, _Outcome]):
    items: Sequence[_Item]
    outcomes: list[_Outcome] = field(default_factory=list)
    error: BaseException | None = None
    done: bool = False


class GroupCommit(Generic[_Item, _Outcome]):
    def __init__(
        self,
        commit: Callable[[list[_Item]], list[_Outcome]],
        *,
        max_items: int,
        after_commit: Callable[[list[_Item], list[_Outcome]], None] | None = None,
    ) -> None:
        """`commit` stores a group and returns one outcome per item, in order; `after_commit`
        runs in the leader, still in commit order, before any waiter is answered."""
        self._commit = commit
        self._after_commit = after_commit
        self.max_items = max_items
        self._cond = threading.Condition()
        self._queued: list[_Request[_Item, _Outcome]] = []
        self._leading = False
        self.groups = 0  # transactions committed, for metrics and tests
        self.grouped_items = 0

    def submit(self, items: Sequence[_Item], timeout_s: float) -> list[_Outcome]:
        """Store `items` in a group; returns their outcomes. Raises CommitTimeoutError when
        not taken into a group within `timeout_s` (then nothing of them is stored), or what
        the commit raised."""
        if not items:
            return []
        request: _Request[_Item, _Outcome] = _Request(items)
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._queued.append(request)
            while not request.done and self._leading:
                left = deadline - time.monotonic()
                if left <= 0 and request in self._queued:
                    self._queued.remove(request)
                    raise CommitTimeoutError(f"not committed within {timeout_s:g} s")
                self._cond.wait(left if left > 0 else None)
            if request.done:
                return self._answer(request)
            self._leading = True
            group = self._take()
        try:
            self._run(group)
        finally:
            with self._cond:
                self._leading = False
                self._cond.notify_all()
        return self._answer(request)

    def _take(self) -> list[_Request[_Item, _Outcome]]:
        """The queued requests, oldest first, up to `max_items` (always at least one)."""
        group: list[_Request[_Item, _Outcome]] = []
        count = 0
        while self._queued and (not group or count + len(self._queued[0].items) <= self.max_items):
            request = self._queued.pop(0)
            group.append(request)
            count += len(request.items)
        return group

    def _run(self, group: list[_Request[_Item, _Outcome]]) -> None:
        items = [item for request in group for item in request.items]
        try:
            outcomes = self._commit(items)
            if self._after_commit is not None:
                self._after_commit(items, outcomes)
        except BaseException as exc:  # every waiter of the group learns of it
            for request in group:
                request.error = exc
                request.done = True
            return
        start = 0
        for request in group:
            request.outcomes = outcomes[start : start + len(request.items)]
            start += len(request.items)
            request.done = True
        self.groups += 1
        self.grouped_items += len(items)

    @staticmethod
    def _answer(request: _Request[_Item, _Outcome]) -> list[_Outcome]:
        if request.error is not None:
            raise request.error
        return request.outcomes
