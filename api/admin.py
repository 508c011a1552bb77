"""Administration: users and roles, the audit log, and long jobs (re-index, Neo4j sync, batch recommendations)
with progress, kept in the jobs table every worker shares (``api.jobs``)."""

from __future__ import annotations

from typing import Any

from flask import send_file

from api import fields as f
from api.accounts import PASSWORD_MIN_LENGTH, ROLES, AccountError, accounts
from api.auth import ApiBlueprint, UserSchema, audit, current_user
from api.errors import fail
from api.graph import graph
from api.jobs import Job, JobBusy, Progress, Work, jobs
from api.services import INDEX_JOB, index_job, recommender

__all__ = ["JOB_KINDS", "bp", "start_batch", "start_reindex", "start_sync"]

bp = ApiBlueprint("admin", __name__, url_prefix="/api/admin", description="管理：用户与角色、审计日志、重建索引、Neo4j 同步")


class NewUser(f.Schema):
    username = f.String(required=True, validate=f.length(1, 80))
    password = f.String(required=True, validate=f.length(PASSWORD_MIN_LENGTH, 200),
                        metadata={"description": f"至少 {PASSWORD_MIN_LENGTH} 个字符，不能全是数字、与用户名相同或是常见密码"})
    role = f.String(required=True, validate=f.one_of(ROLES))
    display_name = f.String(validate=f.length(1, 80))
    cadre_id = f.String(validate=f.length(1, 200), metadata={"description": "学员账号关联的干部编号"})


class UserChange(f.Schema):
    role = f.String(validate=f.one_of(ROLES))
    display_name = f.String(validate=f.length(1, 80))
    cadre_id = f.String(validate=f.length(1, 200))
    active = f.Boolean()
    password = f.String(validate=f.length(PASSWORD_MIN_LENGTH, 200),
                        metadata={"description": f"至少 {PASSWORD_MIN_LENGTH} 个字符，不能全是数字、与用户名相同或是常见密码"})


class AuditQuery(f.Schema):
    page = f.Integer(load_default=1, validate=f.range_(1, 10**6))
    per_page = f.page_size(50, 200)
    username = f.String(validate=f.length(1, 80))
    action = f.String(validate=f.length(1, 80))


class AuditEntrySchema(f.Schema):
    id = f.Integer()
    at = f.String()
    username = f.String(allow_none=True)
    action = f.String()
    target = f.String(allow_none=True)
    detail = f.Dict()
    address = f.String(allow_none=True)


class AuditPage(f.Schema):
    total = f.Integer()
    page = f.Integer()
    per_page = f.Integer()
    items = f.List(f.Nested(AuditEntrySchema))


class JobSchema(f.Schema):
    id = f.Integer()
    kind = f.String()
    key = f.String(allow_none=True, metadata={"description": "同一任务的标识：同类、同标识的任务运行中或已完成时不再重复启动"})
    state = f.String(metadata={"description": "running | done | failed"})
    state_name = f.String()
    done = f.Integer()
    total = f.Integer()
    percent = f.Float()
    message = f.String()
    result = f.Dict()
    error = f.String(allow_none=True, metadata={"description": "失败原因"})
    file = f.String(allow_none=True, metadata={"description": "结果文件名（用 GET /api/admin/jobs/{id}/file 下载）"})
    started_by = f.String(allow_none=True)
    worker = f.String(metadata={"description": "执行任务的进程（主机:进程号）"})
    started = f.String(metadata={"description": "开始时间（UTC，ISO 8601）"})
    started_local = f.String(metadata={"description": "开始时间（北京时间）"})
    finished = f.String(allow_none=True, metadata={"description": "结束时间（UTC，ISO 8601）"})
    finished_local = f.String(allow_none=True, metadata={"description": "结束时间（北京时间）"})


class ReindexOptions(f.Schema):
    rebuild = f.Boolean(load_default=False, metadata={"description": "true：全部重新编码；false：只编码变化的文本"})


def _check_cadre(cadre_id: str | None) -> None:
    if cadre_id is not None:
        node = graph().store.get_node(cadre_id)
        if node is None or node.label != "Cadre":
            fail(422, "干部不存在", {"cadre_id": [f"图谱中没有干部『{cadre_id}』"]})


