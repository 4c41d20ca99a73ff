"""Group commit for requests on the event loop: they share transactions with each other and
with threads, a request cancelled or out of time while still queued stores nothing, and one
whose group is already committing is answered with what was stored."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import streams.group_commit as group_commit
from streams.group_commit import CommitTimeoutError, GroupCommit

WAIT_S = 10.0


class HeldCommits:
    """A commit function whose first transaction waits until released, so that posts pile up
    behind it; it records each group."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, items: list[int]) -> list[int]:
        self.groups.append(list(items))
        if len(self.groups) == 1:
            self.entered.set()
            assert self.release.wait(WAIT_S)
        return [item * 10 for item in items]

    @property
    def committed(self) -> list[int]:
        return [item for group in self.groups for item in group]


async def until(condition: object, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.002)


def test_requests_waiting_on_the_loop_share_one_transaction_with_threads() -> None:
    commits = HeldCommits()
    committer: GroupCommit[int, int] = GroupCommit(commits, max_items=100)
    first = threading.Thread(target=committer.submit, args=([1], WAIT_S))
    first.start()
    assert commits.entered.wait(WAIT_S)
    from_thread: list[list[int]] = []
    second = threading.Thread(target=lambda: from_thread.append(committer.submit([5], WAIT_S)))

    async def main() -> list[list[int]]:
        posts = [
            asyncio.ensure_future(committer.submit_async([n, n + 1], WAIT_S)) for n in (10, 20)
        ]
        second.start()
        await until(lambda: len(committer._queued) == 3)
        commits.release.set()
        return await asyncio.gather(*posts)

    answers = asyncio.run(main())
    first.join(WAIT_S)
    second.join(WAIT_S)
    assert answers == [[100, 110], [200, 210]]
    assert from_thread == [[50]]
    assert len(commits.groups) == 2, "the three waiting posts are one transaction"
    assert sorted(commits.groups[1]) == [5, 10, 11, 20, 21]


def test_a_request_cancelled_while_queued_stores_nothing() -> None:
    commits = HeldCommits()
    committer: GroupCommit[int, int] = GroupCommit(commits, max_items=100)

    async def main() -> None:
        held = asyncio.ensure_future(committer.submit_async([1], WAIT_S))
        await until(commits.entered.is_set)
        doomed = asyncio.ensure_future(committer.submit_async([2], WAIT_S))
        await until(lambda: len(committer._queued) == 1)
        doomed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await doomed
        commits.release.set()
        assert await held == [10]
        assert await committer.submit_async([3], WAIT_S) == [30]

    asyncio.run(main())
    assert commits.committed == [1, 3]


def test_a_request_out_of_time_while_queued_stores_nothing() -> None:
    commits = HeldCommits()
    committer: GroupCommit[int, int] = GroupCommit(commits, max_items=100)

    async def main() -> None:
        held = asyncio.ensure_future(committer.submit_async([1], WAIT_S))
        await until(commits.entered.is_set)
        with pytest.raises(CommitTimeoutError):
            await committer.submit_async([2], timeout_s=0.05)
        commits.release.set()
        assert await held == [10]

    asyncio.run(main())
    assert commits.committed == [1]


def test_a_request_cancelled_while_its_group_commits_is_answered_with_what_was_stored() -> None:
    """The commit cannot be taken back: the request waits for it and returns its outcomes,
    so that the answer can say they were stored."""
    commits = HeldCommits()
    committer: GroupCommit[int, int] = GroupCommit(commits, max_items=100)

    async def main() -> None:
        post = asyncio.ensure_future(committer.submit_async([7, 8], WAIT_S))
        await until(commits.entered.is_set)  # its group is the one committing
        post.cancel()
        await asyncio.sleep(0.01)
        assert not post.done()
        commits.release.set()
        assert await post == [70, 80]

    asyncio.run(main())
    assert commits.committed == [7, 8]


def test_a_failed_commit_reaches_every_request_of_its_group() -> None:
    def commit(items: list[int]) -> list[int]:
        raise OSError("disk full")

    committer: GroupCommit[int, int] = GroupCommit(commit, max_items=100)

    async def main() -> None:
        with pytest.raises(OSError, match="disk full"):
            await committer.submit_async([1, 2], WAIT_S)

    asyncio.run(main())


def test_the_committer_thread_stops_when_no_post_comes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(group_commit, "COMMITTER_LINGER_S", 0.05)
    committer: GroupCommit[int, int] = GroupCommit(lambda items: items, max_items=100)

    def committers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "waystation-commit"]

    before = len(committers())
    assert committer.submit([1], WAIT_S) == [1]
    deadline = time.monotonic() + WAIT_S
    while len(committers()) > before:
        assert time.monotonic() < deadline, "the committer thread kept running"
        time.sleep(0.01)
    assert committer.submit([2], WAIT_S) == [2], "a new post starts it again"
