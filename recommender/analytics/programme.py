"""Class programme builder: choose courses that fill a class's hours and meet the teaching indicators.

The choice is an exact 0–1 programme solved by HiGHS: the selected hours equal the requested total (within
a tolerance), each requested topic is covered by at least one course on it or a narrower topic, and every
teaching indicator whose scope covers the institution and this kind of class holds
(``Σ hours·(counted − threshold) ≥ 0``).  Among the programmes that qualify it maximises hour-weighted course
quality, the score of the recommendation indicator system.  When none qualifies the result says, in
Chinese, which constraints conflict and how far each falls short (see :mod:`recommender.analytics.solver`).

On-site teaching must be near: a course of a type that is taught on site (``programme.locality`` in
rules.yaml: 现场教学) takes place where its site is (else where its institution is), and a class held by an
institution of a level the rule names (市、县) draws such courses only from its own province unless the
request allows others — a county school's 30-hour class should not send its cadres 1,000 km away by default.
Each chosen course says which requested topics it serves.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from kg.ontology import Ontology

from recommender.analytics.errors import InputError, RuleError
from recommender.analytics.exports import Table
from recommender.analytics.indicators import class_shares
from recommender.analytics.rules import IndicatorRule, teaching_rules
from recommender.analytics.scoring import score_candidates
from recommender.analytics.solver import Family, explain_infeasible, explanation, solve
from recommender.catalogue.rows import Course
from recommender.catalogue.snapshot import CatalogueSnapshot

__all__ = ["Locality", "ProgrammeCourse", "ProgrammeIndicator", "ProgrammeRequest", "ProgrammeResult", "build_programme"]


@dataclass(frozen=True)
class Locality:
    """``programme.locality`` of rules.yaml: which course types are taught on site, for which host levels they
    must be in the host's province, and how a province is read from a region (浙江省湖州市安吉县 → 浙江省)."""

    course_types: tuple[str, ...]
    levels: tuple[str, ...]
    pattern: re.Pattern[str]

    @classmethod
    def from_rules(cls, rules: Mapping[str, Any]) -> "Locality":
        block = (rules.get("programme") or {}).get("locality")
        if not isinstance(block, Mapping):
            return cls((), (), re.compile("$^"))
        try:
            return cls(tuple(block["course_types"]), tuple(block["same_province_for_levels"]),
                       re.compile(block["province_pattern"]))
        except (KeyError, TypeError, re.error) as exc:
            raise RuleError(f"rules.yaml 的 programme.locality 配置不完整或有误：{exc}") from exc

    def province(self, region: str | None) -> str | None:
        match = self.pattern.match(region or "")
        return match.group(1) if match else None

    def place(self, course: Course, catalogue: CatalogueSnapshot) -> str | None:
        """Where the course is taught: its site's region, else its institution's."""
        site = catalogue.sites.get(course.site) if course.site else None
        if site is not None and site.region:
            return site.region
        institution = catalogue.institutions.get(course.institution or "")
        return institution.region if institution is not None else None

    def applies(self, host: Any) -> bool:
        """Whether classes of this host keep on-site teaching in its province by default."""
        return host.level in self.levels and self.province(host.region) is not None

    def too_far(self, course: Course, host: Any, catalogue: CatalogueSnapshot) -> bool:
        if course.course_type not in self.course_types:
            return False
        return self.province(self.place(course, catalogue)) != self.province(host.region)


@dataclass(frozen=True)
class ProgrammeRequest:
    """What a class needs.  ``is_main_class`` / ``is_party_spirit_class`` left as None are taken from the
    catalogue's existing classes of the same ``class_type`` (the majority); with no such class, a class of the
    vocabulary's main class type (主体班) is a main class and no class is a party-spirit class."""

    institution_id: str
    class_type: str
    total_hours: float
    topics: tuple[str, ...] = ()
    audience_categories: tuple[str, ...] = ()
    audience_groups: tuple[str, ...] = ()
    is_main_class: bool | None = None
    is_party_spirit_class: bool | None = None
    hour_tolerance: float = 0.0
    source_institutions: tuple[str, ...] | None = None
    required_courses: tuple[str, ...] = ()
    excluded_courses: tuple[str, ...] = ()
    max_courses: int | None = None
    remote_on_site: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"机构": self.institution_id, "允许外省现场教学": self.remote_on_site, "班次类型": self.class_type, "总学时": self.total_hours,
                "专题": list(self.topics), "干部类别": list(self.audience_categories), "培训对象": list(self.audience_groups),
                "主体班次": self.is_main_class, "党性教育班次": self.is_party_spirit_class, "学时容差": self.hour_tolerance,
                "课程来源机构": None if self.source_institutions is None else list(self.source_institutions),
                "必选课程": list(self.required_courses), "排除课程": list(self.excluded_courses), "课程数上限": self.max_courses}


