"""Topic coverage from a cadre's own records, and the gaps it leaves against what their role requires.

Coverage is one figure, used by the gaps, the reasons, the bars and the learning map alike: the hours the
cadre studied on a topic, each record weighted by ``0.5 ** (age_in_years / half_life_years)`` and rounded to
``decimals`` places (``ontology/rules.yaml`` ``coverage``).  With a half-life of two years a course taken two
years ago counts half, one taken this year nearly fully, so a topic studied long ago becomes a gap again.
Hours flow from a course to every topic it covers and to all their broader topics (``BROADER``), once per topic.

What counts as studied is content, not crediting: a completed course contributes its own hours whether
or not the platform it was taken on is recognised for 学时 (that is :mod:`recommender.learner.hours`' question),
a 集中培训 course its recorded hours, and a class its hours spread over the class's courses by their length.

A gap is a required topic whose coverage is below its threshold (``requirements.yaml``: the entry's hours,
else the level's default); at or above it, it is not.  Its weight orders what to fill first:
``source weight × level weight × priority weight × (1 − coverage / threshold)``, where the source weight is
the largest among the sources asking the topic (position domain and target groups before category, category
before all cadres), so the job a cadre does decides what comes first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from recommender.errors import InvalidRequest
from recommender.labelled import Labelled
from recommender.learner.profile import LEVELS, CadreProfile, Record, Requirement
from recommender.catalogue.snapshot import CatalogueSnapshot
from recommender.dates import DAYS_PER_YEAR

__all__ = ["CoverageConfig", "Gap", "GapReport", "TopicCoverage", "analyse_gaps", "decay", "topic_coverage"]

#: requirements.yaml keys a source weight must be given for.
_SOURCE_KEYS = ("domains", "groups", "categories", "all_cadres")


@dataclass(frozen=True)
class CoverageConfig:
    """How coverage decays, how it is rounded and how gaps are weighed: the ``coverage`` section of
    ``ontology/rules.yaml`` (:meth:`from_rules`), with any field overridden per call."""

    half_life_years: float
    decimals: int
    level_weights: Mapping[str, float]
    priority_weights: Mapping[int, float]
    source_weights: Mapping[str, float]

    def __post_init__(self) -> None:
        if not self.half_life_years > 0:
            raise InvalidRequest(f"half_life_years（覆盖衰减半衰期，年）应为正数，实际为 {self.half_life_years}")
        if not isinstance(self.decimals, int) or not 0 <= self.decimals <= 3:
            raise InvalidRequest(f"decimals（有效学时小数位数）应为 0 到 3 的整数，实际为 {self.decimals!r}")
        unknown = set(self.level_weights) - set(LEVELS)
        if unknown:
            raise InvalidRequest(f"level_weights 的键应为 {'、'.join(LEVELS)}，实际含 {'、'.join(sorted(unknown))}")
        missing = set(_SOURCE_KEYS) - set(self.source_weights)
        if missing:
            raise InvalidRequest(f"source_weights（要求来源权重）缺少 {'、'.join(sorted(missing))}")

    @classmethod
    def from_rules(cls, rules: Mapping[str, Any], **overrides: Any) -> CoverageConfig:
        """The ``coverage`` section of the rules, with ``overrides`` on top; names the missing key if any."""
        section = rules.get("coverage") or {}
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in overrides:
                values[f.name] = overrides.pop(f.name)
            elif f.name in section:
                values[f.name] = section[f.name]
            else:
                raise InvalidRequest(f"rules.yaml 的 coverage 缺少 {f.name}")
        if overrides:
            raise InvalidRequest(f"CoverageConfig 没有参数 {'、'.join(sorted(overrides))}")
        values["priority_weights"] = {int(k): float(v) for k, v in values["priority_weights"].items()}
        return cls(**values)

    def importance(self, requirement: Requirement) -> float:
        """Source × level × priority weight of a requirement: how much filling it matters before the shortfall."""
        source = max(self.source_weights.get(s, 0.0) for s in (requirement.sources or (requirement.source,)))
        priority = self.priority_weights.get(requirement.priority, min(self.priority_weights.values()))
        return source * self.level_weights.get(requirement.level, 0.0) * priority

    @property
    def explanation(self) -> str:
        """The one sentence a cadre reads about the coverage figure."""
        return (f"有效学时：相关课程的学时按学习时间折算，每过 {self.half_life_years:g} 年计一半，"
                "达到学时门槛即不再是缺口；进度条、学习地图和推荐理由都用这一个数。")


def decay(age_days: float | np.ndarray, half_life_years: float) -> float | np.ndarray:
    """Weight of hours studied ``age_days`` ago: 1 today, ½ after one half-life; future dates weigh 1.

    Examples
    --------
    >>> decay(0, 2.0), decay(1461, 2.0)  # four years of 365.25 days = two half-lives
    (1.0, 0.25)
    """
    age = np.maximum(np.asarray(age_days, dtype=np.float64), 0.0)
    weight = np.power(0.5, age / (DAYS_PER_YEAR * half_life_years))
    return float(weight) if weight.ndim == 0 else weight


def studied_hours(record: Record, snapshot: CatalogueSnapshot) -> list[tuple[int, float]]:
    """(course position, hours of content studied) for one record; empty when not completed."""
    if not record.completed:
        return []
    if record.course is not None and record.course in snapshot.course_pos:
        pos = snapshot.course_pos[record.course]
        if record.mode == snapshot.vocab.online_mode or record.hours is None:
            return [(pos, float(snapshot.course_hours[pos]))]
        return [(pos, float(record.hours))]
    if record.klass is not None and record.klass in snapshot.classes:
        courses = [snapshot.course_pos[c] for c in snapshot.classes[record.klass].courses if c in snapshot.course_pos]
        lengths = np.array([float(snapshot.course_hours[c]) for c in courses])
        if not courses or lengths.sum() <= 0:
            return []
        total = record.hours if record.hours is not None else (record.days or 0.0) * snapshot.vocab.hours_per_day
        return [(c, float(total) * float(h) / float(lengths.sum())) for c, h in zip(courses, lengths)]
    return []


def topic_coverage(
    records: tuple[Record, ...] | list[Record], snapshot: CatalogueSnapshot, today: dt.date, config: CoverageConfig
) -> np.ndarray:
    """Coverage per topic position as of ``today``: decayed hours, rounded to ``config.decimals``."""
    coverage = np.zeros(snapshot.n_topics, dtype=np.float64)
    weighted: dict[int, float] = {}
    for record in records:
        if record.date > today:
            continue
        weight = decay((today - record.date).days, config.half_life_years)
        for course, hours in studied_hours(record, snapshot):
            weighted[course] = weighted.get(course, 0.0) + hours * weight
    if weighted:
        flows = snapshot.course_flows(np.fromiter(weighted, dtype=np.int64)).astype(np.float64)
        coverage += np.fromiter(weighted.values(), dtype=np.float64) @ flows
    return np.round(coverage + 1e-9, config.decimals)


@dataclass(frozen=True)
class TopicCoverage(Labelled):
    """One required topic on the learning map: how far coverage is from the threshold.

    ``ratio`` (coverage / threshold, capped at 1) is the bar, ``percent`` its whole-number reading; the
    reasons quote the same ``coverage`` and ``percent``.
    """

    requirement: Requirement
    coverage: float
    weight: float
    branch: str

    LABELS: ClassVar[dict[str, str]] = {
        "topic_id": "主题编号", "topic_name": "主题", "branch": "所属板块", "level_label": "要求",
        "side_label": "类别", "threshold": "学时门槛", "coverage": "有效覆盖学时", "ratio": "覆盖率",
        "percent": "覆盖百分比", "is_gap": "是否缺口", "section": "规划条目", "basis": "依据",
    }

    @property
    def topic_id(self) -> str:
        return self.requirement.topic_id

    @property
    def topic_name(self) -> str:
        return self.requirement.topic_name

    @property
    def level_label(self) -> str:
        return self.requirement.level_label

    @property
    def side_label(self) -> str:
        return self.requirement.side_label

    @property
    def threshold(self) -> float:
        return self.requirement.hours

    @property
    def section(self) -> str:
        return self.requirement.section

    @property
    def basis(self) -> str:
        return self.requirement.basis

    @property
    def ratio(self) -> float:
        return 1.0 if self.threshold <= 0 else min(1.0, self.coverage / self.threshold)

    @property
    def percent(self) -> int:
        """The bar in whole per cent — the number the reason quotes."""
        return int(np.floor(100 * self.ratio + 1e-9))

    @property
    def is_gap(self) -> bool:
        """Below the threshold; a topic at or above it is not a gap."""
        return self.coverage < self.threshold

    @property
    def standing(self) -> str:
        """"有效学时 1.5 / 6 学时（25%）": the figures of the bar, in words."""
        return f"有效学时 {self.coverage:g} / {self.threshold:g} 学时（{self.percent}%）"


@dataclass(frozen=True)
class Gap(TopicCoverage):
    """A required topic below its threshold; ``weight`` > 0 orders gaps, largest first."""

    LABELS: ClassVar[dict[str, str]] = {**TopicCoverage.LABELS, "weight": "缺口权重", "reason": "说明"}

    @property
    def reason(self) -> str:
        """"你所在的岗位领域（金融监管）要求学习『…』，有效学时 0 / 6 学时（0%）（规划 四（一））"."""
        req = self.requirement
        return f"{req.demand_phrase()}，{self.standing}（规划 {req.section}）"


@dataclass(frozen=True)
class GapReport(Labelled):
    """A cadre's coverage of every required topic and the gaps among them, as of ``today``."""

    cadre_id: str
    today: dt.date
    half_life_years: float
    cold_start: bool
    topics: tuple[TopicCoverage, ...]
    gaps: tuple[Gap, ...]
    explanation: str
    coverage: np.ndarray = field(repr=False, compare=False)  # (T,) coverage per topic position (the one figure)
    gap_weights: np.ndarray = field(repr=False, compare=False)  # (T,) gap weight per topic position, 0 if none
    requirement_weights: np.ndarray = field(repr=False, compare=False)  # (T,) source × level × priority weight
    thresholds: np.ndarray = field(repr=False, compare=False)  # (T,) hours threshold of required topics, 0 if none
    job_topics: np.ndarray = field(repr=False, compare=False)  # (T,) bool: required by the job side (not all cadres)

    LABELS: ClassVar[dict[str, str]] = {
        "cadre_id": "干部编号", "today": "统计日期", "half_life_years": "覆盖衰减半衰期（年）",
        "explanation": "覆盖说明", "cold_start": "尚无学习记录", "gaps": "知识缺口", "topics": "必学选学主题覆盖",
    }

    def gap(self, topic_id: str) -> Gap | None:
        return next((g for g in self.gaps if g.topic_id == topic_id), None)


