"""Catalogue endpoints: list with filters and pagination, and detail with linked nodes, per class.

One list route and one detail route per catalogue class; each list route's filters are generated from the
ontology (every field with allowed values, every boolean, every relation), so the OpenAPI document, the
request validation and the data can never disagree.  Personal data never appears here: a course's training
records are not among its links.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import marshmallow as ma

from api import fields as f
from api.auth import ApiBlueprint
from api.graph import get_node, graph
from kg.model import Node
from kg.ontology import ClassSpec, FieldSpec, Ontology, load_ontology

__all__ = ["RESOURCES", "bp", "display_value", "item_detail", "link_groups", "node_summary", "paginate", "resource_of"]

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
    title = f.String(metadata={"description": "页面上的标题：正向为字段名，反向为“来源类（字段名）”，如“班次（包含课程）”"})
    rel = f.String(metadata={"description": "关系类型"})
    direction = f.String(metadata={"description": "out | in"})
    nodes = f.List(f.Nested(NodeSummarySchema))


class FactSchema(f.Schema):
    field = f.String()
    field_name = f.String()
    value = f.String(metadata={"description": "供人阅读的取值（学时一位小数，比例为百分数，是 / 否）"})
    id = f.String(allow_none=True, metadata={"description": "取值为关联节点时，该节点编号"})


class OfferingSchema(f.Schema):
    id = f.String()
    name = f.String()
    class_type = f.String(allow_none=True)
    start_date = f.String(allow_none=True)
    end_date = f.String(allow_none=True)
    institution = f.String(allow_none=True)
    institution_name = f.String(allow_none=True)
    open = f.Boolean(metadata={"description": "开班日期不早于统计日期（可报名）"})


class MaterialSchema(NodeSummarySchema):
    note = f.String(metadata={"description": "地区、出版社或学时等一句说明"})


class GuideSchema(f.Schema):
    facts = f.List(f.Nested(FactSchema), metadata={"description": "基本信息（字段名取自本体）"})
    how = f.List(f.String(), metadata={"description": "在哪里、怎样学习或使用：机构、平台、班次、授课方式、报名"})
    offerings = f.List(f.Nested(OfferingSchema), metadata={"description": "包含本课程的班次（可报名的在前）"})
    courses = f.List(f.Nested(MaterialSchema), metadata={"description": "主题页：计入该主题（含下位主题）的已发布课程，质量高的在前"})
    course_total = f.Integer()
    materials = f.List(f.Nested(MaterialSchema), metadata={"description": "同主题的教材、案例与现场教学点"})


class DetailSchema(NodeSchema):
    links = f.List(f.Nested(LinkSchema))
    guide = f.Nested(GuideSchema, metadata={"description": "详情页的内容：基本信息、如何学习、班次、同主题资源"})


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
    personal = _personal_relations(ontology)
    outgoing, incoming = g.store.edges_from([node.id])[node.id], g.store.edges_to([node.id])[node.id]
    for direction, edges in (("out", outgoing), ("in", incoming)):
        by_rel: dict[str, list[str]] = {}
        for e in sorted(edges, key=lambda e: (e.type, e.props.get("ord", 0))):  # ordered relations keep ``ord``
            if e.type not in personal:  # a course's training records are never read, let alone shown
                by_rel.setdefault(e.type, []).append(e.dst if direction == "out" else e.src)
        for rel, ids in by_rel.items():
            nodes = [n for n in g.store.get_nodes(ids) if n.label not in g.personal_labels]
            if not nodes:
                continue
            prop = rel_to_field.get(rel, rel)
            name = ontology.property_labels.get(prop, prop)
            sources = "、".join(dict.fromkeys(ontology.classes[n.label].label for n in nodes if n.label in ontology.classes))
            groups.append({
                "field": prop if direction == "out" else f"^{prop}",
                "field_name": name if direction == "out" else f"{name}（反向）",
                "title": name if direction == "out" else f"{sources}（{name}）",
                "rel": rel,
                "direction": direction,
                "nodes": [node_summary(n, ontology) for n in _ordered(nodes, ids)],
            })
    return groups


def _personal_relations(ontology: Ontology) -> frozenset[str]:
    """Relationship types that only personal classes (cadres, training records) have."""
    personal = {spec.rel_type for c in ontology.classes.values() if c.personal
                for spec in c.fields.values() if spec.rel_type}
    public = {spec.rel_type for c in ontology.classes.values() if not c.personal
              for spec in c.fields.values() if spec.rel_type}
    return frozenset(personal - public)


# ─── what a detail page says: facts, where and how to take or use the item, its offerings, related resources ───
#: Fields a page leads with, per class (the rest follow); which fields exist and their labels are the ontology's.
LEADING: dict[str, tuple[str, ...]] = {
    "Course": ("courseType", "deliveryMode", "hours", "offeredBy", "onPlatform", "atSite", "teachingMethod",
               "lecturerType", "status", "replacedBy", "dateModified", "version"),
    "Textbook": ("textbookType", "publisher", "datePublished", "batch", "offeredBy", "isCase", "status"),
    "CaseStudy": ("region", "year", "status"),
    "DemonstrationSite": ("siteType", "region", "managedBy"),
    "TeachingRoute": ("days", "offeredBy"),
    "Teacher": ("jobTitle", "affiliatedWith", "tier", "isFamous", "lecturerType"),
    "TrainingClass": ("classType", "semester", "startDate", "endDate", "heldBy", "isMainClass", "isPartySpiritClass"),
    "Topic": ("planSection", "planPriority", "broader"),
}
#: Shown in the page's heading and text, not as facts.
_NOT_FACTS = {"name", "description"}
#: Courses and related resources listed per page (the total is given too).
PAGE_ITEMS = 20


def display_value(name: str, value: Any) -> str:
    """A stored value as people read it: 是 / 否, lists joined by 、, hours to one decimal, a rate as 71.0 %."""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (list, tuple)):
        return "、".join(display_value(name, v) for v in value)
    if name == "hours" and isinstance(value, (int, float)):
        return f"{value:.1f}"
    if name == "completionRate" and isinstance(value, (int, float)):
        return f"{100 * value:.1f} %"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _facts(node: Node, spec: ClassSpec, links: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Scalar fields and single-valued relations, the class's leading ones first (list relations are link groups)."""
    single = {link["field"]: link["nodes"][0] for link in links
              if link["direction"] == "out" and link["field"] in spec.fields and not spec.fields[link["field"]].is_list}
    order = [n for n in LEADING.get(spec.name, ()) if n in spec.fields] + sorted(set(spec.fields) - set(LEADING.get(spec.name, ())))
    facts = []
    for name in order:
        field = spec.fields[name]
        if name in _NOT_FACTS:
            continue
        if field.is_relation:
            if name in single:
                target = single[name]
                facts.append({"field": name, "field_name": field.label, "value": target["name"] or target["id"], "id": target["id"]})
        elif node.props.get(name) not in (None, "", []):
            facts.append({"field": name, "field_name": field.label, "value": display_value(name, node.props[name]), "id": None})
    return facts


