"""Why a station is in its state, or why an alert is raised: a code and its values, so that
each page words it in its own language. `text()` is the English wording logs and the API's
older `detail`/`state_reason` fields keep."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class ReasonCode(StrEnum):
    never_heard_from = "never_heard_from"
    checked_in = "checked_in"  # values: status (paused, closed)
    outside_opening_hours = "outside_opening_hours"  # values: hours (OSM opening_hours)
    between_stops = "between_stops"  # a mobile unit not at any stop of its tour
    no_heartbeat = "no_heartbeat"  # values: since (RFC 3339)
    amenities_out = "amenities_out"  # values: amenities (codes)
    open_and_reporting = "open_and_reporting"
    uncovered_demand = "uncovered_demand"  # values: uncovered_workers, demand_workers
    over_capacity = "over_capacity"  # values: visitors, window_minutes, seats, limit


ReasonValue = str | float | int | list[str]


class Reason(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: ReasonCode
    values: dict[str, ReasonValue] = Field(default_factory=dict)

    def text(self) -> str:
        v = self.values
        match self.code:
            case ReasonCode.never_heard_from:
                return "never heard from"
            case ReasonCode.checked_in:
                return f"checked in {v['status']}"
            case ReasonCode.outside_opening_hours:
                return f"outside opening hours ({v['hours']})"
            case ReasonCode.between_stops:
                return "between stops"
            case ReasonCode.no_heartbeat:
                return f"no heartbeat since {v['since']}"
            case ReasonCode.amenities_out:
                return "out of service: " + ", ".join(v["amenities"])  # type: ignore[arg-type]
            case ReasonCode.open_and_reporting:
                return "open and reporting"
            case ReasonCode.uncovered_demand:
                return (
                    f"{v['uncovered_workers']:g} of {v['demand_workers']:g} "
                    "expected workers have no open station within reach"
                )
            case ReasonCode.over_capacity:
                return (
                    f"{v['visitors']} visitors in the last {v['window_minutes']:g} min "
                    f"for {v['seats']} seats (limit {v['limit']:g})"
                )


NEVER_HEARD_FROM = Reason(code=ReasonCode.never_heard_from)
