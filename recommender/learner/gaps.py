"""Topic coverage from a cadre's own records, and the gaps it leaves against what their role requires.

Coverage of a topic is the hours the cadre studied on it, each record weighted by
``0.5 ** (age_in_years / half_life_years)``: with the default half-life of two years a course taken two
years ago counts half, one taken this year nearly fully.  Hours flow from a course to every topic it
covers and to all their broader topics (``BROADER``), once per topic.

What counts as studied is content, not crediting: a completed course contributes its own hours whether
or not the platform it was taken on is recognised for 学时 (that is :mod:`recommender.learner.hours`' question),
a 集中培训 course its recorded hours, and a class its hours spread over the class's courses by their length.

A gap is a required topic whose coverage is below its threshold (``requirements.yaml``: the entry's hours,
else the level's default).  Its weight orders what to fill first:
``level weight × priority weight × (1 − coverage / threshold)``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from recommender.errors import InvalidRequest
from recommender.labelled import Labelled
from recommender.learner.profile import LEVELS, CadreProfile, Record, Requirement
from recommender.catalogue.snapshot import CatalogueSnapshot

__all__ = ["CoverageConfig", "Gap", "GapReport", "TopicCoverage", "analyse_gaps", "decay", "topic_coverage"]

_DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class CoverageConfig:
    """How coverage decays and how gaps are weighed.  Every field may be set per call or per deployment.

    ``recent_years`` is the window of the undecayed "近三年相关学时" figure quoted in reasons.
    """

    half_life_years: float = 2.0
    recent_years: float = 3.0
    level_weights: Mapping[str, float] = field(default_factory=lambda: {"essential": 1.0, "optional": 0.5})
    priority_weights: Mapping[int, float] = field(default_factory=lambda: {1: 1.0, 2: 0.85, 3: 0.7})

    def __post_init__(self) -> None:
        if not self.half_life_years > 0:
            raise InvalidRequest(f"half_life_years（覆盖衰减半衰期，年）应为正数，实际为 {self.half_life_years}")
        if not self.recent_years > 0:
            raise InvalidRequest(f"recent_years（近期学时统计年数）应为正数，实际为 {self.recent_years}")
        unknown = set(self.level_weights) - set(LEVELS)
        if unknown:
            raise InvalidRequest(f"level_weights 的键应为 {'、'.join(LEVELS)}，实际含 {'、'.join(sorted(unknown))}")


def decay(age_days: float | np.ndarray, half_life_years: float) -> float | np.ndarray:
    """Weight of hours studied ``age_days`` ago: 1 today, ½ after one half-life; future dates weigh 1.

    Examples
    --------
    >>> decay(0, 2.0), decay(1461, 2.0)  # four years of 365.25 days = two half-lives
    (1.0, 0.25)
    """
    age = np.maximum(np.asarray(age_days, dtype=np.float64), 0.0)
    weight = np.power(0.5, age / (_DAYS_PER_YEAR * half_life_years))
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
) -> tuple[np.ndarray, np.ndarray]:
    """(decayed coverage, undecayed hours in the last ``recent_years``) per topic position, as of ``today``."""
    coverage = np.zeros(snapshot.n_topics, dtype=np.float64)
    recent = np.zeros(snapshot.n_topics, dtype=np.float64)
    recent_from = today - dt.timedelta(days=round(config.recent_years * _DAYS_PER_YEAR))
    weighted: dict[int, list[float]] = {}
    for record in records:
        if record.date > today:
            continue
        weight = decay((today - record.date).days, config.half_life_years)
        for course, hours in studied_hours(record, snapshot):
            entry = weighted.setdefault(course, [0.0, 0.0])
            entry[0] += hours * weight
            if record.date > recent_from:
                entry[1] += hours
    if weighted:
        flows = snapshot.course_flows(np.fromiter(weighted, dtype=np.int64)).astype(np.float64)
        hours = np.array(list(weighted.values()), dtype=np.float64)  # (P, 2): decayed, recent
        coverage += hours[:, 0] @ flows
        recent += hours[:, 1] @ flows
    return coverage, recent


@dataclass(frozen=True)
class TopicCoverage(Labelled):
    """One required topic on the learning map: how far coverage is from the threshold."""

    requirement: Requirement
    coverage: float
    recent_hours: float
    weight: float
    branch: str

    LABELS: ClassVar[dict[str, str]] = {
        "topic_id": "主题编号", "topic_name": "主题", "branch": "所属板块", "level_label": "要求",
        "threshold": "学时门槛", "coverage": "有效覆盖学时", "ratio": "覆盖率", "recent_hours": "近三年学时",
        "is_gap": "是否缺口", "section": "规划条目", "basis": "依据",
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
    def is_gap(self) -> bool:
        return self.coverage < self.threshold


@dataclass(frozen=True)
class Gap(TopicCoverage):
    """A required topic below its threshold; ``weight`` > 0 orders gaps, largest first."""

    LABELS: ClassVar[dict[str, str]] = {**TopicCoverage.LABELS, "weight": "缺口权重", "reason": "说明"}

    @property
    def reason(self) -> str:
        """"你所在的岗位领域（金融监管）要求学习『…』，近三年相关学时为 0（规划 四（一））"."""
        req = self.requirement
        return f"{req.demand_phrase()}，近三年相关学时为 {self.recent_hours:.3g}（规划 {req.section}）"


@dataclass(frozen=True)
class GapReport(Labelled):
    """A cadre's coverage of every required topic and the gaps among them, as of ``today``."""

    cadre_id: str
    today: dt.date
    half_life_years: float
    cold_start: bool
    topics: tuple[TopicCoverage, ...]
    gaps: tuple[Gap, ...]
    coverage: np.ndarray = field(repr=False, compare=False)  # (T,) decayed hours per topic position
    gap_weights: np.ndarray = field(repr=False, compare=False)  # (T,) gap weight per topic position, 0 if none
    requirement_weights: np.ndarray = field(repr=False, compare=False)  # (T,) level × priority weight
    thresholds: np.ndarray = field(repr=False, compare=False)  # (T,) hours threshold of required topics, 0 if none

    LABELS: ClassVar[dict[str, str]] = {
        "cadre_id": "干部编号", "today": "统计日期", "half_life_years": "覆盖衰减半衰期（年）",
        "cold_start": "尚无学习记录", "gaps": "知识缺口", "topics": "必学选学主题覆盖",
    }

    def gap(self, topic_id: str) -> Gap | None:
        return next((g for g in self.gaps if g.topic_id == topic_id), None)