@dataclass(frozen=True)
class ProgrammeCourse:
    id: str
    name: str
    hours: float
    course_type: str
    lecturer_type: str
    teaching_method: tuple[str, ...]
    topics: tuple[str, ...]
    institution: str | None
    score: float
    serves: tuple[str, ...] = ()
    serves_names: tuple[str, ...] = ()
    institution_name: str = ""
    place: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"课程编号": self.id, "课程名称": self.name, "学时": self.hours, "课程类型": self.course_type,
                "授课人类型": self.lecturer_type, "教学方法": list(self.teaching_method), "主题": list(self.topics),
                "机构": self.institution, "机构名称": self.institution_name, "地点": self.place,
                "质量得分": round(self.score, 2), "服务专题": list(self.serves), "服务专题名称": list(self.serves_names)}


@dataclass(frozen=True)
class ProgrammeIndicator:
    id: str
    name: str
    threshold: float
    value: float | None
    passed: bool | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "指标": self.name, "阈值": self.threshold, "实际值": self.value, "是否达标": self.passed}


@dataclass
class ProgrammeResult:
    """A programme, or the reasons none exists."""

    request: ProgrammeRequest
    feasible: bool
    is_main_class: bool
    is_party_spirit_class: bool
    courses: list[ProgrammeCourse] = field(default_factory=list)
    indicators: list[ProgrammeIndicator] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    conflict: list[str] = field(default_factory=list)
    candidates: int = 0
    solve_seconds: float = 0.0
    proven_optimal: bool = True
    generated: dt.date = field(default_factory=dt.date.today)
    locality_note: str = ""

    @property
    def total_hours(self) -> float:
        return sum(c.hours for c in self.courses)

    @property
    def title(self) -> str:
        return f"班次课程方案（{self.request.class_type}，{self.request.total_hours:g} 学时）"

    def rules_used(self) -> list[tuple[str, str]]:
        rows = [("班次性质", f"主体班次：{'是' if self.is_main_class else '否'}；党性教育班次：{'是' if self.is_party_spirit_class else '否'}"),
                ("总学时", f"{self.request.total_hours:g} 学时（容差 {self.request.hour_tolerance:g}）")]
        rows += [(i.name, f"≥ {100 * i.threshold:.1f}%") for i in self.indicators]
        if self.request.topics:
            rows.append(("须覆盖专题", "、".join(self.request.topics)))
        if self.locality_note:
            rows.append(("现场教学地点", self.locality_note))
        return rows

    def tables(self) -> list[Table]:
        if not self.feasible:
            return [Table("无可行方案", ["原因"], [[r] for r in self.reasons])]
        courses = Table("课程方案", ["序号", "课程编号", "课程名称", "学时", "课程类型", "授课人类型", "教学方法", "主题", "机构",
                                 "地点", "服务专题", "质量得分"],
                        [[n, c.id, c.name, c.hours, c.course_type, c.lecturer_type, c.teaching_method, c.topics,
                          c.institution_name or c.institution, c.place, c.serves_names, round(c.score, 2)]
                         for n, c in enumerate(self.courses, start=1)])
        checks = Table("指标核对", ["指标", "阈值", "方案值", "是否达标"],
                       [[i.name, i.threshold, i.value, i.passed] for i in self.indicators])
        return [courses, checks]

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "请求": self.request.to_dict(), "可行": self.feasible, "主体班次": self.is_main_class,
                "党性教育班次": self.is_party_spirit_class, "课程": [c.to_dict() for c in self.courses],
                "总学时": self.total_hours, "指标": [i.to_dict() for i in self.indicators], "原因": self.reasons,
                "冲突约束": self.conflict, "候选课程数": self.candidates, "求解用时秒": round(self.solve_seconds, 3),
                "已证明最优": self.proven_optimal, "现场教学地点": self.locality_note}


