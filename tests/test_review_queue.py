"""The tag review queue (issue 15): an import of untagged courses writes suggested tags with their provenance,
the queue shows them with confidence and evidence, a designer confirms or edits them (who, when), coverage
counts a course's topic only once it is confirmed, and a recommendation says when its topic is only suggested.
A real headless Chromium walks the page as a designer, at 1366 and 390 px (screenshots in var/screenshots/).
"""

from __future__ import annotations

import csv
import io
import shutil

import pytest
from playwright.sync_api import expect

from kg.config import REPO_ROOT
from tests.test_api_support import (  # noqa: F401  (fixtures)
    SAMPLE_AS_OF, app, app_config, bearer, client, index_dir, sample_home, sample_index_dir, template_home,
    with_csrf_client,
)
from tests.test_browser import browser, page_for  # noqa: F401  (fixtures)

SCREENSHOTS = REPO_ROOT / "var" / "screenshots"
HEADER = ["编号", "名称", "简介", "课程类型", "授课方式", "教学方法", "授课人类型", "学时", "是否案例课程或案例教材", "状态", "版本",
          "创建日期", "更新日期", "开设机构"]


def untagged(rows: list[tuple[str, str, str]], institution: str) -> bytes:
    """A CSV of courses with no 讲授主题 column, as a platform's bare catalogue comes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    for item_id, name, description in rows:
        writer.writerow([item_id, name, description, "网络课程", "网络", "讲授", "专家学者", "1", "否", "已发布", "1",
                         "2025-01-06", "2025-01-06", institution])
    return buffer.getvalue().encode("gb18030")


def as_user(client, app, username: str):
    header = bearer(app, username)
    return lambda method, url, **kw: client.open(url, method=method, headers=header, **kw)


def upload(admin, content: bytes):
    return admin("POST", "/api/admin/import", content_type="multipart/form-data",
                 data={"files": (io.BytesIO(content), "未标注课程.csv"), "type": "Course"})


FIXTURE_ROWS = [("course:rv-1", "数字政府建设与政务服务“一网通办”", "讲解政务数据共享、线上办事与数字政府建设的做法。"),
                ("course:rv-2", "乡村治理中的村民议事会", "介绍基层治理中村民议事、协商共治的程序与案例。")]


def test_import_suggests_review_confirms_and_coverage_follows(client, app):
    admin, designer = as_user(client, app, "admin"), as_user(client, app, "designer")
    with app.app_context():  # a served worker fits the tagger in its warm-up, not in the import's request
        from api.review import tagger

        tagger()
    coverage = lambda: {r["topic"]: r["已发布课程数"] for r in designer("GET", "/api/analytics/coverage").json["主题覆盖"]}  # noqa: E731
    before = coverage()
    response = upload(admin, untagged(FIXTURE_ROWS, "inst:t-county-school"))
    assert response.status_code == 201, response.json
    assert response.json["suggested"] == 2

    with app.app_context():
        from api.graph import graph

        edges = graph().store.edges_from(["course:rv-1"])["course:rv-1"]
    [tag] = [e for e in edges if e.dst.startswith("topic:")]
    assert tag.props["tag"] == "suggested" and 0 < tag.props["confidence"] <= 1
    assert coverage() == before, "a suggested topic must not count as supply"

    queue = designer("GET", "/api/review").json
    assert queue["total"] == 2
    confidences = [i["confidence"] for i in queue["items"]]
    assert confidences == sorted(confidences)
    item = next(i for i in queue["items"] if i["id"] == "course:rv-1")
    best = item["suggestions"][0]
    assert best["topic"] == "topic:digital-government" and "数字政府" in "".join(best["words"])
    assert best["plan_section"] and best["definition"] and 0 < best["confidence"] <= 1
    assert item["tags"][0]["status_label"] == "系统建议"

    assert designer("POST", "/api/review/course:rv-1", json={"topics": ["topic:nope"]}).status_code == 422
    too_many = designer("POST", "/api/review/course:rv-1", json={"topics": ["topic:theory", "topic:general",
                                                                            "topic:political", "topic:competence"]})
    assert too_many.status_code == 422 and "topics" in too_many.json["字段"]
    assert designer("POST", "/api/review/teacher:t-a", json={"topics": ["topic:theory"]}).status_code == 404
    assert as_user(client, app, "cadre1")("GET", "/api/review").status_code == 403

    done = designer("POST", "/api/review/course:rv-1", json={"topics": ["topic:digital-government", "topic:grassroots-governance"]})
    assert done.status_code == 200 and done.json["by"] == "designer"
    with app.app_context():
        edges = graph().store.edges_from(["course:rv-1"])["course:rv-1"]
    tags = {e.dst: e.props for e in edges if e.dst.startswith("topic:")}
    assert set(tags) == {"topic:digital-government", "topic:grassroots-governance"}
    assert all(p["tag"] == "confirmed" and p["by"] == "designer" and p["at"] for p in tags.values())
    assert any(e.dst == "inst:t-county-school" for e in edges), "the item's other edges stay"
    after = coverage()
    assert after["topic:digital-government"] == before["topic:digital-government"] + 1
    assert [i["id"] for i in designer("GET", "/api/review").json["items"]] == ["course:rv-2"]
    log = admin("GET", "/api/admin/audit", query_string={"action": "确认主题标注"}).json
    assert log["total"] == 1


def test_an_imported_tag_without_support_is_kept_but_marked_doubtful(client, app):
    with app.app_context():
        from api.review import tagger

        tagger()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*HEADER, "讲授主题"])
    writer.writerow(["course:rv-x", "学习贯彻《中国共产党纪律处分条例》", "逐章解读党的纪律处分条例，严明政治纪律和政治规矩。",
                     "专题课", "面授", "讲授", "专职教师", "2", "否", "已发布", "1", "2025-01-06", "2025-01-06",
                     "inst:t-county-school", "topic:new-energy"])
    response = upload(as_user(client, app, "admin"), buffer.getvalue().encode("utf-8"))
    assert response.status_code == 201 and response.json["suggested"] == 1
    [item] = as_user(client, app, "designer")("GET", "/api/review").json["items"]
    assert item["id"] == "course:rv-x"
    assert [(t["topic"], t["status"], t["status_label"]) for t in item["tags"]] == [("topic:new-energy", "doubtful", "导入标注存疑")]
    assert item["tags"][0]["confidence"] < 0.05


def test_an_item_with_no_document_does_not_shift_the_others_evidence(client, app):
    """A pending tag on a node that yields no search document (a cadre here, ahead of the courses) is queued with
    no suggestions, and every course keeps its own evidence."""
    admin, designer = as_user(client, app, "admin"), as_user(client, app, "designer")
    assert upload(admin, untagged(FIXTURE_ROWS, "inst:t-county-school")).status_code == 201
    alone = {i["id"]: i["suggestions"] for i in designer("GET", "/api/review").json["items"]}
    with app.app_context():
        from api.graph import graph
        from kg.model import Edge

        gr = graph()
        cadre = next(iter(gr.store.nodes("Cadre"))).id
        assert cadre < FIXTURE_ROWS[0][0]  # it comes first in the batch the tagger explains
        gr.store.write([], [Edge(cadre, gr.ontology.relationship_types["covers"], "topic:digital-government",
                                 {"tag": "suggested", "confidence": 0.01})])
    items = {i["id"]: i for i in designer("GET", "/api/review").json["items"]}
    assert items[cadre]["suggestions"] == []
    assert {i: items[i]["suggestions"] for i in alone} == alone
    assert items["course:rv-1"]["suggestions"][0]["topic"] == "topic:digital-government"


def test_a_recommendation_says_when_its_topic_is_only_suggested(client, app):
    """The hook in recommender code: a course whose topic an import only suggested says so in its details, and
    says nothing once a designer has confirmed it."""
    with app.app_context():
        from api.review import tagger

        tagger()
    assert upload(as_user(client, app, "admin"), untagged(FIXTURE_ROWS, "inst:t-county-school")).status_code == 201
    cadre = as_user(client, app, "cadre1")

    def details_of(course_id: str) -> list[str] | None:
        items = cadre("GET", "/api/cadres/cadre:t-001/recommendations", query_string={"k": 20}).json["推荐课程"]
        return next((list(i["补充说明"]) for i in items if i["编号"] == course_id), None)

    details = details_of("course:rv-1")
    assert details is not None, "the fixture catalogue is small enough for every published course to be listed"
    assert any("为导入时系统建议，尚待课程设计者确认" in d for d in details)
    designer = as_user(client, app, "designer")
    assert designer("POST", "/api/review/course:rv-1", json={"topics": ["topic:digital-government"]}).status_code == 200
    assert not any("尚待课程设计者确认" in d for d in details_of("course:rv-1") or [])


# ─── the page, in a real browser ───
SAMPLE_ROWS = [
    ("course:rv-a", "学习贯彻新修订的《中国共产党纪律处分条例》", "逐章解读条例的修订要点。"),
    ("course:rv-b", "光伏、风电与新型电力系统", "介绍可再生能源并网与储能。"),
    ("course:rv-c", "“四下基层”与大兴调查研究", "讲述深入基层、调查研究的方法。"),
]


@pytest.fixture(scope="module")
def review_app(sample_home, sample_index_dir, tmp_path_factory):
    """An app over a copy of the sample graph and index (this module writes: an import and a confirmation)."""
    from api import create_app

    root = tmp_path_factory.mktemp("review")
    home, index = root / "home", root / "index"
    shutil.copytree(sample_home, home)
    shutil.copytree(sample_index_dir, index)
    app = with_csrf_client(create_app(app_config(home, index, AS_OF=SAMPLE_AS_OF)))
    with app.app_context():  # what a worker has loaded before an import reaches it: the index and the tagger
        from api.review import tagger

        tagger()
    client = app.test_client()
    admin = as_user(client, app, "admin")
    assert upload(admin, untagged(SAMPLE_ROWS, "inst:central-party-school")).status_code == 201
    yield app
    app.extensions["ganxun.graph"].close()


@pytest.fixture(scope="module")
def base_url(review_app):
    import threading

    from werkzeug.serving import make_server

    from api.services import warm_up

    assert warm_up(review_app).state == "ready"
    server = make_server("127.0.0.1", 0, review_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


def test_designer_walks_the_review_queue(page_for, review_app):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = page_for("designer", {"width": 1366, "height": 900})
    page.get_by_role("link", name="标注审核").click()
    expect(page.locator("h1")).to_have_text("主题标注审核")
    expect(page.locator("#review-count")).to_contain_text("3 个条目待审核")
    items = page.locator("section.review-item")
    expect(items).to_have_count(3)
    first = items.first
    expect(first.locator("tbody tr")).to_have_count(5)
    expect(first.locator("td .badge").first).to_contain_text("%")
    expect(first.locator(".evidence").first).not_to_be_empty()
    page.screenshot(path=str(SCREENSHOTS / "review-queue-1366.png"), full_page=True)

    # the designer edits the first item: keeps the ticked suggestion, adds a topic of their own choosing
    item_id = first.get_attribute("data-item")
    ticked = first.locator("input[name=topics]:checked")
    expect(ticked).to_have_count(1)
    first.locator("select[name=other]").select_option(label="党风廉政建设")
    first.get_by_role("button", name="确认主题").click()
    expect(page.locator(".flash")).to_contain_text(f"已确认『{item_id}』")
    expect(page.locator("#review-count")).to_contain_text("2 个条目待审核")
    assert page.js_errors == []

    with review_app.app_context():
        from api.graph import graph

        edges = graph().store.edges_from([item_id])[item_id]
    tags = {e.dst: e.props for e in edges if e.dst.startswith("topic:")}
    assert "topic:party-conduct" in tags and len(tags) == 2
    assert all(p["tag"] == "confirmed" and p["by"] == "designer" for p in tags.values())

    phone = page_for("designer", {"width": 390, "height": 844})
    phone.goto(page.url)
    expect(phone.locator("section.review-item")).to_have_count(2)
    width = phone.evaluate("document.documentElement.scrollWidth")
    phone.screenshot(path=str(SCREENSHOTS / "review-queue-390.png"), full_page=True)
    assert width <= 390 + 1, f"the page scrolls sideways on a phone ({width} px)"
    assert phone.js_errors == []
