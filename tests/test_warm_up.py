"""First use after a start (issue 13): while a served worker's warm-up is still loading the encoder and the search
index, a search or an intent is answered at once — 503 with ``Retry-After`` and 正在准备检索模型… — instead of
blocking for a minute or two with no word; a cadre's page without an intent still answers; once the warm-up is
done the same requests succeed.

A worker that gunicorn (``post_worker_init``) or ``python -m api serve`` asked to warm is ``warming`` from the
moment :func:`api.services.start_warm_up` returns until its last step; the test puts the app in that state as
:func:`start_warm_up` does, without its thread, so the warm-up is where it would be before the encoder is loaded.
"""

from __future__ import annotations

from flask import Flask

from api.services import SEARCH_WARMING, readiness, warm_up
from tests.test_api_support import PASSWORD, app, bearer, index_dir, template_home  # noqa: F401  (fixtures)

CADRE = "cadre:t-001"


def _warming(app: Flask) -> None:
    readiness(app).state = "warming"  # what start_warm_up sets before its thread has loaded anything


def _built_search(app: Flask) -> bool:
    return "search" in app.extensions["ganxun.graph"]._cache


def test_a_search_while_the_model_loads_is_answered_at_once_with_retry_after(app) -> None:
    _warming(app)
    client = app.test_client()
    for url in ("/api/search?q=党史学习教育", f"/api/cadres/{CADRE}/recommendations?intent=想学习化解地方债务风险"):
        answer = client.get(url, headers=bearer(app, "cadre1"))
        assert answer.status_code == 503, url
        assert answer.json == {"状态": 503, "错误": SEARCH_WARMING}
        assert int(answer.headers["Retry-After"]) > 0
    assert not _built_search(app)  # the request neither loaded the encoder nor queued behind the warm-up
    assert client.get("/api/ready").status_code == 503


def test_the_pages_say_the_model_is_being_prepared_and_the_overview_still_answers(app) -> None:
    _warming(app)
    client = app.test_client()
    client.post("/login", data={"username": "cadre1", "password": PASSWORD})
    page = client.get("/cadre/search?q=党史学习教育")
    assert page.status_code == 503 and page.headers["Retry-After"]
    assert "正在准备检索模型…" in page.get_data(as_text=True)
    overview = client.get("/cadre/")  # no intent: recommendations without the role fit, not a wait
    assert overview.status_code == 200 and "推荐" in overview.get_data(as_text=True)
    assert not _built_search(app)


def test_once_warm_the_same_requests_succeed(app) -> None:
    _warming(app)
    assert warm_up(app).state == "ready"
    client = app.test_client()
    search = client.get("/api/search?q=党史学习教育", headers=bearer(app, "cadre1"))
    assert search.status_code == 200 and search.json["hits"]
    intent = client.get(f"/api/cadres/{CADRE}/recommendations?intent=想学习化解地方债务风险", headers=bearer(app, "cadre1"))
    assert intent.status_code == 200
    assert client.get("/api/ready").status_code == 200
