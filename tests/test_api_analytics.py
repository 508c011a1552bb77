"""Designer and evaluator endpoints: coverage, indicators (hand-computed on the fixture corpus), the
programme builder, nominations under the plan's quotas, check mode and exports."""

from __future__ import annotations

import csv
import io
import math

import pytest
from openpyxl import load_workbook

from tests.test_api_support import (  # noqa: F401  (fixtures)
    bearer, index_dir, sample_app, sample_home, sample_index_dir, shared_app, shared_client, template_home,
)


@pytest.fixture
def designer(shared_client, shared_app):
    header = bearer(shared_app, "designer")
    return lambda method, url, **kw: shared_client.open(url, method=method, headers=header, **kw)


@pytest.fixture(scope="module")
def evaluator(sample_app):
    client = sample_app.test_client()
    header = bearer(sample_app, "evaluator")
    return lambda method, url, **kw: client.open(url, method=method, headers=header, **kw)


def test_indicators_hand_computed(designer) -> None:
    # class:t-main-2025 (主体班): course:t-theory 3 h (讲授, 专职教师) + course:t-village-case 2 h (案例式/研讨式, 领导干部)
    report = designer("GET", "/api/analytics/indicators",
                      query_string={"institution": "inst:t-province-school", "period": "2025春"}).json
    by_id = {r["id"]: r for r in report["指标"]}
    assert by_id["leader-lecturer-share"]["实际值"] == pytest.approx(2 / 5)
    assert by_id["case-teaching-share"]["实际值"] == pytest.approx(2 / 5)
    assert by_id["case-teaching-share"]["状态"] == "达标"  # ≥ 15 %
    assert report["机构名称"] == "测试省委党校（行政学院）"


@pytest.mark.parametrize(("query", "status", "fragment"), [
    ({"institution": "inst:nope", "period": "2025春"}, 404, "inst:nope"),
    ({"institution": "inst:t-province-school", "period": "二〇二五春"}, 422, "期间"),
    ({"institution": "inst:t-province-school"}, 422, "period"),
])
def test_indicator_errors(designer, query, status, fragment) -> None:
    response = designer("GET", "/api/analytics/indicators", query_string=query)
    assert response.status_code == status and fragment in str(response.json)


def test_coverage_counts_published_courses_and_exports(designer) -> None:
    report = designer("GET", "/api/analytics/coverage").json
    covered = {r["topic"]: r["已发布课程数"] for r in report["主题覆盖"] if r["已发布课程数"]}
    assert covered == {"topic:theory": 1, "topic:competence": 1, "topic:newtech": 1}  # the draft is not counted
    xlsx = designer("GET", "/api/analytics/coverage", query_string={"format": "xlsx"})
    book = load_workbook(io.BytesIO(xlsx.data))
    assert "主题覆盖" in book.sheetnames
    assert designer("GET", "/api/analytics/coverage", query_string={"level": "乡"}).status_code == 422


def test_coverage_uses_cadre_demand(designer) -> None:
    report = designer("GET", "/api/analytics/coverage").json
    assert report["需求数据"].startswith("学员差距分析")
    demand = {r["topic"]: r["需求人数"] for r in report["主题覆盖"] if r["需求人数"]}
    assert demand and set(demand.values()) <= {1, 2}  # the fixture corpus has two cadres


def test_underserved_by_level_and_by_institution(designer) -> None:
    by_level = designer("GET", "/api/analytics/underserved", query_string={"top": 3}).json
    assert by_level and all(len(rows) <= 3 for rows in by_level.values())
    by_institution = designer("GET", "/api/analytics/underserved", query_string={"by": "institution", "top": 1}).json
    assert any("测试省委党校" in key for key in by_institution)
    assert designer("GET", "/api/analytics/underserved", query_string={"by": "region"}).status_code == 422


def test_topic_resources_include_narrower_topics(designer) -> None:
    data = designer("GET", "/api/analytics/topics/topic:competence/resources").json
    assert {t["id"] for t in data["师资"]} == {"teacher:t-b"}
    assert {s["id"] for s in data["现场教学点"]} == {"site:t-village"}
    assert {c["id"] for c in data["案例"]} == {"case:t-village"}


def test_programme_reports_why_it_is_infeasible(designer) -> None:
    result = designer("POST", "/api/analytics/programme",
                      json={"institution": "inst:t-province-school", "class_type": "主体班", "total_hours": 5}).json
    assert result["可行"] is False and result["原因"]
    bad = designer("POST", "/api/analytics/programme", json={"institution": "inst:t-province-school", "total_hours": -1})
    assert bad.status_code == 422 and set(bad.json["字段"]) == {"class_type", "total_hours"}


def _case_share(items: list[dict]) -> float:
    return sum(1 for c in items if c["案例"]) / len(items)


