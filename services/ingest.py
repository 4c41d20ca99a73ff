"""Turning a POSTed body into validated events and per-item answers.

Every item is judged on its own: one bad event in a batch is rejected with its reasons and
its valid neighbours are stored exactly once.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np
from pydantic import ValidationError

from schemas.api import EventOutcome, EventResult, FieldError, IngestResponse
from schemas.events import Event, EventType, ingest_context, validate_event
from services.privacy import hash_worker_ref
from store.repositories import AppendOutcome
from waystation.settings import Settings

JSON_CONTENT_TYPES = ("application/json",)
UTF8_BOM = b"\xef\xbb\xbf"
_QUOTE, _OPEN_ARRAY, _OPEN_OBJECT = b'"[{'
# An escaped high surrogate not followed by a low one, or a low one not after a high one:
# Python's parser lets them through into strings that cannot be encoded again.
_LONE_SURROGATE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
_NOT_BRACKET_OR_QUOTE = bytes(b for b in range(256) if b not in b'[]{}"')


class EventSink(Protocol):
    """Where validated events go: the embedded runtime's archive, or the broker."""

    def submit(self, events: Sequence[Event]) -> list[AppendOutcome]: ...

    async def submit_async(self, events: Sequence[Event]) -> list[AppendOutcome]: ...


class StationDirectory(Protocol):
    def existing_ids(self, ids: Sequence[str]) -> set[str]: ...


class Watermarks(Protocol):
    """When each station was last heard from, as far as processing knows: the embedded
    runtime's own ledger, or in distributed mode the API's read replica of what the workers
    wrote (a refresh behind them: an event may be answered `accepted` where `late` was due,
    never the reverse)."""

    def last_heard(self, ids: Sequence[str]) -> dict[str, datetime]: ...


