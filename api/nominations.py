"""好课程 / 好教材 nominations for evaluators: the scoring table with each item's breakdown, the optimiser
under the plan's quotas (case share ≥ 1/3, per list or over both lists), check mode for a hand-made list
(uploaded CSV/XLSX or ids), and CSV/XLSX export of every result.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from api import fields as f
from api.analytics import download, downloadable, solve, solve_doc, solved, topic_demand
from api.auth import ApiBlueprint
from api.errors import fail
from api.graph import graph
from api.jobs import Job
from api.reports import as_of, report_schema
from api.services import recommender, snapshot
from kg.ontology import load_ontology
from recommender.catalogue.vocabulary import Vocabulary

__all__ = ["NOMINATION_JOB", "bp", "check", "check_upload", "config_from", "optimise", "scores"]

#: the case-quota readings (rules.yaml vocabulary.quota_modes), for validating and documenting quota_mode
QUOTA_MODES = Vocabulary.from_ontology(load_ontology()).quota_modes

bp = ApiBlueprint("nominations", __name__, url_prefix="/api/nominations",
                  description="好课程、好教材推荐：评分、名单优化、名单核验与导出")

READERS = ("evaluator", "admin")
#: The job kind of the nomination optimiser (each request's kind ends with its key, see api.analytics.solve).
NOMINATION_JOB = "推荐名单求解"
FORMATS = ("json", "csv", "xlsx")
UPLOAD_SUFFIXES = (".csv", ".xlsx")


def _component_keys() -> tuple[str, ...]:
    from recommender.analytics.scoring import COMPONENTS

    return COMPONENTS


class ConfigFields(f.Schema):
    """Overrides of ``nomination`` in rules.yaml; anything left out keeps the configured value."""

    year = f.Integer(validate=f.range_(2000, 2100), metadata={"description": "推荐年度（默认今年）"})
    courses = f.Integer(validate=f.range_(0, 1000), metadata={"description": "好课程名额"})
    textbooks = f.Integer(validate=f.range_(0, 1000), metadata={"description": "好教材名额"})
    quota_mode = f.String(validate=f.one_of(list(QUOTA_MODES)),
                          metadata={"description": "案例占比口径：" + "；".join(f"{k} {v}" for k, v in QUOTA_MODES.items())})
    case_share_min = f.Float(validate=f.range_(0, 1), metadata={"description": "案例占比下限（0—1）"})
    max_per_institution = f.Integer(validate=f.range_(1, 1000), metadata={"description": "每个机构至多入选项数"})
    min_per_branch = f.Integer(validate=f.range_(0, 100), metadata={"description": "每个一级主题至少入选课程数"})
    weights = f.Dict(keys=f.String(), values=f.Float(validate=f.range_(0, 100)),
                     metadata={"description": "推荐指标权重：expert、rating、completion、freshness、priority、demand、case_value"})
    previous = f.List(f.String(validate=f.length(1, 200)), validate=f.length(0, 5000),
                      metadata={"description": "往年已入选的编号（不再入选）"})
    date = f.Date(metadata={"description": "评分基准日（YYYY-MM-DD）"})


class OptimiseBody(ConfigFields):
    format = f.String(load_default="json", validate=f.one_of(FORMATS), metadata={"description": "json | csv | xlsx"})


class CheckBody(ConfigFields):
    ids = f.List(f.String(validate=f.length(1, 200)), required=True, validate=f.length(1, 5000),
                 metadata={"description": "名单中的课程、教材编号"})
    format = f.String(load_default="json", validate=f.one_of(FORMATS))


class CheckForm(ConfigFields):
    format = f.String(load_default="json", validate=f.one_of(FORMATS))


class CheckFile(f.Schema):
    file = f.Raw(required=True, metadata={"type": "string", "format": "binary", "description": "含『编号』列的 CSV 或 XLSX 名单"})


class ScoresQuery(f.Schema):
    kind = f.String(validate=f.one_of(["course", "textbook"]), metadata={"description": "course | textbook（默认两者）"})
    eligible = f.Boolean(metadata={"description": "只列出可推荐（已发布且通过门槛）的"})
    page = f.Integer(load_default=1, validate=f.range_(1, 10**6))
    per_page = f.page_size(50, 500)
    date = f.Date()


Nominations = report_schema("NominationResult", "年度名单（每项含得分明细）、规则核对与求解信息，或无可行名单的原因")
Audit = report_schema("NominationAudit", "手工名单的规则核对与最少调整建议")
Scores = report_schema("CandidateScores", "候选课程与教材的得分与明细（分页）")
Config = report_schema("NominationConfig", "当前推荐规则（来自 rules.yaml）")


def config_from(args: dict[str, Any]) -> Any:
    """A NominationConfig from rules.yaml with the request's overrides; bad values → 422."""
    from recommender.analytics.nominations import NominationConfig

    overrides = {k: args[k] for k in ("year", "courses", "textbooks", "quota_mode", "case_share_min",
                                      "max_per_institution", "min_per_branch", "weights", "previous") if args.get(k) is not None}
    unknown = set(overrides.get("weights", {})) - set(_component_keys())
    if unknown:
        fail(422, "请求参数未通过校验", {"weights": [f"不认识的指标：{'、'.join(sorted(unknown))}；应为 {'、'.join(_component_keys())}"]})
    if "weights" in overrides:
        overrides["weights"] = {**graph().ontology.rules["nomination"]["weights"], **overrides["weights"]}
    return NominationConfig.from_rules(graph().ontology.rules, **overrides)