def _class_flags(catalogue: CatalogueSnapshot, request: ProgrammeRequest) -> tuple[bool, bool]:
    same = [k for k in catalogue.classes.values() if k.class_type == request.class_type]

    def majority(explicit: bool | None, attr: str, otherwise: bool) -> bool:
        if explicit is not None:
            return explicit
        return 2 * sum(getattr(k, attr) for k in same) > len(same) if same else otherwise

    return (majority(request.is_main_class, "is_main_class", request.class_type == catalogue.vocab.main_class_type),
            majority(request.is_party_spirit_class, "is_party_spirit_class", False))


def _validate(catalogue: CatalogueSnapshot, request: ProgrammeRequest, ontology: Ontology) -> None:
    allowed = ontology.classes["TrainingClass"].fields["classType"].allowed or ()
    if request.class_type not in allowed:
        raise InputError(f"班次类型『{request.class_type}』无效，应为 {'、'.join(allowed)} 之一")
    if request.institution_id not in catalogue.institutions:
        raise InputError(f"机构编号『{request.institution_id}』不存在")
    if not request.total_hours > 0:
        raise InputError(f"总学时应为正数，实际为 {request.total_hours}")
    if request.hour_tolerance < 0:
        raise InputError(f"学时容差应为非负数，实际为 {request.hour_tolerance}")
    for topic in request.topics:
        if topic not in catalogue.tree:
            raise InputError(f"专题『{topic}』不是规划主题体系中的主题编号")
    for course in request.required_courses + request.excluded_courses:
        if course not in catalogue.courses:
            raise InputError(f"课程编号『{course}』不存在")


def _eligible(course: Course, request: ProgrammeRequest, far: bool = False) -> bool:
    """``far``: the course is on-site teaching outside the host's province, kept out unless the request allows it."""
    if course.id in request.excluded_courses or (far and not request.remote_on_site):
        return False
    if request.source_institutions is not None and course.institution not in request.source_institutions:
        return False
    wants_category = request.audience_categories and course.audience_category
    wants_group = request.audience_groups and course.audience_group
    if wants_category and not set(course.audience_category) & set(request.audience_categories):
        return False
    return not (wants_group and not set(course.audience_group) & set(request.audience_groups))


def _row(values: np.ndarray) -> sparse.csr_matrix:
    return sparse.csr_matrix(values.reshape(1, -1))


def _families(catalogue: CatalogueSnapshot, request: ProgrammeRequest, courses: list[Course],
              rules: list[IndicatorRule]) -> list[Family]:
    hours = np.array([c.hours for c in courses])
    low = request.total_hours - request.hour_tolerance

    def hours_text(row: int, achieved: float, gap: float, x: np.ndarray) -> str:
        side = f"最多只能凑出 {achieved:g} 学时" if achieved < low else f"至少为 {achieved:g} 学时"
        return f"总学时：要求 {request.total_hours:g} 学时，候选课程{side}（差 {gap:g} 学时）"

    families = [Family("hours", "总学时", _row(hours), low, request.total_hours, hours_text)]
    for topic in request.topics:
        covering = np.array([any(catalogue.tree.is_under(t, topic) for t in c.topics) for c in courses], dtype=float)
        name = catalogue.topic_name(topic)
        count = int(covering.sum())

        def topic_text(row: int, achieved: float, gap: float, x: np.ndarray, name: str = name, count: int = count) -> str:
            if count == 0:
                return f"专题『{name}』无法覆盖：符合受众、来源与状态条件的候选课程中没有覆盖该专题的课程"
            return f"专题『{name}』无法覆盖：覆盖该专题的 {count} 门候选课程与其他约束冲突"

        families.append(Family(f"topic:{topic}", f"专题覆盖：{name}", _row(covering), 1, np.inf, topic_text))
    for rule in rules:
        weights = np.array([rule.numerator.weight(c, catalogue) for c in courses])

        def share_text(row: int, achieved: float, gap: float, x: np.ndarray, rule: IndicatorRule = rule,
                       weights: np.ndarray = weights) -> str:
            total = float(hours @ x)
            share = f"{100 * float(hours * weights @ x) / total:.1f}%" if total else "—"
            counted = weights > 0
            return (f"{rule.name}：要求不低于 {100 * rule.threshold:.1f}%，在其他约束下最高只能达到 {share}，"
                    f"还差 {gap:.1f} 学时的计入课程（候选中计入该指标的课程共 {int(counted.sum())} 门、"
                    f"{float(hours[counted] @ weights[counted]):g} 学时）")

        families.append(Family(f"indicator:{rule.id}", rule.name, _row(hours * (weights - rule.threshold)), 0, np.inf,
                               share_text))
    if request.max_courses is not None:
        def count_text(row: int, achieved: float, gap: float, x: np.ndarray) -> str:
            return f"课程数上限：至多 {request.max_courses} 门，至少需要 {achieved:g} 门"

        families.append(Family("max_courses", "课程数上限", _row(np.ones(len(courses))), 0, request.max_courses, count_text))
    return families


