"""Catalogue endpoints over the fixture corpus: filters, pagination, details with links, no personal data."""

from __future__ import annotations

import pytest

from tests.test_api_support import (  # noqa: F401  (fixtures)
    bearer, index_dir, shared_app, shared_client, template_home,
)


@pytest.fixture
def get(shared_client, shared_app):
    header = bearer(shared_app, "designer")
    return lambda url, **kw: shared_client.get(url, headers=header, **kw)


def test_resources_count_the_fixture_corpus(get) -> None:
    counts = {r["resource"]: r["count"] for r in get("/api/catalogue/").json}
    assert counts["courses"] == 4 and counts["textbooks"] == 1 and counts["sites"] == 2 and counts["routes"] == 1
    assert counts["topics"] == 118


@pytest.mark.parametrize("resource", ["courses", "textbooks", "cases", "teachers", "sites", "routes", "institutions",
                                      "platforms", "classes", "topics"])
def test_every_resource_lists_and_details_its_own_class(get, resource) -> None:
    page = get(f"/api/catalogue/{resource}", query_string={"per_page": 100}).json
    assert page["total"] >= 1 and len({item["label"] for item in page["items"]}) == 1
    first = page["items"][0]
    detail = get(f"/api/catalogue/{resource}/{first['id']}").json
    assert detail["id"] == first["id"] and detail["props"] == first["props"] and isinstance(detail["links"], list)


def test_list_filters_by_allowed_value_and_relation(get) -> None:
    published = get("/api/catalogue/courses", query_string={"status": "已发布"}).json
    assert published["total"] == 3
    assert "course:t-draft" not in [c["id"] for c in published["items"]]
    online = get("/api/catalogue/courses", query_string={"onPlatform": "platform:t-online"}).json
    assert [c["id"] for c in online["items"]] == ["course:t-online"]
    cases = get("/api/catalogue/courses", query_string={"isCase": "true"}).json
    assert [c["id"] for c in cases["items"]] == ["course:t-village-case"]


def test_list_text_filter_and_pagination(get) -> None:
    page = get("/api/catalogue/courses", query_string={"per_page": 2, "page": 2}).json
    assert page["total"] == 4 and page["page"] == 2 and len(page["items"]) == 2
    found = get("/api/catalogue/courses", query_string={"q": "合作社"}).json
    assert [c["id"] for c in found["items"]] == ["course:t-village-case"]


@pytest.mark.parametrize(("query", "field", "message"), [
    ({"status": "发布了"}, "status", "应为以下之一"),
    ({"page": 0}, "page", "应在 1 到"),
    ({"per_page": 101}, "per_page", "应在 1 到 100"),
    ({"isCase": "maybe"}, "isCase", "应为 true 或 false"),
])
def test_bad_filters_are_422_naming_the_field(get, query, field, message) -> None:
    response = get("/api/catalogue/courses", query_string=query)
    assert response.status_code == 422
    assert response.json["错误"] == "请求参数未通过校验"
    assert message in response.json["字段"][field][0]


def test_detail_has_links_both_ways_without_personal_data(get) -> None:
    course = get("/api/catalogue/courses/course:t-theory").json
    assert course["name"] == "新时代党的创新理论专题讲授" and course["label_name"] == "课程"
    links = {link["field"]: [n["id"] for n in link["nodes"]] for link in course["links"]}
    assert links["^includesCourse"] == ["class:t-main-2025"]  # the class that includes it (incoming)
    assert not any(n["label"] in ("TrainingRecord", "Cadre") for link in course["links"] for n in link["nodes"])


def test_ordered_relation_keeps_its_order(get) -> None:
    route = get("/api/catalogue/routes/route:t-red-green").json
    sites = next(link for link in route["links"] if link["field"] == "includesSite")
    assert [n["id"] for n in sites["nodes"]] == ["site:t-village", "site:t-memorial"]


def test_detail_of_missing_or_wrong_class_is_404(get) -> None:
    assert get("/api/catalogue/courses/course:nope").json == {"状态": 404, "错误": "未找到课程『course:nope』"}
    assert get("/api/catalogue/textbooks/course:t-online").status_code == 404
