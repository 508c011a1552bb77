"""The catalogue as the analytics see it: plain dataclasses read once from the graph store.

Reports, indicators and optimisers run many passes over the same few thousand (or, in benchmarks, hundred
thousand) courses; reading them into frozen dataclasses once keeps those passes fast and lets tests build
small catalogues by hand without a store.  Attribute names are the ontology's field names in snake case
(``politicalReview`` → ``political_review``), so a rule that names a field (a nomination gate) finds it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from kg.model import Edge, Node
from kg.ontology import Ontology, load_ontology
from kg.store.base import Store

from recommender.analytics.errors import RuleError

__all__ = [
    "PUBLISHED",
    "Catalogue",
    "Course",
    "Institution",
    "Platform",
    "Textbook",
    "Topic",
    "TrainingClass",
    "attribute_of",
    "catalogue_from_graph",
    "load_catalogue",
    "topics_from_ontology",
]

PUBLISHED = "已发布"
"""The lifecycle status of items that may be taught, scored or nominated (checked against shapes.ttl on load)."""


@dataclass(frozen=True)
class Topic:
    id: str
    name: str
    broader: str | None = None
    priority: int | None = None
    section: str | None = None
    order: int | None = None


@dataclass(frozen=True)
class Institution:
    id: str
    name: str
    institution_type: str
    level: str
    region: str | None = None


@dataclass(frozen=True)
class Platform:
    id: str
    name: str
    level: str
    institution: str | None = None


@dataclass(frozen=True)
class Course:
    id: str
    name: str
    hours: float
    topics: tuple[str, ...]
    course_type: str = ""
    delivery_mode: str = ""
    teaching_method: tuple[str, ...] = ()
    lecturer_type: str = ""
    is_case: bool = False
    status: str = PUBLISHED
    version: int = 1
    date_created: dt.date | None = None
    date_modified: dt.date | None = None
    rating: float | None = None
    rating_count: int | None = None
    completion_rate: float | None = None
    enrolments: int | None = None
    expert_score: float | None = None
    political_review: bool | None = None
    quality_review: bool | None = None
    institution: str | None = None
    platform: str | None = None
    audience_category: tuple[str, ...] = ()
    audience_group: tuple[str, ...] = ()


@dataclass(frozen=True)
class Textbook:
    id: str
    name: str
    topics: tuple[str, ...]
    textbook_type: str = ""
    is_case: bool = False
    status: str = PUBLISHED
    batch: int | None = None
    publisher: str | None = None
    date_published: dt.date | None = None
    rating: float | None = None
    rating_count: int | None = None
    expert_score: float | None = None
    political_review: bool | None = None
    quality_review: bool | None = None
    institution: str | None = None


@dataclass(frozen=True)
class TrainingClass:
    id: str
    name: str
    institution: str
    semester: str
    courses: tuple[str, ...]
    class_type: str = ""
    is_main_class: bool = False
    is_party_spirit_class: bool = False
    start_date: dt.date | None = None
    end_date: dt.date | None = None

    @property
    def year(self) -> int:
        return int(self.semester[:4])


@dataclass
class Catalogue:
    """Topics (with their BROADER tree), institutions, platforms, courses, textbooks and classes."""

    topics: dict[str, Topic]
    institutions: dict[str, Institution] = field(default_factory=dict)
    platforms: dict[str, Platform] = field(default_factory=dict)
    courses: dict[str, Course] = field(default_factory=dict)
    textbooks: dict[str, Textbook] = field(default_factory=dict)
    classes: dict[str, TrainingClass] = field(default_factory=dict)

    # ── the topic tree ──
    @cached_property
    def ancestors(self) -> dict[str, tuple[str, ...]]:
        """Topic → itself and every broader topic up to its top concept (nearest first)."""
        chains: dict[str, tuple[str, ...]] = {}
        for topic_id in self.topics:
            chain, current = [], topic_id
            while current is not None and current not in chain:
                chain.append(current)
                current = self.topics[current].broader if current in self.topics else None
            chains[topic_id] = tuple(chain)
        return chains

    @cached_property
    def branches(self) -> list[str]:
        """The top concepts (no broader topic), in the plan's order."""
        tops = [t for t in self.topics.values() if t.broader is None]
        return [t.id for t in sorted(tops, key=lambda t: (t.order if t.order is not None else 1_000, t.id))]

    def branch_of(self, topic_id: str) -> str | None:
        chain = self.ancestors.get(topic_id)
        return chain[-1] if chain else None

    def branches_of(self, topic_ids: Iterable[str]) -> tuple[str, ...]:
        """Distinct top-level branches of some topics, in the plan's order."""
        found = {self.branch_of(t) for t in topic_ids} - {None}
        return tuple(b for b in self.branches if b in found)

    def is_under(self, topic_id: str, root: str) -> bool:
        """Whether the topic is the root or lies below it along BROADER edges."""
        return root in self.ancestors.get(topic_id, ())

    def topics_under(self, root: str) -> frozenset[str]:
        return frozenset(t for t, chain in self.ancestors.items() if root in chain)

    def priority_of(self, topic_id: str) -> int | None:
        """The plan priority of a topic, inherited from the nearest broader topic that states one."""
        for topic in self.ancestors.get(topic_id, ()):
            if self.topics[topic].priority is not None:
                return self.topics[topic].priority
        return None

    def topic_name(self, topic_id: str) -> str:
        topic = self.topics.get(topic_id)
        return topic.name if topic else topic_id

    def institution_name(self, institution_id: str | None) -> str:
        inst = self.institutions.get(institution_id or "")
        return inst.name if inst else (institution_id or "")

    # ── items ──
    @cached_property
    def published_courses(self) -> list[Course]:
        return [c for c in self.courses.values() if c.status == PUBLISHED]


