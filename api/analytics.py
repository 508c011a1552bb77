"""Aggregates for curriculum designers (and evaluators and administrators): topic coverage against demand,
under-served topics, teaching-indicator compliance per institution and period, matching teachers, cases
and sites for a topic, and the class programme builder.  Each report can also be downloaded as CSV/XLSX
through ``recommender.analytics.exports``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Response, current_app, jsonify, url_for

from api import fields as f
from api.admin import JobSchema
from api.auth import ApiBlueprint, current_user
from api.errors import fail
from api.graph import get_node, graph
from api.jobs import Job, jobs
from api.reports import as_of, report_schema
from api.services import snapshot
from kg.ontology import load_ontology

__all__ = ["PROGRAMME_JOB", "SOLVE_WAIT_SECONDS", "bp", "download", "own_job", "pending", "programme", "solve",
           "solved", "topic_demand"]

bp = ApiBlueprint("analytics", __name__, url_prefix="/api/analytics",
                  description="课程设计与评估：主题覆盖、需求与供给、教学指标、班次方案")

READERS = ("designer", "evaluator", "admin")
FORMATS = ("json", "csv", "xlsx")

MEDIA = {"csv": "text/csv; charset=utf-8", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}

#: Seconds a solve waits for its job before handing the job over (app config ``SOLVE_WAIT_SECONDS``, else env
#: ``GANXUN_SOLVE_WAIT``): short solves answer at once, long ones never hold a request past this.
SOLVE_WAIT_SECONDS = 5.0
#: The job kind of the class programme solve (each request's kind ends with its key, see :func:`solve`).
PROGRAMME_JOB = "班次方案求解"
#: Bumped when a solve's stored result changes shape (fields added to the reports), so results stored by an
#: earlier release in the shared jobs table are not shown by pages that expect the new fields.
RESULT_SHAPE = 2
PENDING = "求解时间较长，已转为后台任务：用 GET /api/analytics/jobs/{id} 查询"


def topic_demand() -> dict[str, float] | None:
    """Cadres per topic for whom it is a gap (``recommender.batch.demand``): the last batch run's figures when
    there are any, else computed from every cadre's records once per graph version — in a job shared by every
    worker once the service is warm (:func:`api.services.shared_result`; None until it is done), inline in tests
    and commands.  Kept per day (the gaps move at midnight) and per batch run.  None without cadres."""
    from recommender.batch.demand import topic_demand as demand_of
    from recommender.batch.run import batch_path

    from api.services import recommender, shared_result

    g = graph()
    day = recommender().today(as_of(None))  # the configured date, else the recommender's clock: never None
    stored = batch_path(g.settings)
    stamp = stored.stat().st_mtime_ns if stored.exists() else None  # a batch run in any worker changes it

    def compute(_progress: Any = None) -> dict[str, float]:
        return dict(demand_of(g.store, g.settings, today=day, snapshot=recommender().snapshot))

    key = f"v{g.version}:{day}:{stamp}"
    return g.derived("topic_demand", lambda: shared_result("学习需求", compute, key=key), key=(day, stamp)) or None


def downloadable(schema: type) -> dict[str, Any]:
    """OpenAPI for a report that ``format=csv|xlsx`` turns into an attachment: JSON, CSV or XLSX bodies."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema.__name__}"}}}
    content |= {media.split(";")[0]: binary for media in MEDIA.values()}
    return {"responses": {"200": {"content": content}}}


def attachment(body: bytes, fmt: str, stem: str) -> Response:
    """A CSV/XLSX body as a download named ``stem.fmt``."""
    return Response(body, headers={"Content-Type": MEDIA[fmt], "Content-Disposition": f'attachment; filename="{stem}.{fmt}"'})


def download(report: Any, fmt: str, stem: str) -> Any:
    """The report as JSON (its ``to_dict``) or as a CSV/XLSX attachment."""
    if fmt == "json":
        return report.to_dict()
    from recommender.analytics.exports import export

    with tempfile.TemporaryDirectory(prefix="ganxun-report-") as tmp:
        path = export(report, Path(tmp) / f"{stem}.{fmt}")
        body = path.read_bytes()
    return attachment(body, fmt, stem)


