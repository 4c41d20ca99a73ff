"""Siting: the heuristic against spopt's exact MCLP/LSCP (CBC through PuLP) and against brute
force, on seeded random instances; properties of every result on hypothesis-made ones."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.siting import CoverProblem, maximal_access, maximal_covering, set_covering
from geo.siting_exact import exact_maximal_covering, exact_set_covering

SUITE_SEEDS = range(24)
MIN_SHARE_OF_OPTIMUM = 0.98


def random_problem(seed: int, cells: int = 60, candidates: int = 25) -> CoverProblem:
    """Demand points and candidate sites in a unit square; a site reaches points within a
    radius, as a catchment reaches cell centres."""
    rng = np.random.default_rng(seed)
    points = rng.random((cells, 2))
    sites = rng.random((candidates, 2))
    radius = rng.uniform(0.12, 0.25)
    demand = {f"c{i}": float(w) for i, w in enumerate(rng.gamma(1.5, 3.0, cells).round(1))}
    catchments = [
        frozenset(f"c{i}" for i in range(cells) if math.dist(points[i], site) <= radius)
        for site in sites
    ]
    return CoverProblem.build(demand, catchments)


def brute_force_optimum(problem: CoverProblem, k: int) -> float:
    return max(
        problem.covered_by(list(chosen))
        for chosen in itertools.combinations(range(problem.candidates), k)
    )


@pytest.mark.parametrize("seed", range(6))
def test_exact_path_is_the_optimum(seed: int) -> None:
    problem = random_problem(seed, cells=30, candidates=12)
    for k in (1, 2, 3):
        exact = exact_maximal_covering(problem, k)
        assert exact.value == pytest.approx(brute_force_optimum(problem, k), abs=1e-6)
        assert len(exact.chosen) <= k


def test_heuristic_reaches_98_percent_of_the_exact_optimum_on_every_instance() -> None:
    shares = []
    for seed in SUITE_SEEDS:
        problem = random_problem(seed)
        for k in (3, 5, 8):
            exact = exact_maximal_covering(problem, k).value
            found = maximal_covering(problem, k).value
            assert found <= exact + 1e-6, "the heuristic cannot beat the optimum"
            shares.append(found / exact if exact else 1.0)
    assert min(shares) >= MIN_SHARE_OF_OPTIMUM, min(shares)


def test_swaps_never_lose_to_plain_greedy() -> None:
    for seed in SUITE_SEEDS:
        problem = random_problem(seed)
        plain = maximal_covering(problem, 5, swap_passes=0)
        improved = maximal_covering(problem, 5)
        assert improved.value >= plain.value - 1e-9


@pytest.mark.parametrize("share", [0.5, 0.8, 1.0])
def test_set_covering_reaches_its_target(share: float) -> None:
    for seed in range(8):
        problem = random_problem(seed)
        needed = share * float(problem.demand.sum())
        result = set_covering(problem, needed)
        assert result.reached_target
        assert result.value >= needed - 1e-9
        assert problem.covered_by(result.chosen) == pytest.approx(result.value)
        if share == 1.0:
            exact = exact_set_covering(problem)
            assert exact.reached_target
            assert len(exact.chosen) <= len(result.chosen)


def test_set_covering_says_when_the_target_is_out_of_reach() -> None:
    problem = random_problem(3)
    result = set_covering(problem, float(problem.demand.sum()) + 1.0)
    assert result.reached_target is False
    assert result.value == pytest.approx(float(problem.demand.sum()))


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        maximal_covering(random_problem(0), 0)


instances = st.tuples(st.integers(0, 10_000), st.integers(1, 10), st.integers(0, 3))


@settings(max_examples=40, deadline=None)
@given(instances)
def test_results_are_consistent(instance: tuple[int, int, int]) -> None:
    seed, k, passes = instance
    problem = random_problem(seed, cells=40, candidates=15)
    result = maximal_covering(problem, k, swap_passes=passes)
    chosen = result.chosen
    assert len(chosen) == len(set(chosen)) <= k
    assert result.value == pytest.approx(problem.covered_by(chosen))
    assert result.picks[-1].cumulative == pytest.approx(result.value) if chosen else True
    added = [p.added for p in result.picks]
    assert all(a > 0 for a in added)
    assert added == sorted(added, reverse=True), "greedy order: gains never grow"
    # Each pick adds exactly what it covers beyond the picks before it.
    for n, pick in enumerate(result.picks):
        before = problem.covered_by(chosen[:n])
        assert pick.added == pytest.approx(problem.covered_by(chosen[: n + 1]) - before)


def capped_access_value(
    problem: CoverProblem, ratios: np.ndarray, access: np.ndarray, target: float, chosen: list[int]
) -> float:
    level = access.copy()
    for j in chosen:
        level[problem.rows(j)] += ratios[j]
    before = np.minimum(access, target)
    return float((problem.demand * (np.minimum(level, target) - before)).sum())


@pytest.mark.parametrize("seed", range(6))
def test_access_variant_against_brute_force(seed: int) -> None:
    problem = random_problem(seed, cells=30, candidates=10)
    rng = np.random.default_rng(seed)
    ratios = rng.uniform(0.01, 0.2, problem.candidates)
    access = rng.uniform(0.0, 0.1, len(problem.cells))
    target = 0.15
    k = 3
    result = maximal_access(problem, ratios, access, target, k)
    assert result.value == pytest.approx(
        capped_access_value(problem, ratios, access, target, result.chosen)
    )
    best = max(
        capped_access_value(problem, ratios, access, target, list(c))
        for c in itertools.combinations(range(problem.candidates), k)
    )
    assert result.value >= (1 - 1 / math.e) * best - 1e-9


def test_exact_path_with_nothing_to_cover_or_fewer_candidates_than_k() -> None:
    nothing = CoverProblem.build({}, [])
    assert exact_maximal_covering(nothing, 3).chosen == []
    assert maximal_covering(nothing, 3).chosen == []
    small = random_problem(1, cells=20, candidates=3)
    exact = exact_maximal_covering(small, 10)
    assert len(exact.chosen) <= 3
    assert exact.value == pytest.approx(small.covered_by(list(range(3))))
    assert maximal_covering(small, 10).value == pytest.approx(exact.value)
