"""Curriculum designer pages: coverage and demand by topic (chart), under-served topics, teaching-indicator
compliance for an institution and period, and the class programme builder."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from api.analytics import (
    PROGRAMME_JOB, CoverageQuery, IndicatorQuery, ProgrammeBody, coverage, finished, indicators, own_job, programme,
    topic_resources,
)
from api.graph import graph
from api.pages import load_form, page

__all__ = ["bp"]

bp = Blueprint("designer", __name__, url_prefix="/designer")
READERS = ("designer", "evaluator", "admin")


def _institutions() -> list[tuple[str, str]]:
    return [(n.id, n.props.get("name", n.id)) for n in graph().store.nodes("Institution")]


def _choices(class_name: str, field: str) -> list[str]:
    return list(graph().ontology.classes[class_name].fields[field].allowed or ())


@bp.route("/")
@page(*READERS)
def coverage_page() -> Any:
    args, errors = load_form(CoverageQuery(), {**request.args.to_dict(), "format": "json"})
    report = coverage(args).to_dict() if args is not None else None
    export_args = {k: v for k, v in request.args.items() if k in CoverageQuery().fields and k != "format" and v}
    return render_template("designer/coverage.html", report=report, errors=errors, form=request.args,
                           export_args=export_args, institutions=_institutions(), levels=_choices("Institution", "level"))


@bp.route("/indicators")
@page(*READERS)
def indicators_page() -> Any:
    report, errors = None, {}
    if request.args.get("institution"):
        args, errors = load_form(IndicatorQuery(), {**request.args.to_dict(), "format": "json"})
        report = indicators(args).to_dict() if args is not None else None
    semesters = sorted({n.props.get("semester") for n in graph().store.nodes("TrainingClass") if n.props.get("semester")})
    return render_template("designer/indicators.html", report=report, errors=errors, form=request.args,
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
                    own_courses=form.get("own_courses") == "1", format="json")
        args, errors = load_form(ProgrammeBody(), data)
        job = finished(programme(args)) if args is not None else None
    elif request.args.get("job", "").isdigit():
        job = finished(own_job(int(request.args["job"]), PROGRAMME_JOB))
    result = job.result if job is not None and job.state == "done" else None
    solving = job.to_dict() if job is not None and job.state == "running" else None
    topics = [(n.id, n.props.get("name", n.id)) for n in graph().store.nodes("Topic")]
    categories = [(n.id, n.props.get("name", n.id)) for n in graph().store.nodes("CadreCategory")]
    return render_template("designer/programme.html", result=result, solving=solving, errors=errors, form=request.form,
                           institutions=_institutions(), class_types=_choices("TrainingClass", "classType"),
                           topics=topics, categories=categories)


@bp.route("/topics")
@page(*READERS)
def topics_page() -> Any:
    """Teachers, cases, on-site teaching points, courses and textbooks for one plan topic."""
    topic_id = request.args.get("topic") or None
    resources = topic_resources(topic_id) if topic_id else None
    topics = [(n.id, n.props.get("name", n.id)) for n in graph().store.nodes("Topic")]
    return render_template("designer/topics.html", resources=resources, topic_id=topic_id or "", topics=topics)
