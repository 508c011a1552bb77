"""A learning path: an ordered set of courses that reaches this year's remaining hours, or says why not.

Targets come from the hour report: for each training mode the hours still needed this year
(``remaining_this_year``: a yearly rule's shortfall, or a plan-window rule's shortfall spread over the
years left).  For each mode with a target the ranker's list of that mode's courses (already filling the
largest gaps first and respecting prerequisites and the audience rule) is walked in order until the target
is met or the mode has ``path_max_steps`` steps (``ontology/rules.yaml`` ``ranking.path_max_steps_per_mode``);
a course that prepares another's prerequisite comes along.

When a target is out of reach the note says precisely why — the published courses of that mode left to the
cadre cannot supply the hours, or the step limit was reached — and what to do instead: the open training
classes (班次) meant for the cadre (an open 初任培训 class for a new recruit, say), else to ask the
organisation department for a class; for 网络自学, the platforms' certified hours, which count too.

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
from recommender.learner.profile import CadreProfile
from recommender.labelled import Labelled
from recommender.ranking.recommend import Suggestion
from recommender.catalogue.snapshot import CatalogueSnapshot

__all__ = ["MIN_STEPS", "LearningPath", "OpenClass", "PathStep", "build_path", "hour_targets", "open_classes"]

#: Steps of a path when no hour target is left: enough to act on, few enough to finish.
MIN_STEPS = 5
#: Open classes named in a note when a 集中培训 target is out of reach.
CLASSES_NAMED = 3


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
class OpenClass(Labelled):
    """A training class (班次) still to start, meant for the cadre or for anyone: what to enrol in instead."""

    class_id: str
    name: str
    class_type: str
    start: dt.date
    end: dt.date | None
    institution: str
    hours: float
    for_cadre: bool  # declared for the cadre's category or groups (not merely open to anyone)

    LABELS: ClassVar[dict[str, str]] = {
        "class_id": "班次编号", "name": "班次", "class_type": "班次类型", "start": "开班日期", "end": "结业日期",
        "institution": "举办机构", "hours": "课程学时", "for_cadre": "面向本人",
    }

    @property
    def phrase(self) -> str:
        end = f"至 {self.end.isoformat()}" if self.end else ""
        return f"『{self.name}』（{self.class_type}，{self.start.isoformat()}{end}，{self.institution}，课程 {self.hours:g} 学时）"


@dataclass(frozen=True)
class LearningPath(Labelled):
    cadre_id: str
    today: dt.date
    targets: dict[str, float]
    planned: dict[str, float]
    steps: tuple[PathStep, ...]
    note: str
    cold_start: bool
    shortfalls: dict[str, float]
    classes: tuple[OpenClass, ...] = ()

    LABELS: ClassVar[dict[str, str]] = {
        "cadre_id": "干部编号", "today": "统计日期", "targets": "本年度尚需学时", "planned": "路径预计学时",
        "shortfalls": "路径之外仍差学时", "steps": "学习路径", "classes": "可报名的班次", "note": "说明",
        "cold_start": "尚无学习记录",
    }

    @property
    def reaches_targets(self) -> bool:
        return not self.shortfalls


def hour_targets(report: HourReport) -> dict[str, float]:
    """Hours still needed this year per training mode; modes whose rule is unset or met are left out."""
    targets: dict[str, float] = {}
    for rule in report.rules:
        if rule.remaining_this_year:
            targets[rule.mode] = max(targets.get(rule.mode, 0.0), rule.remaining_this_year)
    return targets


def open_classes(snapshot: CatalogueSnapshot, profile: CadreProfile, today: dt.date) -> list[OpenClass]:
    """Classes starting after ``today`` this year or next that are declared for the cadre or for anyone;
    those meant for the cadre first, then by start date."""
    roles = {profile.category_id, *profile.group_ids} - {None}
    found: list[OpenClass] = []
    for klass in snapshot.classes.values():
        audience = set(klass.audience_category) | set(klass.audience_group)
        if (klass.start_date is None or not today < klass.start_date or klass.start_date.year > today.year + 1
                or (audience and not audience & roles)):
            continue
        hours = sum(float(snapshot.course_hours[snapshot.course_pos[c]]) for c in klass.courses if c in snapshot.course_pos)
        found.append(OpenClass(klass.id, klass.name, klass.class_type, klass.start_date, klass.end_date,
                               snapshot.institution_name(klass.institution), hours, bool(audience & roles)))
    return sorted(found, key=lambda k: (not k.for_cadre, k.start, k.class_id))


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
               profile: CadreProfile, max_steps: int, asked: int) -> LearningPath:
    """Choose and order courses from ranked lists (one per mode with a target, or one general list).

    Each list must be prerequisite-consistent (every ``after`` item earlier in the same list), as the
    ranker makes them; ``asked`` is how many items each list was asked for (a shorter list means the
    catalogue had no more), ``max_steps`` the most courses one mode contributes.
    """
    targets = hour_targets(report)
    remaining = dict(targets)
    chosen: list[tuple[Suggestion, str, float]] = []
    taken: set[str] = set()
    capped: set[str] = set()
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
            elif remaining.get(mode, 0.0) > 1e-9 and credit > 0:
                if steps >= max_steps:
                    capped.add(mode)
                    break
                take(item)
        if len(items) >= asked:
            capped.update(m for m, v in remaining.items() if v > 1e-9 and any(estimate_credit(
                snapshot, snapshot.course_pos[i.item_id])[0] == m for i in items))
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
    shortfalls = {mode: round(v, 2) for mode, v in remaining.items() if v > 1e-9}
    classes = tuple(open_classes(snapshot, profile, report.today)) if shortfalls else ()
    note = _note(targets, planned, shortfalls, capped, max_steps, classes, snapshot, profile.cold_start)
    return LearningPath(report.cadre_id, report.today, {m: round(v, 2) for m, v in targets.items()}, planned,
                        steps_out, note, profile.cold_start, shortfalls, classes[:CLASSES_NAMED])


def _note(targets: dict[str, float], planned: dict[str, float], shortfalls: dict[str, float], capped: set[str],
          max_steps: int, classes: tuple[OpenClass, ...], snapshot: CatalogueSnapshot, cold_start: bool) -> str:
    """What the path achieves, and for each mode it cannot fill, why and what to do instead."""
    start = "你还没有学习记录，路径从岗位要求的必学主题开始。" if cold_start else ""
    if not targets:
        return start + "本年度各项学时要求已完成或未设置，以下路径用于补齐知识缺口。"
    wanted = "、".join(f"{mode} {v:g} 学时" for mode, v in targets.items())
    if not shortfalls:
        modes = f"{snapshot.vocab.concentrated_mode}与{snapshot.vocab.online_mode}"
        return start + f"按此路径学习可补齐本年度尚需的 {wanted}；先修课程排在前面，{modes}交替安排。"
    parts = [start + f"本年度尚需 {wanted}。"]
    for mode, short in shortfalls.items():
        got = planned.get(mode, 0.0)
        if mode in capped:
            why = f"路径每种方式最多安排 {max_steps} 门课程，已列课程预计认定 {got:g} 学时"
        else:
            why = f"你尚未学过、可向你推荐的已发布课程全部列入，预计也只能认定 {got:g} 学时"
        parts.append(f"{mode}：{why}，仍差 {short:g} 学时。")
        if mode == snapshot.vocab.concentrated_mode:
            if classes:
                named = "；".join(k.phrase for k in classes[:CLASSES_NAMED])
                parts.append(f"可报名参加组织安排的班次：{named}。")
            else:
                situations = "、".join(snapshot.vocab.concentrated_situations)
                parts.append(f"目前没有尚未开班、面向你或不限对象的班次，请向组织人事部门申请参加{mode}"
                             f"（{situations}均计入，规划 一、注 1）。")
        else:
            parts.append("请关注组织人事部门认可的网络培训平台新上线的课程，平台核定的学时同样计入（学时互认，规划 一、注 2）。")
    return "".join(parts)
