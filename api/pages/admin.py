"""Administrator pages: import with row-by-row errors and export, sync and re-index with progress,
users and roles, the audit log."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from api.accounts import PASSWORD_MIN_LENGTH, ROLES, AccountError, accounts
from api.admin import JOB_KINDS
from api.auth import audit, current_user
from api.graph import graph
from api.jobs import jobs as job_registry
from api.pages import page
from api.transfer import ImportRejected, import_uploads

__all__ = ["bp"]

bp = Blueprint("console", __name__, url_prefix="/admin")

@bp.route("/import", methods=["GET", "POST"])
@page("admin")
def imports() -> Any:
    g = graph()
    result: dict[str, Any] | None = None
    rejected: ImportRejected | None = None
    if request.method == "POST":
        try:
            result = import_uploads(request.files.getlist("files"), request.form.get("type") or None)
        except ImportRejected as exc:
            rejected = exc
    classes = [(c.name, c.label) for c in g.ontology.data_classes]
    status = 422 if rejected else 200
    return render_template("admin/imports.html", result=result, rejected=rejected, classes=classes,
                           counts=g.store.node_counts()), status

@bp.route("/jobs")
@page("admin")
def jobs() -> Any:
    """Jobs of every worker, read from the shared table; a kind that runs now has its button disabled and its
    bar polled from the page."""
    registry = job_registry()
    running = {name: job.id for name, kind in JOB_KINDS.items()
               if (job := registry.latest(kind)) is not None and job.state == "running"}
    return render_template("admin/jobs.html", jobs=[j.to_dict() for j in registry.recent(50)], running=running,
                           store=graph().store.name)

@bp.route("/users", methods=["GET", "POST"])
@page("admin")
def users() -> Any:
    if request.method == "POST":
        form = request.form
        cadre_id = form.get("cadre_id") or None
        try:
            if cadre_id and graph().store.get_node(cadre_id) is None:
                raise AccountError(f"图谱中没有干部『{cadre_id}』", "cadre_id")
            user = accounts().create_user(form.get("username", "").strip(), form.get("password", ""),
                                          form.get("role", ""), form.get("display_name") or None, cadre_id)
        except AccountError as exc:
            flash(str(exc), "error")
        else:
            audit("新建用户", f"user:{user.id}", username=user.username, role=user.role, cadre_id=user.cadre_id)
            flash(f"已新建用户 {user.username}（{user.role_name}）", "ok")
        return redirect(url_for("console.users"))
    return render_template("admin/users.html", users=accounts().users(), roles=ROLES, min_password=PASSWORD_MIN_LENGTH)

@bp.route("/users/<int:user_id>", methods=["POST"])
@page("admin")
def change_user(user_id: int) -> Any:
    """Change another user's role, cadre or status.  Only the fields the form sends change (a form without
    ``active`` leaves the status as it is); an administrator cannot deactivate or demote themselves here, as
    through the API."""
    form = request.form
    changes: dict[str, Any] = {}
    if form.get("role"):
        changes["role"] = form["role"]
    if form.get("active") in ("1", "0"):
        changes["active"] = form["active"] == "1"
    if form.get("cadre_id"):
        changes["cadre_id"] = form["cadre_id"]
    if user_id == current_user().id and (changes.get("active") is False or changes.get("role", "admin") != "admin"):
        flash("修改失败：不能停用自己或取消自己的管理员角色", "error")
        return redirect(url_for("console.users"))
    try:
        accounts().update_user(user_id, **changes)
    except (AccountError, LookupError) as exc:
        flash(f"修改失败：{exc}", "error")
    else:
        audit("修改用户", f"user:{user_id}", **changes)
        flash("已保存", "ok")
    return redirect(url_for("console.users"))

@bp.route("/audit")
@page("admin")
def audit_page() -> Any:
    page_no = max(1, request.args.get("page", 1, type=int) or 1)
    total, entries = accounts().audit_log(50, (page_no - 1) * 50, request.args.get("username") or None)
    return render_template("admin/audit.html", entries=entries, total=total, page=page_no,
                           pages=max(1, -(-total // 50)), username=request.args.get("username", ""))