def test_optimiser_meets_quotas_per_list(evaluator) -> None:
    result = evaluator("POST", "/api/nominations/optimise", json={"courses": 30, "textbooks": 6}).json
    assert result["可行"] is True
    assert len(result["好课程"]) == 30 and len(result["好教材"]) == 6
    assert _case_share(result["好课程"]) >= 1 / 3 and _case_share(result["好教材"]) >= 1 / 3
    assert all(c["可推荐"] for c in result["好课程"] + result["好教材"])
    totals = [c["总分"] for c in result["好课程"]]
    assert all(math.isclose(c["总分"], sum(p["得分"] for p in c["得分明细"]), abs_tol=0.05) for c in result["好课程"])
    assert totals


def test_optimiser_combined_quota_and_xlsx_export(evaluator) -> None:
    result = evaluator("POST", "/api/nominations/optimise",
                       json={"courses": 12, "textbooks": 3, "quota_mode": "combined"}).json
    assert result["案例占比口径"] == "两张名单合计满足案例占比"
    assert _case_share(result["好课程"] + result["好教材"]) >= 1 / 3
    xlsx = evaluator("POST", "/api/nominations/optimise",
                     json={"courses": 12, "textbooks": 3, "quota_mode": "combined", "format": "xlsx"})
    book = load_workbook(io.BytesIO(xlsx.data))
    cells = {value for ws in book.worksheets for row in ws.iter_rows(values_only=True) for value in row}
    assert {c["id"] for c in result["好课程"] + result["好教材"]} <= cells


def test_check_mode_finds_the_fix_and_reads_uploads(evaluator) -> None:
    config = {"courses": 12, "textbooks": 3, "quota_mode": "per_list"}
    best = evaluator("POST", "/api/nominations/optimise", json=config).json
    ids = [c["id"] for c in best["好课程"] + best["好教材"]]
    ok = evaluator("POST", "/api/nominations/check", json={**config, "ids": ids}).json
    assert ok["合规"] is True and ok["调整次数"] == 0
    short = evaluator("POST", "/api/nominations/check", json={**config, "ids": ids[1:]}).json
    assert short["合规"] is False and short["调整次数"] >= 1
    buffer = io.StringIO()
    csv.writer(buffer).writerows([["编号"], *[[i] for i in ids]])
    upload = evaluator("POST", "/api/nominations/check/upload", content_type="multipart/form-data",
                       data={**{k: str(v) for k, v in config.items()}, "file": (io.BytesIO(buffer.getvalue().encode()), "list.csv")})
    assert upload.status_code == 200 and upload.json["合规"] is True


@pytest.mark.parametrize(("data", "field"), [
    ({"file": (io.BytesIO(b"not a workbook"), "list.xlsx")}, "file"),
    ({"file": (io.BytesIO(b"x"), "list.pdf")}, "file"),
    ({"file": (io.BytesIO("名称\n甲\n".encode()), "list.csv")}, "file"),
])
def test_bad_uploads_are_422(evaluator, data, field) -> None:
    response = evaluator("POST", "/api/nominations/check/upload", data=data, content_type="multipart/form-data")
    assert response.status_code == 422 and field in response.json.get("字段", {})


def test_unknown_weight_is_422(evaluator) -> None:
    response = evaluator("POST", "/api/nominations/optimise", json={"weights": {"popularity": 1}})
    assert response.status_code == 422 and "popularity" in response.json["字段"]["weights"][0]


def test_config_reports_the_rules_in_force(evaluator) -> None:
    config = evaluator("GET", "/api/nominations/config").json
    assert config["quota_mode"] in config["案例占比口径"] and "案例占比" in config["规则"]
    # the score is a weighted mean over the components with data, so the weights are relative (they need not sum
    # to 1); the case bonus is off by default (issue 13: the case quota already guarantees the share)
    assert config["权重"]["case_value"] == 0 and all(v >= 0 for v in config["权重"].values()) and sum(config["权重"].values()) > 0


def test_scores_table_is_best_first(evaluator) -> None:
    page = evaluator("GET", "/api/nominations/scores", query_string={"kind": "textbook", "per_page": 5}).json
    scores = [c["总分"] for c in page["items"]]
    assert scores == sorted(scores, reverse=True) and all(c["kind"] == "textbook" for c in page["items"])


def test_demand_is_the_days_and_moves_with_the_date(sample_app, monkeypatch) -> None:
    """Demand rests on each cadre's gaps as of the day, so a new day (here a new configured date) gives that
    day's figures, not the figures cached the day before."""
    import datetime as dt

    from recommender.batch.demand import topic_demand as demand_of

    from api.analytics import topic_demand
    from api.graph import graph
    from api.services import recommender

    with sample_app.app_context():
        before = topic_demand()
        monkeypatch.setitem(sample_app.config, "AS_OF", "2024-06-01")
        after = topic_demand()
        g = graph()
        assert after == dict(demand_of(g.store, g.settings, today=dt.date(2024, 6, 1),
                                       snapshot=recommender().snapshot))
        assert after != before
