"""A cadre's own learning: profile, hour compliance, knowledge gaps, learning map, recommendations with
reasons, the learning path, and a download of their own records.

A cadre account reads only its own cadre (403 otherwise); administrators read anyone's; designers and
evaluators, who work with aggregates, read none.  The checks live in ``api.graph``; every answer comes from the
request's :class:`api.services.CadreView` (one profile fetch, one gap analysis), and the recommender's errors
are mapped to 404 / 422 in ``api.errors``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from flask import Response

from api import fields as f
from api.auth import ApiBlueprint, audit, current_user
from api.errors import fail
from api.graph import get_node, graph, require_reader_of
from api.reports import as_of, report_schema
from api.services import CadreView, cadre_view, study_choices
from kg.spreadsheet import csv_row
from recommender.learner.choices import HIDDEN_STATES, FeedbackRules
from recommender.ranking.recommend import completed_courses
from recommender.service import MAX_INTENT_CHARS

__all__ = ["PLAN_CLASSES", "bp", "feedback_rules", "forget_choice", "put_choice", "study_plan"]

bp = ApiBlueprint("cadres", __name__, url_prefix="/api/cadres",
                  description="干部本人：学时、缺口、学习地图、推荐、学习路径、本人档案下载")

CADRE_READERS = ("cadre", "admin")
MAX_K = 50


class DateQuery(f.Schema):
    date = f.Date(metadata={"description": "统计日期（YYYY-MM-DD），默认今天"})


class RecommendQuery(DateQuery):
    k = f.Integer(load_default=10, validate=f.range_(1, MAX_K), metadata={"description": f"推荐条数（1—{MAX_K}）"})
    intent = f.String(validate=f.length(1, MAX_INTENT_CHARS), metadata={"description": "学习意向（一两句话，可选）"})


class PathQuery(DateQuery):
    intent = f.String(validate=f.length(1, MAX_INTENT_CHARS), metadata={"description": "学习意向（可选）"})


class RecordsQuery(f.Schema):
    format = f.String(load_default="json", validate=f.one_of(["json", "csv", "xlsx"]),
                      metadata={"description": "json | csv | xlsx"})


Profile = report_schema("CadreProfile", "干部画像：类别、岗位、培训对象与合并后的学习要求")
Hours = report_schema("HourReport", "学时达标：每条学时规则的进度、预计期末学时与状态；领导班子培训要求；可疑学习行为")
Gaps = report_schema("GapReport", "知识缺口：每个要求主题的有效覆盖学时、覆盖率与说明")
LearningMap = report_schema("LearningMap", "学习地图：按板块分组的要求主题及覆盖情况")
Recommendations = report_schema("Recommendations", "推荐课程（附理由）、配套资源与主要缺口")
LearningPath = report_schema("LearningPath", "学习路径：按先修顺序排列、达到本年度尚需学时的课程")
Records = report_schema("CadreRecords", "本人培训记录")
StudyPlan = report_schema("StudyPlan", "本人学习计划与对推荐的反馈：学习计划中的条目、已标记的条目（已学过、不相关、以后再说）及其生效情况")
ChoiceReport = report_schema("StudyChoice", "对一个条目的标记：状态、状态名称、标记时间（北京时间）")

#: Classes a cadre may keep in a study plan or answer as a suggestion: what can be taken, read or visited.
PLAN_CLASSES = ("Course", "Textbook", "CaseStudy", "DemonstrationSite", "TeachingRoute", "TrainingClass")


def feedback_rules() -> FeedbackRules:
    """``rules.yaml`` ``feedback`` of the current graph's ontology: the states and their labels."""
    return FeedbackRules.from_rules(graph().ontology.rules)


def _known_state(value: str) -> None:
    """Checked per request against the current graph's feedback states, not a list read once at import from the
    default ontology directory: the routes answer from ``graph().ontology``, so the body must agree with it."""
    f.one_of(feedback_rules().states)(value)


class ChoiceBody(f.Schema):
    state = f.String(required=True, validate=_known_state,
                     metadata={"description": "planned（列入学习计划）| done（已学过）| irrelevant（不相关）| later（以后再说）"})


def view(cadre_id: str, args: dict[str, Any]) -> CadreView:
    """The request's view of the cadre as of ``?date=`` (access checked first)."""
    return cadre_view(cadre_id, as_of(args.get("date")))


def _route(path: str, schema: type, summary: str, query: type = DateQuery, **extra: Any):
    def decorator(view):
        view.__doc__ = summary
        view = bp.response(200, schema)(view)
        view = bp.alt_response(404, response="NOT_FOUND")(view)
        view = bp.arguments(query, location="query")(view)
        view = bp.requires(*CADRE_READERS)(view)
        return bp.route(path, **extra)(view)

    return decorator


