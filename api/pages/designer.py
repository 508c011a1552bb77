"""Curriculum designer pages: coverage and demand by topic (chart), under-served topics, teaching-indicator
compliance for an institution and period, and the class programme builder."""

from __future__ import annotations

from collections import Counter
from typing import Any

from flask import Blueprint, render_template, request

from api.analytics import (
    PROGRAMME_JOB, CoverageQuery, IndicatorQuery, ProgrammeBody, coverage, finished, indicators, own_job, programme,
    topic_resources,
)
from api.graph import graph
from api.pages import load_form, page
from api.services import snapshot

__all__ = ["bp"]

bp = Blueprint("designer", __name__, url_prefix="/designer")
READERS = ("designer", "evaluator", "admin")


def _institutions() -> list[tuple[str, str]]:
    return [(n.id, n.props.get("name", n.id)) for n in graph().store.nodes("Institution")]


def _choices(class_name: str, field: str) -> list[str]:
    return list(graph().ontology.classes[class_name].fields[field].allowed or ())


def field_labels(schema: Any) -> dict[str, str]:
    """Field name → the Chinese name a user sees (the schema's description up to its first 「：」, without a
    trailing 编号), so form errors never name ``total_hours``."""
    labels = {}
    for name, spec in schema.fields.items():
        text = str(spec.metadata.get("description") or name).split("：")[0].split("（")[0]
        labels[name] = text.removesuffix("编号") or text
    return labels


def named_errors(errors: dict[str, Any], schema: Any) -> dict[str, Any]:
    """Form errors keyed by the fields' Chinese names."""
    labels = field_labels(schema)
    return {labels.get(name, name): messages for name, messages in errors.items()}


def topic_groups() -> list[dict[str, Any]]:
    """The plan's topics under each top-level branch, depth first in plan order, for the grouped picker (a
    topic with two broader topics in one branch is listed once, under the first)."""
    tree = snapshot().tree

    def order(topic_id: str) -> tuple[int, str]:
        row = tree.rows[topic_id]
        return (row.plan_order if row.plan_order is not None else 1_000_000, topic_id)

    groups = []
    for branch in tree.branches:
        seen: set[str] = set()
        items: list[dict[str, Any]] = []

        def walk(topic_id: str, depth: int) -> None:
            for child in sorted(tree.hierarchy.predecessors(topic_id), key=order):
                if child not in seen:
                    seen.add(child)
                    row = tree.rows[child]
                    items.append({"id": child, "name": row.name, "depth": depth, "alt": " ".join(row.alt_labels)})
                    walk(child, depth + 1)

        walk(branch, 0)
        groups.append({"id": branch, "name": tree.name(branch), "topics": items})
    return groups


@bp.route("/")
@page(*READERS)
def coverage_page() -> Any:
    args, errors = load_form(CoverageQuery(), {**request.args.to_dict(), "format": "json"})
    errors = named_errors(errors, CoverageQuery())
    report = coverage(args).to_dict() if args is not None else None
    export_args = {k: v for k, v in request.args.items() if k in CoverageQuery().fields and k != "format" and v}
    return render_template("designer/coverage.html", report=report, errors=errors, form=request.args,
                           export_args=export_args, institutions=_institutions(), levels=_choices("Institution", "level"),
                           rating_max=graph().ontology.classes["Course"].fields["rating"].max_inclusive or 5)


def _busiest() -> tuple[str, str] | None:
    """(institution, semester) with the most classes in the latest semester that has any: the default the
    page opens on, so it shows figures rather than a row of 无数据."""
    classes = snapshot().classes.values()
    semesters = sorted({k.semester for k in classes if k.semester and k.institution})
    if not semesters:
        return None
    latest = semesters[-1]
    held = Counter(k.institution for k in classes if k.semester == latest and k.institution)
    return min(held, key=lambda i: (-held[i], i)), latest


@bp.route("/indicators")
@page(*READERS)
def indicators_page() -> Any:
    """One institution's indicators for a period; opened bare, the institution and semester with the most
    classes (of the latest semester) are filled in and their report shown."""
    form = request.args.to_dict()
    if not form.get("institution") and (default := _busiest()) is not None:
        form = {"institution": default[0], "period": form.get("period") or default[1]}
    report, errors = None, {}
    if form.get("institution"):
        args, errors = load_form(IndicatorQuery(), {**form, "format": "json"})
        errors = named_errors(errors, IndicatorQuery())
        report = indicators(args).to_dict() if args is not None else None
    semesters = sorted({k.semester for k in snapshot().classes.values() if k.semester})
    return render_template("designer/indicators.html", report=report, errors=errors, form=form,
                           institutions=_institutions(), semesters=semesters)


@bp.route("/programme", methods=["GET", "POST"])
@page(*READERS)
def programme_page() -> Any:
    """The builder; a solve that outlasts the wait shows 「正在求解…」 and comes back as ``?job=<id>`` when done."""
    job, errors = None, {}
    if request.method == "POST":
        form = request.form
        data = {k: form.get(k) for k in ("institution", "class_type", "total_hours", "tolerance", "max_courses")}
        data.update(topics=form.getlist("topics"), categories=form.getlist("categories"),
                    own_courses=form.get("own_courses") == "1", remote_on_site=form.get("remote_on_site") == "1",
                    format="json")
        args, errors = load_form(ProgrammeBody(), data)
        errors = named_errors(errors, ProgrammeBody())
        job = finished(programme(args)) if args is not None else None
    elif request.args.get("job", "").isdigit():
        job = finished(own_job(int(request.args["job"]), PROGRAMME_JOB))
    result = job.result if job is not None and job.state == "done" else None
    solving = job.to_dict() if job is not None and job.state == "running" else None
    categories = [(n.id, n.props.get("name", n.id)) for n in graph().store.nodes("CadreCategory")]
    return render_template("designer/programme.html", result=result, solving=solving, errors=errors, form=request.form,
                           institutions=_institutions(), class_types=_choices("TrainingClass", "classType"),
                           groups=topic_groups(), categories=categories,
                           topic_names={t.id: t.name for t in snapshot().tree.rows.values()})


@bp.route("/topics")
@page(*READERS)
def topics_page() -> Any:
    """Teachers, cases, on-site teaching points, courses and textbooks for one plan topic."""
    topic_id = request.args.get("topic") or None
    resources = topic_resources(topic_id) if topic_id else None
    topics = [(n.id, n.props.get("name", n.id)) for n in graph().store.nodes("Topic")]
    return render_template("designer/topics.html", resources=resources, topic_id=topic_id or "", topics=topics)
