"""Administration: users and roles, the audit log, and long jobs (re-index, Neo4j sync) with progress."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from flask import current_app

from api import fields as f
from api.accounts import ROLES, AccountError, accounts
from api.auth import ApiBlueprint, UserSchema, audit, current_user
from api.errors import fail
from api.graph import graph
from api.jobs import JobBusy, Progress, jobs

__all__ = ["bp", "start_batch", "start_reindex", "start_sync", "sync_available"]

bp = ApiBlueprint("admin", __name__, url_prefix="/api/admin", description="管理：用户与角色、审计日志、重建索引、Neo4j 同步")


class NewUser(f.Schema):
    username = f.String(required=True, validate=f.length(1, 80))
    password = f.String(required=True, validate=f.length(8, 200))
    role = f.String(required=True, validate=f.one_of(ROLES))
    display_name = f.String(validate=f.length(1, 80))
    cadre_id = f.String(validate=f.length(1, 200), metadata={"description": "学员账号关联的干部编号"})


class UserChange(f.Schema):
    role = f.String(validate=f.one_of(ROLES))
    display_name = f.String(validate=f.length(1, 80))
    cadre_id = f.String(validate=f.length(1, 200))
    active = f.Boolean()
    password = f.String(validate=f.length(8, 200))


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
    state = f.String(metadata={"description": "running | done | failed"})
    state_name = f.String()
    done = f.Integer()
    total = f.Integer()
    percent = f.Float()
    message = f.String()
    result = f.Dict()
    started_by = f.String(allow_none=True)
    started = f.String()
    finished = f.String(allow_none=True)


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
def _start(kind: str, work: Any) -> dict[str, Any]:
    try:
        job = jobs().start(current_app._get_current_object(), kind, current_user().username, work)
    except JobBusy:
        fail(409, "同类任务正在运行，请稍后再试")
    audit(f"启动任务：{kind}", f"job:{job.id}")
    return job.to_dict()


def start_reindex(rebuild: bool) -> dict[str, Any]:
    g = graph()
    index_dir = Path(current_app.config["INDEX_DIR"])

    def work(progress: Progress) -> dict[str, Any]:
        from recommender.search.service import SearchService

        progress(0, 2, "读取目录并编码变化的文本…")
        service = SearchService.open(g.store, g.settings, ontology=g.ontology, rebuild=rebuild, index_dir=index_dir)
        report = service.last_update
        progress(2, 2, f"完成：{report.documents} 个文档，新编码 {report.encoded} 个，复用 {report.reused} 个")
        g.changed()
        return {k: v for k, v in vars(report).items() if isinstance(v, (int, float, str, bool))}

    return _start("重建索引", work)


def sync_available() -> bool:
    return importlib.util.find_spec("kg.sync") is not None


class _Counting:
    """The Neo4j store, reporting rows written after each batch (``kg.sync`` writes through ``apply``)."""

    def __init__(self, target: Any, total: int, progress: Progress) -> None:
        self._target, self._total, self._progress, self._done = target, total, progress, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def apply(self, batch: Any, on_rows: Any = None) -> Any:
        changes = self._target.apply(batch, on_rows)
        self._done = min(self._total, self._done + len(batch.nodes) + len(batch.edges))
        self._progress(self._done, self._total, f"已写入 {self._done:,} / {self._total:,} 条")
        return changes


def start_sync() -> dict[str, Any]:
    """Sync the embedded graph to the configured Neo4j in the background (``kg.sync.sync_graph``)."""
    if not sync_available():
        fail(503, "Neo4j 同步模块（kg.sync）尚未安装")
    g = graph()

    def work(progress: Progress) -> dict[str, Any]:
        from kg.store import open_store
        from kg.sync import sync_graph

        total = sum(g.store.node_counts().values()) + sum(g.store.edge_counts().values())
        progress(0, total, f"连接 Neo4j（{g.settings.neo4j_uri}）…")
        with open_store("neo4j", g.settings, g.ontology) as target:
            report = sync_graph(g.store, _Counting(target, total, progress))
        progress(total, total, f"完成：与源图谱{'一致' if report.in_step else '不一致'}，用时 {report.seconds:.1f} 秒")
        return {"in_step": report.in_step, "changes": dict(report.changes), "seconds": round(report.seconds, 2),
                "nodes": sum(report.after_nodes.values()), "edges": sum(report.after_edges.values())}

    return _start("Neo4j 同步", work)


def start_batch(k: int) -> dict[str, Any]:
    """Recommend for every cadre in the background (``recommender.batch.run``); designers' demand then reads it."""
    from api.cadres import recommender
    from api.reports import as_of

    g = graph()
    day = as_of(None)

    def work(progress: Progress) -> dict[str, Any]:
        from recommender.batch.run import batch_path, run_batch

        cadres = g.store.node_counts().get("Cadre", 0)
        progress(0, cadres, f"正在为 {cadres:,} 名干部计算推荐…")
        summary = run_batch(recommender(), k=k, today=day, path=batch_path(g.settings), progress=False)
        g.changed()  # demand now comes from the stored results
        progress(cadres, cadres, f"完成：{summary.cadres:,} 名干部、{summary.suggestions:,} 条推荐，"
                                 f"每秒 {summary.rate:.0f} 人")
        return {"cadres": summary.cadres, "suggestions": summary.suggestions, "seconds": round(summary.seconds, 2)}

    return _start("批量推荐", work)


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
@bp.alt_response(503, response="SERVICE_UNAVAILABLE")
def sync() -> dict[str, Any]:
    """在后台把嵌入式图谱同步到 Neo4j；用 GET /api/admin/jobs/{id} 查看进度"""
    return start_sync()


@bp.route("/jobs")
@bp.requires("admin")
@bp.response(200, JobSchema(many=True))
def list_jobs() -> list[dict[str, Any]]:
    """后台任务（新的在前）"""
    return [j.to_dict() for j in jobs().all()]


@bp.route("/jobs/<int:job_id>")
@bp.requires("admin")
@bp.response(200, JobSchema)
@bp.alt_response(404, response="NOT_FOUND")
def job_status(job_id: int) -> dict[str, Any]:
    """一个后台任务的进度"""
    job = jobs().get(job_id)
    if job is None:
        fail(404, f"未找到任务 {job_id}")
    return job.to_dict()