def optimise(args: dict[str, Any]) -> Job:
    """The nomination solve for the validated ``args`` as a job (:func:`api.analytics.solve`); bad overrides
    are a 422 at once, before any job.  The key holds the resolved day (the scores age with it)."""
    from recommender.analytics.nominations import optimise_nominations

    config = config_from(args)
    catalogue, demand, day, ontology = snapshot(), topic_demand(), as_of(args.get("date")), graph().ontology
    basis = {k: v for k, v in args.items() if k != "format"} | {"demand": demand is not None,
                                                                "day": recommender().today(day)}
    return solve(NOMINATION_JOB, basis, args["format"], lambda: optimise_nominations(
        catalogue, config, demand=demand, as_of=day, time_limit=30.0, ontology=ontology))


def check(args: dict[str, Any], source: Any) -> Any:
    from recommender.analytics.audit import check_nomination_list

    config = config_from(args)
    return check_nomination_list(snapshot(), source, config, demand=topic_demand(),
                                                       as_of=as_of(args.get("date")), time_limit=30.0,
                                                       ontology=graph().ontology)


def check_upload(upload: Any, args: dict[str, Any]) -> Any:
    """Check a list uploaded as CSV/XLSX (a column headed 编号); an unreadable file is a 422, not a 500."""
    from recommender.analytics.errors import AnalyticsError
    from recommender.analytics.exports import read_id_column

    suffix = Path(upload.filename or "").suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        fail(422, "文件格式不受支持", {"file": [f"应为 {'、'.join(UPLOAD_SUFFIXES)}"]})
    with tempfile.TemporaryDirectory(prefix="ganxun-check-") as tmp:
        path = Path(tmp) / f"list{suffix}"
        upload.save(path)
        try:
            ids = read_id_column(path)
        except AnalyticsError as exc:
            fail(422, str(exc), {"file": [str(exc)]})
        except Exception as exc:  # openpyxl/csv raise many kinds of error for a damaged file
            fail(422, "名单文件无法读取", {"file": [f"应为含『编号』列的 CSV 或 XLSX（{type(exc).__name__}）"]})
    if not ids:
        fail(422, "名单为空", {"file": ["『编号』列下没有任何编号"]})
    return check(args, ids)


def scores(args: dict[str, Any]) -> dict[str, Any]:
    from recommender.analytics.scoring import score_candidates

    kinds = (args["kind"],) if args.get("kind") else ("course", "textbook")
    items = score_candidates(snapshot(), demand=topic_demand(), kinds=kinds,
                                                   as_of=as_of(args.get("date")), ontology=graph().ontology)
    if args.get("eligible") is not None:
        items = [c for c in items if c.eligible == args["eligible"]]
    start = (args["page"] - 1) * args["per_page"]
    return {"total": len(items), "page": args["page"], "per_page": args["per_page"],
            "items": [c.to_dict() for c in items[start:start + args["per_page"]]]}


@bp.route("/config")
@bp.requires(*READERS)
@bp.response(200, Config)
def config_view() -> dict[str, Any]:
    """当前推荐规则：名额、案例占比口径、门槛与指标权重"""
    config = config_from({})
    return {"规则": dict(config.rules_used(graph().ontology)), "权重": dict(config.weights),
            "案例占比口径": dict(QUOTA_MODES), "quota_mode": config.quota_mode}


@bp.route("/scores")
@bp.requires(*READERS)
@bp.arguments(ScoresQuery, location="query")
@bp.response(200, Scores)
def scores_view(args: dict[str, Any]) -> dict[str, Any]:
    """候选课程、教材的评分表（含得分明细，分页）"""
    return scores(args)


@bp.route("/optimise", methods=["POST"])
@bp.requires(*READERS)
@bp.arguments(OptimiseBody)
@bp.response(200, Nominations)
@bp.doc(**solve_doc(Nominations))
def optimise_view(args: dict[str, Any]) -> Any:
    """在名额、案例占比（不少于 1/3）、机构上限与门槛约束下求解总分最高的年度名单；format=xlsx/csv 导出；求解较久时返回 202 与后台任务"""
    return solved(optimise(args), args["format"], f"nominations-{args.get('year') or 'current'}")


@bp.route("/check", methods=["POST"])
@bp.requires(*READERS)
@bp.arguments(CheckBody)
@bp.response(200, Audit)
@bp.doc(**downloadable(Audit))
def check_view(args: dict[str, Any]) -> Any:
    """核验一份名单（编号列表）：逐条规则核对，不合规时给出最少调整"""
    return download(check(args, args["ids"]), args["format"], "nomination-check")


@bp.route("/check/upload", methods=["POST"])
@bp.requires(*READERS)
@bp.arguments(CheckForm, location="form")
@bp.arguments(CheckFile, location="files")
@bp.response(200, Audit)
@bp.doc(**downloadable(Audit))
def check_upload_view(form: dict[str, Any], files: dict[str, Any]) -> Any:
    """上传 CSV / XLSX 名单（含『编号』列）核验"""
    return download(check_upload(files["file"], form), form["format"], "nomination-check")

