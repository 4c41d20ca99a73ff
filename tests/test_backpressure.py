"""The embedded event path is bounded: over the backlog limit posts are refused whole with
503 and Retry-After, /healthz says lagging, and the lag is exported; posts committed together
share one transaction, and a post whose turn never came stores nothing."""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from schemas.events import parse_event
from services.system import EmbeddedSystem
from streams.backlog import Backlog, BacklogFullError
from streams.clock import ManualClock
from streams.group_commit import CommitTimeoutError, GroupCommit
from tests.conftest import (
    EventFactory,
    LiveServer,
    load,
    serve,
    settings_for,
    tiny_city,
    tiny_system,
)
from waystation.settings import Settings

LIMIT = 5
WAIT_S = 10.0


# --- the backlog's accounting -----------------------------------------------------------------


def test_backlog_refuses_a_post_whole_and_gives_back_room() -> None:
    backlog = Backlog(max_events=LIMIT, retry_after_seconds=3)
    backlog.reserve(3)
    with pytest.raises(BacklogFullError) as refused:
        backlog.reserve(3)
    assert refused.value.retry_after_seconds == 3
    assert backlog.lag().events == 3  # the refused post took nothing
    backlog.admit(2)  # two accepted ...
    backlog.release(1)  # ... one was a duplicate
    assert backlog.lag().events == 2
    backlog.reserve(3)
    backlog.release(3)
    backlog.applied(2)
    lag = backlog.lag()
    assert (lag.events, lag.seconds) == (0, 0.0)


def test_backlog_lag_seconds_is_the_age_of_the_oldest_unapplied_event() -> None:
    backlog = Backlog(max_events=100, retry_after_seconds=1)
    backlog.admit(4, reserved=False)
    time.sleep(0.05)
    backlog.admit(4, reserved=False)
    assert backlog.lag().seconds >= 0.05
    backlog.applied(4)  # the older group is done; the newer one is younger
    assert backlog.lag().seconds < 0.05
    assert backlog.lag().events == 4


# --- group commit -----------------------------------------------------------------------------


def test_posts_waiting_while_a_commit_runs_share_the_next_one() -> None:
    first_entered, release_first = threading.Event(), threading.Event()
    groups: list[list[int]] = []

    def commit(items: list[int]) -> list[int]:
        groups.append(list(items))
        if len(groups) == 1:
            first_entered.set()
            assert release_first.wait(WAIT_S)
        return [item * 10 for item in items]

    committer: GroupCommit[int, int] = GroupCommit(commit, max_items=100)
    answers: dict[int, list[int]] = {}

    def post(items: list[int]) -> None:
        answers[items[0]] = committer.submit(items, timeout_s=WAIT_S)

    leader = threading.Thread(target=post, args=([1],))
    leader.start()
    assert first_entered.wait(WAIT_S)
    followers = [threading.Thread(target=post, args=([n, n + 1],)) for n in (10, 20, 30)]
    for thread in followers:
        thread.start()
    while len(committer._queued) < len(followers):  # all three wait behind the first
        time.sleep(0.005)
    release_first.set()
    for thread in [leader, *followers]:
        thread.join(WAIT_S)
    assert len(groups) == 2, "the three waiting posts are one transaction"
    assert sorted(groups[1]) == [10, 11, 20, 21, 30, 31]
    assert answers == {1: [10], 10: [100, 110], 20: [200, 210], 30: [300, 310]}


def test_a_post_whose_turn_does_not_come_stores_nothing() -> None:
    entered, release = threading.Event(), threading.Event()
    committed: list[int] = []

    def commit(items: list[int]) -> list[int]:
        entered.set()
        assert release.wait(WAIT_S)
        committed.extend(items)
        return items

    committer: GroupCommit[int, int] = GroupCommit(commit, max_items=100)
    slow = threading.Thread(target=committer.submit, args=([1], WAIT_S))
    slow.start()
    assert entered.wait(WAIT_S)
    with pytest.raises(CommitTimeoutError):
        committer.submit([2], timeout_s=0.05)
    release.set()
    slow.join(WAIT_S)
    assert committer.submit([3], timeout_s=WAIT_S) == [3]
    assert committed == [1, 3]


