"""First start: an empty store gets the generated sample city, so there is something to see."""

from __future__ import annotations

import logging

from demo.sample_city import SampleCity, generate_sample_city
from store.unit_of_work import Store
from waystation.settings import Settings

log = logging.getLogger(__name__)

SAMPLE_CITY_KEY = "sample_city_seed"


def load_city(store: Store, city: SampleCity) -> None:
    with store.transaction() as tx:
        tx.stations.upsert_many(city.stations)
        tx.demand.replace(city.demand)
        tx.boundaries.replace([city.boundary, *city.subdistricts])


def ensure_sample_city(store: Store, settings: Settings) -> bool:
    """Load the sample city into an empty store. Returns whether it did."""
    with store.transaction() as tx:
        if tx.stations.count() or tx.demand.count():
            return False
    city = generate_sample_city(
        seed=settings.sample_seed,
        stations=settings.sample_stations,
        subdistricts=settings.sample_subdistricts,
        grid_resolution=settings.grid_resolution,
    )
    load_city(store, city)
    with store.transaction() as tx:
        tx.meta.set(SAMPLE_CITY_KEY, str(settings.sample_seed))
    log.info(
        "loaded the sample city: %d stations, %d subdistricts, %d demand cells",
        len(city.stations),
        len(city.subdistricts),
        len(city.demand),
    )
    return True