def attribute_of(name: str) -> str:
    """The dataclass attribute for an ontology field name (``politicalReview`` → ``political_review``)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _build(cls: type, node: Node, relations: Mapping[str, Any], converters: Mapping[str, Any] = {}) -> Any:
    """A dataclass of ``cls`` from a node's properties plus relation-valued fields."""
    names = cls.__dataclass_fields__
    values: dict[str, Any] = {"id": node.id}
    for key, value in node.props.items():
        attr = attribute_of(key)
        if attr in names:
            values[attr] = converters.get(attr, lambda v: v)(value)
    values.update({k: v for k, v in relations.items() if k in names})
    return cls(**values)


_SEQUENCE = lambda v: tuple(v) if isinstance(v, (list, tuple)) else (v,)  # noqa: E731
_COURSE_CONVERTERS = {"teaching_method": _SEQUENCE, "date_created": _date, "date_modified": _date, "hours": float}
_CLASS_CONVERTERS = {"start_date": _date, "end_date": _date}


def topics_from_ontology(ontology: Ontology | None = None) -> dict[str, Topic]:
    """The plan's topic scheme with its BROADER links, straight from ``ontology/topics.ttl``."""
    ontology = ontology or load_ontology()
    nodes, edges = ontology.concept_graph()
    return _topics([n for n in nodes if n.label == "Topic"], edges, ontology)


def _topics(nodes: Iterable[Node], edges: Iterable[Edge], ontology: Ontology) -> dict[str, Topic]:
    broader_type = ontology.relationship_types["broader"]
    broader = {e.src: e.dst for e in edges if e.type == broader_type}
    return {
        n.id: Topic(
            id=n.id,
            name=n.props.get("name", n.id),
            broader=broader.get(n.id),
            priority=n.props.get("planPriority"),
            section=n.props.get("planSection"),
            order=n.props.get("planOrder"),
        )
        for n in nodes
    }


def _check_vocabulary(ontology: Ontology) -> None:
    for cls in ("Course", "Textbook"):
        allowed = ontology.classes[cls].fields["status"].allowed or ()
        if PUBLISHED not in allowed:
            raise RuleError(f"本体中{ontology.classes[cls].label}的状态取值不再包含『{PUBLISHED}』，请同步更新分析模块")


_RELATIONS = {
    # dataclass → (ontology property, attribute, single value?)
    "Course": [("covers", "topics", False), ("offeredBy", "institution", True), ("onPlatform", "platform", True),
               ("audienceCategory", "audience_category", False), ("audienceGroup", "audience_group", False)],
    "Textbook": [("covers", "topics", False), ("offeredBy", "institution", True)],
    "Platform": [("offeredBy", "institution", True)],
    "TrainingClass": [("heldBy", "institution", True), ("includesCourse", "courses", False)],
}


def catalogue_from_graph(nodes: Iterable[Node], edges: Iterable[Edge], ontology: Ontology | None = None) -> Catalogue:
    """Assemble a catalogue from graph nodes and edges (from a store, or from validated corpus files).

    Ordered relations (a class's courses) follow the edges' ``ord``; other relations keep the store's order.
    """
    ontology = ontology or load_ontology()
    _check_vocabulary(ontology)
    by_label: dict[str, list[Node]] = defaultdict(list)
    for node in nodes:
        by_label[node.label].append(node)
    wanted = {ontology.relationship_types[prop] for specs in _RELATIONS.values() for prop, _, _ in specs}
    wanted.add(ontology.relationship_types["broader"])
    out: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    kept: list[Edge] = []
    for edge in edges:
        if edge.type in wanted:
            kept.append(edge)
            out[(edge.src, edge.type)].append((edge.props.get("ord", len(out[(edge.src, edge.type)])), edge.dst))

    def relations(label: str, node_id: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for prop, attr, single in _RELATIONS.get(label, []):
            targets = tuple(dst for _, dst in sorted(out.get((node_id, ontology.relationship_types[prop]), [])))
            found[attr] = (targets[0] if targets else None) if single else targets
        return found

    return Catalogue(
        topics=_topics(by_label["Topic"], kept, ontology),
        institutions={n.id: _build(Institution, n, {}) for n in by_label["Institution"]},
        platforms={n.id: _build(Platform, n, relations("Platform", n.id)) for n in by_label["Platform"]},
        courses={n.id: _build(Course, n, relations("Course", n.id), _COURSE_CONVERTERS) for n in by_label["Course"]},
        textbooks={
            n.id: _build(Textbook, n, relations("Textbook", n.id), {"date_published": _date}) for n in by_label["Textbook"]
        },
        classes={
            n.id: _build(TrainingClass, n, relations("TrainingClass", n.id), _CLASS_CONVERTERS)
            for n in by_label["TrainingClass"]
        },
    )


_LABELS = ("Topic", "Institution", "Platform", "Course", "Textbook", "TrainingClass")


def load_catalogue(store: Store, ontology: Ontology | None = None) -> Catalogue:
    """Read topics, institutions, platforms, courses, textbooks and classes from a store (nodes by label,
    edges by type)."""
    ontology = ontology or load_ontology()
    nodes = [n for label in _LABELS for n in store.nodes(label)]
    types = {ontology.relationship_types[prop] for specs in _RELATIONS.values() for prop, _, _ in specs}
    types.add(ontology.relationship_types["broader"])
    edges = [e for rel in sorted(types) for e in store.edges(type=rel)]
    return catalogue_from_graph(nodes, edges, ontology)
