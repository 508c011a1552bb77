"""Catalogue detail pages over the fixture corpus: one page per class saying where and how to take or use the
item, every list's items linked to them through the one helper ``item_url``, and the JSON detail route
answering the same guide."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from flask import Flask

from api import create_app
from api.catalogue import RESOURCES
from tests.test_api_support import (  # noqa: F401  (fixtures)
    PASSWORD, app_config, bearer, index_dir, shared_app, shared_client, template_home,
)

#: One item of every class the catalogue has a page for, in the fixture corpus.
ITEMS = {
    "courses": "course:t-village-case", "textbooks": "textbook:t-cases", "cases": "case:t-village",
    "sites": "site:t-memorial", "routes": "route:t-red-green", "teachers": "teacher:t-a",
    "classes": "class:t-main-2025", "topics": "topic:theory", "institutions": "inst:t-province-school",
    "platforms": "platform:t-online",
}


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry (api.security)."""
    return re.search(r'name="csrf_token" value="([^"]+)"', html)[1]


def _login(client, username: str) -> None:
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.data[:300]


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize("username", ["cadre1", "designer", "evaluator", "admin"])
@pytest.mark.parametrize("kind", sorted(ITEMS))
def test_every_class_has_a_page_every_role_can_read(shared_app, kind, username) -> None:
    assert set(ITEMS) == set(RESOURCES)  # a page for every catalogue class
    client = shared_app.test_client()
    _login(client, username)
    response = client.get(f"/catalogue/{kind}/{ITEMS[kind]}")
    assert response.status_code == 200, response.data[:300]
    html = response.get_data(as_text=True)
    assert 'id="item-name"' in html and "TrainingRecord" not in html and "cadre:t-" not in html


def test_anonymous_is_sent_to_login_and_unknown_items_are_404(shared_app) -> None:
    client = shared_app.test_client()
    assert client.get("/catalogue/courses/course:t-theory").status_code in (302, 401)
    _login(client, "cadre1")
    assert client.get("/catalogue/courses/course:nothing").status_code == 404
    assert client.get("/catalogue/courses/textbook:t-cases").status_code == 404  # the id names another class
    assert client.get("/catalogue/planets/course:t-theory").status_code == 404


def test_course_page_says_where_and_how_with_topics_teachers_cases_and_classes(shared_app) -> None:
    client = shared_app.test_client()
    _login(client, "designer")
    html = client.get("/catalogue/courses/course:t-village-case").get_data(as_text=True)
    text = _text(html)
    assert "测试县委党校" in text and "面授" in text and "2.0 学时" in text  # institution, mode, hours (one decimal)
    assert "2025 年春季县处级干部进修班" in text and "往期" in text  # the class that includes it (past on 2025-12-01)
    assert "报名" in text
    assert 'href="/catalogue/teachers/teacher:t-b"' in html  # its teacher, linked
    assert 'href="/catalogue/cases/case:t-village"' in html  # the case it uses, linked
    assert 'href="/catalogue/topics/topic:competence"' in html  # its topic, linked
    assert 'href="/catalogue/institutions/inst:t-county-school"' in html


def test_online_course_names_its_platform_and_crediting(shared_app) -> None:
    client = shared_app.test_client()
    _login(client, "cadre1")
    text = _text(client.get("/catalogue/courses/course:t-online").get_data(as_text=True))
    assert "在网络培训平台「测试省干部网络学院」上学习" in text and "学时" in text


@pytest.fixture
def early_app(template_home: Path, index_dir: Path, tmp_path: Path) -> Flask:
    """The fixture graph seen on 2025-01-01, before its class opens."""
    home = tmp_path / "home"
    shutil.copytree(template_home, home)
    app = create_app(app_config(home, index_dir, AS_OF="2025-01-01"))
    yield app
    app.extensions["ganxun.graph"].close()


