"""Import and export for administrators.

Import takes JSONL, CSV or XLSX uploads (any encoding, title rows, merged headers, several sheets, any column
profile of ``ontology/import_profiles.yaml``) and xAPI statement files (``.json``), and merges them through
``kg.build.import_files``: everything is validated first and every problem is answered row by row (file, line,
field, what was expected); nothing is written unless all files pass.  Untagged items get the tagger's suggested
topic and wait in the review queue (``api.review``).  Export gives the graph as Turtle or JSON-LD, or one table per class as CSV
or XLSX with the field names as header, which the importer reads back.  One class is exported in the request;
the whole graph (every class, maybe every cadre's records) is written by a job, whose file any worker serves
(``GET /api/admin/jobs/<id>/file``).
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flask import Response, jsonify, request, url_for
from flask_smorest import abort
from werkzeug.datastructures import FileStorage
from werkzeug.utils import secure_filename

from api import fields as f
from api.admin import JobSchema
from api.auth import ApiBlueprint, audit, current_user
from api.errors import fail
from api.graph import graph
from api.jobs import JobBusy, jobs
from api.review import import_tagger
from kg.build import BuildFailed, RowTagger, import_files
from kg.profiles import ProfileError, load_profiles
from kg.model import Edge, Node
from kg.ontology import ClassSpec, Ontology
from kg.rdf import FORMATS, graph_to_rdf, serialize
from kg.readers import SUPPORTED_SUFFIXES
from kg.xapi import RECORD_CLASS, record_statements
from kg.spreadsheet import csv_row

__all__ = ["ImportRejected", "bp", "class_table", "import_uploads"]

bp = ApiBlueprint("transfer", __name__, url_prefix="/api/admin", description="导入与导出（管理员）")

LIST_SEPARATOR = "；"
TABLE_FORMATS = ("csv", "xlsx")
#: Study records as xAPI statements (``kg.xapi``): the one format that is not a table or RDF.
XAPI = "xapi"


class ImportForm(f.Schema):
    type = f.String(metadata={"description": "CSV/XLSX 没有 type 列时，所有行的类（如 Course）"})
    profile = f.String(validate=f.length(1, 80),
                       metadata={"description": "CSV/XLSX 的列映射配置（ontology/import_profiles.yaml 中的键或名称）；不填时按表头自动识别"})


class ImportFiles(f.Schema):
    files = f.Raw(metadata={"type": "string", "format": "binary", "description": "一个或多个 .jsonl / .csv / .xlsx 文件"})


class ImportResult(f.Schema):
    files = f.List(f.String())
    nodes = f.Integer()
    edges = f.Integer()
    notes = f.List(f.String(), metadata={"description": "每个文件如何读取：编码、列映射配置、表头所在行"})
    suggested = f.Integer(metadata={"description": "进入主题审核队列的条目数：未标注而由系统建议主题的，及导入标注存疑的"})


class ExportQuery(f.Schema):
    format = f.String(load_default="turtle", validate=f.one_of(["turtle", "jsonld", *TABLE_FORMATS, XAPI]),
                      metadata={"description": "turtle | jsonld | csv | xlsx | xapi（培训记录的 xAPI 陈述，可再导入）"})
    type = f.String(metadata={"description": "只导出这一类（csv 必填）"})
    include_personal = f.Boolean(load_default=False, metadata={"description": "是否包含干部与培训记录（个人数据）"})


def _check_type(ontology: Ontology, name: str | None) -> ClassSpec | None:
    if name is None:
        return None
    spec = ontology.classes.get(name)
    if spec is None or spec.concept_scheme:
        fail(422, "类名无效", {"type": ["应为以下之一：" + "、".join(c.name for c in ontology.data_classes)]})
    return spec


class ImportRejected(Exception):
    """The uploads did not pass validation (or were not importable at all); nothing was written."""

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None,
                 issues: list[dict[str, Any]] | None = None, notes: list[str] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or {}
        self.issues = issues or []
        self.notes = notes or []


def _shown(file: str, shown: dict[str, str]) -> str:
    """The uploaded name of a temporary path, keeping a sheet's mark (``〔工作表 课程〕``) after it."""
    for path, name in shown.items():
        if file.startswith(path):
            return name + file[len(path):]
    return Path(file).name


