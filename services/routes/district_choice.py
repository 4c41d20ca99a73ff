"""The one district a per-district view is for: the one asked, else the key's only district.
History and statistics are kept per district, so unlike the live views they have no answer
for "every district"."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from schemas.api import FieldError
from services.auth import Principal
from services.live import LiveHub
from services.problems import problem


def one_district(
    hub: LiveHub, who: Principal, district: str | None, kept: str
) -> str | JSONResponse:
    """The district, or a 422 when none can be chosen (`kept` says what is kept per district)
    or a 404 when it is unknown; a district outside the key's scope raises 403."""
    scope = who.district_scope()
    if district is None and scope is not None and len(scope) == 1:
        district = next(iter(scope))
    if district is None:
        return problem(
            422,
            "Choose a district",
            f"{kept} per district: name one",
            [FieldError(field="district", reason="is required")],
        )
    known = hub.data.known_districts()
    if district not in known:
        listed = ", ".join(known)
        return problem(404, "Unknown district", f"no district {district!r}; known: {listed}")
    who.check_district(district)
    return district
