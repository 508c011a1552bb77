"""A learning path: an ordered set of courses that reaches this year's remaining hours.

Targets come from the hour report: for each training mode the hours still needed this year
(``remaining_this_year``: a yearly rule's shortfall, or a plan-window rule's shortfall spread over the
years left).  Courses are taken in ranked order (the ranker already fills the largest gaps first and
respects prerequisites) into the mode they would be credited under, until each target is met; a course
that prepares another's prerequisite comes along even if its mode's target is already met.

Order: prerequisites first (a topological order of the "must follow" links), and among courses free to
go next, the other mode than the previous step's where one is available, so 集中 and 网络 alternate.  When
every target is met, or none is set, the path is the top few gap-filling courses, and says so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import ClassVar

import networkx as nx

from recommender.hours import HourReport, estimate_credit
from recommender.labelled import Labelled
from recommender.recommend import Recommendations, Suggestion
from recommender.snapshot import CatalogueSnapshot

__all__ = ["LearningPath", "PathStep", "build_path", "hour_targets"]

#: Steps of a path when no hour target is left: enough to act on, few enough to finish.
MIN_STEPS = 5


@dataclass(frozen=True)
class PathStep(Labelled):
    step: int
    item: Suggestion
    mode: str
    credit_hours: float
    after_steps: tuple[int, ...]

    LABELS: ClassVar[dict[str, str]] = {
        "step": "步骤", "item": "课程", "mode": "计入方式", "credit_hours": "预计认定学时", "after_steps": "需在其后的步骤",
    }


@dataclass(frozen=True)
class LearningPath(Labelled):
    cadre_id: str
    today: dt.date
    targets: dict[str, float]
    planned: dict[str, float]
    steps: tuple[PathStep, ...]
    note: str
    cold_start: bool

    LABELS: ClassVar[dict[str, str]] = {
        "cadre_id": "干部编号", "today": "统计日期", "targets": "本年度尚需学时", "planned": "路径预计学时",
        "steps": "学习路径", "note": "说明", "cold_start": "尚无学习记录",
    }

    @property
    def reaches_targets(self) -> bool:
        return all(self.planned.get(mode, 0.0) >= need for mode, need in self.targets.items())


def hour_targets(report: HourReport) -> dict[str, float]:
    """Hours still needed this year per training mode; modes whose rule is unset or met are left out."""
    targets: dict[str, float] = {}
    for rule in report.rules:
        if rule.remaining_this_year:
            targets[rule.mode] = max(targets.get(rule.mode, 0.0), rule.remaining_this_year)
    return targets


def _order(chosen: list[tuple[Suggestion, str, float]]) -> list[int]:
    """Indices of ``chosen`` prerequisites first, alternating modes where free, rank order otherwise."""
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(chosen)))
    position = {item.item_id: i for i, (item, _, _) in enumerate(chosen)}
    for i, (item, _, _) in enumerate(chosen):
        graph.add_edges_from((position[a], i) for a in item.after if a in position)
    order: list[int] = []
    indegree = dict(graph.in_degree())
    ready = sorted(i for i, d in indegree.items() if d == 0)
    last_mode: str | None = None
    while ready:
        other = [i for i in ready if chosen[i][1] != last_mode]
        pick = min(other or ready)
        ready.remove(pick)
        order.append(pick)
        last_mode = chosen[pick][1]
        for nxt in graph.successors(pick):
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
        ready.sort()
    return order


def build_path(ranked: Recommendations, report: HourReport, snapshot: CatalogueSnapshot) -> LearningPath:
    """Choose and order courses from ``ranked`` (a long, prerequisite-consistent list) to meet the targets."""
    targets = hour_targets(report)
    remaining = dict(targets)
    by_id = {item.item_id: item for item in ranked.items}
    chosen: list[tuple[Suggestion, str, float]] = []
    taken: set[str] = set()

    def take(item: Suggestion) -> None:
        for before in item.after:  # bring along what this course must follow
            if before not in taken and before in by_id:
                take(by_id[before])
        mode, credit = estimate_credit(snapshot, snapshot.course_pos[item.item_id])
        chosen.append((item, mode, credit))
        taken.add(item.item_id)
        if mode in remaining:
            remaining[mode] = remaining[mode] - credit

    for item in ranked.items:
        if not any(v > 0 for v in remaining.values()):
            break
        if item.item_id in taken:
            continue
        mode, credit = estimate_credit(snapshot, snapshot.course_pos[item.item_id])
        if credit > 0 and remaining.get(mode, 0.0) > 0:
            take(item)
    if not targets:
        for item in ranked.items[:MIN_STEPS]:
            if item.item_id not in taken:
                take(item)
    order = _order(chosen)
    step_of = {chosen[i][0].item_id: n for n, i in enumerate(order, start=1)}
    steps = tuple(
        PathStep(n, chosen[i][0], chosen[i][1], round(chosen[i][2], 2),
                 tuple(sorted(step_of[a] for a in chosen[i][0].after if a in step_of)))
        for n, i in enumerate(order, start=1)
    )
    planned: dict[str, float] = {}
    for _, mode, credit in chosen:
        planned[mode] = round(planned.get(mode, 0.0) + credit, 2)
    return LearningPath(ranked.cadre_id, ranked.today, {m: round(v, 2) for m, v in targets.items()}, planned, steps,
                        _note(targets, remaining, ranked.cold_start), ranked.cold_start)


def _note(targets: dict[str, float], remaining: dict[str, float], cold_start: bool) -> str:
    start = "你还没有学习记录，路径从岗位要求的必学主题开始。" if cold_start else ""
    if not targets:
        return start + "本年度各项学时要求已完成或未设置，以下路径用于补齐知识缺口。"
    short = {mode: v for mode, v in remaining.items() if v > 1e-9}
    if short:
        missing = "、".join(f"{mode} {v:.1f} 学时" for mode, v in short.items())
        return start + f"目录中可选课程不足以补齐本年度学时，尚差 {missing}，请关注新上线课程或集中培训安排。"
    wanted = "、".join(f"{mode} {v:.1f} 学时" for mode, v in targets.items())
    return start + f"按此路径学习可补齐本年度尚需的 {wanted}；先修课程排在前面，集中培训与网络自学交替安排。"