@_route("/<path:cadre_id>/hours", Hours, "学时达标情况（含预计期末学时）")
def hours(args: dict[str, Any], cadre_id: str) -> dict[str, Any]:
    return view(cadre_id, args).hours.to_dict()


@_route("/<path:cadre_id>/gaps", Gaps, "知识缺口")
def gaps(args: dict[str, Any], cadre_id: str) -> dict[str, Any]:
    return view(cadre_id, args).gaps.to_dict()


@_route("/<path:cadre_id>/learning-map", LearningMap, "学习地图（要求主题按板块分组，含覆盖率）")
def learning_map(args: dict[str, Any], cadre_id: str) -> dict[str, Any]:
    return view(cadre_id, args).learning_map.to_dict()


@_route("/<path:cadre_id>/recommendations", Recommendations, "推荐课程（附理由）", RecommendQuery)
def recommendations(args: dict[str, Any], cadre_id: str) -> dict[str, Any]:
    return view(cadre_id, args).recommendations(args["k"], args.get("intent")).to_dict()


@_route("/<path:cadre_id>/learning-path", LearningPath, "学习路径", PathQuery)
def learning_path(args: dict[str, Any], cadre_id: str) -> dict[str, Any]:
    return view(cadre_id, args).learning_path(args.get("intent")).to_dict()


