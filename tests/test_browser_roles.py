"""The designer's, the evaluator's and the administrator's pages in real headless Chromium (issue 13): what each
reads must not mislead, and each can finish the job it came for.  Reuses test_browser's server, browser and
login fixtures (the sample catalogue and 50 generated cadres).  Every page of these roles is also photographed
at 1366 and 390 px into var/screenshots/ (ignored by git) for people to look at.  In CI these fail, not skip,
when Chromium is missing."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from kg.config import REPO_ROOT
from tests.test_browser import _chart_drawn, base_url, browser, page_for  # noqa: F401  (fixtures)
from tests.test_api_support import PASSWORD, index_dir, sample_app, sample_home, sample_index_dir  # noqa: F401

SHOTS = REPO_ROOT / "var" / "screenshots"
WIDTHS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


def _shoot(page_for, username: str, paths: list[str], base: str) -> list[str]:
    """Screenshots of ``paths`` at both widths; returns any URL that answered 404 meanwhile (favicon included)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    missing: list[str] = []
    for name, viewport in WIDTHS.items():
        page = page_for(username, viewport=viewport)
        page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
        for path in paths:
            page.goto(f"{base}{path}")
            page.wait_for_load_state("networkidle")
            stem = re.sub(r"[^A-Za-z0-9]+", "-", path.strip("/")) or "home"
            page.screenshot(path=str(SHOTS / f"{username}-{stem}-{viewport['width']}.png"), full_page=True)
            if name == "phone":  # no sideways scrolling at phone width, and no text squeezed into a sliver of a column
                assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], path
                squeezed = page.evaluate("""() => [...document.querySelectorAll('main td')]
                    .filter(td => td.offsetParent !== null && td.textContent.trim().length > 4
                                  && td.getBoundingClientRect().width < 64)
                    .map(td => td.textContent.trim().slice(0, 12))""")
                assert squeezed == [], (path, squeezed)
        assert page.js_errors == []
    return missing


def _chart_option(page, selector: str) -> dict:
    return page.evaluate(f"""() => {{
        const o = echarts.getInstanceByDom(document.querySelector('{selector}')).getOption();
        return {{ visualMap: o.visualMap.map(v => ({{ seriesIndex: v.seriesIndex, min: v.min, max: v.max, text: v.text }})),
                 yAxis: o.yAxis.map(a => ({{ data: a.data, interval: a.axisLabel.interval, show: a.axisLabel.show }})),
                 series: o.series.map(s => ({{ name: s.name, data: s.data }})) }};
    }}""")


def test_designer_reads_a_scaled_heat_map_and_builds_a_programme_with_the_grouped_picker(page_for, base_url) -> None:
    page = page_for("designer")
    _chart_drawn(page, "#coverage-chart")
    rows = page.evaluate("gxData('coverage-data')")
    option = _chart_option(page, "#coverage-chart")
    supply, demand = option["visualMap"]
    # two scales: supply (0–1 share) for the first series, demand in real cadre counts for the second
    assert (supply["seriesIndex"], demand["seriesIndex"]) == (0, 1)
    assert supply["max"] == 1 and demand["max"] == max(r["需求人数"] or 0 for r in rows)
    assert "人" in demand["text"][0] and not any("充足" in t for v in option["visualMap"] for t in v["text"])
    assert len(option["yAxis"][0]["data"]) == len(rows) and option["yAxis"][0]["interval"] == 0  # every row label
    assert page.is_visible("#supply-note") and page.is_visible("#demand-note")
    # the most under-served topic: darkest demand, and its tooltip speaks in real units
    top = page.inner_text("#underserved tbody tr:first-child td:nth-child(2)")
    y = option["yAxis"][0]["data"].index(top)
    wanted = next(v for x, yy, v in option["series"][1]["data"] if yy == y)
    row = next(r for r in rows if r["主题"] == top)
    assert wanted == row["需求人数"]
    tip = page.evaluate(f"""() => echarts.getInstanceByDom(document.querySelector('#coverage-chart'))
        .getOption().tooltip[0].formatter({{ value: [1, {y}, 0] }})""")
    assert f"{row['学时']:.1f} 学时" in tip and f"{round(row['需求人数'])} 人缺这一主题" in tip
    assert "1 + 折算课程数" in page.inner_text("#gap-note")
    # a branch filter redraws only that branch, still every label shown
    branch = row["一级主题"]
    page.select_option("#branch-filter", branch)
    assert page.get_attribute("#coverage-chart", "data-rows") == str(sum(r["一级主题"] == branch for r in rows))

    page.click("nav.menu >> text=教学指标")  # opens on an institution and semester with data
    report = page.inner_text("#indicator-report")
    assert re.search(r"\d+\.\d %", report) and "≥ 20 %" in report and "0.2" not in report.replace("2026", "")

    page.click("nav.menu >> text=班次方案")
    page.select_option("select[name=institution]", "inst:anji-party-school")
    page.fill("input[name=total_hours]", "30")
    page.fill("#topic-search", "乡村振兴")
    visible = page.locator("#topic-picker label.choice:visible")
    assert visible.count() >= 1 and all("乡村振兴" in visible.nth(i).get_attribute("data-text") for i in range(visible.count()))
    visible.first.locator("input").check()
    picked = visible.first.inner_text().strip()
    assert page.inner_text("#picked-count") == "1"
    page.click("#programme-form button[type=submit]")
    page.wait_for_selector("#programme-result")
    served = page.inner_text("#topic-served")
    assert "已覆盖" in served and picked in served
    assert picked in page.inner_text("#programme-result table")
    assert "浙江省" in page.inner_text("#locality-note")  # a county school keeps on-site teaching in its province
    places = page.locator("#programme-result tbody tr").all_inner_texts()
    assert not any("现场教学" in p and "浙江省" not in p for p in places)
    # an error names the field in Chinese
    page.fill("input[name=total_hours]", "0")
    page.evaluate("document.querySelector('input[name=total_hours]').removeAttribute('min')")
    page.click("#programme-form button[type=submit]")
    errors = page.inner_text("#form-errors")
    assert "总学时" in errors and "total_hours" not in errors
    # from the under-served list to the topic's own page, and on to a course that serves it
    page.click("nav.menu >> text=主题覆盖")
    link = page.locator("#underserved tbody tr:first-child a").first
    name = link.inner_text().strip()
    link.click()
    page.wait_for_load_state()
    assert "/designer/topics?topic=" in page.url and name in page.inner_text("main")  # the topic's resources
    course = page.locator("main a[href*='/catalogue/courses/']").first
    title = course.inner_text().strip()
    course.click()
    page.wait_for_load_state()
    assert "/catalogue/courses/" in page.url and title in page.inner_text("h1") and "怎样学习" in page.inner_text("main")
    assert page.js_errors == []
    missing = _shoot(page_for, "designer", ["/designer/", "/designer/indicators", "/designer/programme",
                                            "/designer/topics?topic=topic:rural-revitalization"], base_url)
    assert missing == []