def test_many_concurrent_posts_each_get_their_own_outcomes_once() -> None:
    """Forty threads posting at once, some with deadlines too short to be met: every item
    stored is stored once and answered to its own caller; no group passes the limit; a caller
    told it timed out had nothing stored."""
    most = 7
    committed: list[int] = []

    def commit(items: list[int]) -> list[int]:
        assert len(items) <= most
        committed.extend(items)
        time.sleep(0.001)  # a commit takes a while: posts pile up behind it
        return [item * 10 for item in items]

    committer: GroupCommit[int, int] = GroupCommit(commit, max_items=most)
    answers: dict[int, list[int] | str] = {}
    rng = random.Random(7)
    posts = {n: [n * 100 + i for i in range(rng.randint(1, 4))] for n in range(1, 41)}
    deadlines = {n: (0.0005 if n % 9 == 0 else WAIT_S) for n in posts}

    def post(n: int) -> None:
        try:
            answers[n] = committer.submit(posts[n], timeout_s=deadlines[n])
        except CommitTimeoutError:
            answers[n] = "timed out"

    threads = [threading.Thread(target=post, args=(n,)) for n in posts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    assert set(answers) == set(posts)
    stored = [n for n, answer in answers.items() if answer != "timed out"]
    assert sorted(committed) == sorted(item for n in stored for item in posts[n])
    for n in stored:
        assert answers[n] == [item * 10 for item in posts[n]]
    assert all(deadlines[n] < WAIT_S for n in posts if n not in stored)
    assert committer.submit([9999], timeout_s=WAIT_S) == [99990], "the lead was laid down"


def test_a_failed_commit_reaches_every_post_of_its_group() -> None:
    def commit(items: list[int]) -> list[int]:
        raise OSError("disk full")

    committer: GroupCommit[int, int] = GroupCommit(commit, max_items=100)
    with pytest.raises(OSError, match="disk full"):
        committer.submit([1, 2], timeout_s=WAIT_S)


# --- the real server over the limit -----------------------------------------------------------


@pytest.fixture
def held(tmp_path: Path, clock: ManualClock) -> Iterator[tuple[EmbeddedSystem, threading.Event]]:
    """A started system with a backlog limit of LIMIT events whose processor is held still
    (by holding its lock) until the returned event is set."""
    settings = settings_for(tmp_path, max_unapplied_events=LIMIT, lagging_after_seconds=0.2)
    system = EmbeddedSystem(settings, clock=clock, autotick=False, simulate=False)
    load(system, tiny_city(settings))
    system.start()
    go = threading.Event()
    holding = threading.Event()

    def hold() -> None:
        with system.runtime.lock:
            holding.set()
            go.wait(WAIT_S * 3)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert holding.wait(WAIT_S)
    try:
        yield system, go
    finally:
        go.set()
        holder.join(WAIT_S)
        system.stop()


def stored_ids(system: EmbeddedSystem, bodies: list[dict[str, Any]]) -> set[str]:
    with system.store.transaction(readonly=True) as tx:
        return {b["event_id"] for b in bodies if tx.events.get(b["event_id"]) is not None}


def test_over_the_backlog_limit_posts_are_refused_and_healthz_says_lagging(
    held: tuple[EmbeddedSystem, threading.Event], event: EventFactory
) -> None:
    system, go = held
    with serve(system) as live:
        assert live.client.get("/healthz").json()["status"] == "ok"
        first = [event("visit", "T-0001") for _ in range(LIMIT - 1)]
        answer = live.client.post("/v1/events", json=first)
        assert answer.status_code == 200
        assert answer.json()["accepted"] == LIMIT - 1

        over = [event("visit", "T-0002") for _ in range(2)]  # one would fit, two do not
        refused = live.client.post("/v1/events", json=over)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == str(system.settings.backlog_retry_after_seconds)
        problem = refused.json()
        assert problem["title"] == "Backlog full"
        assert "nothing of this request was stored" in problem["detail"]
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert stored_ids(system, over) == set(), "a refused post is not half accepted"

        single = live.client.post("/v1/events", json=event("visit", "T-0002"))
        assert single.status_code == 202  # exactly fills the limit

        time.sleep(system.settings.lagging_after_seconds + 0.1)
        health = live.client.get("/healthz").json()
        assert health["status"] == "lagging"
        assert health["lag_events"] == LIMIT
        assert health["lag_seconds"] > system.settings.lagging_after_seconds
        metrics = live.client.get("/metrics").text
        assert f"waystation_unapplied_events {LIMIT:.1f}" in metrics
        assert "waystation_lag_seconds " in metrics

        go.set()  # the processor catches up
        system.runtime.drain()
        health = live.client.get("/healthz").json()
        assert (health["status"], health["lag_events"], health["lag_seconds"]) == ("ok", 0, 0.0)
        retried = live.client.post("/v1/events", json=over)
        assert retried.status_code == 200
        assert retried.json()["accepted"] == len(over)
        assert stored_ids(system, first + over) == {b["event_id"] for b in first + over}


@contextmanager
def held_commits(
    settings: Settings, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LiveServer, threading.Event, threading.Event]]:
    """A served tiny city whose commits wait until released; yields the server, an event set
    once a commit has begun, and the event that releases it (set again on the way out)."""
    with tiny_system(settings, clock) as system:
        entered, release = threading.Event(), threading.Event()
        commit = system.runtime._commits._commit

        def slow_commit(items: list[Any]) -> Any:
            entered.set()
            assert release.wait(WAIT_S)
            return commit(items)

        monkeypatch.setattr(system.runtime._commits, "_commit", slow_commit)
        try:
            with serve(system) as live:
                yield live, entered, release
        finally:
            release.set()


