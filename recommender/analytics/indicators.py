"""Teaching and course-update indicators (教学指标、课程更新指标) for one institution and period.

Every indicator of ``rules.yaml`` is evaluated for the institution's classes of a semester (``2025春``) or
year (``2025``): its value, threshold, pass or fail, the scope it applies to (and whether the institution
falls in it), and the courses that move it most — for a share, the change if a course were dropped from
the programme and, when the indicator fails, the institution's published courses whose addition would
raise it most.  Shares are of class hours: a course taught in two classes counts twice.

Update indicators are yearly: with a semester they are computed for that semester's calendar year.  A rate
rule (``threshold``) is the share of distinct courses in the scoped classes that were created or revised
that year; an hours rule (``threshold_hours``) sums the hours of courses first published that year on the
institution's platforms within scope.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kg.ontology import Ontology, load_ontology

from recommender.analytics.errors import InputError
from recommender.analytics.exports import Table
from recommender.analytics.rules import IndicatorRule, UpdateRule, teaching_rules, update_rules
from recommender.catalogue.rows import Course, Institution, TrainingClass
from recommender.catalogue.snapshot import CatalogueSnapshot

__all__ = [
    "CourseEffect",
    "IndicatorReport",
    "IndicatorResult",
    "Period",
    "class_shares",
    "parse_period",
    "teaching_indicators",
]

_EPSILON = 1e-9


@dataclass(frozen=True)
class Period:
    """A semester (``2025春``) or a calendar year (``2025``)."""

    year: int
    semester: str | None = None

    @property
    def label(self) -> str:
        return self.semester or f"{self.year}年"

    def includes(self, klass: TrainingClass) -> bool:
        return klass.semester == self.semester if self.semester else klass.year == self.year


def parse_period(text: str | int, ontology: Ontology | None = None) -> Period:
    """Read ``2025春`` / ``2025秋`` (the pattern of TrainingClass.semester in shapes.ttl) or ``2025``."""
    ontology = ontology or load_ontology()
    value = str(text).strip()
    if re.fullmatch(r"\d{4}", value):
        return Period(int(value))
    pattern = ontology.classes["TrainingClass"].fields["semester"].pattern
    if pattern and re.fullmatch(pattern, value):
        return Period(int(value[:4]), value)
    raise InputError(f"期间『{value}』无法识别：学期应写作如 2025春、2025秋，学年写作如 2025")


@dataclass(frozen=True)
class CourseEffect:
    """How one course moves an indicator: ``effect`` is the indicator's change (share points or hours)
    if the ``action`` (移除 / 加入 / 更新 / 新增) were taken or undone."""

    course_id: str
    name: str
    hours: float
    occurrences: int
    counted: float
    effect: float
    action: str

    def to_dict(self) -> dict[str, Any]:
        return {"课程编号": self.course_id, "课程名称": self.name, "学时": self.hours, "出现次数": self.occurrences,
                "计入比例": round(self.counted, 4), "影响": round(self.effect, 4), "操作": self.action}


@dataclass
class IndicatorResult:
    """One indicator for one institution and period."""

    id: str
    name: str
    section: str
    scope: str
    applies: bool
    unit: str
    threshold: float
    value: float | None
    numerator: float
    denominator: float | None
    classes: tuple[str, ...] = ()
    movers: list[CourseEffect] = field(default_factory=list)
    note: str = ""

    @property
    def passed(self) -> bool | None:
        """True/False where the rule applies and there is something to measure, else None (不适用/无数据)."""
        if not self.applies or self.value is None:
            return None
        return self.value + _EPSILON >= self.threshold

    @property
    def status(self) -> str:
        return {True: "达标", False: "未达标", None: "不适用" if not self.applies else "无数据"}[self.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "指标": self.name, "规划条目": self.section, "适用范围": self.scope, "是否适用": self.applies,
            "单位": self.unit, "阈值": self.threshold, "实际值": self.value, "是否达标": self.passed, "状态": self.status,
            "分子": self.numerator, "分母": self.denominator, "班次": list(self.classes),
            "影响最大的课程": [m.to_dict() for m in self.movers], "说明": self.note,
        }


@dataclass
class IndicatorReport:
    """All indicators of one institution for one period."""

    institution: Institution
    period: Period
    results: list[IndicatorResult]
    generated: dt.date

    @property
    def title(self) -> str:
        return f"{self.institution.name} {self.period.label} 教学与课程更新指标"

    def rules_used(self) -> list[tuple[str, str]]:
        return [(r.name, f"{r.unit} ≥ {_fmt(r.threshold, r.unit)}；{r.scope}（规划{r.section}）") for r in self.results]

    def tables(self) -> list[Table]:
        summary = Table("指标", ["指标编号", "指标", "规划条目", "适用范围", "是否适用", "阈值", "实际值", "结论", "分子",
                                 "分母", "班次数", "说明"])
        movers = Table("影响最大的课程", ["指标", "课程编号", "课程名称", "学时", "出现次数", "计入比例", "影响", "操作"])
        for r in self.results:
            summary.rows.append([r.id, r.name, r.section, r.scope, r.applies, _fmt(r.threshold, r.unit),
                                 _fmt(r.value, r.unit), r.status, r.numerator, r.denominator, len(r.classes), r.note])
            movers.rows.extend([r.name, m.course_id, m.name, m.hours, m.occurrences, m.counted, m.effect, m.action]
                               for m in r.movers)
        return [summary, movers]

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "机构": self.institution.id, "机构名称": self.institution.name,
                "期间": self.period.label, "生成日期": self.generated.isoformat(),
                "指标": [r.to_dict() for r in self.results]}


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} 学时" if unit == "学时" else f"{100 * value:.1f}%"


def class_shares(
    course_hours: Iterable[tuple[Course, int]], rule: IndicatorRule, catalogue: CatalogueSnapshot
) -> tuple[float, float]:
    """(numerator hours, total hours) of a programme given as (course, times taught) pairs."""
    numerator = total = 0.0
    for course, times in course_hours:
        numerator += times * course.hours * rule.numerator.weight(course, catalogue)
        total += times * course.hours
    return numerator, total


def _share_result(rule: IndicatorRule, catalogue: CatalogueSnapshot, institution: Institution,
                  classes: list[TrainingClass], top: int, ontology: Ontology) -> IndicatorResult:
    selected = [k for k in classes if rule.scope.selects(k)]
    times = Counter(c for k in selected for c in k.courses if c in catalogue.courses)
    taught = [(catalogue.courses[c], n) for c, n in sorted(times.items())]
    numerator, total = class_shares(taught, rule, catalogue)
    value = numerator / total if total else None
    result = IndicatorResult(
        id=rule.id, name=rule.name, section=rule.section, scope=rule.scope.label(ontology),
        applies=rule.scope.applies_to(institution), unit="比重", threshold=rule.threshold, value=value,
        numerator=round(numerator, 4), denominator=round(total, 4), classes=tuple(k.id for k in selected),
    )
    if not result.applies:
        result.note = "该机构的类型或层级不在本指标适用范围内"
    elif not selected:
        result.note = "本期没有适用的班次"
    if value is None:
        return result
    effects = []
    for course, n in taught:
        rest = total - n * course.hours
        if rest > 0:
            weight = rule.numerator.weight(course, catalogue)
            effects.append(CourseEffect(course.id, course.name, course.hours, n, weight,
                                        value - (numerator - n * weight * course.hours) / rest, "移除"))
    effects.sort(key=lambda e: (-abs(e.effect), e.course_id))
    result.movers = effects[:top]
    if result.passed is False:
        additions = []
        for course in catalogue.published_courses:
            weight = rule.numerator.weight(course, catalogue)
            if course.institution == institution.id and course.id not in times and weight > 0:
                gain = (numerator + weight * course.hours) / (total + course.hours) - value
                additions.append(CourseEffect(course.id, course.name, course.hours, 0, weight, gain, "加入"))
        additions.sort(key=lambda e: (-e.effect, e.course_id))
        result.movers += additions[:top]
    return result


def _update_rate_result(rule: UpdateRule, catalogue: CatalogueSnapshot, institution: Institution, year: int,
                        top: int, ontology: Ontology) -> IndicatorResult:
    selected = [k for k in catalogue.classes.values()
                if k.institution == institution.id and k.year == year and rule.scope.selects(k)]
    courses = sorted({c for k in selected for c in k.courses if c in catalogue.courses})

    def revised(course: Course) -> bool:
        return any(d is not None and d.year == year for d in (course.date_created, course.date_modified))

    updated = [c for c in courses if revised(catalogue.courses[c])]
    value = len(updated) / len(courses) if courses else None
    result = IndicatorResult(
        id=rule.id, name=rule.name, section=rule.section, scope=rule.scope.label(ontology),
        applies=rule.scope.applies_to(institution), unit="更新率", threshold=rule.threshold or 0.0, value=value,
        numerator=float(len(updated)), denominator=float(len(courses)), classes=tuple(k.id for k in selected),
        note=f"按 {year} 年度计算：当年新建或修订的课程占本年度适用班次全部课程（去重）的比例",
    )
    if not result.applies:
        result.note = "该机构的类型或层级不在本指标适用范围内；" + result.note
    stale = sorted((catalogue.courses[c] for c in courses if c not in updated),
                   key=lambda c: (c.date_modified or dt.date.min, c.id))
    result.movers = [CourseEffect(c.id, c.name, c.hours, 1, 0.0, 1 / len(courses), "更新") for c in stale[:top]]
    return result


def _online_additions_result(rule: UpdateRule, catalogue: CatalogueSnapshot, institution: Institution, year: int,
                             top: int, ontology: Ontology) -> IndicatorResult:
    platforms = [p for p in catalogue.platforms.values()
                 if p.institution == institution.id and rule.scope.covers_level(p.level)]
    ids = {p.id for p in platforms}
    added = sorted((c for c in catalogue.published_courses
                    if c.platform in ids and c.date_created is not None and c.date_created.year == year),
                   key=lambda c: (-c.hours, c.id))
    applies = bool(platforms) and (rule.scope.institution_types is None
                                   or institution.institution_type in rule.scope.institution_types)
    hours = sum(c.hours for c in added)
    note = (f"按 {year} 年度计算：{'、'.join(p.name for p in platforms)} 当年新上线课程的学时" if platforms
            else "该机构没有适用层级的网络培训平台")
    return IndicatorResult(
        id=rule.id, name=rule.name, section=rule.section, scope=rule.scope.label(ontology, with_classes=False),
        applies=applies,
        unit="学时", threshold=rule.threshold_hours or 0.0, value=hours if platforms else None, numerator=hours,
        denominator=None, note=note,
        movers=[CourseEffect(c.id, c.name, c.hours, 1, 1.0, c.hours, "新增") for c in added[:top]],
    )


def teaching_indicators(
    catalogue: CatalogueSnapshot,
    institution_id: str,
    period: str | int | Period,
    *,
    top: int = 5,
    ontology: Ontology | None = None,
    today: dt.date | None = None,
) -> IndicatorReport:
    """Every teaching indicator and course-update indicator of rules.yaml for one institution and period."""
    ontology = ontology or catalogue.ontology
    institution = catalogue.institutions.get(institution_id)
    if institution is None:
        raise InputError(f"机构编号『{institution_id}』不存在（应为如 inst:central-party-school 的培训机构编号）")
    if not isinstance(period, Period):
        period = parse_period(period, ontology)
    classes = [k for k in catalogue.classes.values() if k.institution == institution.id and period.includes(k)]
    classes.sort(key=lambda k: k.id)
    results = [_share_result(rule, catalogue, institution, classes, top, ontology)
               for rule in teaching_rules(ontology.rules)]
    for rule in update_rules(ontology.rules):
        compute = _update_rate_result if rule.threshold is not None else _online_additions_result
        results.append(compute(rule, catalogue, institution, period.year, top, ontology))
    return IndicatorReport(institution, period, results, today or dt.date.today())
