"""Typed views of the plan's indicator rules in ``ontology/rules.yaml``.

Thresholds, scopes and numerator filters are data: an administrator edits the YAML and every report, the
programme builder and the nomination optimiser follow.  This module only knows what each *key* means
(``topics_under`` tests BROADER ancestry, ``classes: main`` selects 主体班次 …) and rejects keys it does not
know, so a typo in the rules fails loudly instead of silently counting nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kg.ontology import Ontology, load_ontology

from recommender.analytics.errors import RuleError
from recommender.catalogue.rows import Course, Institution, TrainingClass
from recommender.catalogue.snapshot import CatalogueSnapshot

__all__ = [
    "CLASS_SCOPES",
    "IndicatorRule",
    "Numerator",
    "Scope",
    "UpdateRule",
    "level_order",
    "teaching_rules",
    "update_rules",
]

CLASS_SCOPES = ("all", "party_spirit", "main")
"""Values of ``scope.classes``: every class, 党性教育班次 only, 主体班次 only."""


def level_order(ontology: Ontology | None = None) -> tuple[str, ...]:
    """Institution levels from highest to lowest, as shapes.ttl lists them."""
    ontology = ontology or load_ontology()
    return tuple(ontology.classes["Institution"].fields["level"].allowed or ())


def _tuple(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise RuleError(f"规则 {where} 应为列表，实际为 {value!r}")
    return tuple(str(v) for v in value)


@dataclass(frozen=True)
class Scope:
    """Which institutions (type, level) and which of their classes a rule governs."""

    institution_types: tuple[str, ...] | None = None
    levels: tuple[str, ...] | None = None
    classes: str = "all"

    @classmethod
    def from_rule(cls, data: Mapping[str, Any] | None, where: str) -> "Scope":
        data = dict(data or {})
        unknown = set(data) - {"institution_types", "levels", "classes"}
        if unknown:
            raise RuleError(f"规则 {where}.scope 含无法识别的键：{'、'.join(sorted(unknown))}")
        classes = data.get("classes", "all")
        if classes not in CLASS_SCOPES:
            raise RuleError(f"规则 {where}.scope.classes 应为 {'、'.join(CLASS_SCOPES)} 之一，实际为 {classes!r}")
        return cls(_tuple(data.get("institution_types"), f"{where}.scope.institution_types"),
                   _tuple(data.get("levels"), f"{where}.scope.levels"), classes)

    def covers_level(self, level: str) -> bool:
        return self.levels is None or level in self.levels

    def applies_to(self, institution: Institution) -> bool:
        types_ok = self.institution_types is None or institution.institution_type in self.institution_types
        return types_ok and self.covers_level(institution.level)

    def selects(self, klass: TrainingClass) -> bool:
        if self.classes == "main":
            return klass.is_main_class
        if self.classes == "party_spirit":
            return klass.is_party_spirit_class
        return True

    def selects_kind(self, is_main: bool, is_party_spirit: bool) -> bool:
        """Whether a class with these flags (one being planned) falls under the rule."""
        return {"main": is_main, "party_spirit": is_party_spirit}.get(self.classes, True)

    def label(self, ontology: Ontology | None = None, with_classes: bool = True) -> str:
        """Chinese scope text, e.g. 『党校（行政学院）；市级以上；主体班次』 (classes left out for rules
        that are not about classes)."""
        ontology = ontology or load_ontology()
        parts = ["、".join(self.institution_types)] if self.institution_types else []
        if self.levels:
            order = level_order(ontology)
            if set(self.levels) == set(order):
                parts.append("各级")
            elif tuple(self.levels) == order[: len(self.levels)]:
                parts.append(f"{self.levels[-1]}级以上")
            else:
                parts.append("、".join(f"{lvl}级" for lvl in self.levels))
        class_labels = {"main": ontology.property_labels["isMainClass"],
                        "party_spirit": ontology.property_labels["isPartySpiritClass"]}
        if with_classes:
            parts.append(class_labels.get(self.classes, "全部班次"))
        return "；".join(parts)


_NUMERATOR_KEYS = ("topics_under", "course_types", "delivery_modes", "lecturer_types", "teaching_methods")


@dataclass(frozen=True)
class Numerator:
    """Which course hours count on top of the share.  Keys combine with AND, values within a key with OR.

    ``topics_under`` apportions a course's hours equally over the topics it covers (the store does not keep
    which topic is the main one), so a course half on party theory and half on a competence theme counts
    for half its hours.
    """

    topics_under: tuple[str, ...] | None = None
    course_types: tuple[str, ...] | None = None
    delivery_modes: tuple[str, ...] | None = None
    lecturer_types: tuple[str, ...] | None = None
    teaching_methods: tuple[str, ...] | None = None

    @classmethod
    def from_rule(cls, data: Mapping[str, Any] | None, where: str) -> "Numerator":
        data = dict(data or {})
        unknown = set(data) - set(_NUMERATOR_KEYS)
        if unknown:
            raise RuleError(f"规则 {where}.numerator 含无法识别的键：{'、'.join(sorted(unknown))}"
                            f"（可用：{'、'.join(_NUMERATOR_KEYS)}）")
        return cls(**{k: _tuple(data.get(k), f"{where}.numerator.{k}") for k in _NUMERATOR_KEYS})

    def weight(self, course: Course, catalogue: CatalogueSnapshot) -> float:
        """Share (0–1) of the course's hours that counts in the numerator."""
        checks = (
            (self.course_types, course.course_type in (self.course_types or ())),
            (self.delivery_modes, course.delivery_mode in (self.delivery_modes or ())),
            (self.lecturer_types, course.lecturer_type in (self.lecturer_types or ())),
            (self.teaching_methods, bool(set(course.teaching_method) & set(self.teaching_methods or ()))),
        )
        if any(wanted is not None and not ok for wanted, ok in checks):
            return 0.0
        if self.topics_under is None:
            return 1.0
        if not course.topics:
            return 0.0
        inside = sum(any(catalogue.tree.is_under(t, root) for root in self.topics_under) for t in course.topics)
        return inside / len(course.topics)


