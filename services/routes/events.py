"""Posting station events: one or a batch, each judged on its own."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, Request
from fastapi.responses import Response

from schemas.api import IngestResponse, Problem
from schemas.auth import Role
from services.kafka_sink import BrokerUnavailableError
from services.problems import problem
from services.routes.bodies import json_body, read_events_body
from services.routes.deps import Caller, SystemDep
from streams import metrics
from streams.backlog import RuntimeBusyError

router = APIRouter(tags=["events"])


@router.post(
    "/v1/events",
    response_model=IngestResponse,
    status_code=202,
    responses={
        200: {
            "description": "Batch answered item by item, or a duplicate",
            "model": IngestResponse,
        },
        400: {"model": Problem},
        409: {"model": Problem},
        413: {"model": Problem},
        415: {"model": Problem},
        422: {"model": Problem},
        503: {
            "model": Problem,
            "description": "Nothing stored: the backlog is full, or (distributed mode) "
            "the broker did not ack; see Retry-After",
        },
    },
    openapi_extra=json_body({"$ref": "#/components/schemas/EventOrBatch"}),
)
async def post_events(request: Request, who: Caller, system: SystemDep) -> Response:
    """One event (a JSON object) or a batch (a JSON array of up to the batch limit).
    Each event is acknowledged only once it is durable. Operator keys post for the
    stations named on them."""
    who.require(Role.operator)
    items, is_batch = await read_events_body(request, system.settings)
    try:
        result = await system.ingest.handle_async(items, system.clock.now(), who.may_post_for)
    except BrokerUnavailableError as exc:
        unavailable = problem(503, "Event broker unavailable", str(exc))
        unavailable.headers["Retry-After"] = str(exc.retry_after_seconds)
        return unavailable
    except RuntimeBusyError as exc:
        busy = problem(503, exc.title, str(exc))
        busy.headers["Retry-After"] = str(exc.retry_after_seconds)
        return busy
    counted = Counter(
        (_kind_label(item), outcome.result.value)
        for outcome, item in zip(result.results, items, strict=True)
    )
    for (label, outcome_value), count in counted.items():
        metrics.EVENTS_INGESTED.labels(label, outcome_value).inc(count)
    if is_batch:
        return _answer(result, 200)
    only = result.results[0]
    if only.status >= 400:
        return problem(
            only.status,
            {
                403: "Forbidden",
                409: "Event conflicts with a stored one",
            }.get(only.status, "Event rejected"),
            "; ".join(f"{e.field}: {e.reason}" if e.field else e.reason for e in only.errors),
            only.errors,
        )
    return _answer(result, only.status)


def _kind_label(item: object) -> str:
    kind = item.get("type") if isinstance(item, dict) else None
    return kind if kind in ("visit", "check_in", "health_check") else "unknown"


def _answer(result: IngestResponse, status: int) -> Response:
    """Serialised by pydantic directly: through dicts and `json` it was a fifth of a batch."""
    return Response(result.model_dump_json(), status_code=status, media_type="application/json")
