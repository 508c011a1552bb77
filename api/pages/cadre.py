"""A cadre's pages: hour progress per rule with the projection to the period's end, knowledge gaps,
recommendations with their reasons, the learning path, the learning map chart, and search (for everyone).

Each page takes its answers from the request's :class:`api.services.CadreView`, so the overview — profile,
hours, gaps, recommendations and path — reads the cadre once and analyses the gaps once."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError

from api.auth import current_user
from api.cadres import ChoiceBody, feedback_rules, forget_choice, put_choice, study_plan
from api.errors import fail
from api.pages import load_form, page
from api.reports import as_of
from api.services import cadre_view, study_choices
from kg.choices import Choice
from recommender.errors import InvalidRequest

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
    intent = (request.args.get("intent") or "").strip() or None
    status = 200
    try:  # the recommender checks the intent (at most MAX_INTENT_CHARS), as behind the API's 422
        recs = view.recommendations(8, intent)
    except InvalidRequest as exc:  # its message, as the API words it, and the recommendations without intent
        flash(str(exc), "error")
        recs, status = view.recommendations(8), 422
    return render_template(
        "cadre/overview.html",
        cadre_id=cadre_id,
        profile=view.profile.to_dict(),
        hours=view.hours.to_dict(),
        gaps=view.gaps.to_dict(),
        recs=recs.to_dict(),
        path=view.learning_path().to_dict(),
        intent=intent or "",
        plan=study_plan(view),
        feedback=feedback_rules(),
        own=current_user().cadre_id == cadre_id,
    ), status


# ─── the cadre's own study plan and feedback, from buttons on the overview and on item pages ───
def choice_of(cadre_id: str, item_id: str) -> Choice | None:
    """The cadre's mark on one item, for the buttons of its page."""
    return next((c for c in study_choices().of(cadre_id) if c.item_id == item_id), None)


def _back() -> Any:
    """Back where the button was pressed (a same-site path from the form), else the overview."""
    from api.pages.account import _safe_next

    return redirect(_safe_next(request.form.get("next")) or url_for("cadre.overview"))


@bp.route("/choices", methods=["POST"])
@page("cadre")
def mark() -> Any:
    """Keep an item in the plan or answer it (已学过 / 不相关 / 以后再说); the next list respects it."""
    body, errors = load_form(ChoiceBody(), {"state": request.form.get("state")})
    item_id = (request.form.get("item") or "").strip()
    if body is None or not item_id:
        fail(422, "请选择要标记的条目和标记", {**errors, **({} if item_id else {"item": ["缺少条目编号"]})})
    done = put_choice(current_user().cadre_id, item_id, body["state"])
    flash(f"已将『{done['名称']}』标记为「{done['状态名称']}」；推荐清单已按此更新。")
    return _back()


@bp.route("/choices/remove", methods=["POST"])
@page("cadre")
def unmark() -> Any:
    """Take an item out of the plan, or withdraw feedback on it."""
    item_id = (request.form.get("item") or "").strip()
    if not item_id:
        fail(422, "缺少条目编号", {"item": ["缺少条目编号"]})
    if forget_choice(current_user().cadre_id, item_id):
        flash("已撤销该条目的标记。")
    return _back()


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
    from api.search import SearchQuery, run_search

    q = (request.args.get("q") or "").strip()
    kind = request.args.get("kind") or None
    result, status = None, 200
    if q:
        try:  # the API's own query schema, so a query too long gets the message the API answers 422 with
            args = SearchQuery().load({"q": q, "kind": [kind] if kind else [], "k": 20,
                                       "case_only": request.args.get("case") == "1"})
        except ValidationError as exc:
            flash("；".join(f"{name}：{text}" for name, text in _flat(exc.messages)), "error")
            status = 422
        else:
            result = run_search(args)
    return render_template("cadre/search.html", q=q, kind=kind or "", result=result), status


def _flat(messages: Any, name: str = "") -> list[tuple[str, str]]:
    """marshmallow's messages (per field, per list item) as (field, message) pairs, for one line on a page."""
    if isinstance(messages, dict):
        return [pair for key, inner in messages.items()
                for pair in _flat(inner, f"{name}[{key}]" if isinstance(key, int) else str(key))]
    if isinstance(messages, list):
        return [pair for inner in messages for pair in _flat(inner, name)]
    return [(name, str(messages))]