def _summary(item_id: str, kind: str, name: str, note: str, ontology: Ontology) -> dict[str, Any]:
    return {"id": item_id, "label": kind, "label_name": ontology.classes[kind].label, "name": name, "note": note}


def _topic_materials(catalogue: Any, topics: Iterable[str], ontology: Ontology) -> list[dict[str, Any]]:
    """Published textbooks, cases and on-site teaching sites on any of ``topics``, best first, each once."""
    seen: dict[str, Any] = {}
    for topic in topics:
        for material in catalogue.materials_by_topic.get(catalogue.topic_pos.get(topic, -1), []):
            seen.setdefault(material.id, material)
    ranked = sorted(seen.values(), key=lambda m: (-m.quality, m.id))
    return [_summary(m.id, m.kind, m.name, m.detail, ontology) for m in ranked[:PAGE_ITEMS]]


def _offerings(catalogue: Any, class_ids: Iterable[str], day: Any) -> list[dict[str, Any]]:
    """Classes (班次) as offerings: open ones (starting on or after ``day``) soonest first, then past ones, latest first."""
    rows = [catalogue.classes[c] for c in class_ids if c in catalogue.classes]
    open_ = sorted((k for k in rows if k.start_date and k.start_date >= day), key=lambda k: k.start_date)
    past = sorted((k for k in rows if k not in open_), key=lambda k: (k.start_date is not None, k.start_date), reverse=True)
    return [{"id": k.id, "name": k.name, "class_type": k.class_type or None,
             "start_date": k.start_date.isoformat() if k.start_date else None,
             "end_date": k.end_date.isoformat() if k.end_date else None,
             "institution": k.institution, "institution_name": catalogue.institution_name(k.institution) or None,
             "open": k in open_} for k in open_ + past]