# ─── solves as jobs: answer now, or hand over the job ───
def solve_wait() -> float:
    """Seconds to wait for a solve (``SOLVE_WAIT_SECONDS`` / ``GANXUN_SOLVE_WAIT``, default 5)."""
    value = current_app.config.get("SOLVE_WAIT_SECONDS", os.environ.get("GANXUN_SOLVE_WAIT", SOLVE_WAIT_SECONDS))
    try:
        wait = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"SOLVE_WAIT_SECONDS（GANXUN_SOLVE_WAIT，求解等待秒数）应为数字，实际为 {value!r}") from None
    if wait < 0:
        raise ValueError(f"SOLVE_WAIT_SECONDS（GANXUN_SOLVE_WAIT，求解等待秒数）不应为负数，实际为 {wait}")
    return wait


def solve(kind: str, basis: dict[str, Any], fmt: str, solver: Callable[[], Any]) -> Job:
    """Run ``solver()`` (a report with ``to_dict``) as a job and wait up to :func:`solve_wait` for it.

    Why a job: a solve may take up to its solver's time limit (20—30 s), longer than a request should be held;
    its state then lives in the jobs table, so any worker answers the poll.  The key hashes ``basis`` (the
    validated request and whatever else the answer depends on: the day, the demand), ``fmt`` and the graph
    version, so the same request while it runs, or after it finished, is that one job.  The key's hash is also
    part of the kind: the jobs table allows one *running* job per kind (right for re-indexing, wrong here —
    different users solve different things at once), and a kind per key keeps that rule for everything else
    with no change to :mod:`api.jobs`.  The result is stored as JSON, or for ``csv``/``xlsx`` as a file."""
    text = json.dumps([basis, fmt, graph().version, RESULT_SHAPE], sort_keys=True, default=str, ensure_ascii=False)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    job_kind = f"{kind}·{digest}"

    def work(progress: Any) -> dict[str, Any] | Path:
        progress(0, 1, "正在求解…")
        report = solver()
        progress(1, 1, "求解完成")
        if fmt == "json":
            return report.to_dict()
        from recommender.analytics.exports import export

        return export(report, jobs().output_path(job_kind, f".{fmt}"))

    user = current_user()
    job = jobs().submit(job_kind, work, key=digest, user=user.username if user else None)
    deadline = time.monotonic() + solve_wait()
    while job.state == "running" and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(0.05, left))
        job = jobs().get(job.id) or job
    return job


def finished(job: Job) -> Job:
    """``job`` when it did not fail; a failed solve (time limit, solver trouble — an infeasible request is an
    answer, not a failure) raises :class:`SolverError`, which the error table maps to 503 with an error id."""
    from recommender.analytics.errors import SolverError

    if job.state == "failed":
        raise SolverError(f"求解失败（任务 {job.id}）：{job.error}")
    return job


def pending(job: Job) -> Response:
    """202 with the running job, where to poll it, and the Chinese notice."""
    response = jsonify({**job.to_dict(), "说明": PENDING.format(id=job.id)})
    response.status_code = 202
    response.headers["Location"] = url_for("analytics.job_view", job_id=job.id)
    return response


def solved(job: Job, fmt: str, stem: str) -> Any:
    """The API's answer for a solve job: exactly what :func:`download` would give once it is done, 202 while
    it runs, the mapped solver error when it failed."""
    if finished(job).state == "running":
        return pending(job)
    if fmt == "json":
        return job.result
    path = jobs().file_of(job)
    if path is None:  # deleted after the job was read: the next identical request solves again
        fail(404, f"任务 {job.id} 的结果文件已不存在，请重新提交")
    return attachment(path.read_bytes(), fmt, stem)


def own_job(job_id: int, kind: str | None = None) -> Job:
    """The job ``job_id`` when the caller started it (an administrator reads any), of ``kind`` when given;
    else 404 — another user's job is not even acknowledged."""
    user = current_user()
    job = jobs().get(job_id)
    if (job is None or (user is None or (user.role != "admin" and job.started_by != user.username))
            or (kind is not None and not job.kind.startswith(kind))):
        fail(404, f"未找到任务 {job_id}")
    return job


class PendingJob(JobSchema):
    说明 = f.String(metadata={"description": "求解转为后台任务时的提示（在哪里查询）"})


def solve_doc(schema: type) -> dict[str, Any]:
    """OpenAPI of a solve route: :func:`downloadable`'s 200, the 202 of a job handed over, the 503 of a failed solve."""
    doc = downloadable(schema)
    doc["responses"]["202"] = {"description": "求解未在等待时间内完成：返回后台任务，用 Location 查询",
                               "content": {"application/json": {"schema": PendingJob}}}
    return doc


class FormatQuery(f.Schema):
    format = f.String(load_default="json", validate=f.one_of(FORMATS), metadata={"description": "json | csv | xlsx"})


