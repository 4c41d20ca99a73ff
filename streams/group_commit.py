"""Group commit: the posts that arrive while one transaction commits share the next one.

Each caller queues its items and waits. Whoever finds no commit running becomes the leader:
it takes everything queued (up to a limit), commits it in one transaction (one fsync), hands
every waiter its own outcomes, and passes the lead to the oldest caller still queued, who
commits the next group. No thread of its own, so it works the same whether or not the
processor runs. Each caller waits on its own event and is woken once, when its outcomes are
ready or the lead is its: a shared condition would wake every waiter at every commit.

A caller that waited past its deadline while still queued is taken out before anything of it
is stored and told so; once its items are in a group, it gets their outcomes.
"""

from __future__ import annotations

import threading
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
    leads: bool = False  # handed the lead while still queued: commits the next group
    woken: threading.Event = field(default_factory=threading.Event)


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
        self._lock = threading.Lock()
        self._queued: list[_Request[_Item, _Outcome]] = []
        self._leading = False  # a leader is committing; while none is, nothing is queued
        self.groups = 0  # transactions committed, for metrics and tests
        self.grouped_items = 0

    def submit(self, items: Sequence[_Item], timeout_s: float) -> list[_Outcome]:
        """Store `items` in a group; returns their outcomes. Raises CommitTimeoutError when
        not taken into a group within `timeout_s` (then nothing of them is stored), or what
        the commit raised."""
        if not items:
            return []
        request: _Request[_Item, _Outcome] = _Request(items)
        with self._lock:
            self._queued.append(request)
            leads = not self._leading
            self._leading = True
        if not leads and not request.woken.wait(timeout_s):
            with self._lock:
                if not request.leads and request in self._queued:
                    self._queued.remove(request)
                    raise CommitTimeoutError(f"not committed within {timeout_s:g} s")
            request.woken.wait()  # taken into a group, or handed the lead, just now
        if not request.done:
            self._lead()
        return self._answer(request)

    def _lead(self) -> None:
        """Commit the oldest queued requests, then pass the lead on (or lay it down)."""
        with self._lock:
            group = self._take()
        try:
            self._run(group)
        finally:
            with self._lock:
                if self._queued:
                    successor = self._queued[0]
                    successor.leads = True
                    successor.woken.set()
                else:
                    self._leading = False

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
                request.woken.set()
            return
        start = 0
        for request in group:
            request.outcomes = outcomes[start : start + len(request.items)]
            start += len(request.items)
            request.done = True
            request.woken.set()
        self.groups += 1
        self.grouped_items += len(items)

    @staticmethod
    def _answer(request: _Request[_Item, _Outcome]) -> list[_Outcome]:
        if request.error is not None:
            raise request.error
        return request.outcomes