def test_evaluator_sees_balanced_default_lists_with_the_case_share_against_its_minimum(page_for, base_url) -> None:
    page = page_for("evaluator")
    page.wait_for_selector("#nomination-result")  # the default lists, solved on opening the page
    shares = page.locator("#case-share li").all_inner_texts()
    assert len(shares) == 2 and all("下限 ≥ 33.3 %" in s for s in shares)
    values = [float(v) for v in page.locator("#case-share .case-share").all_inner_texts()
              for v in [v.rstrip(" %")]]
    assert all(33.3 <= v < 90 for v in values), values  # the score no longer counts the case flag a second time
    assert "未启用" in page.inner_text("#case-bonus")
    assert "无数据" in page.inner_text("#scoring-rules")
    table = page.inner_text("#scores")
    assert "否：" not in table
    pending = page.locator("#scores .badge.warn").all_inner_texts()
    assert all(p.startswith("待通过：") for p in pending)
    _chart_drawn(page, "#gauge-1")
    # from the list to a nominated item's own page
    nominated = page.locator("#nomination-result a[href*='/catalogue/']").first
    title = nominated.inner_text().strip()
    nominated.click()
    page.wait_for_load_state()
    assert "/catalogue/" in page.url and title in page.inner_text("h1")
    page.go_back()
    assert page.js_errors == []
    assert _shoot(page_for, "evaluator", ["/evaluator/", "/evaluator/check"], base_url) == []


def test_admin_finds_a_cadre_by_name_and_watches_a_reindex_move(page_for, base_url, sample_app) -> None:
    from api.graph import graph

    with sample_app.app_context():
        name = graph().store.get_node("cadre:0000001").props["name"]
    page = page_for("admin")
    page.click("nav.menu >> text=查找干部")
    page.fill("input[name=q]", name)
    page.click("#cadre-search button")
    page.click(f"#cadre-matches tbody a >> text={name}")
    page.wait_for_load_state()
    assert "cadre=cadre%3A0000001" in page.url or "cadre=cadre:0000001" in page.url
    assert "403" not in page.inner_text("main")

    page.click("nav.menu >> text=导入导出")
    options = page.locator("select[name=type] option").all_inner_texts()
    assert "课程" in options and not any(re.search(r"[A-Za-z]{4,}", o) for o in options)

    page.click("nav.menu >> text=同步与索引")
    page.check("#rebuild")
    page.click("#reindex")
    seen: list[float] = []
    disabled_while_running = True
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        text = page.inner_text("#reindex-text")
        width = page.evaluate("document.getElementById('reindex-bar').style.width")
        seen.append(float(width.rstrip("%") or 0))
        if text.startswith("已完成"):
            break
        disabled_while_running &= page.is_disabled("#reindex")
        page.wait_for_timeout(250)
    assert text.startswith("已完成") and seen[-1] == 100
    assert disabled_while_running and page.is_enabled("#reindex")
    assert any(0 < v < 100 for v in seen), seen  # progress fed from the encoding batches, not 0 then 100

    page.click("nav.menu >> text=审计日志")
    log = page.inner_text("#audit")
    assert "北京时间" in log and "=None" not in log and "None" not in log
    assert page.js_errors == []
    assert _shoot(page_for, "admin", ["/admin/import", "/admin/jobs", "/admin/users", "/admin/cadres?q=" + name[:1],
                                      "/admin/audit"], base_url) == []
