"""The graph as RDF: export to Turtle or JSON-LD with schema.org terms, and read an export back.

Every node becomes a resource named by :meth:`Ontology.iri`; its ``gx:`` properties carry the data, and each
property the ontology maps to schema.org (``rdfs:subPropertyOf schema:…``) is written a second time under the
schema.org term so that LRMI-aware tools understand the export without knowing ganxun's vocabulary.  Concept
nodes are written as SKOS.  Reading uses only the ``gx:`` and SKOS statements, so export → import gives back
the same graph.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from rdflib import RDF, RDFS, BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import SKOS, XSD

from kg.model import Edge, Node
from kg.ontology import GX, Ontology, concept_props

__all__ = ["FORMATS", "graph_from_rdf", "graph_to_rdf", "serialize"]

FORMATS = {"turtle": "turtle", "ttl": "turtle", "jsonld": "json-ld", "json-ld": "json-ld"}
_SCHEMA = "https://schema.org/"
_CONCEPT_EDGES = {"broader": SKOS.broader, "related": SKOS.related, "hasPrerequisite": GX.hasPrerequisite}
_XSD = {"integer": XSD.integer, "decimal": XSD.decimal, "boolean": XSD.boolean, "date": XSD.date}


def _literal(value: Any, datatype: str | None) -> Literal:
    if datatype == "decimal":
        return Literal(Decimal(repr(float(value))), datatype=XSD.decimal)
    if datatype in _XSD:
        return Literal(value, datatype=_XSD[datatype])
    return Literal(value)


def _python(lit: Literal) -> Any:
    value = lit.toPython()
    if isinstance(value, Decimal):
        return float(value)
    return value.isoformat() if hasattr(value, "isoformat") else value


def _schema_terms(ontology: Ontology) -> dict[str, list[URIRef]]:
    """gx property local name → the schema.org properties it specialises."""
    terms: dict[str, list[URIRef]] = defaultdict(list)
    for prop, parent in ontology.graph.subject_objects(RDFS.subPropertyOf):
        if str(prop).startswith(str(GX)) and str(parent).startswith(_SCHEMA):
            terms[str(prop)[len(str(GX)):]].append(parent)
    return terms


def graph_to_rdf(nodes: Iterable[Node], edges: Iterable[Edge], ontology: Ontology, with_schema: bool = True) -> Graph:
    """An RDF graph of the given nodes and edges; ``with_schema=False`` leaves out the schema.org copies
    (the closed SHACL shapes describe ganxun's own terms only)."""
    g = Graph()
    for prefix, ns in (("gx", GX), ("schema", URIRef(_SCHEMA)), ("skos", SKOS)):
        g.bind(prefix, ns)
    schema_terms = _schema_terms(ontology) if with_schema else {}
    rel_props = {rel: prop for prop, rel in ontology.relationship_types.items()}
    for node in nodes:
        spec = ontology.classes[node.label]
        subject = ontology.iri(node.id)
        g.add((subject, RDF.type, GX[spec.name]))
        if spec.concept_scheme:
            _add_concept(g, subject, node)
            continue
        for schema_type in spec.schema_types if with_schema else ():
            g.add((subject, RDF.type, URIRef(schema_type)))
        for key, value in node.props.items():
            field = spec.fields[key]
            for item in value if isinstance(value, list) else [value]:
                lit = _literal(item, field.datatype)
                g.add((subject, GX[key], lit))
                for term in schema_terms.get(key, []):
                    g.add((subject, term, lit))
    ordered: dict[str, list[Edge]] = defaultdict(list)
    for edge in edges:
        prop_name = rel_props[edge.type]
        if "ord" in edge.props:
            ordered[edge.src].append(edge)
        predicate = _CONCEPT_EDGES.get(prop_name, GX[prop_name])
        g.add((ontology.iri(edge.src), predicate, ontology.iri(edge.dst)))
        for term in schema_terms.get(prop_name, []):
            g.add((ontology.iri(edge.src), term, ontology.iri(edge.dst)))
    for src, items in ordered.items():
        head = BNode()
        Collection(g, head, [ontology.iri(e.dst) for e in sorted(items, key=lambda e: e.props["ord"])])
        g.add((ontology.iri(src), GX.sequence, head))
    return g


def _add_concept(g: Graph, subject: URIRef, node: Node) -> None:
    g.add((subject, RDF.type, SKOS.Concept))
    for key, value in node.props.items():
        if key == "name":
            g.add((subject, SKOS.prefLabel, Literal(value, lang="zh")))
        elif key == "nameEn":
            g.add((subject, SKOS.prefLabel, Literal(value, lang="en")))
        elif key == "altLabels":
            for alt in value:
                g.add((subject, SKOS.altLabel, Literal(alt, lang="zh")))
        elif key == "definition":
            g.add((subject, SKOS.definition, Literal(value, lang="zh")))
        else:
            g.add((subject, GX[key], Literal(value)))


def graph_from_rdf(g: Graph, ontology: Ontology) -> tuple[list[Node], list[Edge]]:
    """Nodes and edges described by an export (reads gx: and SKOS statements only)."""
    nodes: list[Node] = []
    edges: list[Edge] = []
    for spec in ontology.classes.values():
        for subject in sorted(g.subjects(RDF.type, GX[spec.name])):
            node_id = ontology.id_of(subject)
            if node_id is None:
                continue
            if spec.concept_scheme:
                nodes.append(Node(node_id, spec.name, concept_props(g, subject)))
                for prop_name, predicate in _CONCEPT_EDGES.items():
                    for target in sorted(g.objects(subject, predicate)):
                        edges.append(Edge(node_id, ontology.relationship_types[prop_name], ontology.id_of(target)))
                continue
            props: dict[str, Any] = {}
            for field in spec.fields.values():
                objects = list(g.objects(subject, GX[field.name]))
                if not objects:
                    continue
                if field.is_relation:
                    sequence = g.value(subject, GX.sequence) if field.ordered else None
                    targets = list(Collection(g, sequence)) if sequence is not None else sorted(objects)
                    for index, target in enumerate(targets):
                        edge_props = {"ord": index} if field.ordered else {}
                        edges.append(Edge(node_id, field.rel_type, ontology.id_of(target), edge_props))
                    continue
                values = [_python(o) for o in objects]
                props[field.name] = values[0] if not field.is_list else sorted(values, key=str)
            nodes.append(Node(node_id, spec.name, dict(sorted(props.items()))))
    return nodes, edges


def serialize(g: Graph, fmt: str) -> str:
    """Turtle or JSON-LD text; JSON-LD carries a context with the gx, schema and skos prefixes."""
    rdf_format = FORMATS[fmt]
    if rdf_format == "json-ld":
        context = {"gx": str(GX), "schema": _SCHEMA, "skos": str(SKOS), "xsd": str(XSD)}
        return g.serialize(format="json-ld", context=context, indent=1, ensure_ascii=False)
    return g.serialize(format=rdf_format)
