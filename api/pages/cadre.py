"""A cadre's pages: hour progress per rule with the projection to the period's end, knowledge gaps,
recommendations with their reasons, the learning path, the learning map chart, and search (for everyone).

Each page takes its answers from the request's :class:`api.services.CadreView`, so the overview — profile,
hours, gaps, recommendations and path — reads the cadre once and analyses the gaps once."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from api.auth import current_user
from api.pages import page
from api.reports import as_of
from api.services import cadre_view

__all__ = ["bp"]

bp = Blueprint("cadre", __name__, url_prefix="/cadre")


def _cadre_id() -> str | None:
    """The cadre shown: one's own for a cadre; for an administrator, the one named by ``?cadre=``."""
    user = current_user()
    if user.role == "cadre":
        return user.cadre_id
    return request.args.get("cadre") or None


@bp.route("/")
@page("cadre", "admin")
def overview() -> Any:
    cadre_id = _cadre_id()
    if cadre_id is None:
        return render_template("cadre/choose.html", target="cadre.overview")
    view = cadre_view(cadre_id, as_of(None))
    intent = (request.args.get("intent") or "").strip()[:200] or None
    return render_template(
        "cadre/overview.html",
        cadre_id=cadre_id,
        profile=view.profile.to_dict(),
        hours=view.hours.to_dict(),
        gaps=view.gaps.to_dict(),
        recs=view.recommendations(8, intent).to_dict(),
        path=view.learning_path().to_dict(),
        intent=intent or "",
    )


@bp.route("/map")
@page("cadre", "admin")
def learning_map() -> Any:
    cadre_id = _cadre_id()
    if cadre_id is None:
        return render_template("cadre/choose.html", target="cadre.learning_map")
    data = cadre_view(cadre_id, as_of(None)).learning_map.to_dict()
    return render_template("cadre/map.html", cadre_id=cadre_id, data=data)


@bp.route("/search")
@page()
def search() -> Any:
    from api.search import run_search

    q = (request.args.get("q") or "").strip()[:200]
    kind = request.args.get("kind") or None
    result = None
    if q:
        result = run_search({"q": q, "kind": [kind] if kind else [], "case_only": request.args.get("case") == "1",
                             "mode": "hybrid", "k": 20})
    return render_template("cadre/search.html", q=q, kind=kind or "", result=result)
