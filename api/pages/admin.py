"""Administrator pages: import with row-by-row errors and export, sync and re-index with progress,
users and roles, the audit log."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from api.accounts import PASSWORD_MIN_LENGTH, ROLES, AccountError, accounts
from api.admin import JOB_KINDS
from api.auth import audit, current_user
from api.graph import graph
from api.jobs import beijing_time
from api.jobs import jobs as job_registry
from api.pages import page
from api.review import import_tagger
from kg.profiles import load_profiles
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
            result = import_uploads(request.files.getlist("files"), request.form.get("type") or None,
                                    request.form.get("profile") or None, import_tagger())
        except ImportRejected as exc:
            rejected = exc
    classes = [(c.name, c.label) for c in g.ontology.data_classes]
    labels = {c.name: c.label for c in g.ontology.classes.values()}
    counts = sorted(((labels.get(name, name), n) for name, n in g.store.node_counts().items()), key=lambda kv: -kv[1])
    status = 422 if rejected else 200
    profiles = [(p.key, p.name) for p in load_profiles(g.ontology).profiles.values()]
    return render_template("admin/imports.html", result=result, rejected=rejected, classes=classes,
                           counts=counts, profiles=profiles), status

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

#: Cadres listed at most for one name search (a province has a million; a name narrows to a few).
CADRE_MATCHES = 50
#: Audit detail keys as the page shows them.
DETAIL_LABELS = {"username": "用户名", "role": "角色", "cadre_id": "干部编号", "active": "启用", "display_name": "姓名",
                 "kind": "任务", "job": "任务编号", "format": "格式", "type": "类", "files": "文件", "nodes": "节点数",
                 "edges": "关系数", "reason": "原因", "cadre": "干部"}


@bp.app_template_filter("local_time")
def local_time(stamp: str | None) -> str:
    """A stored UTC stamp as 北京时间 (Asia/Shanghai), the way the jobs table shows it."""
    return beijing_time(stamp) or ""


@bp.app_template_filter("audit_detail")
def audit_detail(detail: dict[str, Any]) -> str:
    """An audit entry's detail for people: Chinese keys, nothing for an empty value (no ``cadre_id=None``)."""
    shown = []
    for key, value in detail.items():
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, bool):
            value = "是" if value else "否"
        elif isinstance(value, (list, tuple)):
            value = "、".join(map(str, value))
        shown.append(f"{DETAIL_LABELS.get(key, key)}：{value}")
    return "；".join(shown)


@bp.route("/cadres")
@page("admin")
def cadres() -> Any:
    """Find a cadre by the id or by the start of the name (a surname, a whole name): the matches, each linked to
    the cadre's page.  Cadres are personal data, kept out of the catalogue's text index, and a province has a
    million of them, so the store answers from its name index (:meth:`kg.store.base.Store.find_by_name`),
    reading at most :data:`CADRE_MATCHES` + 1 of them.  Each search is audited (查找干部: the query and the cadres
    listed), like an administrator's read of a cadre's page."""
    query = (request.args.get("q") or "").strip()
    found: list[Any] = []
    if query:
        store = graph().store
        by_id = store.get_node(query)
        found = [by_id] if by_id is not None and by_id.label == "Cadre" else []
        found += store.find_by_name("Cadre", query, CADRE_MATCHES + 1 - len(found))
    more = len(found) > CADRE_MATCHES
    matches = [{"id": node.id, "name": node.props.get("name", node.id), "organisation": node.props.get("organisation", ""),
                "region": node.props.get("region", "")} for node in found[:CADRE_MATCHES]]
    if query:  # names and organisations of cadres are personal data: an administrator's read of them is audited
        audit("查找干部", None, 查询=query, 干部=[match["id"] for match in matches])
    return render_template("admin/cadres.html", query=query, matches=matches, more=more, limit=CADRE_MATCHES)


@bp.route("/audit")
@page("admin")
def audit_page() -> Any:
    page_no = max(1, request.args.get("page", 1, type=int) or 1)
    total, entries = accounts().audit_log(50, (page_no - 1) * 50, request.args.get("username") or None)
    return render_template("admin/audit.html", entries=entries, total=total, page=page_no,
                           pages=max(1, -(-total // 50)), username=request.args.get("username", ""))
