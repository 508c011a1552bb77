"""Evaluator pages: the nomination optimiser with quota gauges (case share against the plan's 1/3), the
scoring table with each item's breakdown, check mode for an uploaded list, and CSV/XLSX export."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from api.analytics import finished, solved
from api.nominations import CheckForm, OptimiseBody, check_upload, config_from, optimise, scores
from api.pages import load_form, page

__all__ = ["bp"]

bp = Blueprint("evaluator", __name__, url_prefix="/evaluator")
READERS = ("evaluator", "admin")
CONFIG_KEYS = ("year", "courses", "textbooks", "quota_mode", "max_per_institution", "min_per_branch")


def _case_gauges(result: dict[str, Any], share_min: float) -> list[dict[str, Any]]:
    """Case share of each list (or of both together), for the gauges."""
    lists = {"好课程": result["好课程"], "好教材": result["好教材"]}
    if result.get("quota_mode") == "combined":
        lists = {"两张名单合计": result["好课程"] + result["好教材"]}
    return [{"name": name, "share": round(sum(1 for c in items if c["案例"]) / len(items), 4) if items else 0.0,
             "minimum": share_min, "count": len(items), "cases": sum(1 for c in items if c["案例"])}
            for name, items in lists.items()]


@bp.route("/")
@page(*READERS)
def nominations_page() -> Any:
    """The optimiser; opened without a request it solves the lists under the rules as configured, so the
    evaluator first sees the default lists and their case share against the minimum.  A solve that outlasts
    the wait shows 「正在求解…」 and reloads this page when done (the same request then finds the finished job)."""
    result, solving, gauges, errors = None, None, [], {}
    form = {k: request.args.get(k, "") for k in CONFIG_KEYS}
    if request.args.get("run") or not request.args:
        args, errors = load_form(OptimiseBody(), form)
        if args is not None:
            job = finished(optimise(args))
            if job.state == "running":
                solving = job.to_dict()
            else:
                config = config_from(args)
                result = {**job.result, "quota_mode": config.quota_mode}
                gauges = _case_gauges(result, config.case_share_min)
    top = scores({"page": 1, "per_page": 20})
    return render_template("evaluator/nominations.html", result=result, solving=solving, gauges=gauges,
                           errors=errors, form=form, top=top, rules=dict(config_from({}).rules_used()))


@bp.route("/export")
@page(*READERS)
def export() -> Any:
    fmt = request.args.get("format", "xlsx")
    args, errors = load_form(OptimiseBody(), {**{k: request.args.get(k, "") for k in CONFIG_KEYS}, "format": fmt})
    if args is None:
        return render_template("error.html", code=422, message=f"参数有误：{errors}"), 422
    job = finished(optimise(args))
    if job.state == "running":
        return render_template("evaluator/solving.html", solving=job.to_dict())
    return solved(job, args["format"], f"nominations-{args.get('year') or 'current'}")


@bp.route("/check", methods=["GET", "POST"])
@page(*READERS)
def check_page() -> Any:
    result, errors = None, {}
    if request.method == "POST":
        args, errors = load_form(CheckForm(), {**{k: request.form.get(k, "") for k in CONFIG_KEYS}, "format": "json"})
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            errors = {**errors, "file": ["请选择名单文件"]}
        elif args is not None:
            result = check_upload(upload, args).to_dict()
    return render_template("evaluator/check.html", result=result, errors=errors, form=request.form)