def import_uploads(uploads: list[FileStorage], default_type: str | None, profile: str | None = None,
                   tagger: RowTagger | None = None) -> dict[str, Any]:
    """Validate and merge uploaded files in one all-or-nothing import; audit the outcome either way.
    ``tagger`` suggests topics for untagged items (they wait in the review queue)."""
    g = graph()
    if profile is not None:
        try:
            load_profiles(g.ontology).get(profile)
        except ProfileError as exc:
            raise ImportRejected("导入配置无效", {"profile": [str(exc)]}) from None
    if default_type is not None and (default_type not in g.ontology.classes
                                     or g.ontology.classes[default_type].concept_scheme):
        raise ImportRejected("类名无效", {"type": ["应为以下之一：" + "、".join(c.name for c in g.ontology.data_classes)]})
    uploads = [u for u in uploads if u.filename]
    if not uploads:
        raise ImportRejected("请上传至少一个文件", {"files": ["必填字段缺失"]})
    with tempfile.TemporaryDirectory(prefix="ganxun-import-") as tmp:
        paths: list[Path] = []
        for k, upload in enumerate(uploads):
            suffix = Path(upload.filename or "").suffix.lower()
            if suffix not in SUPPORTED_SUFFIXES:
                raise ImportRejected("文件格式不受支持", {"files": [f"{upload.filename}：应为 {'、'.join(SUPPORTED_SUFFIXES)}"]})
            stem = Path(secure_filename(upload.filename or "") or "upload").stem or "upload"
            path = Path(tmp) / f"{k:02d}-{stem}{suffix}"
            upload.save(path)
            paths.append(path)
        shown = {str(p): (u.filename or p.name) for p, u in zip(paths, uploads)}
        try:
            report = import_files(g.store, paths, g.ontology, default_type, profile=profile, tagger=tagger)
        except BuildFailed as exc:
            issues = [{"file": _shown(i.file, shown), "line": i.line, "field": i.field, "message": i.message}
                      for i in exc.issues]
            audit("导入被拒绝", None, files=list(shown.values()), problems=len(issues))
            raise ImportRejected(f"校验未通过：{len(issues)} 个问题；未写入任何数据", issues=issues,
                                 notes=_renamed(exc.notes, paths, uploads)) from None
        except Exception as exc:  # the import died (a store error, a bug): nothing was written, say who tried what
            audit("导入失败", None, files=list(shown.values()), error=f"{type(exc).__name__}: {exc}"[:500])
            raise
    g.refresh(force=True)  # this worker answers from the new version at once; the others within a second
    audit("导入", None, files=list(shown.values()), nodes=len(report.nodes), edges=len(report.edges),
          suggested=report.suggested)
    return {"files": list(shown.values()), "nodes": len(report.nodes), "edges": len(report.edges),
            "notes": _renamed(report.notes, paths, uploads), "suggested": report.suggested}


def _renamed(notes: list[str], paths: list[Path], uploads: list[FileStorage]) -> list[str]:
    """Notes with each temporary file name replaced by the name it was uploaded as."""
    out = []
    for note in notes:
        for path, upload in zip(paths, uploads):
            note = note.replace(path.name, upload.filename or path.name)
        out.append(note)
    return out


@bp.route("/import", methods=["POST"])
@bp.requires("admin")
@bp.arguments(ImportForm, location="form")
@bp.arguments(ImportFiles, location="files")
@bp.response(201, ImportResult)
@bp.alt_response(422, response="UNPROCESSABLE_ENTITY")
def import_upload(form: dict[str, Any], _files: dict[str, Any]) -> dict[str, Any]:
    """上传 JSONL / CSV / XLSX 合并导入：全部通过校验才写入，否则逐行列出问题"""
    try:
        return import_uploads(request.files.getlist("files"), form.get("type"), form.get("profile"), import_tagger())
    except ImportRejected as exc:
        abort(422, message=str(exc), errors=exc.fields, issues=exc.issues)


def _selection(ontology: Ontology, spec: ClassSpec | None, include_personal: bool) -> tuple[list[Node], list[Edge]]:
    store = graph().store
    personal = graph().personal_labels
    nodes = [n for n in store.nodes(spec.name if spec else None) if include_personal or n.label not in personal]
    if spec:  # one bulk read of the class's outgoing edges, in node order
        by_src = store.edges_from(n.id for n in nodes)
        return nodes, [e for n in nodes for e in by_src[n.id]]
    keep = {n.id for n in nodes}
    return nodes, [e for e in store.edges() if e.src in keep and e.dst in keep]


