"""The request time limit against work that cannot be stopped: a post whose events were
already committing when its time ran out waits for the commit, and its own answer (what was
stored) goes out, not a 503 that would claim nothing was stored, and never an error."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from services.request_guard import RequestGuard
from tests.conftest import settings_for

LIMIT_S = 0.05
COMMIT_S = 0.3


async def committing_post(scope: Any, receive: Any, send: Any) -> None:
    loop = asyncio.get_running_loop()
    committed = loop.create_future()
    loop.call_later(COMMIT_S, committed.set_result, None)
    while not committed.done():  # as a group commit under way waits: through cancellation
        try:
            await asyncio.shield(committed)
        except asyncio.CancelledError:
            continue
    await send({"type": "http.response.start", "status": 202, "headers": []})
    await send({"type": "http.response.body", "body": b'{"accepted":1}'})


def test_an_answer_begun_after_the_time_limit_fired_goes_out_whole(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, request_timeout_seconds=LIMIT_S)
    guard = RequestGuard(committing_post, settings=settings, headers={}, api_prefix="/v1")
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/v1/events", "method": "POST", "headers": []}
    asyncio.run(guard(scope, receive, send))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 202, "the stored post's own answer, not 503"
    assert sent[1]["body"] == b'{"accepted":1}'
