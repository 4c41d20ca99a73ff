"""JSON Schema files for the wire formats, so that station apps in any language can validate
what they send. The files under schemas/json are generated from the models, never edited."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas import SCHEMA_VERSION
from schemas.events import EVENT_ADAPTER, CheckInPayload, HealthCheckPayload, VisitPayload
from schemas.stations import Station

JSON_DIR = Path(__file__).parent / "json"


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema document."""
    models: dict[str, type[BaseModel]] = {
        "station": Station,
        "visit_payload": VisitPayload,
        "check_in_payload": CheckInPayload,
        "health_check_payload": HealthCheckPayload,
    }
    documents = {"event": EVENT_ADAPTER.json_schema()}
    documents.update({name: model.model_json_schema() for name, model in models.items()})
    for name, document in documents.items():
        document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        document["$id"] = f"urn:waystation:schema:{name}:v{SCHEMA_VERSION}"
    return {f"{name}.json": documents[name] for name in sorted(documents)}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export(out_dir: Path = JSON_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in json_schemas().items():
        path = out_dir / name
        path.write_text(render(document), encoding="utf-8")
        written.append(path)
    return written