@bp.route("/users")
@bp.requires("admin")
@bp.response(200, UserSchema(many=True))
def list_users() -> list[dict[str, Any]]:
    """全部用户及其角色"""
    return [u.to_dict() for u in accounts().users()]


@bp.route("/users", methods=["POST"])
@bp.requires("admin")
@bp.arguments(NewUser)
@bp.response(201, UserSchema)
@bp.alt_response(409, response="CONFLICT")
def create_user(data: dict[str, Any]) -> dict[str, Any]:
    """新建用户（学员账号须关联干部）"""
    _check_cadre(data.get("cadre_id"))
    try:
        user = accounts().create_user(data["username"], data["password"], data["role"],
                                      data.get("display_name"), data.get("cadre_id"))
    except AccountError as exc:
        fail(409 if exc.field == "username" else 422, str(exc), {exc.field or "user": [str(exc)]})
    audit("新建用户", f"user:{user.id}", username=user.username, role=user.role, cadre_id=user.cadre_id)
    return user.to_dict()


@bp.route("/users/<int:user_id>", methods=["PATCH"])
@bp.requires("admin")
@bp.arguments(UserChange)
@bp.response(200, UserSchema)
@bp.alt_response(404, response="NOT_FOUND")
def update_user(data: dict[str, Any], user_id: int) -> dict[str, Any]:
    """修改用户的角色、关联干部、状态或密码"""
    if accounts().get(user_id) is None:
        fail(404, f"未找到用户 {user_id}")
    if user_id == current_user().id and (data.get("active") is False or data.get("role", "admin") != "admin"):
        fail(422, "不能停用自己或取消自己的管理员角色", {"role": ["不能修改自己的管理员角色"]})
    _check_cadre(data.get("cadre_id"))
    try:
        user = accounts().update_user(user_id, **data)
    except AccountError as exc:
        fail(422, str(exc), {exc.field or "user": [str(exc)]})
    audit("修改用户", f"user:{user_id}", **{k: v for k, v in data.items() if k != "password"},
          password_changed="password" in data)
    return user.to_dict()


@bp.route("/audit")
@bp.requires("admin")
@bp.arguments(AuditQuery, location="query")
@bp.response(200, AuditPage)
def audit_log(args: dict[str, Any]) -> dict[str, Any]:
    """审计日志（新的在前）"""
    total, entries = accounts().audit_log(args["per_page"], (args["page"] - 1) * args["per_page"],
                                          args.get("username"), args.get("action"))
    return {"total": total, "page": args["page"], "per_page": args["per_page"], "items": [e.to_dict() for e in entries]}


# ─── jobs ───
#: The administrator's jobs: the name of their route (and page button) → the job kind, one running at a time
#: (the index job's kind is also the automatic update's after a change, :func:`api.services.submit_index_update`).
JOB_KINDS: dict[str, str] = {"reindex": INDEX_JOB, "sync": "Neo4j 同步", "batch": "批量推荐"}


def _start(kind: str, work: Work) -> dict[str, Any]:
    """Submit ``work`` to the shared jobs table; a running job of ``kind`` (in any worker) answers 409."""
    try:
        job = jobs().submit(kind, work, user=current_user().username)
    except JobBusy as exc:
        fail(409, f"同类任务正在运行，请稍后再试（任务 {exc.job.id}）", {"kind": [f"「{kind}」任务 {exc.job.id} 正在运行"]})
    audit(f"启动任务：{kind}", f"job:{job.id}")
    return job.to_dict()


def start_reindex(rebuild: bool) -> dict[str, Any]:
    """Bring the search index up to date (or rebuild it) in the background, with progress per encoded batch —
    the same job as the automatic update after a change, so while either runs this answers 409."""
    return _start(INDEX_JOB, index_job(rebuild))


def start_sync() -> dict[str, Any]:
    """Sync the embedded graph to the configured Neo4j in the background (``kg.sync.sync_graph``), with progress
    per written chunk."""
    g = graph()

    def work(progress: Progress) -> dict[str, Any]:
        from kg.store import open_store
        from kg.sync import sync_graph

        progress(0, 0, f"连接 Neo4j（{g.settings.neo4j_uri}）…")
        with open_store("neo4j", g.settings, g.ontology) as target:
            report = sync_graph(g.store, target,
                                on_progress=lambda done, total: progress(done, total, f"已写入 {done:,} / {total:,} 条"))
        total = sum(report.source_nodes.values()) + sum(report.source_edges.values())
        progress(total, total, f"完成：与源图谱{'一致' if report.in_step else '不一致'}，用时 {report.seconds:.1f} 秒")
        return {"in_step": report.in_step, "changes": dict(report.changes), "seconds": round(report.seconds, 2),
                "nodes": sum(report.after_nodes.values()), "edges": sum(report.after_edges.values())}

    return _start(JOB_KINDS["sync"], work)