@dataclass(frozen=True)
class IndicatorRule:
    """One 教学指标: the share of class hours meeting ``numerator`` must reach ``threshold``."""

    id: str
    name: str
    threshold: float
    scope: Scope
    numerator: Numerator
    section: str = ""
    verified: bool = False


@dataclass(frozen=True)
class UpdateRule:
    """One 课程更新指标: a yearly rate (``threshold``) or a yearly number of new hours (``threshold_hours``)."""

    id: str
    name: str
    scope: Scope
    threshold: float | None = None
    threshold_hours: float | None = None
    section: str = ""
    verified: bool = False


def _rules_list(rules: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = rules.get(key)
    if not isinstance(items, list):
        raise RuleError(f"rules.yaml 缺少列表 {key}")
    for item in items:
        if not isinstance(item, Mapping) or "id" not in item or "name" not in item:
            raise RuleError(f"rules.yaml {key} 的每一项都应有 id 与 name：{item!r}")
    return items


def teaching_rules(rules: Mapping[str, Any] | None = None) -> list[IndicatorRule]:
    """The 教学指标 of ``rules.yaml`` (``teaching_indicators``)."""
    rules = load_ontology().rules if rules is None else rules
    out = []
    for item in _rules_list(rules, "teaching_indicators"):
        where = f"teaching_indicators.{item['id']}"
        if not isinstance(item.get("threshold"), (int, float)):
            raise RuleError(f"规则 {where}.threshold 应为 0–1 之间的数，实际为 {item.get('threshold')!r}")
        out.append(IndicatorRule(
            id=item["id"], name=item["name"], threshold=float(item["threshold"]),
            scope=Scope.from_rule(item.get("scope"), where), numerator=Numerator.from_rule(item.get("numerator"), where),
            section=str(item.get("section", "")), verified=bool(item.get("verified", False)),
        ))
    return out


def update_rules(rules: Mapping[str, Any] | None = None) -> list[UpdateRule]:
    """The 课程更新指标 of ``rules.yaml`` (``update_indicators``)."""
    rules = load_ontology().rules if rules is None else rules
    out = []
    for item in _rules_list(rules, "update_indicators"):
        where = f"update_indicators.{item['id']}"
        threshold, hours = item.get("threshold"), item.get("threshold_hours")
        if (threshold is None) == (hours is None):
            raise RuleError(f"规则 {where} 应给出 threshold（比率）或 threshold_hours（学时）之一")
        out.append(UpdateRule(
            id=item["id"], name=item["name"], scope=Scope.from_rule(item.get("scope"), where),
            threshold=None if threshold is None else float(threshold),
            threshold_hours=None if hours is None else float(hours),
            section=str(item.get("section", "")), verified=bool(item.get("verified", False)),
        ))
    return out