def own_records(cadre_id: str) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the cadre's training records (field labels in Chinese), oldest first: the records with
    their relations in one read (``Store.referrers``), the names of what they point at in a second."""
    g = graph()
    spec = g.ontology.classes["TrainingRecord"]
    records = g.store.referrers([cadre_id], g.ontology.relationship_types["ofCadre"])[cadre_id]
    names = {n.id: n.props.get("name", n.id) for n in g.store.get_nodes(e.dst for r in records for e in r.edges)}
    fields = [name for name in sorted(spec.fields) if name != "ofCadre"]
    header = ["编号", *(spec.fields[name].label for name in fields)]
    rows: list[list[Any]] = []
    for record in sorted(records, key=lambda r: (r.node.props.get("date", ""), r.node.id)):
        node, links = record.node, {e.type: e.dst for e in record.edges}
        row: list[Any] = [node.id]
        for name in fields:
            field = spec.fields[name]
            if field.is_relation:
                target = links.get(field.rel_type or "")
                row.append(f"{names.get(target, target)}（{target}）" if target else "")
            else:
                value = node.props.get(name)
                row.append("是" if value is True else "否" if value is False else "" if value is None else value)
        rows.append(row)
    return header, rows


# ─── the cadre's study plan and feedback (kg.choices; the ranker reads them with the profile) ───
def _require_owner(cadre_id: str) -> None:
    """A cadre changes only their own plan (another cadre's id: the one 403 of every cadre route); administrators
    read it but do not write it."""
    require_reader_of(cadre_id)
    if current_user().role != "cadre":
        fail(403, "学习计划与反馈只能由干部本人修改")


def study_plan(view: CadreView) -> dict[str, Any]:
    """The cadre's plan (kept items, with whether a record shows them completed) and their other marks, latest
    first; a mark whose item has left the catalogue is still listed, so it can be withdrawn."""
    g, rules = graph(), feedback_rules()
    choices = view.profile.choices
    nodes = {n.id: n for n in g.store.get_nodes(c.item_id for c in choices)}
    catalogue = view.recommender.snapshot
    done = {catalogue.course_ids[p] for p in completed_courses(view.profile, catalogue, view.day)}

    def entry(choice: Any) -> dict[str, Any]:
        node = nodes.get(choice.item_id)
        spec = g.ontology.classes.get(node.label) if node is not None else None
        props = node.props if node is not None else {}
        until = choice.day + dt.timedelta(days=rules.later_days) if choice.state == "later" else None
        return {
            "编号": choice.item_id, "名称": props.get("name") or "（已不在目录中）", "类型": node.label if node else None,
            "类型名称": spec.label if spec else "", "状态": choice.state, "状态名称": rules.label(choice.state),
            "标记时间": choice.local.strftime("%Y-%m-%d %H:%M"), "学时": props.get("hours"),
            "授课方式": props.get("deliveryMode"), "已有完成记录": choice.item_id in done,
            "排后至": until.isoformat() if until else None,
        }

    entries = [entry(c) for c in choices]
    return {
        "干部编号": view.cadre_id,
        "学习计划": [e for e in entries if e["状态"] == "planned"],
        "已标记": [e for e in entries if e["状态"] != "planned"],
        "状态": dict(rules.states),
        "说明": (f"列入学习计划、标记为{'、'.join(rules.label(s) for s in HIDDEN_STATES if s != 'planned')}的条目不再出现在推荐中；"
                 f"标记为「{rules.label('later')}」的在 {rules.later_days} 天内排在后面。标记为已学过不计学时，学时以培训记录为准。"),
    }


def put_choice(cadre_id: str, item_id: str, state: str) -> dict[str, Any]:
    """Record the cadre's ``state`` for a catalogue item (404: no such item; 422: not an item one studies)."""
    _require_owner(cadre_id)
    g = graph()
    node = g.store.get_node(item_id)
    if node is None or node.label in g.personal_labels:
        fail(404, f"未找到条目『{item_id}』")
    if node.label not in PLAN_CLASSES:
        names = "、".join(g.ontology.classes[c].label for c in PLAN_CLASSES)
        fail(422, f"只能标记{names}，『{item_id}』是{g.ontology.classes[node.label].label}", {"item": [item_id]})
    choice = study_choices().put(cadre_id, item_id, state)
    label = feedback_rules().label(choice.state)
    audit("标记学习条目", item_id, 状态=label)
    return {"编号": item_id, "名称": node.props.get("name"), "状态": choice.state, "状态名称": label,
            "标记时间": choice.local.strftime("%Y-%m-%d %H:%M")}


def forget_choice(cadre_id: str, item_id: str) -> bool:
    """Withdraw the cadre's mark on an item (out of the plan, feedback undone); False when there was none."""
    _require_owner(cadre_id)
    removed = study_choices().remove(cadre_id, [item_id]) > 0
    if removed:
        audit("撤销学习条目标记", item_id)
    return removed


@_route("/<path:cadre_id>/choices", StudyPlan, "本人学习计划与对推荐的反馈")
def choices(args: dict[str, Any], cadre_id: str) -> dict[str, Any]:
    return study_plan(view(cadre_id, args))


@bp.route("/<path:cadre_id>/choices/<item_id>", methods=["PUT"])
@bp.requires("cadre")
@bp.arguments(ChoiceBody)
@bp.response(200, ChoiceReport)
@bp.alt_response(404, response="NOT_FOUND")
def put_choice_route(body: dict[str, Any], cadre_id: str, item_id: str) -> dict[str, Any]:
    """标记一个条目：列入学习计划、已学过、不相关或以后再说（只限本人；再次标记即更改）"""
    return put_choice(cadre_id, item_id, body["state"])


@bp.route("/<path:cadre_id>/choices/<item_id>", methods=["DELETE"])
@bp.requires("cadre")
@bp.response(200, ChoiceReport)
@bp.alt_response(404, response="NOT_FOUND")
def delete_choice_route(cadre_id: str, item_id: str) -> dict[str, Any]:
    """撤销对一个条目的标记：移出学习计划或撤回反馈（只限本人）"""
    if not forget_choice(cadre_id, item_id):
        fail(404, f"『{item_id}』不在本人的学习计划或标记中")
    return {"编号": item_id, "状态": None, "状态名称": "已撤销"}


@bp.route("/<path:cadre_id>/records")
@bp.requires(*CADRE_READERS)
@bp.arguments(RecordsQuery, location="query")
@bp.response(200, Records)
@bp.alt_response(404, response="NOT_FOUND")
def records(args: dict[str, Any], cadre_id: str) -> Any:
    """下载本人培训档案（JSON、CSV 或 XLSX）"""
    node = get_node(cadre_id, "Cadre")
    header, rows = own_records(cadre_id)
    if current_user().cadre_id != cadre_id:
        audit("查阅干部档案", cadre_id, format=args["format"])
    if args["format"] == "json":
        return {"干部编号": cadre_id, "姓名": node.props.get("name"), "记录": [dict(zip(header, r)) for r in rows]}
    stamp = dt.date.today().isoformat()
    if args["format"] == "csv":
        buffer = io.StringIO()
        csv.writer(buffer).writerows(csv_row(r) for r in [header, *rows])
        body, media, suffix = buffer.getvalue().encode("utf-8-sig"), "text/csv; charset=utf-8", "csv"
    else:
        from openpyxl import Workbook

        from kg.spreadsheet import xlsx_row

        book = Workbook()
        sheet = book.active
        sheet.title = "培训记录"
        for row in [header, *rows]:
            sheet.append(xlsx_row(row))
        out = io.BytesIO()
        book.save(out)
        body, media, suffix = out.getvalue(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"
    filename = f"records-{cadre_id.split(':')[-1]}-{stamp}.{suffix}"
    return Response(body, headers={"Content-Type": media, "Content-Disposition": f'attachment; filename="{filename}"'})


@bp.route("/<path:cadre_id>")
@bp.requires(*CADRE_READERS)
@bp.arguments(DateQuery, location="query")
@bp.response(200, Profile)
@bp.alt_response(404, response="NOT_FOUND")
def profile(args: dict[str, Any], cadre_id: str) -> dict[str, Any]:
    """干部画像与学习要求"""
    return view(cadre_id, args).profile.to_dict()
