"""The ontology as the code sees it: classes, fields, relationship types, concept schemes and rules.

Everything here is read from ``ontology/`` (Turtle read with rdflib, YAML for the plan's rules and the
role requirements).  No label, relationship type, allowed value or rule is restated in code: a change to
``ontology/`` reaches the loader, the validator, both stores and the recommender without touching Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from rdflib import RDF, RDFS, Graph, Literal, Namespace, URIRef
from rdflib.collection import Collection
from rdflib.namespace import OWL, SH, SKOS, XSD

from kg.model import Edge, Node

__all__ = [
    "BASE_IRI",
    "GX",
    "ONTOLOGY_DIR",
    "concept_props",
    "ClassSpec",
    "FieldSpec",
    "Ontology",
    "load_ontology",
]

ONTOLOGY_DIR = Path(__file__).resolve().parent.parent / "ontology"
GX = Namespace("https://ganxun.org.cn/ns#")
BASE_IRI = "https://ganxun.org.cn/"

_DATATYPES = {
    XSD.string: "string",
    XSD.integer: "integer",
    XSD.decimal: "decimal",
    XSD.boolean: "boolean",
    XSD.date: "date",
}


@dataclass(frozen=True)
class FieldSpec:
    """One property of a class, merged from its OWL declaration and its SHACL property shape."""

    name: str
    label: str
    datatype: str | None = None
    target_class: str | None = None
    rel_type: str | None = None
    ordered: bool = False
    min_count: int = 0
    max_count: int | None = None
    allowed: tuple[Any, ...] | None = None
    min_inclusive: float | None = None
    max_inclusive: float | None = None
    min_exclusive: float | None = None
    max_exclusive: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    less_or_equal: str | None = None

    @property
    def is_relation(self) -> bool:
        return self.target_class is not None

    @property
    def is_list(self) -> bool:
        return self.max_count != 1


@dataclass(frozen=True)
class ClassSpec:
    """A node class: its Chinese label, id prefix and the fields its shape allows."""

    name: str
    label: str
    label_en: str
    id_prefix: str
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    closed: bool = False
    searchable: bool = False
    personal: bool = False
    concept_scheme: str | None = None
    schema_types: tuple[str, ...] = ()


@dataclass
class Ontology:
    """The whole ontology: RDF graph, class specs, relationship types, rules and requirements."""

    graph: Graph
    classes: dict[str, ClassSpec]
    relationship_types: dict[str, str]
    rules: dict[str, Any]
    requirements: dict[str, Any]
    property_labels: dict[str, str]

    # ── ids and IRIs ──
    @property
    def class_by_prefix(self) -> dict[str, ClassSpec]:
        return {spec.id_prefix: spec for spec in self.classes.values()}

    def class_of_id(self, node_id: str) -> ClassSpec | None:
        """The class whose id prefix the id carries, or None for a malformed id."""
        prefix, sep, _ = node_id.partition(":")
        return self.class_by_prefix.get(prefix) if sep else None

    @staticmethod
    def iri(node_id: str) -> URIRef:
        prefix, _, slug = node_id.partition(":")
        return URIRef(f"{BASE_IRI}{prefix}/{slug}")

    def id_of(self, iri: URIRef | str) -> str | None:
        """The compact id (``course:x``) of an IRI minted by :meth:`iri`, else None."""
        text = str(iri)
        if not text.startswith(BASE_IRI):
            return None
        prefix, _, slug = text[len(BASE_IRI):].partition("/")
        return f"{prefix}:{slug}" if prefix in self.class_by_prefix and slug else None

    def label_of(self, class_name: str, field_name: str) -> str:
        spec = self.classes[class_name].fields.get(field_name)
        return spec.label if spec else self.property_labels.get(field_name, field_name)

    def rules_section(self, name: str) -> dict[str, Any]:
        """One top-level section of ``rules.yaml`` (``vocabulary``, ``quality`` …).

        Code that turns on a section cannot guess its content, so a missing or malformed one is an error that
        names it rather than an empty default."""
        section = self.rules.get(name)
        if not isinstance(section, dict):
            raise ValueError(f"ontology/rules.yaml 缺少配置段 {name}（应为键值映射），请补上后重新加载")
        return section

    @property
    def data_classes(self) -> list[ClassSpec]:
        """Classes loaded from corpora files (not from the concept schemes of ontology/)."""
        return [c for c in self.classes.values() if c.concept_scheme is None]

    # ── concept schemes as graph nodes ──
    def concept_graph(self) -> tuple[list[Node], list[Edge]]:
        """Topics, cadre categories, target groups and position domains as nodes and edges.

        They live in ``topics.ttl`` / ``roles.ttl``; the store holds them like any other node so that
        Cypher and the recommender can traverse them.
        """
        g = self.graph
        nodes: list[Node] = []
        edges: list[Edge] = []
        topic_scheme = URIRef(f"{BASE_IRI}topic/scheme")
        for spec in self.classes.values():
            if spec.concept_scheme is None:
                continue
            cls_iri = GX[spec.name]
            members = set(g.subjects(RDF.type, cls_iri))
            if spec.name == "Topic":
                members |= set(g.subjects(SKOS.inScheme, topic_scheme))
            for concept in sorted(members):
                node_id = self.id_of(concept)
                if node_id is None:
                    continue
                nodes.append(Node(node_id, spec.name, concept_props(g, concept)))
                for prop, rel in (
                    (SKOS.broader, "broader"),
                    (GX.hasPrerequisite, "hasPrerequisite"),
                    (SKOS.related, "related"),
                ):
                    for target in sorted(g.objects(concept, prop)):
                        target_id = self.id_of(target)
                        if target_id is not None:
                            edges.append(Edge(node_id, self.relationship_types[rel], target_id))
        return nodes, edges


def _literal_value(lit: Literal) -> Any:
    value = lit.toPython()
    return value.isoformat() if hasattr(value, "isoformat") else value


def concept_props(g: Graph, concept: URIRef) -> dict[str, Any]:
    """Node properties of a SKOS concept: Chinese label first, English label, synonyms and plan metadata."""
    props: dict[str, Any] = {}
    for label in g.objects(concept, SKOS.prefLabel):
        key = "name" if getattr(label, "language", None) == "zh" else "nameEn"
        props[key] = str(label)
    alt = sorted(str(a) for a in g.objects(concept, SKOS.altLabel) if getattr(a, "language", None) == "zh")
    if alt:
        props["altLabels"] = alt
    definition = g.value(concept, SKOS.definition)
    if definition is not None:
        props["definition"] = str(definition)
    for key in ("planSection", "planPriority", "planOrder", "topicKind", "hourGroup"):
        value = g.value(concept, GX[key])
        if value is not None:
            props[key] = _literal_value(value)
    return props


def _local(iri: URIRef) -> str:
    text = str(iri)
    return text.rsplit("#", 1)[-1] if "#" in text else text.rsplit("/", 1)[-1]


def _zh_label(g: Graph, subject: URIRef) -> str:
    for label in g.objects(subject, RDFS.label):
        if getattr(label, "language", None) == "zh":
            return str(label)
    return _local(subject)


def _en_label(g: Graph, subject: URIRef) -> str:
    for label in g.objects(subject, RDFS.label):
        if getattr(label, "language", None) == "en":
            return str(label)
    return _local(subject)


def _number(g: Graph, shape: Any, pred: URIRef) -> float | None:
    value = g.value(shape, pred)
    return None if value is None else value.toPython()


def _field_from_shape(g: Graph, shape: Any, rel_types: dict[str, str]) -> FieldSpec:
    path = g.value(shape, SH.path)
    name = _local(path)
    datatype = g.value(shape, SH.datatype)
    target = g.value(shape, SH["class"])
    allowed_node = g.value(shape, SH["in"])
    allowed = tuple(_literal_value(v) for v in Collection(g, allowed_node)) if allowed_node is not None else None
    max_count = g.value(shape, SH.maxCount)
    leq = g.value(shape, SH.lessThanOrEquals)
    pattern = g.value(shape, SH.pattern)
    return FieldSpec(
        name=name,
        label=_zh_label(g, path),
        datatype=_DATATYPES.get(datatype) if datatype is not None else None,
        target_class=_local(target) if target is not None else None,
        rel_type=rel_types.get(name) if target is not None else None,
        ordered=bool(g.value(path, GX.ordered)),
        min_count=int(g.value(shape, SH.minCount) or 0),
        max_count=int(max_count) if max_count is not None else None,
        allowed=allowed,
        min_inclusive=_number(g, shape, SH.minInclusive),
        max_inclusive=_number(g, shape, SH.maxInclusive),
        min_exclusive=_number(g, shape, SH.minExclusive),
        max_exclusive=_number(g, shape, SH.maxExclusive),
        min_length=int(_number(g, shape, SH.minLength)) if g.value(shape, SH.minLength) is not None else None,
        max_length=int(_number(g, shape, SH.maxLength)) if g.value(shape, SH.maxLength) is not None else None,
        pattern=str(pattern) if pattern is not None else None,
        less_or_equal=_local(leq) if leq is not None else None,
    )


def _class_specs(g: Graph, rel_types: dict[str, str]) -> dict[str, ClassSpec]:
    shapes_by_class = {g.value(shape, SH.targetClass): shape for shape in g.subjects(RDF.type, SH.NodeShape)}
    specs: dict[str, ClassSpec] = {}
    for cls in sorted(g.subjects(RDF.type, OWL.Class)):
        prefix = g.value(cls, GX.idPrefix)
        if prefix is None:
            continue
        shape = shapes_by_class.get(cls)
        fields: dict[str, FieldSpec] = {}
        closed = False
        if shape is not None:
            closed = bool(g.value(shape, SH.closed))
            for prop_shape in g.objects(shape, SH.property):
                spec = _field_from_shape(g, prop_shape, rel_types)
                if spec.name.startswith(("prefLabel", "altLabel")):
                    continue
                fields[spec.name] = spec
        schema_types = tuple(
            str(parent) for parent in g.objects(cls, RDFS.subClassOf) if str(parent).startswith("https://schema.org/")
        )
        scheme = g.value(cls, GX.conceptScheme)
        specs[_local(cls)] = ClassSpec(
            name=_local(cls),
            label=_zh_label(g, cls),
            label_en=_en_label(g, cls),
            id_prefix=str(prefix),
            fields=dict(sorted(fields.items())),
            closed=closed,
            searchable=bool(g.value(cls, GX.searchable)),
            personal=bool(g.value(cls, GX.personal)),
            concept_scheme=str(scheme) if scheme is not None else None,
            schema_types=tuple(sorted(schema_types)),
        )
    return specs


@cache
def load_ontology(directory: Path = ONTOLOGY_DIR) -> Ontology:
    """Read every Turtle and YAML file of ``ontology/`` once per process."""
    g = Graph()
    for ttl in sorted(directory.glob("*.ttl")):
        g.parse(ttl, format="turtle")
    rel_types = {_local(prop): str(rel) for prop, rel in g.subject_objects(GX.relationshipType)}
    properties = set(g.subjects(GX.relationshipType, None))
    for kind in (OWL.DatatypeProperty, OWL.ObjectProperty):
        properties |= set(g.subjects(RDF.type, kind))
    property_labels = {_local(prop): _zh_label(g, prop) for prop in properties}
    return Ontology(
        graph=g,
        classes=_class_specs(g, rel_types),
        relationship_types=rel_types,
        rules=yaml.safe_load((directory / "rules.yaml").read_text(encoding="utf-8")),
        requirements=yaml.safe_load((directory / "requirements.yaml").read_text(encoding="utf-8"))
        if (directory / "requirements.yaml").exists()
        else {},
        property_labels=property_labels,
    )
