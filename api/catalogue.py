"""Catalogue endpoints: list with filters and pagination, and detail with linked nodes, per class.

One list route and one detail route per catalogue class; each list route's filters are generated from the
ontology (every field with allowed values, every boolean, every relation), so the OpenAPI document, the
request validation and the data can never disagree.  Personal data never appears here: a course's training
records are not among its links.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import marshmallow as ma

from api import fields as f
from api.auth import ApiBlueprint
from api.graph import get_node, graph
from kg.model import Node
from kg.ontology import ClassSpec, FieldSpec, Ontology, load_ontology

__all__ = ["RESOURCES", "bp", "link_groups", "node_summary", "paginate", "resource_of"]

#: URL segment → ontology class.
RESOURCES: dict[str, str] = {
    "courses": "Course",
    "textbooks": "Textbook",
    "cases": "CaseStudy",
    "teachers": "Teacher",
    "sites": "DemonstrationSite",
    "routes": "TeachingRoute",
    "institutions": "Institution",
    "platforms": "Platform",
    "classes": "TrainingClass",
    "topics": "Topic",
}

bp = ApiBlueprint("catalogue", __name__, url_prefix="/api/catalogue", description="目录：课程、教材、案例、师资、现场教学点、路线、机构、主题")


class NodeSummarySchema(f.Schema):
    id = f.String()
    label = f.String(metadata={"description": "类（本体类名）"})
    label_name = f.String(metadata={"description": "类的中文名"})
    name = f.String(allow_none=True)


class NodeSchema(NodeSummarySchema):
    props = f.Dict(metadata={"description": "节点属性（字段名见 ontology/shapes.ttl）"})


class LinkSchema(f.Schema):
    field = f.String(metadata={"description": "关系字段名；反向关系以 ^ 开头"})
    field_name = f.String()
    rel = f.String(metadata={"description": "关系类型"})
    direction = f.String(metadata={"description": "out | in"})
    nodes = f.List(f.Nested(NodeSummarySchema))


class DetailSchema(NodeSchema):
    links = f.List(f.Nested(LinkSchema))


class PageSchema(f.Schema):
    total = f.Integer()
    page = f.Integer()
    per_page = f.Integer()
    items = f.List(f.Nested(NodeSchema))


class ResourceSchema(f.Schema):
    resource = f.String()
    label = f.String()
    label_name = f.String()
    count = f.Integer()


def node_summary(node: Node, ontology: Ontology) -> dict[str, Any]:
    spec = ontology.classes.get(node.label)
    return {"id": node.id, "label": node.label, "label_name": spec.label if spec else node.label,
            "name": node.props.get("name")}


def node_dict(node: Node, ontology: Ontology) -> dict[str, Any]:
    return {**node_summary(node, ontology), "props": node.props}


def paginate(items: list[Any], page: int, per_page: int) -> dict[str, Any]:
    start = (page - 1) * per_page
    return {"total": len(items), "page": page, "per_page": per_page, "items": items[start:start + per_page]}


def resource_of(label: str) -> str | None:
    return next((seg for seg, cls in RESOURCES.items() if cls == label), None)


def _filter_field(spec: FieldSpec) -> ma.fields.Field | None:
    meta = {"description": spec.label}
    if spec.is_relation:
        return f.String(validate=f.length(1, 200), metadata={**meta, "description": f"{spec.label}（编号，如 {spec.target_class}）"})
    if spec.allowed and all(isinstance(a, str) for a in spec.allowed):
        return f.String(validate=f.one_of(spec.allowed), metadata=meta)
    if spec.datatype == "boolean":
        return f.Boolean(metadata=meta)
    if spec.datatype == "integer":
        return f.Integer(validate=f.range_(-10**9, 10**9), metadata=meta)
    return None


def list_schema(spec: ClassSpec, ontology: Ontology) -> type[ma.Schema]:
    """Query schema for one class: q, page, per_page and one filter per filterable field."""
    members: dict[str, Any] = {
        "q": f.String(validate=f.length(1, 100), metadata={"description": "名称或简介包含的文字"}),
        "page": f.Integer(load_default=1, validate=f.range_(1, 10**6), metadata={"description": "页码（从 1 开始）"}),
        "per_page": f.page_size(),
    }
    for name, field_spec in sorted(spec.fields.items()):
        if field_spec.target_class and ontology.classes[field_spec.target_class].personal:
            continue
        if (member := _filter_field(field_spec)) is not None:
            members[name] = member
    return type(f"{spec.name}Query", (f.Schema,), {**members, "Meta": type("Meta", (), {"unknown": ma.EXCLUDE})})


def _matches(node: Node, filters: dict[str, Any], related: dict[str, set[str]]) -> bool:
    for name, wanted in filters.items():
        if name in related:
            if node.id not in related[name]:
                return False
            continue
        value = node.props.get(name)
        if isinstance(value, list) and wanted not in value:
            return False
        if not isinstance(value, list) and value != wanted:
            return False
    return True


class Listing:
    """One class's nodes for the list routes, read once per graph version (:meth:`api.graph.Graph.derived`):
    the nodes in id order, their answers, and the casefolded text that ``q`` searches.

    Why: a list request used to read every node of the class from the store and build every answer, so a
    page of 20 courses cost a full scan; now it filters in memory and slices."""

    def __init__(self, nodes: list[Node], ontology: Ontology) -> None:
        self.nodes = nodes
        self.items = [node_dict(n, ontology) for n in nodes]
        self.texts = [f"{n.props.get('name', '')} {n.props.get('description', '')}".casefold() for n in nodes]


def listing(label: str) -> Listing:
    g = graph()
    return g.derived(f"listing:{label}", lambda: Listing(list(g.store.nodes(label)), g.ontology))


def list_nodes(label: str, args: dict[str, Any]) -> dict[str, Any]:
    g = graph()
    spec = g.ontology.classes[label]
    args = dict(args)
    page, per_page, q = args.pop("page"), args.pop("per_page"), args.pop("q", None)
    related: dict[str, set[str]] = {}
    for name in [n for n in args if spec.fields[n].is_relation]:
        rel = spec.fields[name].rel_type
        related[name] = {e.src for e in g.store.edges(type=rel, dst=args[name])}
    needle = q.casefold() if q else None
    rows = listing(label)
    if not args and needle is None:
        return paginate(rows.items, page, per_page)
    items = [item for node, item, text in zip(rows.nodes, rows.items, rows.texts)
             if _matches(node, args, related) and (needle is None or needle in text)]
    return paginate(items, page, per_page)


def link_groups(node: Node) -> list[dict[str, Any]]:
    """Linked non-personal nodes, grouped by relation: outgoing first (in field order), then incoming."""
    g = graph()
    ontology = g.ontology
    rel_to_field = {rel: prop for prop, rel in ontology.relationship_types.items()}
    groups: list[dict[str, Any]] = []
    for direction, edges in (("out", g.store.edges(src=node.id)), ("in", g.store.edges(dst=node.id))):
        by_rel: dict[str, list[str]] = {}
        for e in sorted(edges, key=lambda e: (e.type, e.props.get("ord", 0))):  # ordered relations keep ``ord``
            by_rel.setdefault(e.type, []).append(e.dst if direction == "out" else e.src)
        for rel, ids in by_rel.items():
            nodes = [n for n in g.store.get_nodes(ids) if n.label not in g.personal_labels]
            if not nodes:
                continue
            prop = rel_to_field.get(rel, rel)
            name = ontology.property_labels.get(prop, prop)
            groups.append({
                "field": prop if direction == "out" else f"^{prop}",
                "field_name": name if direction == "out" else f"{name}（反向）",
                "rel": rel,
                "direction": direction,
                "nodes": [node_summary(n, ontology) for n in _ordered(nodes, ids)],
            })
    return groups


def _ordered(nodes: Iterable[Node], ids: list[str]) -> list[Node]:
    position = {i: k for k, i in enumerate(ids)}
    return sorted(nodes, key=lambda n: position.get(n.id, 0))


@bp.route("/")
@bp.requires()
@bp.response(200, ResourceSchema(many=True))
def resources() -> list[dict[str, Any]]:
    """目录中各类资源及其数量"""
    g = graph()
    counts = g.store.node_counts()
    return [
        {"resource": seg, "label": cls, "label_name": g.ontology.classes[cls].label, "count": counts.get(cls, 0)}
        for seg, cls in RESOURCES.items()
    ]


def _register(segment: str, label: str) -> None:
    ontology = load_ontology()
    spec = ontology.classes[label]

    @bp.requires()
    @bp.arguments(list_schema(spec, ontology), location="query", as_kwargs=False)
    @bp.response(200, PageSchema)
    def list_view(args: dict[str, Any]) -> dict[str, Any]:
        return list_nodes(label, args)

    @bp.requires()
    @bp.response(200, DetailSchema)
    @bp.alt_response(404, response="NOT_FOUND")
    def detail_view(node_id: str) -> dict[str, Any]:
        node = get_node(node_id, label)
        return {**node_dict(node, graph().ontology), "links": link_groups(node)}

    list_view.__doc__ = f"{spec.label}列表（可筛选、分页）"
    detail_view.__doc__ = f"{spec.label}详情及关联节点"
    bp.route(f"/{segment}", endpoint=f"list_{segment}")(list_view)
    bp.route(f"/{segment}/<path:node_id>", endpoint=f"get_{segment}")(detail_view)


for _segment, _label in RESOURCES.items():
    _register(_segment, _label)
