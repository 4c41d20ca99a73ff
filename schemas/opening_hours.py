"""Opening hours in the common subset of OpenStreetMap's `opening_hours` syntax, the form the
registry keeps them in: `24/7`, or rules separated by `;`, each `[days] times` or `days off`,
e.g. `Mo-Fr 09:00-17:30; Sa 10:00-14:00`, `Mo-Su 22:00-06:00` (past midnight), `Su off`.

A later rule replaces an earlier one for the days it names, as in OSM. Anything else (public
holidays, months, sunrise) is refused with a reason, rather than guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
ALWAYS = "24/7"
MINUTES_PER_DAY = 24 * 60
PARSED_CACHE_SIZE = 4096  # distinct hours texts kept parsed; a city has a few dozen
_TIME = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


class OpeningHoursError(ValueError):
    """The text is not in the supported syntax; the message says where."""


@dataclass(frozen=True)
class OpeningHours:
    """Per weekday (Monday first), the open minute ranges [start, end) of that day; a range
    that runs past midnight is split, its tail kept on the next day."""

    text: str
    days: tuple[tuple[tuple[int, int], ...], ...]

    def is_open(self, local: datetime) -> bool:
        """Whether open at a local (district time zone) wall-clock time."""
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.days[local.weekday()])


@lru_cache(maxsize=PARSED_CACHE_SIZE)
def parse_opening_hours(text: str) -> OpeningHours:
    cleaned = text.strip()
    if cleaned == ALWAYS:
        return OpeningHours(text, tuple(((0, MINUTES_PER_DAY),) for _ in DAYS))
    days: list[list[tuple[int, int]]] = [[] for _ in DAYS]
    spill: list[list[tuple[int, int]]] = [[] for _ in DAYS]  # past-midnight tails, by day
    rules = [rule.strip() for rule in cleaned.split(";") if rule.strip()]
    if not rules:
        raise OpeningHoursError("empty")
    for rule in rules:
        head, _, rest = rule.partition(" ")
        if head[:1].isdigit():
            selected, times = list(range(len(DAYS))), rule
        else:
            selected, times = _days(head), rest.strip()
        for day in selected:
            days[day] = []
            spill[(day + 1) % len(DAYS)] = []
        if times == "off":
            continue
        if not times:
            raise OpeningHoursError(f"{rule!r}: times missing (e.g. 08:00-20:00)")
        for span in times.split(","):
            start, end = _span(span.strip())
            for day in selected:
                if end > start:
                    days[day].append((start, end))
                else:  # runs past midnight
                    days[day].append((start, MINUTES_PER_DAY))
                    if end:
                        spill[(day + 1) % len(DAYS)].append((0, end))
    merged = tuple(tuple(sorted(days[d] + spill[d])) for d in range(len(DAYS)))
    return OpeningHours(text, merged)


def _days(head: str) -> list[int]:
    selected: list[int] = []
    for part in head.split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise OpeningHoursError(f"{part!r}: days are Mo Tu We Th Fr Sa Su, or a range Mo-Fr")
        a, b = DAYS.index(first), DAYS.index(last or first)
        span = range(a, b + 1) if a <= b else [*range(a, len(DAYS)), *range(0, b + 1)]
        selected.extend(span)
    return selected


def _span(text: str) -> tuple[int, int]:
    start, sep, end = text.partition("-")
    if not sep:
        raise OpeningHoursError(f"{text!r}: a time range is HH:MM-HH:MM")
    a, b = _minute(start), _minute(end)
    if a in (b, MINUTES_PER_DAY):
        raise OpeningHoursError(f"{text!r}: an empty time range")
    return a, b % MINUTES_PER_DAY if b == MINUTES_PER_DAY else b


def _minute(text: str) -> int:
    found = _TIME.match(text.strip())
    if not found:
        raise OpeningHoursError(f"{text!r}: a time is HH:MM, 00:00 to 24:00")
    value = int(found.group(1)) * 60 + int(found.group(2))
    if value > MINUTES_PER_DAY:
        raise OpeningHoursError(f"{text!r}: a time is HH:MM, 00:00 to 24:00")
    return value
