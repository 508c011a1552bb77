"""A cadre's own answers over the fixture corpus (as of 2025-12-01): hours, gaps, recommendations with
reasons, learning path and map, and the download of their own records."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from tests.test_api_support import (  # noqa: F401  (fixtures)
    PASSWORD, bearer, index_dir, shared_app, shared_client, template_home,
)


@pytest.fixture
def get(shared_client, shared_app):
    header = bearer(shared_app, "cadre1")
    return lambda url, **kw: shared_client.get(url, headers=header, **kw)


def test_profile_names_the_cadre_and_the_requirements(get) -> None:
    profile = get("/api/cadres/cadre:t-001").json
    assert profile["姓名"] == "样例干部甲" and profile["学时分组"] == "A"
    assert any(r["主题编号"] == "topic:financial-risk" for r in profile["学习要求"])  # 岗位领域：金融监管


def test_hours_count_the_records(get) -> None:
    hours = get("/api/cadres/cadre:t-001/hours").json
    assert hours["统计日期"] == "2025-12-01"
    rules = {r["培训方式"]: r for r in hours["学时要求"]}
    # 集中培训: one 3-hour record; 网络自学: 40 minutes with a passed test → 1 + 0.5 学时 on the tiered rule
    assert rules["集中培训"]["已获学时"] == 3.0
    assert rules["网络自学"]["已获学时"] == 1.5 and rules["网络自学"]["要求学时"] == 50.0


def test_date_parameter_moves_the_report(get) -> None:
    before = get("/api/cadres/cadre:t-001/hours", query_string={"date": "2025-05-01"}).json
    online = next(r for r in before["学时要求"] if r["培训方式"] == "网络自学")
    assert before["统计日期"] == "2025-05-01" and online["已获学时"] == 0.0  # the online record is from June


def test_recommendations_carry_reasons(get) -> None:
    recs = get("/api/cadres/cadre:t-001/recommendations", query_string={"k": 3}).json
    assert recs["干部编号"] == "cadre:t-001" and len(recs["推荐课程"]) <= 3
    assert recs["主要缺口"] and all(g["说明"] for g in recs["主要缺口"])
    for item in recs["推荐课程"]:
        assert item["推荐理由"]


def test_gaps_map_and_path_answer(get) -> None:
    gaps = get("/api/cadres/cadre:t-001/gaps").json
    assert any(g["是否缺口"] for g in gaps["知识缺口"])
    branches = get("/api/cadres/cadre:t-001/learning-map").json["板块"]
    assert sum(len(v) for v in branches.values()) == len(gaps["知识缺口"])
    path = get("/api/cadres/cadre:t-001/learning-path").json
    assert path["本年度尚需学时"]["网络自学"] == 48.5 and path["说明"]


@pytest.mark.parametrize(("query", "field"), [({"k": 0}, "k"), ({"k": "ten"}, "k"), ({"date": "2025-13-01"}, "date"),
                                              ({"intent": "长" * 201}, "intent")])
def test_bad_parameters_are_422(get, query, field) -> None:
    response = get("/api/cadres/cadre:t-001/recommendations", query_string=query)
    assert response.status_code == 422 and field in response.json["字段"]


def test_unknown_cadre_is_404_for_admin(shared_client, shared_app) -> None:
    response = shared_client.get("/api/cadres/cadre:nobody/hours", headers=bearer(shared_app, "admin"))
    assert response.status_code == 404 and "cadre:nobody" in response.json["错误"]


def test_own_records_in_three_formats(get) -> None:
    data = get("/api/cadres/cadre:t-001/records").json
    assert [r["编号"] for r in data["记录"]] == ["record:t-001-a", "record:t-001-b"]
    assert data["记录"][1]["学习时长（分钟）"] == 40.0
    csv_text = get("/api/cadres/cadre:t-001/records", query_string={"format": "csv"}).data.decode("utf-8-sig")
    assert csv_text.splitlines()[0].startswith("编号,") and "record:t-001-b" in csv_text
    xlsx = get("/api/cadres/cadre:t-001/records", query_string={"format": "xlsx"})
    assert "attachment" in xlsx.headers["Content-Disposition"]
    rows = list(load_workbook(io.BytesIO(xlsx.data)).active.iter_rows(values_only=True))
    assert rows[0][0] == "编号" and [r[0] for r in rows[1:]] == ["record:t-001-a", "record:t-001-b"]


@pytest.fixture
def cadre_pages(shared_app):
    """A browser session of cadre1 (pages use the login cookie, not the bearer token)."""
    client = shared_app.test_client()
    client.post("/login", data={"username": "cadre1", "password": PASSWORD})
    return client


def test_a_too_long_intent_on_the_page_says_so_like_the_api_instead_of_truncating(cadre_pages) -> None:
    from recommender.service import MAX_INTENT_CHARS

    page = cadre_pages.get("/cadre/", query_string={"intent": "长" * (MAX_INTENT_CHARS + 1)})
    text = page.get_data(as_text=True)
    assert page.status_code == 422
    assert f"intent（学习意向）不能超过 {MAX_INTENT_CHARS} 个字，实际为 {MAX_INTENT_CHARS + 1} 个字" in text
    assert "样例干部甲" in text  # the rest of the page (and recommendations without the intent) still shows
    assert cadre_pages.get("/cadre/", query_string={"intent": "长" * MAX_INTENT_CHARS}).status_code == 200


def test_a_too_long_search_on_the_page_gets_the_apis_message(cadre_pages, shared_app) -> None:
    q = "检" * 201
    api = cadre_pages.get("/api/search", query_string={"q": q}, headers=bearer(shared_app, "cadre1"))
    page = cadre_pages.get("/cadre/search", query_string={"q": q})
    assert api.status_code == 422 and page.status_code == 422
    assert f"q：{api.json['字段']['q'][0]}" in page.get_data(as_text=True)
    assert 'id="results"' not in page.get_data(as_text=True)
