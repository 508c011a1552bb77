"""The configurable recommendation indicator system (推荐指标体系) for 好课程 / 好教材.

Each candidate gets seven components on a 0–1 scale — expert review, learner rating, completion, freshness,
the plan priority of its topics, learners' demand for its topics, case value — and a score out of 100: the
weighted mean of the components it has data for.  Weights come from ``rules.yaml`` (``nomination.weights``)
or the caller; a component without data (a textbook has no completion rate, demand may not be supplied)
drops out and the remaining weights are rescaled, so courses and textbooks stay on one scale.

Rescaling must not let thin evidence pass for quality: a candidate with no expert review, rating or
completion would otherwise be scored on freshness and topic alone and rank near the top.  So each
candidate carries its *coverage* — the share of the total weight whose components have data — and one
below ``nomination.min_coverage`` is not scored (:attr:`Candidate.rated` is False, shown 无数据): it is
ranked after every scored candidate and cannot be nominated.  :func:`scoring_rules` states this rule.

The score measures quality only.  Case value stays a component so a case bonus remains possible, but its
weight is 0 by default: the case quota already guarantees the case share, and scoring it as well made the
default lists all case items.  Gates (passed political and quality review, by default) do not change the
score; they make a candidate ineligible, and the breakdown says which gate it still waits for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from kg.ontology import Ontology, load_ontology

from recommender.analytics.errors import InputError, RuleError
from recommender.catalogue.rows import Course, Textbook, attribute_of
from recommender.catalogue.snapshot import CatalogueSnapshot
from recommender.dates import years_between

__all__ = ["COMPONENTS", "Candidate", "ScoreComponent", "check_weights", "component_labels", "min_coverage",
           "pending_text", "score_candidates", "scoring_rules"]

COMPONENTS = ("expert", "rating", "completion", "freshness", "priority", "demand", "case_value")
"""The components the scorer can compute; ``nomination.weights`` in rules.yaml may weight any of them."""

_FIELD_OF = {"expert": "expertScore", "rating": "rating", "completion": "completionRate"}
_OWN_LABELS = {"freshness": "内容时效", "priority": "规划重点程度", "demand": "学习需求", "case_value": "案例价值"}
KIND_CLASS = {"course": "Course", "textbook": "Textbook"}


def min_coverage(rules: Mapping[str, Any]) -> float:
    """``nomination.min_coverage`` of rules.yaml: the least share of weight with data for a candidate to be scored."""
    value = (rules.get("nomination") or {}).get("min_coverage", 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise RuleError(f"rules.yaml 的 nomination.min_coverage 应为 0–1 之间的数，实际为 {value!r}")
    return float(value)


def scoring_rules(weights: Mapping[str, float], coverage: float, ontology: Ontology | None = None) -> list[tuple[str, str]]:
    """The sentences every nomination page and export states: how the score treats missing data, and whether
    a case bonus is on (and how large)."""
    label = component_labels(ontology)["case_value"]
    bonus = float(weights.get("case_value", 0.0))
    total = sum(weights.values())
    return [
        ("计分规则", f"总分（满分 100）只按有数据的指标加权平均；数据覆盖度 = 有数据指标的权重之和 ÷ 全部权重，"
                     f"低于 {100 * coverage:.1f} % 的候选不计总分（显示“无数据”），排在有总分的候选之后，不进入名单"),
        ("案例加分", f"已启用：“{label}”权重 {bonus:g}（占全部权重 {100 * bonus / total:.1f} %），案例项目因此加分"
                     if bonus > 0 else "未启用：总分只衡量质量，案例占比由名单规则保证"),
    ]


def pending_text(failures: Sequence[str]) -> str:
    """``('通过政治审核', '通过质量审核')`` → ``待通过：政治审核、质量审核`` (a gate not yet passed, never “否”)."""
    prefix = "通过"
    return "待通过：" + "、".join(f[len(prefix):] if f.startswith(prefix) else f for f in failures)


def component_labels(ontology: Ontology | None = None) -> dict[str, str]:
    """Chinese label of each component (field-backed ones use the ontology's field labels)."""
    ontology = ontology or load_ontology()
    return {key: ontology.property_labels.get(_FIELD_OF[key], key) if key in _FIELD_OF else _OWN_LABELS[key]
            for key in COMPONENTS}


class ScoreComponent(NamedTuple):
    """One component of a score: raw value, normalised value (0–1, None without data), weight, points."""

    key: str
    label: str
    raw: float | None
    value: float | None
    weight: float
    points: float

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "指标": self.label, "原始值": self.raw, "归一值": self.value,
                "权重": self.weight, "得分": round(self.points, 2)}


