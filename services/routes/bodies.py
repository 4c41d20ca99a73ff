"""Bodies the routers read by hand (to judge each item on its own) rather than through a
declared parameter: how they are read, and how the OpenAPI document describes them."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from schemas.api import Problem
from services.ingest import check_media_type, read_body, too_large
from waystation.settings import Settings

IMPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem},
    403: {"model": Problem},
    413: {"model": Problem},
    415: {"model": Problem},
    422: {"model": Problem},
}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` declaring a required JSON body of this schema."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def one_or_many(ref: str) -> dict[str, Any]:
    """One object of the referenced schema, or an array of them."""
    item = {"$ref": f"#/components/schemas/{ref}"}
    return {"oneOf": [item, {"type": "array", "items": item}]}


async def receive(request: Request, limit_bytes: int) -> bytes:
    """The body, read chunk by chunk and abandoned as soon as it passes `limit_bytes`
    (a declared Content-Length over it is refused before reading anything), so that no body,
    chunked or not, is ever held whole beyond the limit."""
    check_media_type(request.headers.get("content-type"))
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit_bytes:
        raise too_large(declared, limit_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit_bytes:
            raise too_large(f"more than {limit_bytes}", limit_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_events_body(request: Request, settings: Settings) -> tuple[list[Any], bool]:
    """A posted event or batch of events, under the event limits."""
    body = await receive(request, settings.body_max_bytes)
    return read_body(body, request.headers.get("content-type"), settings)


async def read_import_body(request: Request, settings: Settings) -> tuple[list[Any], bool]:
    """An import's items (stations, a FeatureCollection, demand cells), under the import
    limits."""
    import_settings = settings.model_copy(update={"body_max_bytes": settings.import_body_max_bytes})
    body = await receive(request, settings.import_body_max_bytes)
    return read_body(
        body,
        request.headers.get("content-type"),
        import_settings,
        max_items=settings.import_max_items,
    )
