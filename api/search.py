"""Semantic search over the catalogue (hybrid: embeddings + BM25, fused), similar items, and near-duplicate
courses — through ``recommender.search.service.SearchService``, held by :func:`api.services.search_service`:
loaded when the worker starts, reopened over the persisted index after a catalogue change while a job
re-encodes what changed.  Invalid filters become 422 in ``api.errors``.  Near-duplicate pairs compare every
course with every other, so they are kept per graph version and index generation (and threshold).
"""

from __future__ import annotations

import threading
from typing import Any

from api import fields as f
from api.auth import ApiBlueprint
from api.errors import fail
from api.graph import get_node, graph
from api.reports import report_schema
from api.services import search_service
from kg.ontology import load_ontology
from recommender.search.config import MODES

__all__ = ["bp", "run_search", "search_service"]

bp = ApiBlueprint("search", __name__, url_prefix="/api/search", description="语义检索：课程、教材、案例")

#: Thresholds whose near-duplicate pairs one generation keeps; a designer tries a few, not hundreds.
_DUPLICATE_THRESHOLDS = 16


def _choices(class_name: str, field: str) -> list[str]:
    return list(graph().ontology.classes[class_name].fields[field].allowed or ())


class SearchQuery(f.Schema):
    q = f.String(required=True, validate=f.length(1, 200), metadata={"description": "检索词或一句话描述"})
    kind = f.List(f.String(validate=f.length(1, 40)), metadata={"description": "资源类型：Course、Textbook、CaseStudy（可多次）"})
    topic = f.List(f.String(validate=f.length(1, 200)), metadata={"description": "主题编号，含下位主题（可多次）"})
    institution = f.List(f.String(validate=f.length(1, 200)), metadata={"description": "机构编号（可多次）"})
    delivery = f.List(f.String(validate=f.length(1, 20)), metadata={
        "description": "授课方式：" + "、".join(load_ontology().classes["Course"].fields["deliveryMode"].allowed or ()) + "（可多次）"})
    case_only = f.Boolean(load_default=False, metadata={"description": "只要案例"})
    min_hours = f.Float(validate=f.range_(0, 10000))
    max_hours = f.Float(validate=f.range_(0, 10000))
    mode = f.String(load_default="hybrid", validate=f.one_of(MODES), metadata={"description": "hybrid | dense | bm25"})
    k = f.Integer(load_default=10, validate=f.range_(1, 100), metadata={"description": "返回条数（1—100）"})


class SimilarQuery(f.Schema):
    k = f.Integer(load_default=10, validate=f.range_(1, 100))


class DuplicatesQuery(f.Schema):
    threshold = f.Float(load_default=0.96, validate=f.range_(0.5, 1.0), metadata={"description": "余弦相似度阈值"})
    limit = f.Integer(load_default=50, validate=f.range_(1, 500))


class HitSchema(f.Schema):
    id = f.String()
    kind = f.String()
    kind_name = f.String()
    title = f.String()
    description = f.String()
    score = f.Float()
    dense_rank = f.Integer(allow_none=True)
    bm25_rank = f.Integer(allow_none=True)
    meta = f.Dict()


class HitsSchema(f.Schema):
    query = f.String()
    mode = f.String()
    hits = f.List(f.Nested(HitSchema))


Duplicates = report_schema("NearDuplicates", "疑似重复课程（余弦相似度不低于阈值）")


def _hits(service: Any, hits: list[Any]) -> list[dict[str, Any]]:
    labels = {c.name: c.label for c in graph().ontology.classes.values()}
    out = []
    for hit in hits:
        doc = service.document(hit.id)
        out.append({"id": hit.id, "kind": hit.kind, "kind_name": labels.get(hit.kind, hit.kind),
                    "title": doc.title if doc else hit.id, "description": doc.description if doc else "",
                    "score": round(hit.score, 6), "dense_rank": hit.dense_rank, "bm25_rank": hit.bm25_rank,
                    "meta": doc.meta() if doc else {}})
    return out


def run_search(args: dict[str, Any]) -> dict[str, Any]:
    from recommender.search.service import SearchFilters

    service = search_service()
    filters = SearchFilters(kinds=tuple(args.get("kind") or ()), topics=tuple(args.get("topic") or ()),
                            institutions=tuple(args.get("institution") or ()),
                            delivery_modes=tuple(args.get("delivery") or ()), case_only=args["case_only"],
                            min_hours=args.get("min_hours"), max_hours=args.get("max_hours"))
    hits = service.search(args["q"], filters, k=args["k"], mode=args["mode"])
    return {"query": args["q"], "mode": args["mode"], "hits": _hits(service, hits)}


@bp.route("")
@bp.requires()
@bp.arguments(SearchQuery, location="query")
@bp.response(200, HitsSchema)
def search(args: dict[str, Any]) -> dict[str, Any]:
    """语义 + 关键词混合检索（默认只含已发布条目）"""
    return run_search(args)


@bp.route("/similar/<path:item_id>")
@bp.requires()
@bp.arguments(SimilarQuery, location="query")
@bp.response(200, HitsSchema)
@bp.alt_response(404, response="NOT_FOUND")
def similar(args: dict[str, Any], item_id: str) -> dict[str, Any]:
    """与某课程、教材或案例内容相近的条目"""
    get_node(item_id)
    service = search_service()
    if service.document(item_id) is None:
        fail(404, f"『{item_id}』不在检索索引中（只收录课程、教材与案例）")
    hits = service.similar_to(item_id, k=args["k"])
    return {"query": item_id, "mode": "dense", "hits": _hits(service, hits)}


@bp.route("/duplicates")
@bp.requires("designer", "admin")
@bp.arguments(DuplicatesQuery, location="query")
@bp.response(200, Duplicates)
def duplicates(args: dict[str, Any]) -> dict[str, Any]:
    """疑似重复的课程对（含草稿与已退出课程）"""
    return {"阈值": args["threshold"], "疑似重复": _duplicate_pairs(args["threshold"])[: args["limit"]]}


def _duplicate_pairs(threshold: float) -> list[dict[str, Any]]:
    """Every near-duplicate pair at ``threshold``, as the report lists them, most similar first.

    Computed once per graph version, index generation and threshold: the graph's read-model cache holds one
    table per (version, generation), dropped when either moves.
    """
    from recommender.search.near_duplicates import near_duplicates

    service = search_service()
    lock, table = graph().derived("near-duplicates", lambda: (threading.Lock(), {}), key=service.generation)
    with lock:
        rows = table.get(threshold)
    if rows is None:
        names = {d.id: d.title for d in service.documents}
        rows = [{"课程A": p.a, "课程A名称": names.get(p.a, ""), "课程B": p.b, "课程B名称": names.get(p.b, ""),
                 "相似度": round(p.score, 4)} for p in near_duplicates(service, threshold=threshold)]
        with lock:
            if len(table) >= _DUPLICATE_THRESHOLDS:
                table.clear()
            table[threshold] = rows
    return rows
