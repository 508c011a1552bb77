"""End to end in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright) against the
service on 127.0.0.1, over the sample catalogue and 50 generated cadres: every role logs in and uses its
pages.  In CI these fail, not skip, when Chromium is missing."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from tests.conftest import require
from tests.test_api_support import (  # noqa: F401  (fixtures)
    PASSWORD, index_dir, sample_app, sample_home, sample_index_dir,
)

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--lang=zh-CN"]  # the browser's own controls (file inputs) in Chinese too


@pytest.fixture(scope="module")
def base_url(sample_app) -> Iterator[str]:
    from werkzeug.serving import make_server

    from api.services import warm_up

    assert warm_up(sample_app).state == "ready"  # as a served worker does before it answers ready
    server = make_server("127.0.0.1", 0, sample_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    require(os.path.exists(CHROMIUM), f"需要 Debian 的 Chromium（{CHROMIUM}）：scripts/setup --test 会安装")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the package is in requirements.txt
        require(False, "需要 Python 包 playwright")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page_for(browser, base_url):
    contexts = []

    def login(username: str, viewport: dict | None = None):
        context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900}, accept_downloads=True,
                                      locale="zh-CN")
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(60_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # a script or style the Content-Security-Policy blocks is a console error, not a page error: count it too
        page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
        page.js_errors = errors
        page.goto(f"{base_url}/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        return page

    yield login
    for context in contexts:
        context.close()


def _chart_drawn(page, selector: str) -> None:
    page.wait_for_selector(f"{selector}[data-rendered='1'] canvas")
    width = page.eval_on_selector(f"{selector} canvas", "c => c.width")
    assert width > 100


def test_cadre_sees_progress_recommendations_map_and_record(page_for, tmp_path: Path) -> None:
    page = page_for("cadre1")
    assert page.url.endswith("/cadre/")
    assert page.locator("#hours .progress").count() >= 2
    assert "学时达标进度" in page.inner_text("#hours")
    first = page.locator("#recommendations li.rec").first
    assert "推荐理由：" in first.inner_text()
    assert page.locator("#path ol.path li").count() >= 1
    with page.expect_download() as download_info:
        page.click("#download-records")
    path = tmp_path / "records.xlsx"
    download_info.value.save_as(path)
    rows = list(load_workbook(path).active.iter_rows(values_only=True))
    assert rows[0][0] == "编号" and len(rows) > 1
    page.click("text=学习地图")
    assert page.locator("#learning-map .map-branch h2").count() >= 2  # labelled plan-section groups of tiles
    assert page.locator("#learning-map li.tile").count() >= 5
    page.goto(page.url.replace("/cadre/map", "/admin/users"))
    assert "403" in page.inner_text("main")
    assert page.js_errors == []


@pytest.fixture(scope="module")
def search_ready(sample_app) -> None:
    """Open the search index first (encoding the sample catalogue takes a minute on two cores)."""
    from api.search import search_service

    with sample_app.app_context():
        search_service()


def test_cadre_searches_on_a_phone(search_ready, page_for) -> None:
    page = page_for("cadre2", viewport={"width": 390, "height": 844})
    assert not page.is_visible("nav.menu")
    page.click("label.menu-button")
    page.click("nav.menu >> text=课程检索")
    page.fill("input[name=q]", "乡村振兴与集体经济")
    page.click("#search-form button")
    page.wait_for_selector("#results li")
    assert page.locator("#results li").count() >= 5
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400  # no sideways scrolling at phone width


def test_designer_sees_coverage_chart_indicators_and_builds_a_programme(page_for) -> None:
    page = page_for("designer")
    assert "/designer/" in page.url
    _chart_drawn(page, "#coverage-chart")
    assert page.locator("#underserved tbody tr").count() == 20
    page.click("nav.menu >> text=教学指标")
    page.select_option("select[name=institution]", "inst:anji-party-school")
    page.fill("input[name=period]", "2025春")
    page.click("form button[type=submit]")
    assert "教学与课程更新指标" in page.inner_text("#indicator-report")
    page.click("nav.menu >> text=班次方案")
    page.select_option("select[name=institution]", "inst:central-party-school")
    page.select_option("select[name=class_type]", "主体班")
    page.fill("input[name=total_hours]", "24")
    page.click("#programme-form button")
    result = page.inner_text("#programme-result")
    assert "班次课程方案" in result
    page.click("nav.menu >> text=主题资源")
    page.select_option("select[name=topic]", "topic:rural-revitalization")
    page.click("form button[type=submit]")
    assert "师资（" in page.inner_text("#topic-resources")
    assert page.js_errors == []


def test_evaluator_builds_a_compliant_list_and_downloads_xlsx(page_for, tmp_path: Path) -> None:
    page = page_for("evaluator")
    page.fill("input[name=courses]", "15")
    page.fill("input[name=textbooks]", "3")
    page.click("#nomination-form button")
    page.wait_for_selector("#nomination-result")
    assert page.locator("#checks .badge.bad").count() == 0 and page.locator("#checks .badge.ok").count() >= 3
    _chart_drawn(page, "#gauge-1")
    _chart_drawn(page, "#gauge-2")
    with page.expect_download() as download_info:
        page.click("#export-xlsx")
    path = tmp_path / "nominations.xlsx"
    download_info.value.save_as(path)
    book = load_workbook(path)
    cells = [v for ws in book.worksheets for row in ws.iter_rows(values_only=True) for v in row if isinstance(v, str)]
    assert sum(v.startswith("course:") for v in cells) >= 15
    page.click("nav.menu >> text=名单核验")
    page.set_input_files("input[name=file]", str(path))
    page.fill("input[name=courses]", "15")
    page.fill("input[name=textbooks]", "3")
    page.click("#check-form button")
    assert "合规" in page.inner_text("#check-result h2") and "不合规" not in page.inner_text("#check-result h2")
    assert page.js_errors == []


def test_admin_imports_with_row_errors_manages_users_and_reindexes(page_for, tmp_path: Path) -> None:
    page = page_for("admin")
    bad = tmp_path / "courses.csv"
    bad.write_text("id,name,hours\ncourse:x-1,课程一,两学时\n", encoding="utf-8")
    page.set_input_files("input[name=files]", str(bad))
    page.select_option("select[name=type]", "Course")
    page.click("#import-form button")
    assert "未写入任何数据" in page.inner_text("#import-errors")
    assert page.locator("#issues tbody tr").count() >= 2
    page.click("nav.menu >> text=用户与角色")
    page.fill("input[name=username]", "cadre9")
    page.fill("input[name=password]", "long-enough-9")
    page.select_option("form.row select[name=role]", "cadre")
    page.fill("form.row input[name=cadre_id]", "cadre:0000009")
    page.click("form.row button")
    assert "cadre9" in page.inner_text("#users")
    page.click("nav.menu >> text=同步与索引")
    page.click("#reindex")
    # a locator assertion, not wait_for_function: that evaluates a string, which the pages' CSP forbids
    expect(page.locator("#reindex-text")).to_have_text(re.compile("^已完成"), timeout=300_000)
    page.click("nav.menu >> text=审计日志")
    log = page.inner_text("#audit")
    assert "新建用户" in log and "导入被拒绝" in log and "启动任务：重建索引" in log
    assert page.js_errors == []
