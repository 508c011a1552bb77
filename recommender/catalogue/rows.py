"""Row views of the catalogue: one frozen dataclass per item, with the fields readers need.

Reports, indicators and optimisers make many passes over the same items and read them by field name; the
ranking code reads the same items as arrays.  Both come from these rows (:mod:`recommender.catalogue.snapshot`
builds the arrays from them), so there is one reading of the store.  Attribute names are the ontology's
field names in snake case (``politicalReview`` → ``political_review``) — a rule that names a field (a
nomination gate) finds it — except relations, which get the short names of :data:`RELATIONS`
(``covers`` → ``topics``, ``offeredBy`` → ``institution``).  Values are converted by the field's datatype in
``shapes.ttl`` (dates to :class:`datetime.date`, lists to tuples), so tests can build rows by hand with the
same types a store gives.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from kg.build import PENDING_TAGS
from kg.model import Edge, Node
from kg.ontology import Ontology, load_ontology

__all__ = [
    "ROW_CLASSES",
    "CaseStudy",
    "Course",
    "DemonstrationSite",
    "Institution",
    "Platform",
    "Textbook",
    "Topic",
    "TrainingClass",
    "attribute_of",
    "parse_date",
    "props_of",
    "read_rows",
    "topics_from_ontology",
]


def parse_date(text: Any) -> dt.date | None:
    """An ISO date from a stored property, or None when absent or malformed."""
    if isinstance(text, dt.date):
        return text
    try:
        return dt.date.fromisoformat(str(text)[:10]) if text else None
    except ValueError:
        return None


def attribute_of(name: str) -> str:
    """The row attribute for an ontology field name (``politicalReview`` → ``political_review``)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True)
class Topic:
    """A concept of the plan's topic scheme; ``broader`` may name several parents."""

    id: str
    name: str
    broader: tuple[str, ...] = ()
    prerequisites: tuple[str, ...] = ()
    related: tuple[str, ...] = ()
    plan_priority: int | None = None
    plan_section: str | None = None
    plan_order: int | None = None
    name_en: str | None = None
    alt_labels: tuple[str, ...] = ()
    definition: str | None = None
    topic_kind: str | None = None


@dataclass(frozen=True)
class Institution:
    id: str
    name: str
    institution_type: str = ""
    level: str = ""
    region: str | None = None


@dataclass(frozen=True)
class Platform:
    id: str
    name: str
    level: str = ""
    institution: str | None = None
    recognised: bool = False
    credit_rule: str | None = None


@dataclass(frozen=True)
class Course:
    id: str
    name: str
    hours: float = 0.0
    topics: tuple[str, ...] = ()
    description: str = ""
    course_type: str = ""
    delivery_mode: str = ""
    teaching_method: tuple[str, ...] = ()
    lecturer_type: str = ""
    is_case: bool = False
    status: str = ""
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
    replaced_by: str | None = None
    audience_category: tuple[str, ...] = ()
    audience_group: tuple[str, ...] = ()
    site: str | None = None
    #: topics an import suggested and no designer has confirmed yet (tag edge ``tag: suggested|doubtful``)
    suggested_topics: tuple[str, ...] = ()

    @property
    def confirmed_topics(self) -> tuple[str, ...]:
        """The topics that count as settled: coverage reports count these only (issue 15)."""
        return tuple(t for t in self.topics if t not in self.suggested_topics)


@dataclass(frozen=True)
class Textbook:
    id: str
    name: str
    topics: tuple[str, ...] = ()
    description: str = ""
    textbook_type: str = ""
    is_case: bool = False
    status: str = ""
    batch: int | None = None
    publisher: str | None = None
    date_published: dt.date | None = None
    rating: float | None = None
    rating_count: int | None = None
    expert_score: float | None = None
    political_review: bool | None = None
    quality_review: bool | None = None
    institution: str | None = None
    audience_category: tuple[str, ...] = ()
    audience_group: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaseStudy:
    id: str
    name: str
    topics: tuple[str, ...] = ()
    description: str = ""
    region: str | None = None
    status: str = ""
    year: int | None = None


@dataclass(frozen=True)
class DemonstrationSite:
    """An on-site teaching site; it has no lifecycle status (a site is not published or retired)."""

    id: str
    name: str
    topics: tuple[str, ...] = ()
    description: str = ""
    region: str | None = None
    site_type: str | None = None
    institution: str | None = None


@dataclass(frozen=True)
class TrainingClass:
    id: str
    name: str
    institution: str | None = None
    semester: str = ""
    courses: tuple[str, ...] = ()
    class_type: str = ""
    is_main_class: bool = False
    is_party_spirit_class: bool = False
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    audience_category: tuple[str, ...] = ()
    audience_group: tuple[str, ...] = ()

    @property
    def year(self) -> int | None:
        """The calendar year of the semester (``2025春`` → 2025), None when no semester is given."""
        return int(self.semester[:4]) if self.semester[:4].isdigit() else None


#: row class per ontology class
ROW_CLASSES: dict[str, type] = {
    "Topic": Topic, "Institution": Institution, "Platform": Platform, "Course": Course, "Textbook": Textbook,
    "CaseStudy": CaseStudy, "DemonstrationSite": DemonstrationSite, "TrainingClass": TrainingClass,
}

