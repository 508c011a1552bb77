"""A learning path: an ordered set of courses that reaches this year's remaining hours.

Targets come from the hour report: for each training mode the hours still needed this year
(``remaining_this_year``: a yearly rule's shortfall, or a plan-window rule's shortfall spread over the
years left).  For each mode with a target the ranker's list of that mode's courses (already filling the
largest gaps first and respecting prerequisites) is walked in order until the target is met or the mode
has :data:`MAX_STEPS_PER_MODE` steps; a course that prepares another's prerequisite comes along.

Order: prerequisites first (a topological order of the "must follow" links), and among courses free to
go next, the other mode than the previous step's where one is available, so 集中 and 网络 alternate.  When
every target is met, or none is set, the path is the top few gap-filling courses, and says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import networkx as nx

from recommender.learner.hours import HourReport, estimate_credit
from recommender.labelled import Labelled
from recommender.ranking.recommend import Suggestion
from recommender.catalogue.snapshot import CatalogueSnapshot

__all__ = ["MAX_STEPS_PER_MODE", "MIN_STEPS", "LearningPath", "PathStep", "build_path", "hour_targets"]

#: Steps of a path when no hour target is left: enough to act on, few enough to finish.
MIN_STEPS = 5
#: Most courses one mode contributes; hours beyond them are left to classes (班次) the organisation arranges.
MAX_STEPS_PER_MODE = 12


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
        return all(self.planned.get(mode, 0.0) >= need - 1e-9 for mode, need in self.targets.items())


def hour_targets(report: HourReport) -> dict[str, float]:
    """Hours still needed this year per training mode; modes whose rule is unset or met are left out."""
    targets: dict[str, float] = {}
    for rule in report.rules:
        if rule.remaining_this_year:
            targets[rule.mode] = max(targets.get(rule.mode, 0.0), rule.remaining_this_year)
    return targets


def _order(chosen: list[tuple[Suggestion, str, float]]) -> list[int]:
    """Indices of ``chosen``: prerequisites first, alternating modes where free, list order otherwise."""
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(chosen)))
    position = {item.item_id: i for i, (item, _, _) in enumerate(chosen)}
    for i, (item, _, _) in enumerate(chosen):
        graph.add_edges_from((position[a], i) for a in item.after if a in position)
    indegree = dict(graph.in_degree())
    ready = sorted(i for i, d in indegree.items() if d == 0)
    order: list[int] = []
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


def build_path(ranked: Sequence[Sequence[Suggestion]], report: HourReport, snapshot: CatalogueSnapshot,
               cold_start: bool) -> LearningPath:
    """Choose and order courses from ranked lists (one per mode with a target, or one general list).

    Each list must be prerequisite-consistent (every ``after`` item earlier in the same list), as the
    ranker makes them.
    """
    targets = hour_targets(report)
    remaining = dict(targets)
    chosen: list[tuple[Suggestion, str, float]] = []
    taken: set[str] = set()
    for items in ranked:
        by_id = {item.item_id: item for item in items}
        steps = 0

        def take(item: Suggestion) -> None:
            nonlocal steps
            for before in item.after:  # bring along what this course must follow
                if before not in taken and before in by_id:
                    take(by_id[before])
            mode, credit = estimate_credit(snapshot, snapshot.course_pos[item.item_id])
            chosen.append((item, mode, credit))
            taken.add(item.item_id)
            steps += 1
            if mode in remaining:
                remaining[mode] -= credit

        for item in items:
            if item.item_id in taken:
                continue
            mode, credit = estimate_credit(snapshot, snapshot.course_pos[item.item_id])
            if not targets and steps < MIN_STEPS:
                take(item)
            elif remaining.get(mode, 0.0) > 0 and credit > 0 and steps < MAX_STEPS_PER_MODE:
                take(item)
    order = _order(chosen)
    step_of = {chosen[i][0].item_id: n for n, i in enumerate(order, start=1)}
    steps_out = tuple(
        PathStep(n, chosen[i][0], chosen[i][1], round(chosen[i][2], 2),
                 tuple(sorted(step_of[a] for a in chosen[i][0].after if a in step_of)))
        for n, i in enumerate(order, start=1)
    )
    planned: dict[str, float] = {}
    for _, mode, credit in chosen:
        planned[mode] = round(planned.get(mode, 0.0) + credit, 2)
    return LearningPath(report.cadre_id, report.today, {m: round(v, 2) for m, v in targets.items()}, planned,
                        steps_out, _note(targets, remaining, cold_start), cold_start)


def _note(targets: dict[str, float], remaining: dict[str, float], cold_start: bool) -> str:
    start = "你还没有学习记录，路径从岗位要求的必学主题开始。" if cold_start else ""
    if not targets:
        return start + "本年度各项学时要求已完成或未设置，以下路径用于补齐知识缺口。"
    wanted = "、".join(f"{mode} {v:.1f} 学时" for mode, v in targets.items())
    short = {mode: v for mode, v in remaining.items() if v > 1e-9}
    if short:
        missing = "、".join(f"{mode} {v:.1f} 学时" for mode, v in short.items())
        return (start + f"本年度尚需 {wanted}；按此路径学习后仍差 {missing}，"
                "请报名参加组织安排的班次（集中培训）或关注新上线的网络课程。")
    return start + f"按此路径学习可补齐本年度尚需的 {wanted}；先修课程排在前面，集中培训与网络自学交替安排。"
