"""What a cadre must study, and what they have studied: requirements from the ontology, records from the store.

Requirements follow ``ontology/requirements.yaml``: the union of ``all_cadres``, the cadre's category, each of
their target groups and their position domain (a cadre with no stated domain gets the others only); where a
topic appears more than once, essential beats optional and the largest hour threshold wins.  The entry that
decides the level and threshold is the one a reason cites (ties go to the most specific source: domain, then
group, then category, then all cadres), because "你所在岗位要求……" tells a cadre more than "全体干部……".
Every source asking a topic is kept (``sources``): the weight of a gap follows the most heavily weighted of
them.  A topic is on the core side of a list when it lies under the plan's theory and political-training
branches (``ranking.core_branches`` in ``rules.yaml``: the 主题主线 and 党性教育, whoever asks them) or only all
cadres ask it; every other topic the cadre's domain, groups or category ask is on the job side.

Records are personal, so they are fetched per request, in one store round trip: the record nodes pointing at
the cadre (``OF_CADRE``) with their ``FOR_COURSE`` / ``IN_CLASS`` / ``VIA_PLATFORM`` edges.  Work over many
cadres at once (the nightly batch) reads a whole block of cadres and their records in two store calls and builds
each profile from what was read (:func:`profile_from`); :func:`fetch_profile` is that same assembly for one cadre.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from kg.choices import CadreChoices, Choice
from kg.model import NodeWithEdges
from kg.ontology import Ontology
from kg.store.base import Store
from recommender.errors import UnknownCadre
from recommender.labelled import Labelled
from recommender.catalogue.snapshot import CatalogueSnapshot, parse_date

__all__ = [
    "LEVELS",
    "SIDES",
    "CadreProfile",
    "Record",
    "Requirement",
    "fetch_profile",
    "fetch_records",
    "profile_from",
    "records_from",
    "core_topics",
    "merge_requirements",
    "role_requirements",
]

#: Requirement levels (ESCO's essential / optional), most binding first, with the words cadres read.
LEVELS = {"essential": "必学", "optional": "选学"}
#: Sources of a requirement, most specific first: (requirements.yaml key, class whose label names it).
_SOURCES = (("domains", "PositionDomain"), ("groups", "TargetGroup"), ("categories", "CadreCategory"), ("all_cadres", None))
#: The two sides of a list: what the cadre's own job asks, and what every cadre must study (主题主线).
SIDES = {"job": "岗位所需", "core": "全体干部"}


@dataclass(frozen=True)
class Requirement(Labelled):
    """One topic the cadre must (essential) or should (optional) study, with the plan section asking it."""

    topic_id: str
    topic_name: str
    level: str
    hours: float
    section: str
    source: str  # requirements.yaml key: all_cadres | categories | groups | domains
    source_id: str | None
    source_name: str
    source_class: str  # Chinese class label of the source (岗位领域, 培训对象 …), "" for all cadres
    note: str = ""
    priority: int = 3
    sources: tuple[str, ...] = ()  # every requirements.yaml key asking this topic of the cadre
    core_topic: bool = False  # under one of the rules' core branches (theory, political training)

    LABELS: ClassVar[dict[str, str]] = {
        "topic_id": "主题编号", "topic_name": "主题", "level_label": "要求", "hours": "学时门槛",
        "section": "规划条目", "basis": "依据", "side_label": "类别", "note": "说明",
    }

    @property
    def level_label(self) -> str:
        return LEVELS.get(self.level, self.level)

    @property
    def side(self) -> str:
        """``core`` for theory and political training, or a topic only all cadres ask; else ``job``."""
        return "core" if self.core_topic or set(self.sources or (self.source,)) == {"all_cadres"} else "job"

    @property
    def side_label(self) -> str:
        """Which side of the list the topic serves, in words: "岗位所需", "全体干部必学", "培训对象必学" …"""
        if self.side == "job":
            return SIDES["job"]
        who = SIDES["core"] if "all_cadres" in (self.sources or (self.source,)) else self.source_class
        return f"{who}{self.level_label}"

    @property
    def basis(self) -> str:
        """Who asks it, in words: "岗位领域：金融监管" or "全体干部"."""
        return f"{self.source_class}：{self.source_name}" if self.source_class else self.source_name

    def demand_phrase(self) -> str:
        """"你所在的岗位领域（金融监管）要求『防范化解金融风险』" — the subject of every reason."""
        if not self.source_class:
            return f"规划要求全体干部学习『{self.topic_name}』"
        verb = "所在" if self.source == "domains" else "所属"
        return f"你{verb}的{self.source_class}（{self.source_name}）要求学习『{self.topic_name}』"


@dataclass(frozen=True)
class Record(Labelled):
    """One training record as the hour rules read it (``hours`` for 集中培训, ``minutes`` for 网络自学)."""

    id: str
    date: dt.date
    mode: str
    situation: str | None = None
    hours: float | None = None
    minutes: float | None = None
    days: float | None = None
    completed: bool = True
    test_passed: bool = False
    course: str | None = None
    klass: str | None = None
    platform: str | None = None

    LABELS: ClassVar[dict[str, str]] = {
        "id": "记录编号", "date": "日期", "mode": "培训方式", "situation": "集中培训情形", "hours": "学时",
        "minutes": "学习分钟", "days": "天数", "completed": "已完成", "test_passed": "测试合格",
        "course": "课程编号", "klass": "班次编号", "platform": "平台编号",
    }


@dataclass(frozen=True)
class CadreProfile(Labelled):
    """A cadre's role and what it requires; ``records`` are theirs, fetched for this request only."""

    cadre_id: str
    name: str
    category_id: str | None
    category_name: str
    hour_group: str | None
    domain_id: str | None
    domain_name: str
    group_ids: tuple[str, ...]
    group_names: tuple[str, ...]
    leadership_level: str | None
    requirements: tuple[Requirement, ...]
    records: tuple[Record, ...] = ()
    choices: tuple[Choice, ...] = ()  # the cadre's study plan and feedback (kg.choices), latest first

    LABELS: ClassVar[dict[str, str]] = {
        "cadre_id": "干部编号", "name": "姓名", "category_name": "干部类别", "hour_group": "学时分组",
        "domain_name": "岗位领域", "group_names": "培训对象", "leadership_level": "领导班子层级",
        "requirements": "学习要求", "record_count": "培训记录数",
    }

    @property
    def record_count(self) -> int:
        return len(self.records)

    @property
    def cold_start(self) -> bool:
        """No records at all: suggestions rest on requirements and the catalogue alone."""
        return not self.records


