"""What a benchmark reports, and the two files a run writes (`results.json`, `RESULTS.md`).

The JSON is the stable record (see DESIGN.md, "Benchmarks"): one object with the machine and
a list of results, each `{"name", "value", "unit", "target", "baseline", "ratio"}`. A name is
dotted, lower case, and ends in its unit (`.s`, `_ms`, `_s`, `_mb`...) or, for a result
compared with a baseline measured in the same run, in `vs_<baseline>`. RESULTS.md is the same
for people: a table, the machine, and what each benchmark measures.
"""

from __future__ import annotations

import json
import os
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

JSON_NAME = "results.json"
MARKDOWN_NAME = "RESULTS.md"
SIGNIFICANT_DIGITS = 4

UNITS = ("ms", "s", "mb", "per_s", "share")
# Rates, and shares of an optimum (0 to 1); every other unit is a cost.
HIGHER_IS_BETTER = frozenset({"per_s", "share"})
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+")
COMPARISON_PATTERN = re.compile(r".*\.vs_[a-z0-9_]+")


@dataclass(frozen=True)
class Result:
    """One measured number. `about` (what it measures) and `detail` (what this run saw) go to
    RESULTS.md only; the JSON keeps the stable fields."""

    name: str
    value: float
    unit: str
    target: float | None = None  # met when value <= target (>= for rates)
    baseline: str | None = None
    ratio: float | None = None  # baseline over ours: above 1 means we are faster
    about: str = ""
    detail: str = ""

    def __post_init__(self) -> None:
        problem = name_problem(self.name, self.unit)
        if problem:
            raise ValueError(problem)
        if (self.baseline is None) != (self.ratio is None):
            raise ValueError(f"{self.name}: a baseline needs a ratio and a ratio a baseline")

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        if self.unit in HIGHER_IS_BETTER:
            return self.value >= self.target
        return self.value <= self.target

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": _rounded(self.value),
            "unit": self.unit,
            "target": self.target,
            "baseline": self.baseline,
            "ratio": None if self.ratio is None else _rounded(self.ratio),
        }


def name_problem(name: str, unit: str) -> str | None:
    """Why `name` is not a valid result name for `unit`, or None. The last part of the name
    is the unit (`coverage.recompute.city.s`) or ends in it (`coverage.flip.city.median_ms`);
    a comparison with a baseline ends in `vs_<baseline>` instead."""
    if not NAME_PATTERN.fullmatch(name):
        return f"{name!r}: a name is dotted lower case, e.g. coverage.flip.city.median_ms"
    if COMPARISON_PATTERN.fullmatch(name):
        return None
    if unit not in UNITS:
        return f"{name!r}: unknown unit {unit!r} (known: {', '.join(UNITS)})"
    last = name.rsplit(".", 1)[1]
    if last != unit and not last.endswith(f"_{unit}"):
        return f"{name!r}: a result in {unit} must end in .{unit} or _{unit}"
    return None


def _rounded(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def machine() -> dict[str, Any]:
    """The machine a run was made on."""
    try:
        memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory_bytes = 0
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(memory_bytes / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write(
    out_dir: Path, results: Sequence[Result], machine_info: dict[str, Any], *, quick: bool
) -> tuple[Path, Path]:
    """Write results.json and RESULTS.md into `out_dir`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / JSON_NAME
    payload = {"machine": machine_info, "results": [result.to_json() for result in results]}
    json_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    markdown_path = out_dir / MARKDOWN_NAME
    markdown_path.write_text(markdown(results, machine_info, quick=quick), encoding="utf-8")
    return json_path, markdown_path


def _cell(value: float | None) -> str:
    return "" if value is None else f"{_rounded(value):g}"


def markdown(results: Sequence[Result], machine_info: dict[str, Any], *, quick: bool) -> str:
    met_marks = {True: "yes", False: "**no**", None: ""}
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench.run`); the same numbers are in "
        f"`{JSON_NAME}`. Lower is better for every value but rates (unit `per_s`); a target "
        "is met when the value is at most the target (at least, for a rate). `ratio` is the "
        "baseline's time over ours (above 1: we are faster).",
        "",
    ]
    if quick:
        lines += [
            "**Quick run** (`--quick`): reduced sizes for smoke testing; not comparable "
            "with a full run.",
            "",
        ]
    lines += [
        "| name | value | unit | target | met? | baseline | ratio |",
        "|---|---:|---|---:|---|---|---:|",
    ]
    for r in results:
        lines.append(
            f"| `{r.name}` | {_cell(r.value)} | {r.unit} | {_cell(r.target)} | "
            f"{met_marks[r.met]} | {r.baseline or ''} | {_cell(r.ratio)} |"
        )
    lines += ["", "## Machine", ""]
    lines += [f"- {key}: {value}" for key, value in machine_info.items()]
    lines += ["", "## What each benchmark measures", ""]
    for r in results:
        text = " ".join(part for part in (r.about, r.detail) if part)
        lines += [f"**`{r.name}`**: {text}", ""]
    return "\n".join(lines).rstrip() + "\n"


def flip_percentiles(
    prefix: str, times_ms: Sequence[float], *, target: float | None, about: str, detail: str
) -> list[Result]:
    """`<prefix>.median_ms` and `<prefix>.p99_ms` of a set of station-flip timings."""
    return [
        Result(
            f"{prefix}.median_ms",
            float(np.median(times_ms)),
            "ms",
            target=target,
            about=about,
            detail=detail,
        ),
        Result(
            f"{prefix}.p99_ms",
            float(np.percentile(times_ms, 99)),
            "ms",
            target=target,
            about="99th percentile of the flips above.",
        ),
    ]