def test_a_post_that_waits_too_long_to_commit_is_refused_and_stored_nowhere(
    tmp_path: Path, clock: ManualClock, event: EventFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(tmp_path, commit_wait_seconds=0.2)
    with held_commits(settings, clock, monkeypatch) as (live, entered, release):
        system = live.system
        first = event("visit", "T-0001")
        holder = threading.Thread(
            target=live.client.post, args=("/v1/events",), kwargs={"json": first}
        )
        holder.start()
        assert entered.wait(WAIT_S)
        late = [event("visit", "T-0002"), event("visit", "T-0001")]
        refused = live.client.post("/v1/events", json=late)
        assert refused.status_code == 503
        assert refused.json()["title"] == "Not committed in time"
        assert "nothing of this request was stored" in refused.json()["detail"]
        assert int(refused.headers["Retry-After"]) >= 1
        release.set()
        holder.join(WAIT_S)
        system.runtime.drain()
        assert stored_ids(system, late) == set()
        assert stored_ids(system, [first]) == {first["event_id"]}
        assert system.runtime.lag.events == 0  # the refused post gave its room back


def test_a_client_that_disconnects_mid_body_is_not_a_server_error(
    live: Any, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = live.url.removeprefix("http://").split(":")
    key = live.client.headers["Authorization"]
    with caplog.at_level(logging.ERROR), socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: {key}\r\nContent-Length: 5000\r\n\r\n".encode()
            + b'[{"event_id": "'
        )
        time.sleep(0.3)
    time.sleep(0.5)  # the server notices the closed connection
    assert live.client.get("/healthz").status_code == 200
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


def test_a_request_running_out_of_time_is_answered_before_the_timeout_with_nothing_stored(
    tmp_path: Path, clock: ManualClock, event: EventFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request's own deadline (its timeout less the margin) ends its wait for a commit,
    so it is answered 'not committed', truthfully, before the timeout could answer for it."""
    settings = settings_for(tmp_path, request_timeout_seconds=2.0, request_store_margin_seconds=1.5)
    with held_commits(settings, clock, monkeypatch) as (live, entered, release):
        system = live.system
        holder = threading.Thread(
            target=system.runtime.submit,
            args=([parse_event(json.dumps(event("visit")), now=clock.now())],),
        )
        holder.start()
        assert entered.wait(WAIT_S)
        late = [event("visit", "T-0002")]
        started = time.monotonic()
        refused = live.client.post("/v1/events", json=late)
        waited = time.monotonic() - started
        assert refused.status_code == 503
        assert refused.json()["title"] == "Not committed in time"
        assert waited < settings.request_timeout_seconds
        release.set()
        holder.join(WAIT_S)
        system.runtime.drain()
        assert stored_ids(system, late) == set()