class CoverageQuery(FormatQuery):
    institution = f.String(validate=f.length(1, 200), metadata={"description": "只统计该机构的课程（机构编号）"})
    level = f.String(validate=f.one_of(load_ontology().classes["Institution"].fields["level"].allowed or ()),
                     metadata={"description": "只统计该层级机构的课程"})
    top = f.Integer(load_default=20, validate=f.range_(1, 200), metadata={"description": "列出的供给不足主题数"})
    date = f.Date(metadata={"description": "统计基准日（YYYY-MM-DD），默认今天"})


class UnderservedQuery(f.Schema):
    by = f.String(load_default="level", validate=f.one_of(["level", "institution"]), metadata={"description": "level | institution"})
    top = f.Integer(load_default=10, validate=f.range_(1, 100))
    date = f.Date()


class IndicatorQuery(FormatQuery):
    institution = f.String(required=True, validate=f.length(1, 200), metadata={"description": "机构编号"})
    period = f.String(required=True, validate=f.length(4, 20), metadata={"description": "学期（如 2025春）或学年（如 2025）"})
    top = f.Integer(load_default=5, validate=f.range_(1, 50), metadata={"description": "每个指标列出的影响最大课程数"})


class ProgrammeBody(f.Schema):
    institution = f.String(required=True, validate=f.length(1, 200), metadata={"description": "举办机构编号"})
    class_type = f.String(required=True, validate=f.length(1, 40), metadata={
        "description": "班次类型：" + "、".join(load_ontology().classes["TrainingClass"].fields["classType"].allowed or ())})
    total_hours = f.Float(required=True, validate=f.range_(1, 2000), metadata={"description": "总学时"})
    topics = f.List(f.String(validate=f.length(1, 200)), load_default=list, validate=f.length(0, 50),
                    metadata={"description": "须覆盖的专题：规划主题编号"})
    categories = f.List(f.String(validate=f.length(1, 200)), load_default=list, validate=f.length(0, 20),
                        metadata={"description": "学员干部类别：干部类别编号"})
    groups = f.List(f.String(validate=f.length(1, 200)), load_default=list, validate=f.length(0, 30),
                    metadata={"description": "培训对象：对象编号"})
    tolerance = f.Float(load_default=0.0, validate=f.range_(0, 100), metadata={"description": "允许少于总学时的学时数"})
    own_courses = f.Boolean(load_default=False, metadata={"description": "只用本机构的课程"})
    remote_on_site = f.Boolean(load_default=False, metadata={
        "description": "允许外省现场教学：市、县级机构的班次默认只选同省的现场教学课程（rules.yaml programme.locality）"})
    required_courses = f.List(f.String(validate=f.length(1, 200)), load_default=list, validate=f.length(0, 100),
                              metadata={"description": "必选课程：课程编号"})
    excluded_courses = f.List(f.String(validate=f.length(1, 200)), load_default=list, validate=f.length(0, 500),
                              metadata={"description": "排除课程：课程编号"})
    max_courses = f.Integer(validate=f.range_(1, 200), metadata={"description": "课程数上限"})
    format = f.String(load_default="json", validate=f.one_of(FORMATS))


Coverage = report_schema("CoverageReport", "每个规划主题的课程供给、时效、评分与需求，及供给不足主题排名")
Underserved = report_schema("UnderservedByGroup", "按机构层级或机构分组的供给不足主题")
Indicators = report_schema("IndicatorReport", "某机构某学期的教学指标与课程更新指标")
Programme = report_schema("ProgrammeResult", "班次课程方案及指标核对，或无可行方案的原因")
TopicResources = report_schema("TopicResources", "某主题（含下位主题）的师资、案例、现场教学点与课程")


def coverage(args: dict[str, Any]) -> Any:
    from recommender.analytics.coverage import coverage_report

    return coverage_report(
        snapshot(), topic_demand(), institution=args.get("institution"), level=args.get("level"),
        as_of=as_of(args.get("date")), top=args["top"], ontology=graph().ontology)


@bp.route("/coverage")
@bp.requires(*READERS)
@bp.arguments(CoverageQuery, location="query")
@bp.response(200, Coverage)
@bp.doc(**downloadable(Coverage))
def coverage_view(args: dict[str, Any]) -> Any:
    """主题覆盖、时效与需求；供给不足的主题"""
    return download(coverage(args), args["format"], "coverage")