def start_batch(k: int) -> dict[str, Any]:
    """Recommend for every cadre in the background (``recommender.batch.run``), with progress per chunk of
    cadres; designers' demand then reads it."""
    from api.reports import as_of

    g = graph()
    day = as_of(None)

    def work(progress: Progress) -> dict[str, Any]:
        from recommender.batch.run import batch_path, run_batch

        progress(0, 0, "正在载入推荐模型…")
        summary = run_batch(recommender(), k=k, today=day, path=batch_path(g.settings), progress=False,
                            on_progress=lambda done, total: progress(done, total, f"已完成 {done:,} / {total:,} 名干部"))
        progress(summary.cadres, summary.cadres, f"完成：{summary.cadres:,} 名干部、{summary.suggestions:,} 条推荐，"
                                                 f"每秒 {summary.rate:.0f} 人")
        return {"cadres": summary.cadres, "suggestions": summary.suggestions, "seconds": round(summary.seconds, 2)}

    return _start(JOB_KINDS["batch"], work)


class BatchOptions(f.Schema):
    k = f.Integer(load_default=10, validate=f.range_(1, 200), metadata={"description": "每人推荐条数"})


@bp.route("/batch", methods=["POST"])
@bp.requires("admin")
@bp.arguments(BatchOptions)
@bp.response(202, JobSchema)
@bp.alt_response(409, response="CONFLICT")
def batch(options: dict[str, Any]) -> dict[str, Any]:
    """在后台为全部干部批量推荐（结果供学习需求分析使用）；用 GET /api/admin/jobs/{id} 查看进度"""
    return start_batch(options["k"])


@bp.route("/reindex", methods=["POST"])
@bp.requires("admin")
@bp.arguments(ReindexOptions)
@bp.response(202, JobSchema)
@bp.alt_response(409, response="CONFLICT")
def reindex(options: dict[str, Any]) -> dict[str, Any]:
    """在后台重建语义检索索引；用 GET /api/admin/jobs/{id} 查看进度"""
    return start_reindex(options["rebuild"])


@bp.route("/sync", methods=["POST"])
@bp.requires("admin")
@bp.response(202, JobSchema)
@bp.alt_response(409, response="CONFLICT")
def sync() -> dict[str, Any]:
    """在后台把嵌入式图谱同步到 Neo4j；用 GET /api/admin/jobs/{id} 查看进度"""
    return start_sync()


@bp.route("/jobs")
@bp.requires("admin")
@bp.response(200, JobSchema(many=True))
def list_jobs() -> list[dict[str, Any]]:
    """后台任务（新的在前，最多 100 个；任何一个服务进程都能回答）"""
    return [j.to_dict() for j in jobs().recent(100)]


@bp.route("/jobs/<int:job_id>")
@bp.requires("admin")
@bp.response(200, JobSchema)
@bp.alt_response(404, response="NOT_FOUND")
def job_status(job_id: int) -> dict[str, Any]:
    """一个后台任务的进度"""
    return _job(job_id).to_dict()


def _job(job_id: int) -> Job:
    """The job ``job_id``; aborts with 404 when there is none."""
    job = jobs().get(job_id)
    if job is None:
        fail(404, f"未找到任务 {job_id}")
    return job


@bp.route("/jobs/<int:job_id>/file")
@bp.requires("admin")
@bp.response(200, content_type="application/octet-stream", description="任务的结果文件")
@bp.alt_response(404, response="NOT_FOUND")
def job_file(job_id: int) -> Any:
    """下载一个后台任务的结果文件（如整图导出）；文件在 GANXUN_HOME 下，任何一个服务进程都能提供"""
    job = _job(job_id)
    path = jobs().file_of(job)
    if path is None:
        fail(404, f"任务 {job_id} 没有结果文件" if job.file is None else f"任务 {job_id} 的结果文件已不存在")
    return send_file(path, as_attachment=True, download_name=path.name)
