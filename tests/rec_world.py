"""A small hand-built world for the recommender's tests: five topics, a dozen courses, one cadre at a time.

Rules and requirements are written here, not read from ``ontology/``, so the expected figures in the
tests are worked out from the numbers below and stay right when the real rules are edited.

Topics (``BROADER`` edges point up; 乙 has 甲 as prerequisite)::

    根 ─┬─ 甲 ── 甲一
        └─ 乙  (study 甲 first)
    丙

Requirements for a cadre in category:x, group:g, domain:fin: 甲 essential (all cadres, 二（一）; group g
asks it as optional with 6 h, so the threshold is 6), 乙 essential 6 h (domain 金融监管, 四（一）), 丙 optional
2 h (category x, 四（一））.  甲 (and 甲一 under it) is the core branch of a list; 乙 and 丙 are the job side.

Ranking weights are the ranker's former defaults, every requirement source weighs 1 and coverage keeps two
decimals, so the gap weights below are level × priority × shortfall; tests that need other values say so.
One class (初任培训班) opens on 2026-12-07 for category x: the path offers it when 集中培训 hours are short.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any

from kg.model import Edge, Node
from kg.ontology import Ontology
from recommender.catalogue.snapshot import CatalogueSnapshot, load_snapshot

TOPICS = {
    "topic:root": {"name": "根主题", "planPriority": 1, "planOrder": 1, "planSection": "二"},
    "topic:a": {"name": "甲主题", "planPriority": 1, "planOrder": 1, "planSection": "二（一）"},
    "topic:a1": {"name": "甲一主题", "planPriority": 1, "planOrder": 1, "planSection": "二（二）"},
    "topic:b": {"name": "乙主题", "planPriority": 2, "planOrder": 2, "planSection": "四（一）"},
    "topic:c": {"name": "丙主题", "planPriority": 3, "planOrder": 2, "planSection": "四（一）"},
}
BROADER = [("topic:a", "topic:root"), ("topic:a1", "topic:a"), ("topic:b", "topic:root")]
PREREQUISITES = [("topic:b", "topic:a")]

REQUIREMENTS = {
    "defaults": {"essential_hours": 4, "optional_hours": 2},
    "all_cadres": [{"topic": "topic:a", "level": "essential", "section": "二（一）"}],
    "categories": {"category:x": [{"topic": "topic:c", "level": "optional", "section": "四（一）"}]},
    "groups": {"group:g": [{"topic": "topic:a", "level": "optional", "section": "专栏2", "hours": 6}]},
    "domains": {"domain:fin": [{"topic": "topic:b", "level": "essential", "section": "四（一）", "hours": 6}]},
}


def rules(real: dict[str, Any]) -> dict[str, Any]:
    """Test rules: small round numbers; the teaching indicators are the real ones (for method lists)."""
    return {
        "plan_window": {"start_year": 2023, "end_year": 2027},
        "hour_rules": [
            {"id": "online-a", "name": "网络自学（测试）", "hour_group": "A", "mode": "网络自学", "period": "year",
             "min_hours": 50, "section": "一、1", "source": "测试", "verified": True},
            {"id": "conc-a", "name": "集中培训（测试，五年）", "hour_group": "A", "mode": "集中培训", "period": "plan_window",
             "min_hours": 550, "min_days": 90, "section": "一、1；注 1", "source": "测试", "verified": False},
            {"id": "conc-c", "name": "集中培训（测试，未设置）", "hour_group": "C", "mode": "集中培训", "period": "year",
             "min_hours": None, "section": "一、1", "source": "测试", "verified": False},
        ],
        "concentrated_situations": {"section": "一、注 1", "values": ["脱产培训", "中心组学习", "网络专题培训", "集中宣讲"]},
        "online_requires_recognised_platform": {"section": "一、注 2", "value": True},
        "hours_per_day": 7.5,
        "leadership_rules": [
            {"id": "lead", "name": "领导班子（测试）", "applies_to_group": "group:g", "max_gap_years": 3,
             "min_days_in_window": 60, "window_years": 5, "counts_institution_types": ["党校（行政学院）"],
             "counts_topics_under": ["topic:root"], "section": "三（二）"},
        ],
        "teaching_indicators": copy.deepcopy(real["teaching_indicators"]),
        "vocabulary": copy.deepcopy(real["vocabulary"]),  # which allowed value plays which role, and the
        "quality": copy.deepcopy(real["quality"]),  # quality weights: the real ones, as before they moved to data
        "platform_crediting": {
            "tiered": {"name": "分档", "tiers": [{"min_minutes": 30, "hours": 1.0}, {"min_minutes": 15, "hours": 0.5},
                                                 {"min_minutes": 0, "hours": 0.25}],
                       "test_passed_bonus": 0.5, "requires_completion": True, "certified_totals": True},
            "per45": {"name": "45 分钟折算", "minutes_per_hour": 45, "test_passed_bonus": 0, "requires_completion": True, "certified_totals": True},
            "course": {"name": "课程学时", "use_course_hours": True, "test_passed_bonus": 0, "requires_completion": True,
                       "certified_totals": False},
        },
        "plausibility": {"max_online_hours_per_day": 8, "max_minutes_ratio": 1.5},
        "coverage": {"half_life_years": 2.0, "decimals": 2, "level_weights": {"essential": 1.0, "optional": 0.5},
                     "priority_weights": {1: 1.0, 2: 0.85, 3: 0.7},
                     "source_weights": {"domains": 1.0, "groups": 1.0, "categories": 1.0, "all_cadres": 1.0}},
        "ranking": {
            "blend": {"job": 0.6, "core": 0.4}, "core_branches": ["topic:a"],
            "weights": {"gap": 1.0, "graph": 0.35, "semantic": 0.6, "role": 0.0, "quality": 0.15, "popularity": 0.6, "freshness": 0.1,
                        "format": 0.1, "audience": 0.1},
            "multi_gap": 0.3, "role_pool": 5, "fit_band": 0.0, "links": {"broader": 0.5, "related": 0.4, "prerequisite": 0.6, "required": 0.3},
            "mmr_lambda": 0.75, "candidates": 200, "freshness_half_life_years": 3.0, "format_window_years": 3.0,
            "prerequisite_hours": 2.0, "material_gaps": 3, "path_max_steps_per_mode": 12,
        },
        "audience": {"exclude_mismatched": True, "fallback_when_short": True},
        "intent": {"pool": 5, "lead": 2, "margin": 0.05},
    }


def course(cid: str, topics: list[str], hours: float, mode: str = "面授", *, status: str = "已发布", rating: float = 4.0,
           enrolments: int = 1000, is_case: bool = False, methods: tuple[str, ...] = ("讲授",), platform: str | None = None,
           modified: str = "2026-01-01", name: str | None = None, audience: tuple[str, ...] = ()) -> tuple[Node, list[Edge]]:
    """A course node and its edges; ``audience`` names the categories (``category:``) and groups it is declared for."""
    props = {"name": name or cid, "description": f"{cid} 的简介", "hours": hours, "deliveryMode": mode, "status": status,
             "rating": rating, "ratingCount": 100, "enrolments": enrolments, "completionRate": 0.9, "expertScore": 80,
             "isCase": is_case, "teachingMethod": list(methods), "courseType": "案例课" if is_case else "专题课",
             "dateCreated": "2023-01-01", "dateModified": modified}
    edges = [Edge(cid, "COVERS", t) for t in topics]
    if platform:
        edges.append(Edge(cid, "ON_PLATFORM", platform))
    edges += [Edge(cid, "FOR_CATEGORY" if a.startswith("category:") else "FOR_GROUP", a) for a in audience]
    return Node(cid, "Course", props), edges


COURSES = [
    course("course:a-basic", ["topic:a"], 2, rating=4.5, name="甲入门"),
    course("course:a1-online", ["topic:a1"], 1, "网络", platform="platform:course", name="甲一网课"),
    course("course:b-adv", ["topic:b"], 3, rating=4.9, enrolments=50_000, name="乙进阶"),
    course("course:c-case", ["topic:c"], 1, "网络", is_case=True, methods=("案例式",), platform="platform:tiered", name="丙案例"),
    course("course:c-plain", ["topic:c"], 1, "网络", platform="platform:tiered", name="丙讲授"),
    course("course:a-draft", ["topic:a"], 2, status="草稿", rating=5.0, enrolments=99_999, name="甲草稿"),
    course("course:a-old", ["topic:a"], 2, status="已退出", name="甲旧版"),
    course("course:a-new", ["topic:a"], 2, rating=4.2, name="甲新版"),
    course("course:ab-combo", ["topic:a", "topic:b"], 2, rating=3.5, enrolments=200, name="甲乙综合"),
]


def catalogue() -> tuple[list[Node], list[Edge]]:
    nodes = [Node(t, "Topic", dict(p)) for t, p in TOPICS.items()]
    edges = [Edge(a, "BROADER", b) for a, b in BROADER] + [Edge(a, "HAS_PREREQUISITE", b) for a, b in PREREQUISITES]
    nodes += [Node("category:x", "CadreCategory", {"name": "甲类干部", "hourGroup": "A"}),
              Node("category:y", "CadreCategory", {"name": "丙类干部", "hourGroup": "C"}),
              Node("group:g", "TargetGroup", {"name": "领导班子成员"}),
              Node("domain:fin", "PositionDomain", {"name": "金融监管"})]
    nodes += [Node("platform:tiered", "Platform", {"name": "分档平台", "recognised": True, "creditRule": "tiered"}),
              Node("platform:per45", "Platform", {"name": "折算平台", "recognised": True, "creditRule": "per45"}),
              Node("platform:course", "Platform", {"name": "课时平台", "recognised": True, "creditRule": "course"}),
              Node("platform:app", "Platform", {"name": "商业App", "recognised": False, "creditRule": "per45"})]
    nodes += [Node("inst:school", "Institution", {"name": "某市委党校", "institutionType": "党校（行政学院）", "level": "市"}),
              Node("inst:uni", "Institution", {"name": "某大学", "institutionType": "高校基地", "level": "省"})]
    for node, course_edges in COURSES:
        nodes.append(node)
        edges += course_edges
    edges += [Edge("course:a-old", "REPLACED_BY", "course:a-new"), Edge("course:a-basic", "OFFERED_BY", "inst:school"),
              Edge("course:b-adv", "OFFERED_BY", "inst:uni")]
    nodes += [Node("textbook:a", "Textbook", {"name": "甲读本", "status": "已发布", "rating": 4.5}),
              Node("case:b", "CaseStudy", {"name": "乙案例", "status": "已发布", "region": "某省"}),
              Node("textbook:draft", "Textbook", {"name": "甲草稿读本", "status": "草稿", "rating": 5.0})]
    edges += [Edge("textbook:a", "COVERS", "topic:a"), Edge("case:b", "ILLUSTRATES", "topic:b"),
              Edge("textbook:draft", "COVERS", "topic:a")]
    nodes.append(Node("class:k", "TrainingClass", {"name": "党校进修班", "startDate": "2024-05-06", "endDate": "2024-05-10"}))
    edges += [Edge("class:k", "HELD_BY", "inst:school"), Edge("class:k", "INCLUDES_COURSE", "course:a-basic", {"ord": 0}),
              Edge("class:k", "INCLUDES_COURSE", "course:b-adv", {"ord": 1})]
    nodes.append(Node("class:intro", "TrainingClass", {"name": "初任培训班", "classType": "初任培训", "startDate": "2026-12-07",
                                                       "endDate": "2026-12-11"}))
    edges += [Edge("class:intro", "HELD_BY", "inst:school"), Edge("class:intro", "INCLUDES_COURSE", "course:a-new", {"ord": 0}),
              Edge("class:intro", "FOR_CATEGORY", "category:x")]
    return nodes, edges


def world_ontology(ontology: Ontology) -> Ontology:
    """The real ontology (classes, labels, relationship types) with this world's rules and requirements."""
    return dataclasses.replace(ontology, rules=rules(ontology.rules), requirements=copy.deepcopy(REQUIREMENTS))


