"""Two-step floating catchment (2SFCA) access.

Step one gives each station a supply ratio: its seats over the expected workers in its
catchment. Step two sums, per cell, the ratios of the counting stations that reach it (done
incrementally by CoverageIndex). Step one does not depend on other stations' states, which is
what lets step two be updated one station at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

NEGLIGIBLE_DEMAND_WORKERS = 1e-6  # below this a catchment has nobody to serve


def supply_ratio(
    capacity_seats: int, catchment: Iterable[str], demand: Mapping[str, float]
) -> float:
    """Seats per expected worker in the catchment; 0 where nobody is expected (no one to
    serve, and no division by zero)."""
    workers = sum(demand.get(cell, 0.0) for cell in catchment)
    return capacity_seats / workers if workers > NEGLIGIBLE_DEMAND_WORKERS else 0.0
