"""Bodies the routers read by hand (to judge each item on its own) rather than through a
declared parameter: how they are read, and how the OpenAPI document describes them."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from schemas.api import Problem
from services.ingest import read_body
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


async def read_import_body(request: Request, settings: Settings) -> tuple[list[Any], bool]:
    """An import's items (stations or a FeatureCollection), under the import limits."""
    import_settings = settings.model_copy(update={"body_max_bytes": settings.import_body_max_bytes})
    body = await request.body()
    return read_body(
        body,
        request.headers.get("content-type"),
        import_settings,
        max_items=settings.import_max_items,
    )
