"""Exact 0–1 selection with HiGHS, and a Chinese account of why a selection is impossible.

Both the class programme builder and the nomination optimiser choose a subset of items under a few
*families* of linear constraints (fill the hours, reach each indicator, cover each branch, respect each
institution's cap …).  When no subset exists, a user needs to know which rule to relax and by how much, so
:func:`explain_infeasible` first finds a minimal set of conflicting families (a deletion filter: drop each
family in turn and keep it out if the rest is still infeasible), then, for each family of that set, solves
an elastic model — the family's rows get non-negative slack, the others stay hard — and reports every row
that still falls short together with the best value it can reach.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import highspy
import numpy as np
from scipy import sparse

from recommender.analytics.errors import SolverError

__all__ = ["Family", "Shortfall", "Solution", "conflicting_families", "explain_infeasible", "explanation", "solve", "whole"]

INF = highspy.kHighsInf
_TOLERANCE = 1e-6


@dataclass
class Family:
    """A named group of rows ``lower ≤ matrix · x ≤ upper`` over the binary choice vector ``x``.

    ``describe(row, achieved, shortfall, x)`` phrases, in Chinese, a row that cannot be met: ``achieved``
    is the best ``matrix[row] · x`` reachable while the other conflicting families hold, ``shortfall`` how
    far that is from the violated bound, ``x`` the choice that reaches it.
    """

    key: str
    label: str
    matrix: sparse.csr_matrix
    lower: np.ndarray
    upper: np.ndarray
    describe: Callable[[int, float, float, np.ndarray], str]

    def __post_init__(self) -> None:
        self.matrix = sparse.csr_matrix(self.matrix, dtype=float)
        rows = self.matrix.shape[0]
        self.lower = np.broadcast_to(np.asarray(self.lower, dtype=float), (rows,)).copy()
        self.upper = np.broadcast_to(np.asarray(self.upper, dtype=float), (rows,)).copy()


@dataclass
class Solution:
    """``status`` is 'optimal', 'infeasible' or 'time_limit' (a feasible but unproven choice)."""

    status: str
    x: np.ndarray | None = None
    objective: float | None = None
    seconds: float = 0.0
    slack: np.ndarray | None = field(default=None, repr=False)

    @property
    def chosen(self) -> np.ndarray:
        """Indices of the selected items."""
        return np.flatnonzero(self.x > 0.5) if self.x is not None else np.array([], dtype=int)


@dataclass(frozen=True)
class Shortfall:
    """One constraint row that cannot be met, and the message that says so."""

    family: str
    label: str
    row: int
    achieved: float
    shortfall: float
    message: str


def solve(
    n: int,
    families: Sequence[Family],
    objective: np.ndarray | None = None,
    *,
    maximise: bool = True,
    upper: np.ndarray | None = None,
    lower: np.ndarray | None = None,
    elastic: Family | None = None,
    time_limit: float = 60.0,
) -> Solution:
    """Choose ``x ∈ {0,1}^n`` under every family's rows, optimising ``objective`` (none: any feasible x).

    ``upper``/``lower`` fix variables (0 excludes an item, 1 forces it).  With ``elastic`` its rows get
    slack columns and the objective becomes: minimise total slack.
    """
    started = time.perf_counter()
    blocks = [f.matrix for f in families]
    row_lower = [f.lower for f in families]
    row_upper = [f.upper for f in families]
    cost = np.zeros(n) if objective is None or elastic is not None else np.asarray(objective, dtype=float)
    col_lower = np.zeros(n) if lower is None else np.asarray(lower, dtype=float)
    col_upper = np.ones(n) if upper is None else np.asarray(upper, dtype=float)
    n_slack = 0
    if elastic is not None:
        rows = elastic.matrix.shape[0]
        n_slack = 2 * rows  # one slack below the lower bound, one above the upper bound, per row
        blocks = [sparse.hstack([b, sparse.csr_matrix((b.shape[0], n_slack))]) for b in blocks]
        eye = sparse.identity(rows, format="csr")
        blocks.append(sparse.hstack([elastic.matrix, eye, -eye]))
        row_lower.append(elastic.lower)
        row_upper.append(elastic.upper)
        has_lower = np.isfinite(elastic.lower) & (elastic.lower > -INF)
        has_upper = np.isfinite(elastic.upper) & (elastic.upper < INF)
        cost = np.concatenate([np.zeros(n), np.ones(rows), np.ones(rows)])
        col_lower = np.concatenate([col_lower, np.zeros(n_slack)])
        col_upper = np.concatenate([col_upper, np.where(has_lower, INF, 0.0), np.where(has_upper, INF, 0.0)])
        maximise = False
    matrix = sparse.vstack(blocks, format="csr") if blocks else sparse.csr_matrix((0, n + n_slack))
    lp = highspy.HighsLp()
    lp.num_col_ = n + n_slack
    lp.num_row_ = matrix.shape[0]
    lp.col_cost_ = cost
    lp.col_lower_ = col_lower
    lp.col_upper_ = col_upper
    lp.row_lower_ = np.clip(np.concatenate(row_lower) if row_lower else np.zeros(0), -INF, INF)
    lp.row_upper_ = np.clip(np.concatenate(row_upper) if row_upper else np.zeros(0), -INF, INF)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = matrix.indptr.astype(np.int32)
    lp.a_matrix_.index_ = matrix.indices.astype(np.int32)
    lp.a_matrix_.value_ = matrix.data.astype(float)
    lp.a_matrix_.num_col_ = n + n_slack
    lp.a_matrix_.num_row_ = matrix.shape[0]
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n + [highspy.HighsVarType.kContinuous] * n_slack
    lp.sense_ = highspy.ObjSense.kMaximize if maximise else highspy.ObjSense.kMinimize
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("time_limit", float(time_limit))
    highs.setOptionValue("mip_rel_gap", 0.0)
    highs.passModel(lp)
    highs.run()
    status = highs.getModelStatus()
    seconds = time.perf_counter() - started
    if status == highspy.HighsModelStatus.kInfeasible:
        return Solution("infeasible", seconds=seconds)
    if status == highspy.HighsModelStatus.kModelEmpty:
        # No candidate at all: the empty choice is the answer if every row accepts zero, else nothing is.
        feasible = bool(np.all(np.asarray(lp.row_lower_) <= 0) and np.all(np.asarray(lp.row_upper_) >= 0))
        return Solution("optimal", x=np.zeros(n), objective=0.0, seconds=seconds) if feasible else Solution("infeasible", seconds=seconds)
    has_solution = highs.getInfo().primal_solution_status == 2  # kSolutionStatusFeasible
    if status == highspy.HighsModelStatus.kOptimal or (status == highspy.HighsModelStatus.kTimeLimit and has_solution):
        values = np.asarray(highs.getSolution().col_value)
        x = np.round(values[:n]) + 0.0  # no negative zeros
        return Solution(
            "optimal" if status == highspy.HighsModelStatus.kOptimal else "time_limit",
            x=x,
            objective=float(highs.getInfo().objective_function_value),
            seconds=seconds,
            slack=values[n:] if n_slack else None,
        )
    raise SolverError(f"求解器未能给出结果（HiGHS 状态：{highs.modelStatusToString(status)}，用时 {seconds:.1f} 秒）")


def _feasible(n: int, families: Sequence[Family], bounds: dict, time_limit: float) -> bool:
    return solve(n, families, None, time_limit=time_limit, **bounds).status != "infeasible"


def conflicting_families(
    n: int, families: Sequence[Family], *, upper: np.ndarray | None = None, lower: np.ndarray | None = None,
    time_limit: float = 60.0,
) -> list[Family]:
    """A minimal set of families that cannot hold together (empty when all of them can)."""
    bounds = {"upper": upper, "lower": lower}
    if _feasible(n, families, bounds, time_limit):
        return []
    active = list(families)
    for family in list(active):
        trial = [f for f in active if f is not family]
        if not _feasible(n, trial, bounds, time_limit):
            active = trial
    return active


def explain_infeasible(
    n: int, families: Sequence[Family], *, upper: np.ndarray | None = None, lower: np.ndarray | None = None,
    time_limit: float = 60.0,
) -> tuple[list[Family], list[Shortfall]]:
    """The conflicting families and, for each, the rows that fall short when the others hold."""
    conflict = conflicting_families(n, families, upper=upper, lower=lower, time_limit=time_limit)
    shortfalls: list[Shortfall] = []
    for family in conflict:
        others = [f for f in conflict if f is not family]
        result = solve(n, others, elastic=family, upper=upper, lower=lower, time_limit=time_limit)
        if result.x is None or result.slack is None:
            continue
        rows = family.matrix.shape[0]
        achieved = family.matrix @ result.x
        below, above = result.slack[:rows], result.slack[rows:]
        for row in range(rows):
            gap = below[row] + above[row]
            if gap > _TOLERANCE:
                value = float(achieved[row])
                shortfalls.append(Shortfall(family.key, family.label, row, value, float(gap),
                                            family.describe(row, value, float(gap), result.x)))
    return conflict, shortfalls


def explanation(conflict: Sequence[Family], shortfalls: Sequence[Shortfall], subject: str) -> list[str]:
    """Chinese lines: which families conflict, then each family's shortfalls (with a total where a family
    falls short on several rows, since those rows trade off against each other)."""
    labels = "、".join(f"『{f.label}』" for f in conflict)
    if len(conflict) == 1:
        lines = [f"无法生成{subject}：{labels}本身无法满足。"]
    else:
        lines = [f"无法生成{subject}：{labels}不能同时满足（去掉其中任何一项，其余各项都能满足）。"]
    for family in conflict:
        rows = [s for s in shortfalls if s.family == family.key]
        if len(rows) > 1:
            lines.append(f"{family.label}：与其他规则折中后合计相差 {round(sum(s.shortfall for s in rows), 2):g}，涉及 {len(rows)} 项。")
        lines.extend(s.message for s in rows)
    return lines


def whole(value: float) -> int:
    """A count read back from the solver (guards against 11.999999)."""
    return int(math.floor(value + 0.5))