def analyse_gaps(profile: CadreProfile, snapshot: CatalogueSnapshot, today: dt.date, config: CoverageConfig | None = None) -> GapReport:
    """Coverage of each required topic and the weighted gaps, largest first."""
    config = config or CoverageConfig()
    coverage, recent = topic_coverage(profile.records, snapshot, today, config)
    gap_weights = np.zeros(snapshot.n_topics, dtype=np.float64)
    requirement_weights = np.zeros(snapshot.n_topics, dtype=np.float64)
    thresholds = np.zeros(snapshot.n_topics, dtype=np.float64)
    topics: list[TopicCoverage] = []
    gaps: list[Gap] = []
    for req in profile.requirements:
        pos = snapshot.topic_pos.get(req.topic_id)
        if pos is None:
            continue
        importance = config.level_weights.get(req.level, 0.0) * config.priority_weights.get(req.priority, min(config.priority_weights.values()))
        deficit = 0.0 if req.hours <= 0 else max(0.0, 1.0 - coverage[pos] / req.hours)
        branch = snapshot.topic_props[snapshot.branch[pos]].get("name", "")
        item = TopicCoverage(req, float(coverage[pos]), float(recent[pos]), importance * deficit, branch)
        topics.append(item)
        requirement_weights[pos] = importance
        thresholds[pos] = req.hours
        if item.is_gap:
            gap_weights[pos] = importance * deficit
            gaps.append(Gap(req, item.coverage, item.recent_hours, importance * deficit, branch))
    gaps.sort(key=lambda g: (-g.weight, g.topic_id))
    return GapReport(
        cadre_id=profile.cadre_id,
        today=today,
        half_life_years=config.half_life_years,
        cold_start=profile.cold_start,
        topics=tuple(topics),
        gaps=tuple(gaps),
        coverage=coverage,
        gap_weights=gap_weights,
        requirement_weights=requirement_weights,
        thresholds=thresholds,
    )
