"""The tag review queue: imported items whose topics a person has not confirmed.

An import that brings untagged courses, textbooks or cases writes the tagger's best topic with its provenance
on the tag edge (``tag: suggested``, ``confidence``), so the item is valid and findable at once; an imported tag
the tagger finds little support for is kept and marked ``doubtful``.  Those items wait here.  A designer sees
the tagger's suggestions with confidence and evidence (the plan's definition, the label words found, the
nearest tagged items) and accepts or edits them; the confirmed tags record who confirmed them and when
(``tag: confirmed``, ``by``, ``at``).  Edges with no ``tag`` are the catalogue's own, as delivered.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask import current_app

from api import fields as f
from api.auth import ApiBlueprint, audit, current_user
from api.errors import fail
from api.graph import graph
from api.services import search_service
from kg.build import PENDING_TAGS, RowTagger, TagEvidence
from kg.model import Edge
from kg.readers import SourceRow

__all__ = ["PENDING", "ReviewItem", "bp", "confirm_tags", "import_tagger", "review_queue", "tagger", "warm_tagger"]

bp = ApiBlueprint("review", __name__, url_prefix="/api/review", description="主题标注审核队列（课程设计者）")

PENDING = PENDING_TAGS
STATUS_NAMES = {"suggested": "系统建议", "doubtful": "导入标注存疑", "confirmed": "已确认"}
#: A suggestion below this confidence is shown as low confidence.
LOW_CONFIDENCE = 0.5
REVIEWERS = ("designer", "admin")


def tagger() -> Any:
    """The topic tagger for the current graph version, over the worker's search service and its one encoder."""
    from recommender.search.tagging import TopicTagger

    gr = graph()
    return gr.derived("tagger", lambda: TopicTagger.from_service(search_service(), exclude=_pending_edges()))


def warm_tagger() -> None:
    """The warm-up step: fit the tagger for the current version, unless the graph has no topics yet (before the
    first build there is nothing to tag with, and that must not keep a worker from answering ready)."""
    if graph().store.node_counts().get("Topic"):
        tagger()


def import_tagger() -> RowTagger | None:
    """What an import asks about its rows: the best topic for an untagged item (``suggested``), or its own tags
    marked ``doubtful`` when none of them has support; ``None`` when the app is configured without tagging."""
    if not current_app.config.get("TAG_IMPORTS", True):
        return None

    def tag(rows: list[SourceRow]) -> list[list[TagEvidence]]:
        from recommender.search.documents import document_from_row

        t = tagger()
        docs = [document_from_row(r.data or {}, graph().ontology) for r in rows]
        present = [d for d in docs if d is not None]
        if not present:
            return [[] for _ in rows]
        confidences = iter(t.confidences(present))
        out: list[list[TagEvidence]] = []
        for doc in docs:
            if doc is None:
                out.append([])
                continue
            p = next(confidences)
            if not doc.topics:
                best = t.suggestions_from(p, 1)[0]
                out.append([TagEvidence(best.topic, "suggested", best.confidence)])
            elif max(t.support(p, topic) for topic in doc.topics) < t.flag_below:
                out.append([TagEvidence(topic, "doubtful", t.support(p, topic)) for topic in doc.topics])
            else:
                out.append([])
        return out

    return tag


@dataclass(frozen=True)
class ReviewItem:
    """One item waiting for review: its tags as they stand and the tagger's suggestions with evidence."""

    id: str
    kind: str
    kind_label: str
    title: str
    description: str
    tags: list[dict[str, Any]]
    suggestions: list[dict[str, Any]]

    @property
    def confidence(self) -> float:
        return max((t["confidence"] for t in self.tags), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "kind_label": self.kind_label, "title": self.title,
                "description": self.description, "tags": self.tags, "suggestions": self.suggestions,
                "confidence": round(self.confidence, 3)}


def _topic_relations() -> dict[str, str]:
    """Relationship type → field name of every searchable class's topic field (covers, illustrates)."""
    onto = graph().ontology
    return {onto.relationship_types[fl.name]: fl.name for spec in onto.data_classes if spec.searchable
            for fl in spec.fields.values() if fl.target_class == "Topic"}


def _tag_dict(edge: Edge, names: dict[str, str]) -> dict[str, Any]:
    status = str(edge.props.get("tag", "confirmed"))
    return {"topic": edge.dst, "label": names.get(edge.dst, edge.dst), "status": status,
            "status_label": STATUS_NAMES.get(status, status), "confidence": float(edge.props.get("confidence", 1.0)),
            "by": edge.props.get("by"), "at": edge.props.get("at")}