def build_programme(
    catalogue: CatalogueSnapshot,
    request: ProgrammeRequest,
    *,
    demand: Mapping[str, float] | None = None,
    as_of: dt.date | None = None,
    time_limit: float = 60.0,
    ontology: Ontology | None = None,
) -> ProgrammeResult:
    """The best programme for the request, or the reasons (in Chinese) why none exists."""
    ontology = ontology or catalogue.ontology
    _validate(catalogue, request, ontology)
    institution = catalogue.institutions[request.institution_id]
    is_main, is_party_spirit = _class_flags(catalogue, request)
    rules = [r for r in teaching_rules(ontology.rules)
             if r.scope.applies_to(institution) and r.scope.selects_kind(is_main, is_party_spirit)]
    locality = Locality.from_rules(ontology.rules)
    local = locality.applies(institution)
    courses = [c for c in catalogue.published_courses
               if _eligible(c, request, local and locality.too_far(c, institution, catalogue))]
    courses.sort(key=lambda c: c.id)
    missing = [c for c in request.required_courses if c not in {x.id for x in courses}]
    if missing:
        raise InputError(f"必选课程不在候选范围内（未发布、被排除或不符合受众/来源条件）：{'、'.join(missing)}")
    scores = {c.id: c.score for c in score_candidates(catalogue, demand=demand, gates=(), as_of=as_of,
                                                       kinds=("course",), ontology=ontology)}
    hours = np.array([c.hours for c in courses])
    objective = hours * np.array([scores[c.id] for c in courses])
    lower = np.array([1.0 if c.id in request.required_courses else 0.0 for c in courses])
    families = _families(catalogue, request, courses, rules)
    result = ProgrammeResult(request, False, is_main, is_party_spirit, candidates=len(courses))
    if local:
        province = locality.province(institution.region)
        result.locality_note = (f"已允许外省{'、'.join(locality.course_types)}" if request.remote_on_site else
                                f"{'、'.join(locality.course_types)}只选{province}内的（以教学点所在地计，未注明教学点的以开课机构所在地计）")
    solution = solve(len(courses), families, objective, lower=lower, time_limit=time_limit)
    result.solve_seconds = solution.seconds
    if solution.x is None:
        conflict, shortfalls = explain_infeasible(len(courses), families, lower=lower, time_limit=time_limit)
        result.conflict = [f.label for f in conflict]
        result.reasons = explanation(conflict, shortfalls, "满足全部要求的课程方案")
        result.indicators = [ProgrammeIndicator(r.id, r.name, r.threshold, None, None) for r in rules]
        return result
    chosen = [courses[i] for i in solution.chosen]
    order = {b: n for n, b in enumerate(catalogue.tree.branches)}
    chosen.sort(key=lambda c: (min((order[b] for b in catalogue.tree.branches_of(c.topics)), default=len(order)), c.id))
    result.feasible = True
    result.proven_optimal = solution.status == "optimal"
    def serves(course: Course) -> tuple[str, ...]:
        return tuple(t for t in request.topics if any(catalogue.tree.is_under(own, t) for own in course.topics))

    result.courses = [ProgrammeCourse(c.id, c.name, c.hours, c.course_type, c.lecturer_type, c.teaching_method, c.topics,
                                      c.institution, scores[c.id], serves(c),
                                      tuple(catalogue.topic_name(t) for t in serves(c)),
                                      catalogue.institution_name(c.institution), locality.place(c, catalogue))
                      for c in chosen]
    for rule in rules:
        numerator, total = class_shares([(c, 1) for c in chosen], rule, catalogue)
        value = numerator / total if total else None
        result.indicators.append(ProgrammeIndicator(rule.id, rule.name, rule.threshold, value,
                                                    None if value is None else value + 1e-9 >= rule.threshold))
    return result