@bp.route("/underserved")
@bp.requires(*READERS)
@bp.arguments(UnderservedQuery, location="query")
@bp.response(200, Underserved)
def underserved(args: dict[str, Any]) -> dict[str, Any]:
    """按机构层级（或机构）列出供给不足的主题"""
    from recommender.analytics.coverage import underserved_by

    groups = underserved_by(snapshot(), topic_demand(), args["by"],
                                                  as_of=as_of(args.get("date")), top=args["top"], ontology=graph().ontology)
    return {key: [row.to_dict() for row in rows] for key, rows in groups.items()}


def indicators(args: dict[str, Any]) -> Any:
    from recommender.analytics.indicators import teaching_indicators

    get_node(args["institution"], "Institution")
    return teaching_indicators(snapshot(), args["institution"], args["period"],
                                                     top=args["top"], ontology=graph().ontology)


@bp.route("/indicators")
@bp.requires(*READERS)
@bp.arguments(IndicatorQuery, location="query")
@bp.response(200, Indicators)
@bp.alt_response(404, response="NOT_FOUND")
@bp.doc(**downloadable(Indicators))
def indicators_view(args: dict[str, Any]) -> Any:
    """某机构某学期（或学年）的教学指标达标情况"""
    return download(indicators(args), args["format"], "indicators")


def programme(args: dict[str, Any]) -> Job:
    """The class programme solve for the validated ``args`` as a job (:func:`solve`); an unknown institution is
    a 404 at once, before any job."""
    from recommender.analytics.programme import ProgrammeRequest, build_programme

    get_node(args["institution"], "Institution")
    request = ProgrammeRequest(
        args["institution"], args["class_type"], args["total_hours"], tuple(args["topics"]), tuple(args["categories"]),
        tuple(args["groups"]), hour_tolerance=args["tolerance"],
        source_institutions=(args["institution"],) if args["own_courses"] else None,
        required_courses=tuple(args["required_courses"]), excluded_courses=tuple(args["excluded_courses"]),
        max_courses=args.get("max_courses"), remote_on_site=args["remote_on_site"])
    catalogue, demand, ontology = snapshot(), topic_demand(), graph().ontology
    basis = {k: v for k, v in args.items() if k != "format"} | {"demand": demand is not None}
    return solve(PROGRAMME_JOB, basis, args["format"], lambda: build_programme(
        catalogue, request, demand=demand, time_limit=20.0, ontology=ontology))


@bp.route("/programme", methods=["POST"])
@bp.requires(*READERS)
@bp.arguments(ProgrammeBody)
@bp.response(200, Programme)
@bp.alt_response(404, response="NOT_FOUND")
@bp.doc(**solve_doc(Programme))
def programme_view(args: dict[str, Any]) -> Any:
    """按班次类型、学员、总学时与专题求解满足教学指标的课程方案；求解较久时返回 202 与后台任务"""
    return solved(programme(args), args["format"], "programme")


@bp.route("/jobs/<int:job_id>")
@bp.requires(*READERS)
@bp.response(200, JobSchema)
@bp.alt_response(404, response="NOT_FOUND")
def job_view(job_id: int) -> dict[str, Any]:
    """本人发起的求解任务（班次方案、推荐名单）的进度与结果（管理员可查看任何任务）"""
    return own_job(job_id).to_dict()


def topic_resources(topic_id: str) -> dict[str, Any]:
    """Teachers expert in the topic, cases and sites illustrating it, and published courses covering it —
    the topic and its narrower topics."""
    from api.catalogue import node_summary

    g = graph()
    topic = get_node(topic_id, "Topic")
    rel = g.ontology.relationship_types
    topics = snapshot().tree.topics_under(topic.id)

    def linked(rel_name: str, label: str) -> list[dict[str, Any]]:
        ids = {e.src for t in topics for e in g.store.edges(type=rel[rel_name], dst=t)}
        return [node_summary(n, g.ontology) for n in g.store.get_nodes(ids) if n.label == label]

    return {"主题": node_summary(topic, g.ontology), "含下位主题": sorted(topics),
            "师资": linked("expertIn", "Teacher"), "案例": linked("illustrates", "CaseStudy"),
            "现场教学点": linked("illustrates", "DemonstrationSite"), "课程": linked("covers", "Course"),
            "教材": linked("covers", "Textbook")}


@bp.route("/topics/<path:topic_id>/resources")
@bp.requires(*READERS)
@bp.response(200, TopicResources)
@bp.alt_response(404, response="NOT_FOUND")
def topic_resources_view(topic_id: str) -> dict[str, Any]:
    """某主题可用的师资、案例、现场教学点、课程与教材（含下位主题）"""
    return topic_resources(topic_id)
