"""The designer's tag review page: imported items waiting for a person, with the tagger's suggestions,
their confidence and evidence; accepting or editing the topics confirms them (who, when) through
:func:`api.review.confirm_tags`, the same function as ``POST /api/review/<id>``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from api.graph import graph
from api.pages import page
from api.review import LOW_CONFIDENCE, REVIEWERS, confirm_tags, review_queue

__all__ = ["bp"]

bp = Blueprint("review_page", __name__, url_prefix="/designer/review")


def _topics() -> list[tuple[str, str]]:
    return sorted(((n.id, str(n.props.get("name", n.id))) for n in graph().store.nodes("Topic")), key=lambda t: t[1])


@bp.route("/")
@page(*REVIEWERS)
def queue_page() -> Any:
    return render_template("designer/review.html", items=review_queue(), topics=_topics(), low=LOW_CONFIDENCE)


@bp.route("/<path:item_id>", methods=["POST"])
@page(*REVIEWERS)
def confirm_page(item_id: str) -> Any:
    topics = [t for t in request.form.getlist("topics") if t] + [t for t in [request.form.get("other")] if t]
    try:
        done = confirm_tags(item_id, topics)
    except HTTPException as exc:
        data = getattr(exc, "data", {}) or {}
        fields = data.get("errors") or {}
        detail = "；".join(m for ms in fields.values() for m in (ms if isinstance(ms, list) else [ms]))
        flash(f"未保存『{item_id}』：{data.get('message', exc.description)}{('：' + detail) if detail else ''}", "bad")
        return redirect(url_for("review_page.queue_page"))
    flash(f"已确认『{item_id}』的主题（{len(done['topics'])} 个），确认人 {done['by']}", "ok")
    return redirect(url_for("review_page.queue_page"))
