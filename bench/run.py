"""Run the benchmarks and write bench/results.json and bench/RESULTS.md.

    python -m bench.run            # everything, as `make bench` does
    python -m bench.run --quick    # reduced sizes, for smoke tests (writes to var/bench-quick)

A benchmark module exposes `run(quick: bool) -> list[Result]`; add new ones to `MODULES`.
Each module runs in a process of its own, so that what it measures does not depend on what
the modules before it left in memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.results import Result, machine, write

MODULES: tuple[str, ...] = (
    "bench.coverage",
    "bench.pipeline",
    "bench.national_restore",
    "bench.embedded",
    "bench.ingest",
    "bench.store",
    "bench.stream",
    "bench.dashboard",
    "bench.lifecycle",
    "bench.planning",
    "bench.union_reports",
)

BENCH_DIR = Path(__file__).resolve().parent
QUICK_OUT_DIR = BENCH_DIR.parent / "var" / "bench-quick"


def run(
    *, quick: bool, out_dir: Path | None = None, modules: Sequence[str] = MODULES
) -> list[Result]:
    """Run `modules` and write the two result files into `out_dir` (default: bench/, or
    var/bench-quick/ for a quick run, so that a smoke test never overwrites real results)."""
    results: list[Result] = []
    for name in modules:
        started = time.perf_counter()
        found = run_apart(name, quick=quick)
        print(f"{name}: {len(found)} results in {time.perf_counter() - started:.1f} s")
        results.extend(found)
    names = [result.name for result in results]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"result names must be unique: {', '.join(duplicates)}")
    target_dir = out_dir or (QUICK_OUT_DIR if quick else BENCH_DIR)
    json_path, markdown_path = write(target_dir, results, machine(), quick=quick)
    print(f"wrote {json_path} and {markdown_path}")
    return results


def run_apart(name: str, *, quick: bool) -> list[Result]:
    """One module's `run` in a fresh interpreter (a runtime never shares its process with,
    say, a city's coverage benchmark and the garbage it leaves): its results come back
    through a file."""
    with tempfile.TemporaryDirectory(prefix="bench-module-") as tmp:
        out = Path(tmp) / "results.json"
        command = [sys.executable, "-m", "bench.run", "--apart", name, "--apart-out", str(out)]
        subprocess.run(command + (["--quick"] if quick else []), check=True, cwd=BENCH_DIR.parent)
        return [Result(**found) for found in json.loads(out.read_text(encoding="utf-8"))]


def _run_here(name: str, quick: bool, out: Path) -> None:
    found = importlib.import_module(name).run(quick)
    out.write_text(json.dumps([dataclasses.asdict(r) for r in found]), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="reduced sizes, for smoke tests")
    parser.add_argument("--out", type=Path, help="directory for results.json and RESULTS.md")
    parser.add_argument(
        "--module",
        action="append",
        choices=MODULES,
        help="run only this benchmark module (repeatable; default: all)",
    )
    parser.add_argument("--apart", choices=MODULES, help=argparse.SUPPRESS)
    parser.add_argument("--apart-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.apart:
        _run_here(args.apart, args.quick, args.apart_out)
        return 0
    results = run(quick=args.quick, out_dir=args.out, modules=args.module or MODULES)
    width = max(len(result.name) for result in results)
    for result in results:
        status = {True: "met", False: "MISSED", None: ""}[result.met]
        ratio = f"  x{result.ratio:.2f} vs {result.baseline}" if result.ratio else ""
        print(f"{result.name:<{width}}  {result.value:>10.4g} {result.unit:<3} {status}{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
