"""The guard every HTTP request passes: a request not answered in time gets a 503 instead of
holding its client, a client that disconnects mid-body is not a server error, and every
answer carries the security headers (API answers also `Cache-Control: no-store`, since
answers for a key must not be kept by browsers or proxies).

A plain ASGI middleware rather than Starlette's `BaseHTTPMiddleware`, whose per-request task
group and response streaming cost about a sixth of a small request's server time. The time
limit covers the wait for the answer to start, as before: a stream that has started (the
dashboard's live updates) runs as long as its client stays."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.problems import problem
from streams.backlog import REQUEST_DEADLINE
from waystation.settings import Settings

NO_STORE = (b"cache-control", b"no-store")
TIMED_OUT_RETRY_AFTER_S = 5


class RequestGuard:
    def __init__(
        self, app: ASGIApp, *, settings: Settings, headers: Mapping[str, str], api_prefix: str
    ) -> None:
        self.app = app
        self.settings = settings
        self.headers = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = self.settings
        extra = self.headers + ([NO_STORE] if scope["path"].startswith(self.api_prefix) else [])
        started = limited = False
        limit = asyncio.timeout(settings.request_timeout_seconds)

        async def send_guarded(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in extra if name not in present]
                message = {**message, "headers": headers}
                started = True
                if limited and not limit.expired():
                    limit.reschedule(None)  # the answer has begun: no more time limit
                # An answer begun after the limit fired comes from work that would not stop
                # (events committing when the time ran out): it goes out as it is, saying
                # what was stored.
            await send(message)

        deadline = REQUEST_DEADLINE.set(
            time.monotonic()
            + settings.request_timeout_seconds
            - settings.request_store_margin_seconds
        )
        try:
            async with limit:
                limited = True
                try:
                    await self.app(scope, receive, send_guarded)
                finally:
                    limited = False
        except TimeoutError:
            if started:
                raise
            answer = problem(
                503,
                "Request timed out",
                f"not answered within {settings.request_timeout_seconds:g} s; try again",
                headers={"Retry-After": str(TIMED_OUT_RETRY_AFTER_S)},
            )
            await answer(scope, receive, send_guarded)
        except ClientDisconnect:  # nobody is left to answer; not a server error
            if not started:
                gone = problem(400, "Client disconnected", "the request body was not received")
                await gone(scope, receive, send_guarded)
        finally:
            REQUEST_DEADLINE.reset(deadline)