def class_table(spec: ClassSpec, nodes: Iterable[Node], edges: Iterable[Edge]) -> list[list[Any]]:
    """Rows (header first) of one class: 类型, 编号 and every field under its Chinese label (the importer's own
    profile reads these labels back, kg.profiles); lists joined by ``；``."""
    fields = sorted(spec.fields)
    by_src: dict[tuple[str, str], list[Edge]] = {}
    for e in edges:
        by_src.setdefault((e.src, e.type), []).append(e)
    rows: list[list[Any]] = [["类型", "编号", *(spec.fields[name].label or name for name in fields)]]
    for node in nodes:
        row: list[Any] = [spec.name, node.id]
        for name in fields:
            field = spec.fields[name]
            if field.is_relation:
                linked = sorted(by_src.get((node.id, field.rel_type or ""), []), key=lambda e: (e.props.get("ord", 0), e.dst))
                row.append(LIST_SEPARATOR.join(e.dst for e in linked))
                continue
            value = node.props.get(name)
            if isinstance(value, list):
                value = LIST_SEPARATOR.join(str(v) for v in value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            row.append("" if value is None else value)
        rows.append(row)
    return rows


def _csv(rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(csv_row(r) for r in rows)
    return buffer.getvalue().encode("utf-8-sig")


def _xlsx(tables: dict[str, list[list[Any]]]) -> bytes:
    from openpyxl import Workbook

    from kg.spreadsheet import xlsx_row

    book = Workbook()
    book.remove(book.active)
    for title, rows in tables.items():
        sheet = book.create_sheet(title[:31])
        for row in rows:
            sheet.append(xlsx_row(row))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


MEDIA = {
    "turtle": ("text/turtle; charset=utf-8", "ttl"),
    "jsonld": ("application/ld+json", "jsonld"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    XAPI: ("application/json", "json"),
}


#: The job kind of whole-graph exports (one at a time; the same export of the same graph version is one job).
EXPORT_JOB = "整图导出"


def _render(fmt: str, spec: ClassSpec | None, nodes: list[Node], edges: list[Edge], include_personal: bool) -> bytes:
    """The export's bytes: RDF of the selection, or its tables (one class as CSV; every class as XLSX sheets)."""
    g = graph()
    if fmt in FORMATS:
        return serialize(graph_to_rdf(nodes, edges, g.ontology), fmt).encode("utf-8")
    if fmt == XAPI:
        platforms = {n.id: str(n.props.get("name", n.id)) for n in g.store.nodes("Platform")}
        statements = record_statements(nodes, edges, g.ontology, platforms)
        return json.dumps(statements, ensure_ascii=False, indent=1).encode("utf-8")
    classes = [spec] if spec else [c for c in g.ontology.classes.values()
                                    if c.concept_scheme is None and (include_personal or not c.personal)]
    tables = {c.label: class_table(c, [n for n in nodes if n.label == c.name], edges) for c in classes}
    return _csv(next(iter(tables.values()))) if fmt == "csv" else _xlsx(tables)


def _export_job(fmt: str, include_personal: bool) -> Response:
    """Submit the whole-graph export as a job (202 with the job; its file at ``/api/admin/jobs/<id>/file``)."""
    g = graph()
    suffix = MEDIA[fmt][1]

    def work(progress: Any) -> Path:
        progress(0, 2, "正在读取整个图谱…")
        nodes, edges = _selection(g.ontology, None, include_personal)
        progress(1, 2, f"正在写出 {len(nodes):,} 个节点、{len(edges):,} 条关系…")
        path = jobs().output_path(EXPORT_JOB, f".{suffix}")
        path.write_bytes(_render(fmt, None, nodes, edges, include_personal))
        progress(2, 2, f"完成：{len(nodes):,} 个节点、{len(edges):,} 条关系")
        return path

    key = f"{fmt}:{'personal' if include_personal else 'catalogue'}:v{g.version}"
    try:
        job = jobs().submit(EXPORT_JOB, work, key=key, user=current_user().username)
    except JobBusy as exc:
        fail(409, f"另一个整图导出正在进行（任务 {exc.job.id}），请稍后再试", {"format": [f"任务 {exc.job.id} 完成后再导出"]})
    if include_personal:
        audit("导出个人数据", None, format=fmt, job=job.id)
    response = jsonify(job.to_dict())
    response.status_code = 202
    response.headers["Location"] = url_for("admin.job_status", job_id=job.id)
    return response


@bp.route("/export")
@bp.requires("admin")
@bp.arguments(ExportQuery, location="query")
@bp.response(200, content_type="application/octet-stream", description="导出的文件（指定 type 时）")
@bp.alt_response(202, schema=JobSchema, description="整图导出已作为后台任务开始：返回任务；完成后从 GET /api/admin/jobs/{id}/file 下载")
@bp.alt_response(409, response="CONFLICT")
def export(args: dict[str, Any]) -> Response:
    """导出图谱：某一类（type）当即返回 Turtle / JSON-LD（含 schema.org 术语）/ CSV / XLSX（可再导入）；
    不指定 type 时整图导出在后台进行，返回任务（202）"""
    g = graph()
    fmt = args["format"]
    spec = _check_type(g.ontology, args.get("type"))
    if spec and spec.personal and not args["include_personal"]:
        fail(422, "个人数据需明确要求导出", {"include_personal": ["导出干部或培训记录时应为 true"]})
    if fmt == "csv" and spec is None:
        fail(422, "CSV 一次只导出一类", {"type": ["format=csv 时必填"]})
    if fmt == XAPI and (spec is None or spec.name != RECORD_CLASS):
        fail(422, "xAPI 只导出培训记录", {"type": [f"format=xapi 时应为 {RECORD_CLASS}"]})
    if spec is None:
        return _export_job(fmt, args["include_personal"])
    nodes, edges = _selection(g.ontology, spec, args["include_personal"])
    body = _render(fmt, spec, nodes, edges, args["include_personal"])
    media, suffix = MEDIA[fmt]
    if args["include_personal"]:
        audit("导出个人数据", spec.name, format=fmt, nodes=len(nodes))
    return Response(body, mimetype=media.split(";")[0], headers={
        "Content-Disposition": f'attachment; filename="ganxun-{spec.name}.{suffix}"',
        "Content-Type": media,
    })