@dataclass(frozen=True)
class Candidate:
    """A course or textbook with its score, breakdown and eligibility.

    The breakdown is kept as plain ``(raw, value, points)`` tuples plus one shared ``spec`` of
    ``(key, label, weight)``; :attr:`components` names them on demand (a 100,000-candidate run would
    otherwise build 700,000 objects nobody reads).
    """

    id: str
    kind: str
    name: str
    institution: str | None
    topics: tuple[str, ...]
    branches: tuple[str, ...]
    is_case: bool
    score: float
    parts: tuple[tuple[float | None, float | None, float], ...] = ()
    gate_failures: tuple[str, ...] = ()
    published: bool = True
    institution_name: str = ""
    branch_names: tuple[str, ...] = ()
    spec: tuple[tuple[str, str, float], ...] = field(default=(), compare=False, repr=False)
    coverage: float = 1.0
    rated: bool = True

    @property
    def components(self) -> tuple[ScoreComponent, ...]:
        return tuple(ScoreComponent(k, label, raw, value, w, points)
                     for (k, label, w), (raw, value, points) in zip(self.spec, self.parts))

    @property
    def eligible(self) -> bool:
        return self.published and self.rated and not self.gate_failures

    @property
    def rank_key(self) -> tuple[bool, float, str]:
        """Scored candidates first, best first; unscored ones (too little data) after them."""
        return (not self.rated, -self.score, self.id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "名称": self.name, "机构": self.institution,
            "机构名称": self.institution_name, "主题": list(self.topics), "一级主题": list(self.branches),
            "一级主题名称": list(self.branch_names), "案例": self.is_case,
            "总分": round(self.score, 2) if self.rated else None, "数据覆盖度": round(self.coverage, 4),
            "已计分": self.rated, "得分明细": [c.to_dict() for c in self.components if c.weight > 0],
            "未通过门槛": list(self.gate_failures), "待通过": pending_text(self.gate_failures) if self.gate_failures else "",
            "已发布": self.published, "可推荐": self.eligible,
        }


def check_weights(weights: Mapping[str, Any]) -> dict[str, float]:
    """Validated weights: known components, non-negative numbers, not all zero."""
    unknown = set(weights) - set(COMPONENTS)
    if unknown:
        raise RuleError(f"推荐指标权重含未知指标：{'、'.join(sorted(unknown))}（可用：{'、'.join(COMPONENTS)}）")
    out = {}
    for key, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise RuleError(f"推荐指标权重 {key} 应为非负数，实际为 {value!r}")
        out[key] = float(value)
    if not any(out.values()):
        raise RuleError("推荐指标权重全为 0，无法计算得分")
    return out


def _max_inclusive(ontology: Ontology, field: str) -> float:
    spec = ontology.classes["Course"].fields.get(field) or ontology.classes["Textbook"].fields[field]
    return float(spec.max_inclusive or 1.0)


