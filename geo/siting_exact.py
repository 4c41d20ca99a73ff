"""Exact maximal and set covering for small problems: spopt's MCLP and LSCP, solved by the
CBC solver that PuLP bundles. The oracle the heuristic is measured against, and the planner's
choice when a problem is small enough to prove optimal.

spopt pulls in geopandas and takes seconds to import, so it is imported on first use only."""

from __future__ import annotations

from typing import Any

import numpy as np

from geo.siting import CoverProblem, SitingResult, in_greedy_order

SERVICE_RADIUS = 1.0  # the cost matrix is 0 (reaches) or 2 (does not): radius 1 splits them
NOT_REACHED = 2.0


def _cost_matrix(problem: CoverProblem) -> np.ndarray:
    reached = problem.cover.toarray() > 0
    return np.where(reached, 0.0, NOT_REACHED)


def _solver() -> Any:
    import pulp

    return pulp.PULP_CBC_CMD(msg=False)


def _chosen(model: Any) -> list[int]:
    return [j for j, var in enumerate(model.fac_vars) if var.value() and var.value() > 0.5]


def exact_maximal_covering(problem: CoverProblem, k: int) -> SitingResult:
    from spopt.locate import MCLP

    if k <= 0:
        raise ValueError("k must be positive")
    if not problem.cells or not problem.candidates:
        return SitingResult(picks=(), value=0.0)  # nothing to cover, or nothing to choose
    # MCLP places exactly p sites: never more than there are candidates.
    model = MCLP.from_cost_matrix(
        _cost_matrix(problem),
        problem.demand,
        SERVICE_RADIUS,
        p_facilities=min(k, problem.candidates),
    )
    model.solve(_solver(), results=False)
    chosen = _chosen(model)
    return SitingResult(picks=in_greedy_order(problem, chosen), value=problem.covered_by(chosen))


def exact_set_covering(problem: CoverProblem) -> SitingResult:
    """The fewest sites reaching every cell that some candidate reaches."""
    from spopt.locate import LSCP

    if not problem.cells:
        return SitingResult(picks=(), value=0.0, reached_target=True)
    model = LSCP.from_cost_matrix(_cost_matrix(problem), SERVICE_RADIUS)
    model.solve(_solver(), results=False)
    chosen = _chosen(model)
    value = problem.covered_by(chosen)
    return SitingResult(
        picks=in_greedy_order(problem, chosen),
        value=value,
        reached_target=value >= float(problem.demand.sum()) - 1e-9,
    )