def _level_rank(level: str | None) -> int:
    order = list(LEVELS)
    return order.index(level) if level in order else len(order)


def _hours_of(entry: Mapping[str, Any], defaults: Mapping[str, Any]) -> float:
    if entry.get("hours") is not None:
        return float(entry["hours"])
    return float(defaults.get(f"{entry.get('level', 'optional')}_hours", 0.0))


def merge_requirements(
    requirements: Mapping[str, Any],
    category: str | None,
    groups: Iterable[str],
    domain: str | None,
    names: Mapping[str, str],
    class_labels: Mapping[str, str],
    topics: Mapping[str, Mapping[str, Any]],
    core_topics: Collection[str] = frozenset(),
) -> list[Requirement]:
    """Merge the requirement entries that apply to one cadre (see the module docstring for the rule).

    ``names`` maps role and topic ids to their Chinese names, ``class_labels`` a role class to its label,
    ``topics`` a topic id to its properties (``planPriority``), ``core_topics`` the topics under the core
    branches.  Sorted essential first, then by topic id.
    """
    defaults = requirements.get("defaults", {})
    applying: dict[str, list[str | None]] = {
        "domains": [domain] if domain else [],
        "groups": sorted(groups),
        "categories": [category] if category else [],
        "all_cadres": [None],
    }
    found: dict[str, list[tuple[tuple[int, float, int], str, str | None, Mapping[str, Any]]]] = {}
    for specificity, (key, _) in enumerate(_SOURCES):
        for source_id in applying[key]:
            entries = requirements.get(key, []) if source_id is None else requirements.get(key, {}).get(source_id, [])
            for entry in entries or []:
                rank = (_level_rank(entry.get("level")), -_hours_of(entry, defaults), specificity)
                found.setdefault(entry["topic"], []).append((rank, key, source_id, entry))
    class_of = dict(_SOURCES)
    merged: list[Requirement] = []
    for topic, entries in found.items():
        _, key, source_id, cited = min(entries, key=lambda item: item[0])
        class_name = class_of[key]
        merged.append(Requirement(
            topic_id=topic,
            topic_name=names.get(topic, topic),
            level=cited.get("level", "optional"),
            hours=-min(rank[1] for rank, _, _, _ in entries),
            section=str(cited.get("section", "")),
            source=key,
            source_id=source_id,
            source_name=names.get(source_id, source_id) if source_id else SIDES["core"],
            source_class=class_labels.get(class_name, "") if class_name else "",
            note=str(cited.get("note", "")),
            priority=int(topics.get(topic, {}).get("planPriority", 3) or 3),
            sources=tuple(dict.fromkeys(k for _, k, _, _ in sorted(entries, key=lambda item: item[0][2]))),
            core_topic=topic in core_topics,
        ))
    return sorted(merged, key=lambda r: (_level_rank(r.level), r.topic_id))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def fetch_records(store: Store, ontology: Ontology, cadre_id: str, until: dt.date | None = None) -> list[Record]:
    """The cadre's records dated on or before ``until`` (all when None), oldest first; one store round trip."""
    return records_from(ontology, store.referrers([cadre_id], ontology.relationship_types["ofCadre"])[cadre_id], until)