#: per ontology class: relation property → (row attribute, single value?)
RELATIONS: dict[str, dict[str, tuple[str, bool]]] = {
    "Topic": {"broader": ("broader", False), "hasPrerequisite": ("prerequisites", False), "related": ("related", False)},
    "Platform": {"offeredBy": ("institution", True)},
    "Course": {"covers": ("topics", False), "offeredBy": ("institution", True), "onPlatform": ("platform", True),
               "replacedBy": ("replaced_by", True), "audienceCategory": ("audience_category", False),
               "audienceGroup": ("audience_group", False), "atSite": ("site", True)},
    "Textbook": {"covers": ("topics", False), "offeredBy": ("institution", True),
                 "audienceCategory": ("audience_category", False), "audienceGroup": ("audience_group", False)},
    "CaseStudy": {"illustrates": ("topics", False)},
    "DemonstrationSite": {"illustrates": ("topics", False), "managedBy": ("institution", True)},
    "TrainingClass": {"heldBy": ("institution", True), "includesCourse": ("courses", False),
                      "audienceCategory": ("audience_category", False), "audienceGroup": ("audience_group", False)},
}

_NUMBER = {"decimal": float, "integer": int}


def _converters(ontology: Ontology, class_name: str, row_class: type) -> dict[str, tuple[str, Callable[[Any], Any]]]:
    """Stored property → (attribute, converter) for the properties the row keeps, typed by shapes.ttl."""
    kept = {f.name for f in fields(row_class)}
    spec = ontology.classes[class_name]
    out: dict[str, tuple[str, Callable[[Any], Any]]] = {}
    for name, field in spec.fields.items():
        attr = attribute_of(name)
        if field.is_relation or attr not in kept:
            continue
        if field.datatype == "date":
            convert: Callable[[Any], Any] = parse_date
        elif field.is_list:
            convert = lambda v: tuple(v) if isinstance(v, (list, tuple)) else (v,)  # noqa: E731
        else:
            convert = _NUMBER.get(field.datatype or "", lambda v: v)
        out[name] = (attr, convert)
    # concept schemes keep labels and plan metadata outside the shapes (see kg.ontology.concept_props)
    for name in ("name", "nameEn", "altLabels", "definition", "planSection", "planPriority", "planOrder", "topicKind"):
        attr = attribute_of(name)
        if attr in kept and name not in out:
            out[name] = (attr, tuple if name == "altLabels" else (lambda v: v))
    return out


def read_rows(
    nodes: Callable[[str], Iterable[Node]], edges: Callable[[str], Iterable[Edge]], ontology: Ontology
) -> dict[str, list[Any]]:
    """Rows of every class of :data:`ROW_CLASSES`, keyed by class name, in the order ``nodes`` gives them.

    ``nodes(label)`` and ``edges(type)`` are a store's reads (``store.nodes``, ``store.edges(type=…)``) or
    filters over plain lists (:func:`recommender.catalogue.snapshot.CatalogueSnapshot.from_graph`).  Ordered
    relations (a class's courses) follow the edges' ``ord``; the others keep the edges' order.
    """
    rel_types = ontology.relationship_types
    linked: dict[str, dict[str, list[tuple[int, str]]]] = {}
    pending: dict[str, list[str]] = defaultdict(list)
    for prop in {p for specs in RELATIONS.values() for p in specs}:
        grouped: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for edge in edges(rel_types[prop]):
            grouped[edge.src].append((int(edge.props.get("ord", len(grouped[edge.src]))), edge.dst))
            if edge.props.get("tag") in PENDING_TAGS:
                pending[edge.src].append(edge.dst)
        linked[prop] = grouped
    out: dict[str, list[Any]] = {}
    for class_name, row_class in ROW_CLASSES.items():
        converters = _converters(ontology, class_name, row_class)
        relations = RELATIONS.get(class_name, {})
        rows = []
        for node in nodes(class_name):
            values: dict[str, Any] = {"id": node.id, "name": str(node.props.get("name", node.id))}
            for key, value in node.props.items():
                if key in converters and value is not None:
                    attr, convert = converters[key]
                    values[attr] = convert(value)
            for prop, (attr, single) in relations.items():
                targets = tuple(dst for _, dst in sorted(linked[prop].get(node.id, ()), key=lambda p: p[0]))
                values[attr] = (targets[0] if targets else None) if single else targets
            if node.id in pending and row_class is Course:
                values["suggested_topics"] = tuple(pending[node.id])
            rows.append(row_class(**values))
        out[class_name] = rows
    return out


def topics_from_ontology(ontology: Ontology | None = None) -> list[Topic]:
    """The plan's topic scheme as rows, straight from ``ontology/topics.ttl`` (for catalogues built by hand)."""
    ontology = ontology or load_ontology()
    nodes, edges = ontology.concept_graph()
    by_type: dict[str, list[Edge]] = defaultdict(list)
    for edge in edges:
        by_type[edge.type].append(edge)
    topic_nodes = [n for n in nodes if n.label == "Topic"]
    return read_rows(lambda label: topic_nodes if label == "Topic" else [], lambda t: by_type.get(t, []),
                     ontology)["Topic"]


def props_of(row: Any, ontology: Ontology, class_name: str) -> Mapping[str, Any]:
    """A row's non-relation values under their ontology names (the inverse of :func:`read_rows`)."""
    names = {attr: key for key, (attr, _) in _converters(ontology, class_name, type(row)).items()}
    out: dict[str, Any] = {}
    for f in fields(row):
        value = getattr(row, f.name)
        if f.name in names and value is not None and value != ():
            out[names[f.name]] = list(value) if isinstance(value, tuple) else value
    return out
