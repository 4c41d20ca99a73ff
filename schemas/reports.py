"""How a report is asked for: its format and language, and a signed download link."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from schemas.geography import BoundaryLevel

MAX_REPORT_ZONES = 5000
MAX_ID = 2**63 - 1  # a 64-bit key


class ReportFormat(StrEnum):
    json = "json"
    geojson = "geojson"
    csv = "csv"
    html = "html"


class Language(StrEnum):
    zh_cn = "zh-CN"
    en = "en"


class LinkRequest(BaseModel):
    """A gap report (district, or an outline with `within`) or a saved scenario's report."""

    model_config = ConfigDict(extra="forbid")

    format: ReportFormat = ReportFormat.html
    lang: Language = Language.zh_cn
    district: str | None = None
    within: str | None = None
    level: BoundaryLevel = BoundaryLevel.subdistrict
    limit: int = Field(100, ge=1, le=MAX_REPORT_ZONES)
    scenario_id: int | None = Field(None, ge=1, le=MAX_ID)


class Link(BaseModel):
    url: str = Field(description="Opens or downloads the report without a key, until it expires")
    expires_at: datetime