class _Scorer:
    """Everything a score needs that does not depend on the item, computed once per call."""

    def __init__(self, catalogue: CatalogueSnapshot, weights: Mapping[str, float], demand: Mapping[str, float] | None,
                 gates: Sequence[str], as_of: dt.date, ontology: Ontology, coverage: float = 0.0) -> None:
        self.catalogue = catalogue
        self.weights = {k: weights.get(k, 0.0) for k in COMPONENTS}
        self.labels = component_labels(ontology)
        self.scale = {key: _max_inclusive(ontology, field) for key, field in _FIELD_OF.items()}
        self.as_of = as_of
        self.demand = dict(demand or {})
        self.max_demand = max(self.demand.values(), default=0)
        priorities = [t.plan_priority for t in catalogue.tree.rows.values() if t.plan_priority is not None]
        self.max_priority = max(priorities, default=0)
        self.gate_attrs = tuple((attribute_of(g), ontology.property_labels.get(g, g)) for g in gates)
        for gate, (attr, _) in zip(gates, self.gate_attrs):
            if attr not in Course.__dataclass_fields__ and attr not in Textbook.__dataclass_fields__:
                raise RuleError(f"推荐门槛『{gate}』不是课程或教材的字段")
        self.spec = tuple((k, self.labels[k], self.weights[k]) for k in COMPONENTS)
        self.weight_list = tuple(self.weights[k] for k in COMPONENTS)
        self.total_weight = sum(self.weight_list)
        self.min_coverage = coverage
        self._memo: dict[tuple[str, ...], tuple[Any, ...]] = {}

    def _priority(self, topics: Iterable[str]) -> tuple[float | None, float | None]:
        found = [p for p in (self.catalogue.tree.priority_of(t) for t in topics) if p is not None]
        if not found or not self.max_priority:
            return None, None
        best = min(found)
        return float(best), (self.max_priority - best + 1) / self.max_priority

    def _demand(self, topics: Iterable[str]) -> tuple[float | None, float | None]:
        if self.max_demand <= 0:
            return None, None
        best = max((self.demand.get(t, 0) for t in topics), default=0)
        return float(best), best / self.max_demand

    def _topical(self, topics: tuple[str, ...]) -> tuple[Any, ...]:
        """Everything that depends only on an item's topics, memoised (many items share a topic set)."""
        found = self._memo.get(topics)
        if found is None:
            branches = self.catalogue.tree.branches_of(topics)
            found = (self._priority(topics), self._demand(topics), branches,
                     tuple(self.catalogue.topic_name(b) for b in branches))
            self._memo[topics] = found
        return found

    def score(self, item: Course | Textbook) -> Candidate:
        is_course = isinstance(item, Course)
        freshness_date = (item.date_modified or item.date_created) if is_course else item.date_published
        years = years_between(freshness_date, self.as_of)
        priority, demand, branches, branch_names = self._topical(item.topics)
        case = float(item.is_case)
        pairs = (
            (item.expert_score, None if item.expert_score is None else item.expert_score / self.scale["expert"]),
            (item.rating, None if item.rating is None else item.rating / self.scale["rating"]),
            (item.completion_rate, item.completion_rate) if is_course else (None, None),
            (years, None if years is None else 1.0 / (1.0 + years)),
            priority,
            demand,
            (case, case),
        )
        available = sum(w for w, (_, v) in zip(self.weight_list, pairs) if v is not None)
        coverage = available / self.total_weight
        rated = coverage + 1e-9 >= self.min_coverage and available > 0
        scale = 100.0 / available if rated else 0.0
        parts = tuple((raw, value, w * value * scale if value is not None else 0.0)
                      for w, (raw, value) in zip(self.weight_list, pairs))
        failures = tuple(label for attr, label in self.gate_attrs if getattr(item, attr, None) is not True)
        return Candidate(
            id=item.id, kind="course" if is_course else "textbook", name=item.name, institution=item.institution,
            topics=item.topics, branches=branches, is_case=item.is_case,
            score=sum(p[2] for p in parts), parts=parts, gate_failures=failures,
            published=item.status == self.catalogue.vocab.published, institution_name=self.catalogue.institution_name(item.institution),
            branch_names=branch_names, spec=self.spec, coverage=coverage, rated=rated,
        )


def score_candidates(
    catalogue: CatalogueSnapshot,
    weights: Mapping[str, float] | None = None,
    demand: Mapping[str, float] | None = None,
    *,
    gates: Sequence[str] | None = None,
    as_of: dt.date | None = None,
    kinds: Sequence[str] = ("course", "textbook"),
    ontology: Ontology | None = None,
) -> list[Candidate]:
    """Score every course and textbook of the catalogue, best first.

    ``weights`` and ``gates`` default to ``nomination.weights`` / ``nomination.gates`` of rules.yaml;
    ``demand`` maps topic id → number of cadres for whom the topic is a gap (the recommender's gap analysis).
    Candidates below ``nomination.min_coverage`` come last, unscored (see the module docstring).
    """
    ontology = ontology or catalogue.ontology
    rules = ontology.rules.get("nomination", {})
    weights = check_weights(rules.get("weights", {}) if weights is None else weights)
    unknown = set(kinds) - set(KIND_CLASS)
    if unknown:
        raise InputError(f"候选类型应为 {'、'.join(KIND_CLASS)}，实际含 {'、'.join(sorted(unknown))}")
    scorer = _Scorer(catalogue, weights, demand, rules.get("gates", []) if gates is None else gates,
                     as_of or dt.date.today(), ontology, min_coverage(ontology.rules))
    items: list[Course | Textbook] = []
    if "course" in kinds:
        items.extend(catalogue.courses.values())
    if "textbook" in kinds:
        items.extend(catalogue.textbooks.values())
    return sorted((scorer.score(item) for item in items), key=lambda c: c.rank_key)
