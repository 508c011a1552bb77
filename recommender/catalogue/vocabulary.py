"""The controlled values the code turns on, read from ``ontology/rules.yaml`` (``vocabulary``) and checked
against the ``sh:in`` lists of ``ontology/shapes.ttl``.

Code needs to know *which* allowed value plays a role — which status is 已发布, which record mode is 网络自学 —
but the values themselves belong to the ontology.  So ``rules.yaml`` names, per role, the value that plays it
(``lifecycle.roles.published: 已发布``), and :meth:`Vocabulary.from_ontology` checks every one against the
fields it is for.  A value the shapes no longer allow fails at load time with a Chinese message naming the
rules.yaml key and the field, instead of silently matching nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kg.ontology import Ontology
from recommender.errors import VocabularyMismatch

__all__ = ["Vocabulary"]

#: role groups of ``vocabulary`` and the roles the code reads from each
_ROLES = {
    "lifecycle": ("draft", "review", "published", "retired"),
    "record_modes": ("online", "concentrated"),
    "situations": ("full_time",),
    "delivery_modes": ("online",),
    "class_types": ("main",),
}


def _roles(ontology: Ontology, block: Mapping[str, Any], group: str) -> dict[str, str]:
    """The role → value map of one group, each value checked against every field the group names."""
    where = f"rules.yaml vocabulary.{group}"
    spec = block.get(group)
    if not isinstance(spec, Mapping) or not isinstance(spec.get("roles"), Mapping) or not spec.get("fields"):
        raise VocabularyMismatch(f"{where} 应含 fields（字段列表，如 Course.status）与 roles（角色 → 取值）")
    roles = {str(k): str(v) for k, v in spec["roles"].items()}
    missing = [r for r in _ROLES[group] if r not in roles]
    if missing:
        raise VocabularyMismatch(f"{where}.roles 缺少角色：{'、'.join(missing)}")
    for path in spec["fields"]:
        class_name, _, field_name = str(path).partition(".")
        cls = ontology.classes.get(class_name)
        field = cls.fields.get(field_name) if cls else None
        if field is None or field.allowed is None:
            raise VocabularyMismatch(f"{where}.fields 中的 {path} 不是 ontology/shapes.ttl 中带取值列表（sh:in）的字段")
        for role, value in roles.items():
            if value not in field.allowed:
                raise VocabularyMismatch(
                    f"{where}.roles.{role} 的取值『{value}』不在 ontology/shapes.ttl 中 {path}（{cls.label}的"
                    f"{field.label}）允许的取值之内：{'、'.join(map(str, field.allowed))}"
                )
    return roles


@dataclass(frozen=True)
class Vocabulary:
    """Controlled values by role, each checked against the ontology (see the module docstring)."""

    lifecycle: Mapping[str, str]
    online_mode: str
    concentrated_mode: str
    full_time_situation: str
    online_delivery: str
    main_class_type: str
    concentrated_situations: tuple[str, ...]
    case_methods: tuple[str, ...]
    interactive_methods: tuple[str, ...]
    quota_modes: Mapping[str, str]
    hours_per_day: float

    @property
    def published(self) -> str:
        """The status of items that may be taught, suggested, scored or nominated."""
        return self.lifecycle["published"]

    @classmethod
    def from_ontology(cls, ontology: Ontology) -> Vocabulary:
        try:
            block = ontology.rules_section("vocabulary")
        except ValueError as exc:
            raise VocabularyMismatch(str(exc)) from exc
        groups = {group: _roles(ontology, block, group) for group in _ROLES}
        indicators = {i.get("id"): i for i in ontology.rules.get("teaching_indicators", [])}
        methods_allowed = ontology.classes["Course"].fields["teachingMethod"].allowed or ()

        def methods(role: str) -> tuple[str, ...]:
            rule_id = (block.get("method_indicators") or {}).get(role)
            listed = (indicators.get(rule_id) or {}).get("numerator", {}).get("teaching_methods")
            if not listed:
                raise VocabularyMismatch(f"rules.yaml vocabulary.method_indicators.{role} 应为 teaching_indicators 中一条"
                                         f"列出 numerator.teaching_methods 的指标编号，实际为『{rule_id}』")
            odd = [m for m in listed if m not in methods_allowed]
            if odd:
                raise VocabularyMismatch(f"rules.yaml teaching_indicators.{rule_id}.numerator.teaching_methods 的取值"
                                         f"『{'、'.join(odd)}』不在 ontology/shapes.ttl 中 Course.teachingMethod 允许的取值之内")
            return tuple(listed)

        quota_modes = block.get("quota_modes")
        if not isinstance(quota_modes, Mapping) or not quota_modes:
            raise VocabularyMismatch("rules.yaml vocabulary.quota_modes 应为 口径 → 说明 的映射")
        quota_mode = (ontology.rules.get("nomination") or {}).get("quota_mode")
        if quota_mode is not None and quota_mode not in quota_modes:
            raise VocabularyMismatch(f"rules.yaml nomination.quota_mode 的取值『{quota_mode}』不在 vocabulary.quota_modes"
                                     f"（{'、'.join(quota_modes)}）之内")
        situations = tuple(ontology.rules["concentrated_situations"]["values"])
        allowed_situations = ontology.classes["TrainingRecord"].fields["situation"].allowed or ()
        odd = [s for s in situations if s not in allowed_situations]
        if odd:
            raise VocabularyMismatch(f"rules.yaml concentrated_situations.values 的取值『{'、'.join(odd)}』不在 "
                                     f"ontology/shapes.ttl 中 TrainingRecord.situation 允许的取值之内")
        return cls(
            lifecycle=groups["lifecycle"],
            online_mode=groups["record_modes"]["online"],
            concentrated_mode=groups["record_modes"]["concentrated"],
            full_time_situation=groups["situations"]["full_time"],
            online_delivery=groups["delivery_modes"]["online"],
            main_class_type=groups["class_types"]["main"],
            concentrated_situations=situations,
            case_methods=methods("case"),
            interactive_methods=methods("interactive"),
            quota_modes={str(k): str(v) for k, v in quota_modes.items()},
            hours_per_day=float(ontology.rules["hours_per_day"]),
        )