def _pending_edges() -> dict[str, list[Edge]]:
    """Item id → its topic edges, for every item with a tag that waits for a person."""
    store = graph().store
    edges: dict[str, list[Edge]] = {}
    for rel in _topic_relations():
        for edge in store.edges(type=rel):
            edges.setdefault(edge.src, []).append(edge)
    return {src: es for src, es in edges.items() if any(e.props.get("tag") in PENDING for e in es)}


def review_queue(k: int = 5) -> list[ReviewItem]:
    """Every item with a pending tag, lowest confidence first, each with ``k`` suggestions and their evidence."""
    gr = graph()
    store = gr.store
    names = {n.id: str(n.props.get("name", n.id)) for n in store.nodes("Topic")}
    pending = _pending_edges()
    if not pending:
        return []
    from recommender.search.documents import document_from_row

    t = tagger()
    nodes = store.get_nodes(pending)
    docs = {node.id: doc for node in nodes
            if (doc := document_from_row({"type": node.label, "id": node.id, **node.props}, gr.ontology)) is not None}
    # keyed by id, not zipped by position: an item with no document (nothing to explain) must not shift the others
    explained = dict(zip(docs, t.explain(list(docs.values()), k)))
    items = []
    for node in nodes:
        spec = gr.ontology.classes[node.label]
        items.append(ReviewItem(node.id, node.label, spec.label, str(node.props.get("name", "")),
                                str(node.props.get("description", "")),
                                [_tag_dict(e, names) for e in pending[node.id]], explained.get(node.id, [])))
    return sorted(items, key=lambda i: (i.confidence, i.id))


def confirm_tags(item_id: str, topics: list[str]) -> dict[str, Any]:
    """Replace an item's topic tags with ``topics``, confirmed by the current user now; its other edges stay."""
    gr = graph()
    node = gr.store.get_node(item_id)
    spec = gr.ontology.classes.get(node.label) if node else None
    field_name = next((fl.name for fl in spec.fields.values() if fl.target_class == "Topic"), None) \
        if spec and spec.searchable else None
    if node is None or field_name is None:
        kinds = "、".join(c.label for c in gr.ontology.data_classes if c.searchable)
        fail(404, f"没有可标注主题的条目『{item_id}』", {"item_id": [f"应为{kinds}的编号"]})
    field_spec = spec.fields[field_name]
    topics = list(dict.fromkeys(topics))
    known = gr.store.labels_of(topics)
    unknown = [t for t in topics if known.get(t) != "Topic"]
    if unknown:
        fail(422, "主题无效", {"topics": [f"不是主题体系中的主题：{'、'.join(unknown)}"]})
    if not field_spec.min_count <= len(topics) <= (field_spec.max_count or len(topics)):
        fail(422, "主题个数不对", {"topics": [f"应为 {field_spec.min_count}—{field_spec.max_count} 个主题，实际 {len(topics)} 个"]})
    rel = gr.ontology.relationship_types[field_name]
    user = current_user().username
    at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    kept = [e for e in gr.store.edges_from([item_id])[item_id] if e.type != rel]
    tags = [Edge(item_id, rel, t, {"tag": "confirmed", "by": user, "at": at}) for t in topics]
    gr.store.write([node], kept + tags)
    gr.refresh(force=True)
    audit("确认主题标注", item_id, topics=topics)
    return {"id": item_id, "topics": topics, "by": user, "at": at}


class ReviewBody(f.Schema):
    topics = f.List(f.String(validate=f.length(1, 200)), required=True, validate=f.length(1, 10),
                    metadata={"description": "确认后的主题编号（1—3 个，按该类的形状）"})


class ReviewResult(f.Schema):
    id = f.String()
    topics = f.List(f.String())
    by = f.String()
    at = f.String(metadata={"description": "确认时间（UTC，ISO 8601）"})


@bp.route("")
@bp.requires(*REVIEWERS)
@bp.response(200)
def queue() -> dict[str, Any]:
    """待审核的主题标注：未标注或低置信度的导入条目，附系统建议、置信度与依据"""
    items = review_queue()
    return {"total": len(items), "items": [i.to_dict() for i in items]}


@bp.route("/<path:item_id>", methods=["POST"])
@bp.requires(*REVIEWERS)
@bp.arguments(ReviewBody)
@bp.response(200, ReviewResult)
@bp.alt_response(404, response="NOT_FOUND")
@bp.alt_response(422, response="UNPROCESSABLE_ENTITY")
def confirm(body: dict[str, Any], item_id: str) -> dict[str, Any]:
    """确认或修改一个条目的主题：记录确认人和时间"""
    return confirm_tags(item_id, body["topics"])
