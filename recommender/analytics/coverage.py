"""Topic coverage and demand: what the catalogue supplies for each plan topic against what cadres lack.

For every topic of the plan's scheme: published courses that cover it (and with its narrower topics),
their hours, case share, teaching-method mix, mean years since last revision, learner rating, and demand —
the number of cadres for whom the topic is a gap, from the recommender's gap analysis (passed in, so the
report does not depend on how demand is computed).

Under-served topics are ranked by a gap index, ``demand / (1 + fresh supply)``, where fresh supply counts
each course covering the topic or a narrower one (a broad topic is served by courses on its parts) as ``1 / (1 + years since its last revision)``: a course revised this year counts
fully, one untouched for three years a quarter.  It has no tuning constants, grows with demand and falls
with more or fresher courses.  Without demand data every topic's demand is taken as 1, so the ranking is by
thin or stale supply alone (the report says so).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kg.ontology import Ontology

from recommender.analytics.errors import InputError
from recommender.analytics.exports import Table
from recommender.catalogue.rows import Course
from recommender.catalogue.snapshot import CatalogueSnapshot
from recommender.dates import years_between

__all__ = ["CoverageReport", "NearDuplicate", "TopicCoverage", "coverage_report", "fresh_supply", "gap_index",
           "underserved_by"]

#: The two sentences the report, its export and the designer's page state about the ranking figures.
FRESH_SUPPLY_TEXT = ("覆盖该主题（含下位主题）的已发布课程按新旧折算的门数：当年修订的课程计 1 门，"
                     "距上次修订 1 年计 1/2 门，3 年计 1/4 门")
GAP_INDEX_TEXT = ("需求人数 ÷（1 + 折算课程数），即平均每门折算课程要面对的缺这一主题的干部人数；"
                  "数值越大，供给越跟不上需求，供给不足的主题按它从大到小排列")


@dataclass(frozen=True)
class NearDuplicate:
    """Two courses whose texts are nearly the same (from semantic search), listed for consolidation."""

    course_a: str
    course_b: str
    similarity: float


@dataclass
class TopicCoverage:
    """Supply and demand for one topic."""

    topic_id: str
    name: str
    branch: str | None
    priority: int | None
    courses: int
    courses_with_narrower: int
    hours: float
    case_share: float | None
    methods: dict[str, float]
    years_since_update: float | None
    rating: float | None
    rating_count: int
    demand: float | None
    gap_index: float
    fresh_supply: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic_id, "主题": self.name, "一级主题": self.branch, "规划优先级": self.priority,
            "已发布课程数": self.courses, "含下位主题课程数": self.courses_with_narrower, "学时": self.hours,
            "案例课程占比": self.case_share, "教学方法构成": self.methods, "平均距上次更新年数": self.years_since_update,
            "学员评分": self.rating, "评分人次": self.rating_count, "需求人数": self.demand,
            "折算课程数": round(self.fresh_supply, 3), "供给缺口指数": self.gap_index,
        }


def _years(course: Course, as_of: dt.date) -> float | None:
    """Years since the course was last revised (or created); None when it carries neither date."""
    return years_between(course.date_modified or course.date_created, as_of)


def fresh_supply(courses: Iterable[Course], as_of: dt.date) -> float:
    """Courses counted by freshness, ``Σ 1/(1 + years since each course's last revision)`` (undated count fully):
    the 折算课程数 a designer reads beside the index."""
    fresh = 0.0
    for course in courses:
        years = _years(course, as_of)
        fresh += 1.0 if years is None else 1.0 / (1.0 + years)
    return fresh


def gap_index(demand: float, courses: Iterable[Course], as_of: dt.date) -> float:
    """``demand / (1 + fresh supply)``: cadres who lack the topic per fresh course (one more in the divisor so
    a topic with no course at all stays finite)."""
    return demand / (1.0 + fresh_supply(courses, as_of))


@dataclass
class CoverageReport:
    """Coverage rows for every topic, the ranked under-served topics and near-duplicate courses."""

    scope: str
    as_of: dt.date
    generated: dt.date
    rows: list[TopicCoverage]
    underserved: list[TopicCoverage]
    demand_note: str
    near_duplicates: list[NearDuplicate] = field(default_factory=list)
    course_names: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def title(self) -> str:
        return f"主题覆盖与需求报告（{self.scope}）"

    def rules_used(self) -> list[tuple[str, str]]:
        return [
            ("统计范围", f"{self.scope}的已发布课程；统计基准日 {self.as_of.isoformat()}"),
            ("需求数据", self.demand_note),
            ("折算课程数", FRESH_SUPPLY_TEXT),
            ("供给缺口指数", GAP_INDEX_TEXT),
        ]

    def _row(self, r: TopicCoverage) -> list[Any]:
        methods = "；".join(f"{m} {100 * s:.0f}%" for m, s in sorted(r.methods.items(), key=lambda kv: -kv[1]))
        return [r.topic_id, r.name, r.branch, r.priority, r.courses, r.courses_with_narrower, r.hours, r.case_share,
                methods, r.years_since_update, r.rating, r.rating_count, r.demand, round(r.fresh_supply, 3),
                round(r.gap_index, 4)]

    def tables(self) -> list[Table]:
        headers = ["主题编号", "主题", "一级主题", "规划优先级", "已发布课程数", "含下位主题课程数", "学时", "案例课程占比",
                   "教学方法构成", "平均距上次更新年数", "学员评分", "评分人次", "需求人数", "折算课程数", "供给缺口指数"]
        tables = [Table("主题覆盖", headers, [self._row(r) for r in self.rows]),
                  Table("供给不足的主题", ["排名"] + headers,
                        [[rank] + self._row(r) for rank, r in enumerate(self.underserved, start=1)])]
        if self.near_duplicates:
            tables.append(Table("疑似重复课程", ["课程编号A", "课程名称A", "课程编号B", "课程名称B", "相似度"], [
                [d.course_a, self.course_names.get(d.course_a, ""), d.course_b, self.course_names.get(d.course_b, ""),
                 round(d.similarity, 4)] for d in self.near_duplicates]))
        return tables

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title, "范围": self.scope, "基准日": self.as_of.isoformat(), "需求数据": self.demand_note,
            "说明": dict(self.rules_used()),
            "主题覆盖": [r.to_dict() for r in self.rows], "供给不足的主题": [r.to_dict() for r in self.underserved],
            "疑似重复课程": [{"课程A": d.course_a, "课程B": d.course_b, "相似度": d.similarity} for d in self.near_duplicates],
        }


def _scope(catalogue: CatalogueSnapshot, institution: str | None, level: str | None, ontology: Ontology) -> tuple[str, list[Course]]:
    courses = catalogue.published_courses
    if institution is not None:
        if institution not in catalogue.institutions:
            raise InputError(f"机构编号『{institution}』不存在（应为培训机构编号，如 inst:central-party-school）")
        return catalogue.institutions[institution].name, [c for c in courses if c.institution == institution]
    if level is not None:
        allowed = ontology.classes["Institution"].fields["level"].allowed or ()
        if level not in allowed:
            raise InputError(f"机构层级『{level}』无效，应为 {'、'.join(allowed)} 之一")
        ids = {i.id for i in catalogue.institutions.values() if i.level == level}
        return f"{level}级机构", [c for c in courses if c.institution in ids]
    return "全部机构", courses


def coverage_report(
    catalogue: CatalogueSnapshot,
    demand: Mapping[str, float] | None = None,
    *,
    institution: str | None = None,
    level: str | None = None,
    as_of: dt.date | None = None,
    top: int = 20,
    near_duplicates: Iterable[tuple[str, str, float]] | None = None,
    ontology: Ontology | None = None,
) -> CoverageReport:
    """Coverage of every plan topic by published courses (of one institution or level if given)."""
    ontology = ontology or catalogue.ontology
    as_of = as_of or dt.date.today()
    demand = demand or None  # an empty mapping (no cadre data yet) is no demand data, not zero demand everywhere
    scope, courses = _scope(catalogue, institution, level, ontology)
    tree = catalogue.tree
    direct: dict[str, list[Course]] = defaultdict(list)
    subtree: dict[str, dict[str, Course]] = defaultdict(dict)
    for course in courses:
        for topic in course.confirmed_topics:  # a topic an import only suggested counts once a designer confirms it
            direct[topic].append(course)
            for ancestor in tree.ancestors(topic):
                subtree[ancestor][course.id] = course
    rows = []
    for topic in sorted(tree.rows.values(), key=lambda t: t.id):
        covering = direct.get(topic.id, [])
        hours = sum(c.hours for c in covering)
        mix: dict[str, float] = defaultdict(float)
        for course in covering:
            for method in course.teaching_method:
                mix[method] += course.hours / len(course.teaching_method) / hours
        ages = [a for a in (_years(c, as_of) for c in covering) if a is not None]
        rated = [c for c in covering if c.rating is not None]
        weights = sum(c.rating_count or 1 for c in rated)
        wanted = None if demand is None else demand.get(topic.id, 0)
        branch = tree.branch_of(topic.id)
        rows.append(TopicCoverage(
            topic_id=topic.id, name=topic.name, branch=catalogue.topic_name(branch) if branch else None,
            priority=tree.priority_of(topic.id), courses=len(covering), courses_with_narrower=len(subtree[topic.id]),
            hours=hours, case_share=sum(c.is_case for c in covering) / len(covering) if covering else None,
            methods={m: round(s, 4) for m, s in mix.items()},
            years_since_update=round(sum(ages) / len(ages), 2) if ages else None,
            rating=round(sum(c.rating * (c.rating_count or 1) for c in rated) / weights, 3) if rated else None,
            rating_count=sum(c.rating_count or 0 for c in rated), demand=wanted,
            gap_index=gap_index(1.0 if wanted is None else wanted, subtree[topic.id].values(), as_of),
            fresh_supply=fresh_supply(subtree[topic.id].values(), as_of),
        ))
    ranked = sorted((r for r in rows if r.demand is None or r.demand > 0), key=lambda r: (-r.gap_index, r.topic_id))
    names = {c.id: c.name for c in catalogue.courses.values()}
    duplicates = [NearDuplicate(a, b, float(s)) for a, b, s in (near_duplicates or [])]
    note = ("学员差距分析：各主题被判定为知识差距的干部人数" if demand is not None
            else "未提供需求数据：每个主题需求按 1 计，仅按供给薄弱或陈旧排序")
    return CoverageReport(scope, as_of, dt.date.today(), rows, ranked[:top], note, duplicates, names)


def underserved_by(
    catalogue: CatalogueSnapshot,
    demand: Mapping[str, float] | None,
    by: str = "level",
    *,
    as_of: dt.date | None = None,
    top: int = 10,
    ontology: Ontology | None = None,
) -> dict[str, list[TopicCoverage]]:
    """The under-served ranking per institution level (``by='level'``) or per institution (``'institution'``),
    supply counted from that group's courses only, demand being the same national figure."""
    ontology = ontology or catalogue.ontology
    if by == "level":
        groups = [lvl for lvl in ontology.classes["Institution"].fields["level"].allowed or ()
                  if any(i.level == lvl for i in catalogue.institutions.values())]
        return {f"{lvl}级机构": coverage_report(catalogue, demand, level=lvl, as_of=as_of, top=top,
                                             ontology=ontology).underserved for lvl in groups}
    if by == "institution":
        return {i.name: coverage_report(catalogue, demand, institution=i.id, as_of=as_of, top=top,
                                        ontology=ontology).underserved
                for i in sorted(catalogue.institutions.values(), key=lambda i: i.id)}
    raise InputError(f"分组方式『{by}』无效，应为 level（按层级）或 institution（按机构）")