def records_from(ontology: Ontology, fetched: Iterable[NodeWithEdges], until: dt.date | None = None) -> list[Record]:
    """Records as the hour rules read them, from record nodes already read with their edges (what
    :meth:`Store.referrers` answers under a cadre), dated on or before ``until``, oldest first."""
    rel = ontology.relationship_types
    records: list[Record] = []
    links = {rel["forCourse"]: "course", rel["inClass"]: "klass", rel["viaPlatform"]: "platform"}
    for found in fetched:
        node = found.node
        date = parse_date(node.get("date"))
        if date is None or (until is not None and date > until):
            continue
        ends: dict[str, str] = {}
        for edge in found.edges:
            if edge.type in links:
                ends[links[edge.type]] = edge.dst
        records.append(Record(
            id=node.id,
            date=date,
            mode=str(node.get("mode", "")),
            situation=node.get("situation"),
            hours=_number(node.get("hours")),
            minutes=_number(node.get("minutes")),
            days=_number(node.get("days")),
            completed=bool(node.get("completed", True)),
            test_passed=bool(node.get("testPassed", False)),
            **ends,
        ))
    return sorted(records, key=lambda r: (r.date, r.id))


#: Role combinations whose merged requirements are kept; cadres share roles, so most requests hit.
ROLE_CACHE_SIZE = 4096


def role_requirements(snapshot: CatalogueSnapshot, category: str | None, groups: Iterable[str],
                      domain: str | None) -> tuple[Requirement, ...]:
    """Merged requirements of one role combination, cached on the snapshot (oldest dropped when full)."""
    role = (category, tuple(sorted(groups)), domain)
    cache = snapshot.requirement_cache
    with snapshot.requirement_lock:
        found = cache.get(role)
    if found is not None:
        return found
    class_labels = {name: spec.label for name, spec in snapshot.ontology.classes.items()}
    topics = dict(zip(snapshot.topic_ids, snapshot.topic_props))
    merged = tuple(merge_requirements(snapshot.ontology.requirements, category, role[1], domain,
                                      snapshot.names, class_labels, topics, core_topics(snapshot)))
    with snapshot.requirement_lock:  # request threads share the snapshot: evict and fill as one step
        if role not in cache and len(cache) >= ROLE_CACHE_SIZE:
            cache.pop(next(iter(cache)))
        cache[role] = merged
    return merged


def core_topics(snapshot: CatalogueSnapshot) -> frozenset[str]:
    """Topics under the core branches of the rules (``ranking.core_branches``), the branches included."""
    found: set[str] = set()
    ranking = snapshot.ontology.rules_section("ranking")
    if "core_branches" not in ranking:
        raise ValueError(f"ontology/rules.yaml 的 ranking 段缺少 core_branches（“{SIDES['core']}”一侧的主题分支），请补上后重新加载")
    for branch in ranking["core_branches"]:
        if branch in snapshot.topic_pos:
            found |= snapshot.narrower_closure(branch)
    return frozenset(found)


def fetch_profile(store: Store, snapshot: CatalogueSnapshot, cadre_id: str, until: dt.date | None = None,
                  choices: CadreChoices | None = None) -> CadreProfile:
    """The cadre's role, merged requirements and records, and their own choices from ``choices`` when given;
    :class:`UnknownCadre` when no such cadre."""
    cadre = store.nodes_with_edges([cadre_id]).get(cadre_id) if isinstance(cadre_id, str) else None
    if cadre is None:
        raise UnknownCadre(str(cadre_id))
    records = store.referrers([cadre_id], snapshot.ontology.relationship_types["ofCadre"])[cadre_id]
    return profile_from(snapshot, cadre, records, until, choices.of(cadre_id) if choices is not None else ())


def profile_from(snapshot: CatalogueSnapshot, cadre: NodeWithEdges, records: Iterable[NodeWithEdges],
                 until: dt.date | None = None, choices: tuple[Choice, ...] = ()) -> CadreProfile:
    """The profile of a cadre already read with its outgoing edges (:meth:`Store.nodes_with_edges`) and its record
    nodes with theirs (:meth:`Store.referrers`): no store call, so a batch reads a block of cadres at once and
    builds each profile here.  :class:`UnknownCadre` when the node is not a cadre."""
    node = cadre.node
    if node.label != "Cadre":
        raise UnknownCadre(node.id)
    cadre_id = node.id
    rel = snapshot.ontology.relationship_types
    category = domain = None
    groups: list[str] = []
    for edge in cadre.edges:
        if edge.type == rel["category"]:
            category = edge.dst
        elif edge.type == rel["positionDomain"]:
            domain = edge.dst
        elif edge.type == rel["inGroup"]:
            groups.append(edge.dst)
    requirements = role_requirements(snapshot, category, groups, domain)
    return CadreProfile(
        cadre_id=cadre_id,
        name=str(node.get("name", "")),
        category_id=category,
        category_name=snapshot.categories.get(category, {}).get("name", "") if category else "",
        hour_group=snapshot.categories.get(category, {}).get("hourGroup") if category else None,
        domain_id=domain,
        domain_name=snapshot.domains.get(domain, {}).get("name", "") if domain else "",
        group_ids=tuple(sorted(groups)),
        group_names=tuple(snapshot.groups.get(g, {}).get("name", g) for g in sorted(groups)),
        leadership_level=node.get("leadershipLevel"),
        requirements=requirements,
        records=tuple(records_from(snapshot.ontology, records, until)),
        choices=choices,
    )
