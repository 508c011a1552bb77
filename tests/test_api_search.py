"""Search through the API with the real embedding model over the fixture catalogue."""

from __future__ import annotations

import pytest

from tests.test_api_support import (  # noqa: F401  (fixtures)
    bearer, index_dir, shared_app, shared_client, template_home,
)


@pytest.fixture
def get(shared_client, shared_app):
    header = bearer(shared_app, "cadre2")
    return lambda url, **kw: shared_client.get(url, headers=header, **kw)


def test_search_finds_the_matching_course_first(get) -> None:
    result = get("/api/search", query_string={"q": "数字政府与一网通办"}).json
    assert result["hits"][0]["id"] == "course:t-online"
    assert result["hits"][0]["kind_name"] == "课程" and result["hits"][0]["meta"]["deliveryMode"] == "网络"


def test_search_filters_and_hides_drafts(get) -> None:
    ids = [h["id"] for h in get("/api/search", query_string={"q": "党性修养", "k": 20}).json["hits"]]
    assert "course:t-draft" not in ids  # published items only
    textbooks = get("/api/search", query_string={"q": "乡村振兴案例", "kind": "Textbook"}).json["hits"]
    assert [h["id"] for h in textbooks] == ["textbook:t-cases"]
    bm25 = get("/api/search", query_string={"q": "合作社", "mode": "bm25", "kind": "Course"}).json
    assert bm25["mode"] == "bm25" and bm25["hits"][0]["id"] == "course:t-village-case"


@pytest.mark.parametrize(("query", "fragment"), [
    ({"q": ""}, "q"), ({"q": "x", "k": 101}, "k"), ({"q": "x", "mode": "fuzzy"}, "mode"),
    ({"q": "x", "kind": "Teacher"}, "Teacher"), ({"q": "x", "topic": "topic:none"}, "topic:none"),
])
def test_bad_search_requests_are_422(get, query, fragment) -> None:
    response = get("/api/search", query_string=query)
    assert response.status_code == 422 and fragment in str(response.json)


def test_similar_items(get) -> None:
    hits = get("/api/search/similar/course:t-village-case").json["hits"]
    assert "course:t-village-case" not in [h["id"] for h in hits] and hits
    assert get("/api/search/similar/inst:t-county-school").status_code == 404
    assert get("/api/search/similar/course:none").status_code == 404


def test_near_duplicates_for_designers(shared_client, shared_app) -> None:
    header = bearer(shared_app, "designer")
    loose = shared_client.get("/api/search/duplicates", headers=header, query_string={"threshold": 0.5}).json
    pairs = loose["疑似重复"]
    assert pairs and all(p["课程A"] < p["课程B"] and p["相似度"] >= 0.5 for p in pairs)
    assert [p["相似度"] for p in pairs] == sorted((p["相似度"] for p in pairs), reverse=True)
    strict = shared_client.get("/api/search/duplicates", headers=header, query_string={"threshold": 1.0}).json
    assert strict["疑似重复"] == []


def test_near_duplicates_are_computed_once_per_generation_and_threshold(shared_client, shared_app,
                                                                        monkeypatch) -> None:
    import recommender.search.near_duplicates as module

    calls: list[float] = []
    real = module.near_duplicates
    monkeypatch.setattr(module, "near_duplicates", lambda service, threshold: calls.append(threshold)
                        or real(service, threshold=threshold))
    header = bearer(shared_app, "designer")

    def pairs(threshold: float, limit: int = 50) -> list[dict]:
        return shared_client.get("/api/search/duplicates", headers=header,
                                 query_string={"threshold": threshold, "limit": limit}).json["疑似重复"]

    first = pairs(0.61)
    assert first and pairs(0.61) == first and pairs(0.61, limit=1) == first[:1]
    assert calls == [0.61]
    assert pairs(0.62) and calls == [0.61, 0.62]