class BodyError(Exception):
    """The request as a whole cannot be read; nothing in it is stored."""

    def __init__(self, status: int, title: str, detail: str, field: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = [FieldError(field=field, reason=detail)]


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def check_media_type(content_type: str | None) -> None:
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type not in JSON_CONTENT_TYPES:
        raise BodyError(
            415, "Unsupported media type", f"send application/json, not {media_type or 'nothing'}"
        )


def too_large(size: str | int, limit: int) -> BodyError:
    return BodyError(413, "Body too large", f"body is {size} bytes; the limit is {limit}")


def decode_json(body: bytes, max_depth: int) -> Any:
    """Parse a JSON body after checking its nesting, so that no depth of brackets can reach
    the parser's (or later the validators') recursion."""
    if body.startswith(UTF8_BOM):
        raise BodyError(400, "Bad encoding", "body starts with a byte order mark; send plain UTF-8")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(400, "Bad encoding", f"body is not UTF-8 (byte {exc.start})") from exc
    if b"\\u" in body and _LONE_SURROGATE.search(body):
        raise BodyError(
            400, "Bad encoding", "body escapes a lone UTF-16 surrogate (\\ud800-\\udfff)"
        )
    # A text nests no deeper than it has opening brackets: most bodies need no closer look.
    opening = body.count(b"[") + body.count(b"{")
    if opening > max_depth and json_depth(body, max_depth) > max_depth:
        raise BodyError(400, "JSON nested too deeply", f"JSON nests deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise BodyError(400, "Malformed JSON", f"body is not valid JSON: {exc}") from exc


def json_depth(body: bytes, give_up_above: int) -> int:
    """How deep arrays and objects nest in a JSON text (strings skipped), counted to at most
    one past `give_up_above`. Escaped backslashes and quotes are dropped first (pairs from the
    left, as a parser reads them), then everything but brackets and quotes; a bracket after
    an odd number of quotes is inside a string. Bytes and numpy operations only: a regex over
    the body, or a loop over its brackets, cost as much as parsing it."""
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = np.frombuffer(body.translate(None, _NOT_BRACKET_OR_QUOTE), np.uint8)
    quotes = marks == _QUOTE
    brackets = marks[~quotes & (np.cumsum(quotes) % 2 == 0)]
    if not len(brackets):
        return 0
    steps = np.where((brackets == _OPEN_ARRAY) | (brackets == _OPEN_OBJECT), 1, -1)
    return max(0, min(int(np.cumsum(steps).max()), give_up_above + 1))


def read_body(
    body: bytes, content_type: str | None, settings: Settings, max_items: int | None = None
) -> tuple[list[Any], bool]:
    """Returns the items and whether the body was a batch (a JSON array)."""
    max_items = settings.batch_max_events if max_items is None else max_items
    check_media_type(content_type)
    if len(body) > settings.body_max_bytes:
        raise too_large(len(body), settings.body_max_bytes)
    parsed = decode_json(body, settings.json_max_depth_levels)
    if isinstance(parsed, dict):
        return [parsed], False
    if isinstance(parsed, list):
        if not parsed:
            raise BodyError(422, "Empty batch", "a batch needs at least one event")
        if len(parsed) > max_items:
            raise BodyError(
                413,
                "Batch too large",
                f"batch has {len(parsed)} items; the limit is {max_items}",
            )
        return parsed, True
    raise BodyError(422, "Not an item", "body must be a JSON object or an array of them")


def field_errors(error: ValidationError) -> list[FieldError]:
    """pydantic's errors as (dotted field, plain reason), without the union tag in the path."""
    found = []
    tags = {t.value for t in EventType}
    for item in error.errors(include_url=False):
        loc = [str(p) for p in item["loc"]]
        if loc and loc[0] in tags:
            loc = loc[1:]
        kind = item["type"]
        if kind == "union_tag_invalid":
            found.append(
                FieldError(field="type", reason=f"must be one of {', '.join(sorted(tags))}")
            )
            continue
        if kind == "union_tag_not_found":
            found.append(FieldError(field="type", reason="is required"))
            continue
        reason = {
            "missing": "is required",
            "extra_forbidden": "is not a known field",
        }.get(kind, item["msg"].removeprefix("Value error, "))
        found.append(FieldError(field=".".join(loc), reason=reason))
    return found


@dataclass
class _Judged:
    """A request's items after validation: the answers of those refused, and those to store
    (with the ids of the ones that arrive too late to be applied)."""

    outcomes: list[EventOutcome | None]
    to_store: list[tuple[int, Event]]
    late: set[str]

    @property
    def events(self) -> list[Event]:
        return [event for _, event in self.to_store]

    def answer(self, stored: Sequence[AppendOutcome]) -> IngestResponse:
        outcomes = list(self.outcomes)
        for (index, event), result in zip(self.to_store, stored, strict=True):
            event_id = str(event.event_id)
            if result is AppendOutcome.accepted and event_id in self.late:
                outcomes[index] = EventOutcome(
                    index=index, event_id=event_id, result=EventResult.late, status=202
                )
            else:
                outcomes[index] = _stored(index, event_id, result)
        final = [o for o in outcomes if o is not None]
        counts = Counter(o.result for o in final)
        return IngestResponse(
            accepted=counts[EventResult.accepted],
            late=counts[EventResult.late],
            duplicates=counts[EventResult.duplicate],
            rejected=counts[EventResult.rejected],
            results=final,
        )


@dataclass
class Ingest:
    sink: EventSink
    stations: StationDirectory
    settings: Settings
    secret: bytes
    watermarks: Watermarks | None = None

    def handle(
        self,
        items: list[Any],
        now: datetime,
        may_post_for: Callable[[str], bool] = lambda _: True,
    ) -> IngestResponse:
        judged = self._judge(items, now, may_post_for)
        return judged.answer(self.sink.submit(judged.events))

    async def handle_async(
        self,
        items: list[Any],
        now: datetime,
        may_post_for: Callable[[str], bool] = lambda _: True,
    ) -> IngestResponse:
        """`handle` on the event loop: the sink's commit is awaited, not waited for."""
        judged = self._judge(items, now, may_post_for)
        return judged.answer(await self.sink.submit_async(judged.events))

    def _judge(
        self, items: list[Any], now: datetime, may_post_for: Callable[[str], bool]
    ) -> _Judged:
        """Each item validated and checked, before anything of the request is stored."""
        outcomes: list[EventOutcome | None] = [None] * len(items)
        valid: list[tuple[int, Event]] = []
        context = ingest_context(
            now,
            max_future_skew=timedelta(minutes=self.settings.max_future_skew_minutes),
            earliest=self.settings.earliest_occurred_at,
        )
        for index, item in enumerate(items):
            event_id = item.get("event_id") if isinstance(item, dict) else None
            if not isinstance(item, dict):
                outcomes[index] = _rejected(index, None, 422, "", "must be a JSON object")
                continue
            try:
                event = validate_event(item, context)
            except ValidationError as exc:
                outcomes[index] = EventOutcome(
                    index=index,
                    event_id=str(event_id) if event_id is not None else None,
                    result=EventResult.rejected,
                    status=422,
                    errors=field_errors(exc),
                )
                continue
            valid.append((index, event))
        known = self.stations.existing_ids([e.station_id for _, e in valid])
        to_store: list[tuple[int, Event]] = []
        for index, event in valid:
            if not may_post_for(event.station_id):
                outcomes[index] = _rejected(
                    index,
                    str(event.event_id),
                    403,
                    "station_id",
                    f"this key may not post for station {event.station_id}",
                )
            elif event.station_id not in known:
                outcomes[index] = _rejected(
                    index, str(event.event_id), 422, "station_id", "is not a registered station"
                )
            else:
                to_store.append((index, hash_worker_ref(event, self.secret)))
        return _Judged(outcomes, to_store, self._late([event for _, event in to_store]))

    def _late(self, events: Sequence[Event]) -> set[str]:
        """Ids of events older than their station's last report by more than the allowed
        lateness: archived, never applied (the ledger's rule, told to the poster)."""
        if self.watermarks is None or not events:
            return set()
        heard = self.watermarks.last_heard(sorted({e.station_id for e in events}))
        allowed = timedelta(minutes=self.settings.allowed_lateness_minutes)
        return {
            str(e.event_id)
            for e in events
            if e.station_id in heard and e.occurred_at < heard[e.station_id] - allowed
        }


def _rejected(
    index: int, event_id: str | None, status: int, field: str, reason: str
) -> EventOutcome:
    return EventOutcome(
        index=index,
        event_id=event_id,
        result=EventResult.rejected,
        status=status,
        errors=[FieldError(field=field, reason=reason)],
    )


def _stored(index: int, event_id: str, result: AppendOutcome) -> EventOutcome:
    if result is AppendOutcome.accepted:
        return EventOutcome(index=index, event_id=event_id, result=EventResult.accepted, status=202)
    if result is AppendOutcome.duplicate:
        return EventOutcome(
            index=index, event_id=event_id, result=EventResult.duplicate, status=200
        )
    return _rejected(
        index, event_id, 409, "event_id", "was already used for an event with different content"
    )
