"""Cells sorted into latitude bands, each band by longitude, for finding the cells near many
points at once by binary search rather than by a distance per pair (see `CellBands`).
Distances here are chords of the unit sphere, latitudes taken as they are; `geo.catchment`
turns a radius on the ellipsoid into the chords that bound it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Each band is ordered by longitude (shifted to [0, 360]) and keyed
# band * _BAND_KEY_SPAN_DEG + longitude, so that no band's keys meet the next band's.
_BAND_KEY_SPAN_DEG = 400.0
FULL_TURN_DEG = 360.0
_HALF_TURN_DEG = 180.0
_QUARTER_TURN_DEG = 90.0
# Candidate bounds are widened by this much, relative and in degrees, so that float rounding
# never loses a cell (a cell searched needlessly costs one distance).
_BOUND_SLACK = 1e-6
_BOUND_SLACK_DEG = 1e-9
_KEY_ROUNDING_ULPS = 4  # keys are sums: a few units of their last place


@dataclass(frozen=True)
class Runs:
    """Per point and latitude band, positions `start <= inner_start <= inner_stop <= stop`
    of `CellBands.keys`: every cell of the band within the outer chord of `point` is in
    `[start, stop)`, and every cell in `[inner_start, inner_stop)` is within the inner one."""

    point: np.ndarray
    start: np.ndarray
    inner_start: np.ndarray
    inner_stop: np.ndarray
    stop: np.ndarray


@dataclass(frozen=True)
class CellBands:
    """Given cells sorted into latitude bands, each band by longitude, for finding the cells
    within a chord of many points without a distance per pair: in one band, the cells that
    may be within the chord of a point have longitudes in one interval, and those surely
    within a smaller chord in another, so both are runs of this order (the outer one split in
    two across the antimeridian), found by binary search. Only the cells between the two
    runs need a distance."""

    height_deg: float  # of a band
    first_band: int
    keys: np.ndarray  # ascending: band (from first_band) * _BAND_KEY_SPAN_DEG + `turn(lon)`
    order: np.ndarray  # int64: the given cell at each position of `keys`
    lats: np.ndarray  # the cells' centres in that order
    lons: np.ndarray
    turned: np.ndarray  # `turn(lons)`
    slack_deg: float  # how far bounds on the keys are widened (or narrowed): their rounding

    @classmethod
    def of(cls, lats: np.ndarray, lons: np.ndarray, height_deg: float) -> CellBands:
        band = np.floor(lats / height_deg)
        first_band = int(band.min())
        turned = turn(lons)
        keys = (band - first_band) * _BAND_KEY_SPAN_DEG + turned
        order = np.argsort(keys)
        keys = keys[order]
        slack_deg = _BOUND_SLACK_DEG + _KEY_ROUNDING_ULPS * float(np.spacing(keys[-1]))
        return cls(
            height_deg,
            first_band,
            keys,
            order,
            lats[order],
            lons[order],
            turned[order],
            slack_deg,
        )

    def point_order(self, lats: np.ndarray, turned: np.ndarray) -> np.ndarray:
        """Points (at `lats` and `turned` longitudes) in the order of the keys of the bands
        they are in."""
        band = np.floor(lats / self.height_deg) - self.first_band
        return np.argsort(band * _BAND_KEY_SPAN_DEG + turned, kind="stable")

    def runs(
        self,
        lats: np.ndarray,
        turned: np.ndarray,
        cos_lats: np.ndarray,
        outer_chord: float,
        inner_chord: float,
    ) -> Runs:
        """The runs of cells within two chords (of the unit sphere, latitudes taken as they
        are) of points at `lats` and `turned` longitudes (`turn`), in every band the outer
        chord reaches; fastest for points in `point_order`."""
        reach_deg = math.degrees(2.0 * math.asin(min(1.0, outer_chord / 2.0)))
        reach_deg = reach_deg * (1.0 + _BOUND_SLACK) + _BOUND_SLACK_DEG
        height = self.height_deg
        south = np.floor((lats - reach_deg) / height).astype(np.int64)
        bands = np.floor((lats + reach_deg) / height).astype(np.int64) - south + 1
        # One band offset at a time: with the points in `point_order`, the searches then go
        # through the keys in almost ascending order, each near the last, several times
        # faster than in any order.
        offsets = range(int(bands.max()))
        point = np.concatenate([np.flatnonzero(bands > offset) for offset in offsets])
        band = south[point] + np.repeat(
            np.arange(len(offsets)), [np.count_nonzero(bands > offset) for offset in offsets]
        )
        # Each band's edges, widened, bound its cells' latitudes: the smallest and largest
        # cosine of latitude (east-west distances shrink with it), per band; and per point
        # the nearest and farthest latitude along the meridian. So they bound the
        # longitudes within each chord.
        lowest = int(south.min())
        edges = np.arange(lowest, int(band.max()) + 2) * height
        edge_south = edges[:-1] - _BOUND_SLACK_DEG
        edge_north = edges[1:] + _BOUND_SLACK_DEG
        abs_south, abs_north = np.abs(edge_south), np.abs(edge_north)
        poleward = np.minimum(np.maximum(abs_south, abs_north), _QUARTER_TURN_DEG)
        equatorward = np.where(
            (edge_south <= 0.0) & (edge_north >= 0.0), 0.0, np.minimum(abs_south, abs_north)
        )
        cos_poleward = np.cos(np.radians(poleward))
        cos_equatorward = np.cos(np.radians(equatorward))
        row = band - lowest
        lat, cos_lat = lats[point], cos_lats[point]
        band_south, band_north = edge_south[row], edge_north[row]
        nearest = np.maximum(np.maximum(band_south - lat, lat - band_north), 0.0)
        farthest = np.maximum(lat - band_south, band_north - lat)
        outer_half = _half_width_deg(outer_chord, nearest, cos_lat * cos_poleward[row])
        reached = outer_half >= 0.0
        point, row, outer_half = point[reached], row[reached], outer_half[reached]
        inner_half = _half_width_deg(
            inner_chord, farthest[reached], cos_lat[reached] * cos_equatorward[row]
        )
        outer_half = outer_half * (1.0 + _BOUND_SLACK) + self.slack_deg
        inner_half = inner_half * (1.0 - _BOUND_SLACK) - self.slack_deg
        middle = turned[point]
        base = (row + (lowest - self.first_band)) * _BAND_KEY_SPAN_DEG
        whole = outer_half >= _HALF_TURN_DEG
        west = np.where(whole, 0.0, middle - outer_half)
        east = np.where(whole, FULL_TURN_DEG, middle + outer_half)
        keys = self.keys
        start = keys.searchsorted(base + np.maximum(west, 0.0), side="left")
        stop = keys.searchsorted(base + np.minimum(east, FULL_TURN_DEG), side="right")
        # The inner run, cut to this side of the antimeridian (beyond it: outer runs only).
        inner_start = keys.searchsorted(base + np.maximum(middle - inner_half, 0.0), side="left")
        inner_stop = keys.searchsorted(
            base + np.minimum(middle + inner_half, FULL_TURN_DEG), side="right"
        )
        none = inner_half < 0.0
        inner_start[none] = stop[none]
        inner_stop[none] = stop[none]
        # Across the antimeridian, the part beyond it is a run at the band's other end.
        wraps_west = np.flatnonzero(west < 0.0)
        wraps_east = np.flatnonzero(east > FULL_TURN_DEG)
        if wraps_west.size or wraps_east.size:
            beyond_low = np.concatenate(
                [base[wraps_west] + west[wraps_west] + FULL_TURN_DEG, base[wraps_east]]
            )
            beyond_high = np.concatenate(
                [
                    base[wraps_west] + FULL_TURN_DEG,
                    base[wraps_east] + east[wraps_east] - FULL_TURN_DEG,
                ]
            )
            beyond_stop = keys.searchsorted(beyond_high, side="right")
            point = np.concatenate([point, point[wraps_west], point[wraps_east]])
            start = np.concatenate([start, keys.searchsorted(beyond_low, side="left")])
            inner_start = np.concatenate([inner_start, beyond_stop])
            inner_stop = np.concatenate([inner_stop, beyond_stop])
            stop = np.concatenate([stop, beyond_stop])
        return Runs(point, start, inner_start, inner_stop, stop)


def _half_width_deg(chord: float, meridian_deg: np.ndarray, cos_product: np.ndarray) -> np.ndarray:
    """How far apart in longitude two points can be and still be within `chord` of each
    other on the unit sphere, given their distance along the meridian and the product of the
    cosines of their latitudes (chord^2 = 4 sin^2(dlat / 2) + 4 cos cos sin^2(dlon / 2));
    negative when the meridian distance alone is too far, 180 when any longitude is near
    enough."""
    half_sin = _small_sin(np.radians(meridian_deg) / 2.0)
    left = chord * chord / 4.0 - half_sin * half_sin
    with np.errstate(divide="ignore", invalid="ignore"):
        share = left / cos_product
    share = np.where(np.isnan(share) | (share > 1.0), 1.0, share)  # x / 0: by a pole
    half = np.degrees(2.0 * np.arcsin(np.sqrt(np.maximum(share, 0.0))))
    return np.where(left < 0.0, -1.0, half)


def _small_sin(angle: np.ndarray) -> np.ndarray:
    """The sine of small angles (radians) from its series, without a trigonometric function
    per element: the first omitted term, angle^7 / 5040, is below 1e-16 of the result up to
    0.01 rad (60 km), far within the bounds' slack."""
    square = angle * angle
    return angle * (1.0 - square / 6.0 * (1.0 - square / 20.0))


def turn(lons: np.ndarray) -> np.ndarray:
    """Longitudes shifted to [0, 360] (without a remainder per element, which is slow)."""
    shifted = lons + _HALF_TURN_DEG
    return shifted - FULL_TURN_DEG * np.floor(shifted / FULL_TURN_DEG)


def expand_runs(
    starts: np.ndarray, lengths: np.ndarray, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Runs `starts[i]`, `starts[i] + 1`, ... of `lengths[i]` integers, all in one array, and
    each one's label (`labels[i]`, default `i`)."""
    lengths = np.maximum(lengths, 0)
    total = int(lengths.sum())
    label = np.repeat(np.arange(starts.size) if labels is None else labels, lengths)
    first = np.cumsum(lengths) - lengths
    return label, np.repeat(starts - first, lengths) + np.arange(total)