def test_a_class_not_yet_open_is_offered_with_its_dates(early_app) -> None:
    client = early_app.test_client()
    detail = client.get("/api/catalogue/courses/course:t-theory", headers=bearer(early_app, "cadre1")).json
    offering = detail["guide"]["offerings"][0]
    assert offering == {"id": "class:t-main-2025", "name": "2025 年春季县处级干部进修班", "class_type": "主体班",
                        "start_date": "2025-03-03", "end_date": "2025-04-25", "institution": "inst:t-province-school",
                        "institution_name": "测试省委党校（行政学院）", "open": True}
    assert any("2025-03-03 开班" in line for line in detail["guide"]["how"])
    klass = client.get("/api/catalogue/classes/class:t-main-2025", headers=bearer(early_app, "cadre1")).json["guide"]
    assert klass["how"][0] == "由「测试省委党校（行政学院）」（测试省）举办，2025-03-03 至 2025-04-25（2025春）。"
    assert "尚未开班，可以报名" in klass["how"][1] and klass["how"][2] == "共 2 门课程、5.0 学时，见下方课程安排。"
    assert [c["id"] for c in klass["courses"]] == ["course:t-theory", "course:t-village-case"]  # the class's order
    _login(client, "cadre1")
    assert "可报名" in client.get("/catalogue/courses/course:t-theory").get_data(as_text=True)


def test_a_class_that_has_ended_says_so(shared_client, shared_app) -> None:
    how = shared_client.get("/api/catalogue/classes/class:t-main-2025", headers=bearer(shared_app, "cadre1")).json
    assert how["guide"]["how"][1].startswith("已结业")


def test_json_detail_carries_the_guide_and_titled_links(shared_client, shared_app) -> None:
    detail = shared_client.get("/api/catalogue/courses/course:t-village-case", headers=bearer(shared_app, "designer")).json
    facts = {fact["field"]: fact for fact in detail["guide"]["facts"]}
    assert facts["hours"]["value"] == "2.0" and facts["offeredBy"]["id"] == "inst:t-county-school"
    assert facts["deliveryMode"]["field_name"] == "授课方式"  # labels from the ontology
    titles = {link["field"]: link["title"] for link in detail["links"]}
    assert titles["^includesCourse"] == "班次（包含课程）" and titles["taughtBy"] == "授课教师"
    topic = shared_client.get("/api/catalogue/topics/topic:theory", headers=bearer(shared_app, "designer")).json
    assert "course:t-theory" in [c["id"] for c in topic["guide"]["courses"]] and topic["guide"]["course_total"] >= 1
    assert "course:t-draft" not in [c["id"] for c in topic["guide"]["courses"]]  # drafts are not offered


def test_lists_link_items_to_their_pages(shared_app) -> None:
    client = shared_app.test_client()
    _login(client, "cadre2")  # cadre1 has studied every course of the fixture catalogue
    html = client.get("/cadre/").get_data(as_text=True)
    recs = re.findall(r'<li class="rec" data-id="([^"]+)"><strong><a href="([^"]+)"', html)
    assert recs and all(href.endswith(item) and href.startswith("/catalogue/") for item, href in recs)
    path = html[html.index('id="path"'):]
    assert '<a href="/catalogue/courses/' in path  # learning-path steps are links too


def test_topic_resources_link_items_to_their_pages(shared_app) -> None:
    client = shared_app.test_client()
    _login(client, "designer")
    html = client.get("/designer/topics", query_string={"topic": "topic:theory"}).get_data(as_text=True)
    assert 'href="/catalogue/courses/course:t-theory"' in html


def test_how_a_course_is_taken_reads_its_mode_from_the_vocabulary_and_never_guesses(shared_app) -> None:
    """A course with no 授课方式 is not said to be taught face to face; a platform course with none is said to be online
    in the vocabulary's own word (read from the ontology), not a word written in the view."""
    import dataclasses

    from api.catalogue import _course_how
    from api.services import snapshot

    with shared_app.app_context():
        catalogue = snapshot()
        taught = dataclasses.replace(catalogue.courses["course:t-village-case"], delivery_mode=None, platform=None)
        [told] = [line for line in _course_how(catalogue, taught, [], []) if line.startswith("由开设机构")]
        assert "未注明授课方式" in told and "面授" not in told
        online = dataclasses.replace(catalogue.courses["course:t-online"], delivery_mode=None)
        [told] = [line for line in _course_how(catalogue, online, [], []) if line.startswith("在网络培训平台")]
        assert f"（{catalogue.vocab.online_delivery}）" in told
