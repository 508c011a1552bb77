"""A page of its own for every catalogue item — course, textbook, case, on-site teaching site, route, teacher,
class, topic, institution, platform — saying where and how to take or use it, with its topics, teachers,
related cases and sites, each a link to its own page.

Why one helper for links: every list on every page (recommendations, path steps, search results, topic
resources, coverage, nominations) links an item by its id alone, so :func:`item_url` — a Jinja global — is the
one place that turns an id into its page's address (``/catalogue/courses/course:general-001``).  The page and
the JSON detail route (``GET /api/catalogue/<kind>/<id>``) show one answer, :func:`api.catalogue.item_detail`.
Any logged-in user may read catalogue pages; nothing personal is on them, except a cadre's own buttons for their
study plan and feedback (:mod:`api.pages.cadre`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, render_template, url_for

from api.auth import current_user
from api.cadres import PLAN_CLASSES, feedback_rules
from api.catalogue import LEADING, PAGE_ITEMS, RESOURCES, item_detail, resource_of
from api.errors import fail
from api.graph import get_node, graph
from api.pages import page
from api.reports import as_of

__all__ = ["bp", "item_url"]

bp = Blueprint("catalogue_pages", __name__, url_prefix="/catalogue")


def item_url(item_id: str | None) -> str | None:
    """The address of an item's page from its id (the class comes from the id's prefix); None when the id names
    no catalogue class (a cadre, a record, a malformed id), so a template can leave such a name unlinked."""
    if not item_id:
        return None
    spec = graph().ontology.class_of_id(item_id)
    kind = resource_of(spec.name) if spec is not None else None
    return url_for("catalogue_pages.detail", kind=kind, item_id=item_id) if kind else None


@bp.app_template_global("item_url")
def _item_url_global(item_id: str | None) -> str | None:
    return item_url(item_id)


@bp.app_template_filter("hours")
def hours_filter(value: float | None) -> str:
    """Hours as people read them: one decimal (2.3), "—" when unknown."""
    return "—" if value is None else f"{float(value):.1f}"


@bp.app_template_filter("percent")
def percent_filter(ratio: float | None) -> str:
    """A ratio as a percentage with one decimal ("27.0 %"), the true figure even above 100 %; "—" when unknown."""
    return "—" if ratio is None else f"{100 * float(ratio):.1f} %"


@bp.route("/<kind>/<path:item_id>")
@page()
def detail(kind: str, item_id: str) -> Any:
    label = RESOURCES.get(kind)
    if label is None:
        fail(404, f"没有「{kind}」这类目录条目")
    node = get_node(item_id, label)
    day = as_of(None) or dt.date.today()
    item = item_detail(node, day)
    user = current_user()
    plan = None
    if user.role == "cadre" and user.cadre_id:  # the cadre's own mark on it, and buttons to change it
        from api.pages.cadre import choice_of

        plan = choice_of(user.cadre_id, item_id)
    return render_template("catalogue/detail.html", item=item, kind=kind, day=day, plan=plan, feedback=feedback_rules(),
                           plan_classes=PLAN_CLASSES, max_items=PAGE_ITEMS, leading_fields=LEADING)