def analyse_gaps(profile: CadreProfile, snapshot: CatalogueSnapshot, today: dt.date, config: CoverageConfig | None = None) -> GapReport:
    """Coverage of each required topic and the weighted gaps, largest first (config: the rules' ``coverage``)."""
    config = config or CoverageConfig.from_rules(snapshot.ontology.rules)
    coverage = topic_coverage(profile.records, snapshot, today, config)
    gap_weights = np.zeros(snapshot.n_topics, dtype=np.float64)
    requirement_weights = np.zeros(snapshot.n_topics, dtype=np.float64)
    thresholds = np.zeros(snapshot.n_topics, dtype=np.float64)
    job_topics = np.zeros(snapshot.n_topics, dtype=bool)
    topics: list[TopicCoverage] = []
    gaps: list[Gap] = []
    for req in profile.requirements:
        pos = snapshot.topic_pos.get(req.topic_id)
        if pos is None:
            continue
        importance = config.importance(req)
        deficit = 0.0 if req.hours <= 0 else max(0.0, 1.0 - coverage[pos] / req.hours)
        branch = snapshot.topic_props[snapshot.branch[pos]].get("name", "")
        item = TopicCoverage(req, float(coverage[pos]), importance * deficit, branch)
        topics.append(item)
        requirement_weights[pos] = importance
        thresholds[pos] = req.hours
        job_topics[pos] = req.side == "job"
        if item.is_gap:
            gap_weights[pos] = importance * deficit
            gaps.append(Gap(req, item.coverage, importance * deficit, branch))
    gaps.sort(key=lambda g: (-g.weight, g.topic_id))
    return GapReport(
        cadre_id=profile.cadre_id,
        today=today,
        half_life_years=config.half_life_years,
        cold_start=profile.cold_start,
        topics=tuple(topics),
        gaps=tuple(gaps),
        explanation=config.explanation,
        coverage=coverage,
        gap_weights=gap_weights,
        requirement_weights=requirement_weights,
        thresholds=thresholds,
        job_topics=job_topics,
    )
