"""Addresses to WGS84 points with geopy: the geocoder named in settings, its answers converted
from the datum it speaks (Baidu answers BD-09, Amap GCJ-02), requests paced by geopy's
RateLimiter, and every answer (a miss too) cached in the store so an address is asked once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlencode, urlsplit

from geopy.exc import GeopyError
from geopy.extra.rate_limiter import RateLimiter
from geopy.geocoders import BaiduV3, Nominatim
from geopy.geocoders.base import DEFAULT_SENTINEL, Geocoder
from geopy.location import Location

from geo.crs import Datum, to_wgs84
from store.geocode_cache import CachedAnswer
from store.unit_of_work import Store
from streams.clock import Clock
from waystation.settings import Settings

DATUM = {"nominatim": Datum.wgs84, "baidu": Datum.bd09, "amap": Datum.gcj02}
RETRIES = 2
COORD_DECIMALS = 7
NO_MATCH_REASON = "the geocoder found no match for this address"


class GeocoderUnavailableError(RuntimeError):
    """No geocoder is configured, or it cannot be reached."""


class AmapGeocoder(Geocoder):
    """Amap (Gaode) web-service geocoding; its coordinates are GCJ-02."""

    api_path = "/v3/geocode/geo"

    def __init__(self, api_key: str, *, base_url: str = "https://restapi.amap.com", **kwargs: Any):
        parts = urlsplit(base_url)
        super().__init__(scheme=parts.scheme, **kwargs)
        self.api_key = api_key
        self.api = f"{parts.scheme}://{parts.netloc}{self.api_path}"

    def geocode(
        self, query: str, *, exactly_one: bool = True, timeout: Any = DEFAULT_SENTINEL
    ) -> Any:
        url = f"{self.api}?{urlencode({'key': self.api_key, 'address': query})}"
        return self._call_geocoder(
            url, partial(self._parse, exactly_one=exactly_one), timeout=timeout
        )

    @staticmethod
    def _parse(page: dict[str, Any], exactly_one: bool) -> Any:
        if str(page.get("status")) != "1":
            raise GeopyError(f"Amap: {page.get('info', 'error')}")
        found = []
        for item in page.get("geocodes") or []:
            lon, lat = (float(v) for v in str(item["location"]).split(","))
            found.append(Location(item.get("formatted_address", ""), (lat, lon), item))
        if not found:
            return None
        return found[0] if exactly_one else found


def build_geocoder(settings: Settings) -> Geocoder:
    key = settings.geocoder_api_key.get_secret_value() if settings.geocoder_api_key else ""
    common = {"timeout": settings.geocoder_timeout_seconds}
    url = urlsplit(settings.geocoder_url) if settings.geocoder_url else None
    if settings.geocoder == "nominatim":
        if url is None:
            return Nominatim(user_agent=settings.geocoder_user_agent, **common)
        return Nominatim(
            user_agent=settings.geocoder_user_agent,
            domain=url.netloc + url.path.rstrip("/"),
            scheme=url.scheme,
            **common,
        )
    if settings.geocoder == "baidu":
        baidu = BaiduV3(api_key=key, scheme=url.scheme if url else None, **common)
        if url is not None:
            baidu.api = f"{url.scheme}://{url.netloc}{baidu.api_path}"
        return baidu
    if settings.geocoder == "amap":
        if url is None:
            return AmapGeocoder(key, **common)
        return AmapGeocoder(key, base_url=f"{url.scheme}://{url.netloc}", **common)
    raise GeocoderUnavailableError("no geocoder is configured (WAYSTATION_GEOCODER)")


@dataclass(frozen=True)
class Located:
    address: str
    lat: float | None  # WGS84; None: no match
    lon: float | None
    cached: bool

    @property
    def found(self) -> bool:
        return self.lat is not None and self.lon is not None


class AddressLocator:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Clock,
        geocoder: Geocoder | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._geocoder = geocoder
        self._limited: Callable[..., Any] | None = None

    def _lookup(self) -> Callable[..., Any]:
        if self._limited is None:
            geocoder = self._geocoder or build_geocoder(self.settings)
            self._limited = RateLimiter(
                geocoder.geocode,
                min_delay_seconds=self.settings.geocoder_min_delay_seconds,
                max_retries=RETRIES,
                error_wait_seconds=self.settings.geocoder_min_delay_seconds,
                swallow_exceptions=False,
            )
        return self._limited

    def locate(self, addresses: Sequence[str]) -> dict[str, Located]:
        """Each distinct address once: from the cache, else from the geocoder (then cached).
        Raises GeocoderUnavailableError when the geocoder fails (nothing is cached then)."""
        name = self.settings.geocoder
        if name == "none":
            raise GeocoderUnavailableError("no geocoder is configured (WAYSTATION_GEOCODER)")
        wanted = sorted({a.strip() for a in addresses if a and a.strip()})
        with self.store.transaction(readonly=True) as tx:
            cached = tx.geocodes.get_many(name, wanted)
        found = {a: Located(a, answer.lat, answer.lon, cached=True) for a, answer in cached.items()}
        lookup = self._lookup()
        for address in wanted:
            if address in found:
                continue
            try:
                location = lookup(address)
            except GeopyError as exc:
                raise GeocoderUnavailableError(
                    f"the geocoder failed on {address!r}: {exc}"
                ) from exc
            answer = CachedAnswer(None, None)
            if location is not None:
                lon, lat = to_wgs84(location.longitude, location.latitude, DATUM[name])
                answer = CachedAnswer(round(lat, COORD_DECIMALS), round(lon, COORD_DECIMALS))
            with self.store.transaction() as tx:
                tx.geocodes.put(name, address, answer, looked_up_at=self.clock.now())
            found[address] = Located(address, answer.lat, answer.lon, cached=False)
        return found