def _course_how(catalogue: Any, course: Any, offerings: list[dict[str, Any]], sites: list[str]) -> list[str]:
    """Where and how a cadre takes a course, in sentences: platform and crediting, open classes, site, enrolment."""
    vocab, how = catalogue.vocab, []
    if course.status != vocab.published:
        how.append(f"这门课程目前的状态是「{course.status}」，不能报名学习。")
    platform = catalogue.platforms.get(course.platform or "")
    if platform is not None:
        credit = ("该平台经组织人事部门认可，学习时长按平台的学时认定规则计入网络自学学时" if platform.recognised
                  else "该平台未经组织人事部门认可，学习时长可能不能认定为学时")
        how.append(f"在网络培训平台「{platform.name}」上学习（{course.delivery_mode or vocab.online_delivery}），{credit}。")
    inst = catalogue.institution_name(course.institution)
    where = _where(catalogue, course.institution)
    open_ = [o for o in offerings if o["open"]]
    if open_:
        first = open_[0]
        how.append(f"随班次学习：「{first['name']}」{first['start_date']} 开班（{first['institution_name'] or inst}）"
                   + (f"，另有 {len(open_) - 1} 个班次可选" if len(open_) > 1 else "") + "，见下方班次。")
    elif course.delivery_mode != vocab.online_delivery:
        mode = f"以{course.delivery_mode}方式开设" if course.delivery_mode else "开设（未注明授课方式）"  # no guess
        how.append(f"由开设机构{where}{mode}；目前没有包含这门课程、尚未开班的班次，可向该机构了解下一期安排。")
    for site in (catalogue.sites[s] for s in sites if s in catalogue.sites):
        how.append(f"教学地点：{site.name}（{site.region or '地区未注明'}）。")
    if open_ or course.delivery_mode != vocab.online_delivery:
        how.append("报名：数据中没有在线报名链接；参加班次请经所在单位组织人事部门向主办机构报名。")
    return how


def _where(catalogue: Any, institution: str | None) -> str:
    """"「古田干部学院」（福建省龙岩市上杭县）": an institution and its region, for the sentences below."""
    name = catalogue.institution_name(institution) or "（未注明）"
    region = getattr(catalogue.institutions.get(institution or ""), "region", None)
    return f"「{name}」（{region}）" if region else f"「{name}」"


def _course_line(catalogue: Any, position: int, ontology: Ontology) -> dict[str, Any]:
    return _summary(catalogue.course_ids[position], "Course", catalogue.course_name[position],
                    f"{catalogue.course_hours[position]:.1f} 学时 · {catalogue.course_delivery[position]}", ontology)


def _class_how(catalogue: Any, klass: Any, day: Any, hours: float, count: int) -> list[str]:
    """When, where and by whom a class is held, whether it can still be joined, and what it adds up to."""
    when = (f"{klass.start_date.isoformat()} 至 {klass.end_date.isoformat() if klass.end_date else '（结束日期未注明）'}"
            if klass.start_date else "日期未注明")
    how = [f"由{_where(catalogue, klass.institution)}举办，{when}{f'（{klass.semester}）' if klass.semester else ''}。"]
    if klass.start_date and klass.start_date >= day:
        how.append("尚未开班，可以报名：数据中没有在线报名链接，请经所在单位组织人事部门向主办机构报名。")
    elif klass.end_date and klass.end_date >= day:
        how.append("正在进行中，已不能报名。")
    else:
        how.append("已结业；可向主办机构了解下一期。")
    how.append(f"共 {count} 门课程、{hours:.1f} 学时，见下方课程安排。")
    return how