def build(store: Any, ontology: Ontology, extra: Iterable[tuple[Node, list[Edge]]] = ()) -> CatalogueSnapshot:
    """Write the catalogue (and ``extra`` courses from :func:`course`) into an empty store and load its snapshot."""
    nodes, edges = catalogue()
    for node, course_edges in extra:
        nodes.append(node)
        edges += course_edges
    store.write(nodes, edges)
    return load_snapshot(store, world_ontology(ontology))


def add_cadre(store: Any, cadre_id: str = "cadre:1", category: str = "category:x", groups: Iterable[str] = ("group:g",),
              domain: str | None = "domain:fin", records: Iterable[dict[str, Any]] = ()) -> None:
    """A cadre and their records; each record dict holds node props plus optional course/klass/platform."""
    nodes = [Node(cadre_id, "Cadre", {"name": "测试干部"})]
    edges = [Edge(cadre_id, "IN_CATEGORY", category)] + [Edge(cadre_id, "IN_GROUP", g) for g in groups]
    if domain:
        edges.append(Edge(cadre_id, "IN_DOMAIN", domain))
    for number, spec in enumerate(records, start=1):
        spec = dict(spec)
        rid = spec.pop("id", f"record:{cadre_id.split(':')[1]}-{number:03d}")
        links = {"course": "FOR_COURSE", "klass": "IN_CLASS", "platform": "VIA_PLATFORM"}
        for key, rel in links.items():
            if key in spec:
                edges.append(Edge(rid, rel, spec.pop(key)))
        spec.setdefault("completed", True)
        if isinstance(spec.get("date"), dt.date):
            spec["date"] = spec["date"].isoformat()
        nodes.append(Node(rid, "TrainingRecord", spec))
        edges.append(Edge(rid, "OF_CADRE", cadre_id))
    store.write(nodes, edges)


def online(date: str, course_id: str, minutes: float, platform: str | None = None, **extra: Any) -> dict[str, Any]:
    spec = {"date": date, "mode": "网络自学", "minutes": minutes, "course": course_id, **extra}
    if platform:
        spec["platform"] = platform
    return spec


def concentrated(date: str, hours: float | None = None, situation: str | None = "中心组学习", **extra: Any) -> dict[str, Any]:
    spec = {"date": date, "mode": "集中培训", **extra}
    if hours is not None:
        spec["hours"] = hours
    if situation is not None:
        spec["situation"] = situation
    return spec