def item_guide(node: Node, links: list[dict[str, Any]], day: Any) -> dict[str, Any]:
    """What a detail page says about ``node`` beyond its links, read from the catalogue snapshot (rows of the same
    graph version): facts, where and how to take or use it, the classes that offer it, the published courses of a
    topic, and textbooks, cases and sites on the same topics.  ``day`` decides which classes are still open."""
    from api.services import snapshot

    catalogue, ontology = snapshot(), graph().ontology
    spec = ontology.classes[node.label]
    by_field = {link["field"]: [n["id"] for n in link["nodes"]] for link in links}
    guide: dict[str, Any] = {"facts": _facts(node, spec, links), "how": [], "offerings": [], "courses": [],
                             "course_total": 0, "materials": []}
    topics: list[str] = []
    if node.label == "Course" and node.id in catalogue.courses:
        course = catalogue.courses[node.id]
        guide["offerings"] = _offerings(catalogue, by_field.get("^includesCourse", []), day)
        guide["how"] = _course_how(catalogue, course, guide["offerings"], by_field.get("atSite", []))
        topics = list(course.topics)
    elif node.label == "Topic" and node.id in catalogue.topic_pos:
        under = catalogue.courses_under[catalogue.topic_pos[node.id]]
        published = [int(p) for p in under if catalogue.course_published[p]]
        published.sort(key=lambda p: (-float(catalogue.course_quality[p]), catalogue.course_ids[p]))
        guide["course_total"] = len(published)
        guide["courses"] = [_course_line(catalogue, p, ontology) for p in published[:PAGE_ITEMS]]
        topics = sorted(catalogue.narrower_closure(node.id))
    elif node.label == "TrainingClass" and node.id in catalogue.classes:
        klass = catalogue.classes[node.id]
        positions = [catalogue.course_pos[c] for c in klass.courses if c in catalogue.course_pos]
        guide["course_total"] = len(positions)
        guide["courses"] = [_course_line(catalogue, p, ontology) for p in positions]  # the class's own order, all
        guide["how"] = _class_how(catalogue, klass, day, float(sum(catalogue.course_hours[p] for p in positions)),
                                  len(positions))
        topics = [t for p in positions for t in catalogue.courses[catalogue.course_ids[p]].topics]
    elif node.label == "DemonstrationSite" and node.id in catalogue.sites:
        site = catalogue.sites[node.id]
        routes, courses = by_field.get("^includesSite", []), by_field.get("^atSite", [])
        guide["how"] = [f"现场教学由依托机构{_where(catalogue, site.institution)}组织，地点在{site.region or '（地区未注明）'}。"]
        if routes or courses:
            guide["how"].append("可参加" + "，或".join(part for part in (
                f"途经此点的精品教学路线（{len(routes)} 条）" if routes else "",
                f"在此开设的现场教学课程（{len(courses)} 门）" if courses else "") if part) + "，见下方。")
        topics = list(site.topics)
    elif node.label == "TeachingRoute":
        sites = [catalogue.sites[s] for s in by_field.get("includesSite", []) if s in catalogue.sites]
        institution = next((n["id"] for link in links if link["field"] == "offeredBy" for n in link["nodes"]), None)
        days = node.props.get("days")
        guide["how"] = [f"由{_where(catalogue, institution)}开设{f'，共 {days} 天' if days else ''}"
                        + (f"，依次到{'、'.join(site.name for site in sites)}" if sites else "") + "。",
                        "参加路线教学请经所在单位组织人事部门与开设机构联系（数据中没有在线报名链接）。"]
        topics = [t for site in sites for t in site.topics]
    else:
        topics = by_field.get("covers") or by_field.get("illustrates") or by_field.get("expertIn") or []
    guide["materials"] = [m for m in _topic_materials(catalogue, topics, ontology) if m["id"] != node.id]
    return guide


def item_detail(node: Node, day: Any) -> dict[str, Any]:
    """One item's answer for the detail route and the detail page alike."""
    links = link_groups(node)
    return {**node_dict(node, graph().ontology), "links": links, "guide": item_guide(node, links, day)}


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
        from api.reports import as_of

        return item_detail(get_node(node_id, label), as_of(None) or dt.date.today())

    list_view.__doc__ = f"{spec.label}列表（可筛选、分页）"
    detail_view.__doc__ = f"{spec.label}详情及关联节点"
    bp.route(f"/{segment}", endpoint=f"list_{segment}")(list_view)
    bp.route(f"/{segment}/<path:node_id>", endpoint=f"get_{segment}")(detail_view)


for _segment, _label in RESOURCES.items():
    _register(_segment, _label)
