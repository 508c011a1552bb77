"""A cadre in real headless Chromium (Debian's /usr/bin/chromium, via Playwright) over the sample catalogue: from the
recommendation list to a course's own page, keeping one suggestion and dismissing another (不相关), and seeing the
next list change; the learning map readable at phone width.  Screenshots of every cadre page and every kind of
item page at 1366 and 390 px go to ``var/screenshots/cadre/`` (ignored) to be looked at.  Reuses the app, server,
browser and login fixtures of ``tests/test_browser.py``; in CI it fails, not skips, when Chromium is missing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kg.config import REPO_ROOT
from tests.test_api_support import index_dir, sample_app, sample_home, sample_index_dir  # noqa: F401  (fixtures)
from tests.test_browser import base_url, browser, page_for, search_ready  # noqa: F401  (fixtures)

SHOTS = REPO_ROOT / "var" / "screenshots" / "cadre"
WIDTHS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
#: One item of every kind in the sample catalogue (古田会议旧址现场教学 among them: where to take it).
ITEMS = {
    "courses": "course:political-076", "textbooks": "textbook:political-11", "cases": "case:general-01",
    "sites": "site:jinggangshan-revolution-museum", "routes": "route:gutian-party-building",
    "teachers": "teacher:general-01", "classes": "class:cps-bureau-2024qiu", "topics": "topic:economy",
    "institutions": "inst:gutian", "platforms": "platform:china-cadre-academy",
}


def _shot(page, name: str) -> Path:
    """The whole page, and its first screen as a reader sees it (``-screen``)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    page.screenshot(path=str(SHOTS / f"{name}-screen.png"))
    return path


def _suggestions(page) -> list[str]:
    return page.eval_on_selector_all("#recommendations > ol > li.rec", "items => items.map(li => li.dataset.id)")


def _fits(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"] + 1  # no sideways scroll


@pytest.fixture
def cadre2(page_for, sample_app):
    """cadre2's pages; their choices are withdrawn afterwards (the sample app is shared by the session)."""
    from kg.choices import CadreChoices

    yield page_for
    choices = CadreChoices.at_home(sample_app.config["SETTINGS"].home)
    choices.remove("cadre:0000002", [c.item_id for c in choices.of("cadre:0000002")])


def test_cadre_goes_to_a_course_page_keeps_one_dismisses_another_and_the_list_changes(cadre2) -> None:
    page = cadre2("cadre2", WIDTHS["desktop"])
    assert page.url.endswith("/cadre/")
    before = _suggestions(page)
    assert len(before) >= 3
    _shot(page, "overview-desktop")

    first = page.locator("#recommendations > ol > li.rec").first
    name = first.locator("strong a").inner_text()
    first.locator("strong a").click()
    page.wait_for_selector("#item-name")
    assert page.inner_text("#item-name") == name and "/catalogue/courses/" in page.url
    assert "怎样学习" in page.inner_text("#how")
    page.click("#my-choice button[data-state=planned]")  # keep it, from its own page
    page.wait_for_selector("#my-choice .badge")
    assert "已列入学习计划" in page.inner_text("#my-choice")

    page.click("nav.menu >> text=我的学习")
    assert name in page.inner_text("#plan")
    after_keep = _suggestions(page)
    assert before[0] not in after_keep
    dismissed = after_keep[0]
    page.click(f"#recommendations li.rec[data-id='{dismissed}'] button[data-state=irrelevant]")
    page.wait_for_selector("p.flash")
    assert "不相关" in page.inner_text("p.flash")
    after = _suggestions(page)
    assert dismissed not in after and before[0] not in after and after != before
    assert "您已标记的 2 项不再推荐" in page.inner_text("#intent-note")
    assert page.locator("#marked li").count() == 1
    _shot(page, "overview-after-choices-desktop")
    for part in ("plan", "recommendations", "path"):  # the parts at readable size
        page.locator(f"#{part}").screenshot(path=str(SHOTS / f"overview-{part}-desktop.png"))
    assert page.js_errors == []


def test_learning_map_tiles_are_whole_grouped_and_fit_a_phone(page_for) -> None:
    page = page_for("cadre1", WIDTHS["phone"])
    page.goto(page.url.rstrip("/") + "/map")
    groups = page.locator("#learning-map .map-branch h2").all_inner_texts()
    assert len(groups) >= 2 and all(re.search(r"\d+ 个主题", g) for g in groups)
    for tile in page.locator("#learning-map li.tile .tile-name").all():  # no name cut short
        assert tile.evaluate("el => el.scrollWidth <= el.clientWidth + 1") and "…" not in tile.inner_text()
    hours = page.locator("#learning-map .tile-hours").all_inner_texts()
    assert hours and all(re.fullmatch(r"\d+\.\d / \d+\.\d 学时 · \S+", h) for h in hours)  # one decimal
    _fits(page)
    _shot(page, "map-phone")
    page.set_viewport_size(WIDTHS["desktop"])
    _shot(page, "map-desktop")
    assert page.js_errors == []


def test_hours_show_the_true_ratio(page_for) -> None:
    page = page_for("cadre1", WIDTHS["phone"])
    for figure in page.locator("#hours .hours-figure").all():
        text = figure.inner_text()
        earned, required, shown = re.search(r"已获 ([\d.]+) / 要求 ([\d.]+) 学时（([\d.]+) %）", text).groups()
        assert shown == f"{100 * float(earned) / float(required):.1f}", text  # above 100 % when over, never capped
    _fits(page)
    _shot(page, "overview-phone")
    page.locator("#recommendations").screenshot(path=str(SHOTS / "overview-recommendations-phone.png"))


@pytest.mark.parametrize("kind", sorted(ITEMS))
def test_every_kind_of_item_page_reads_well_at_both_widths(page_for, kind) -> None:
    page = page_for("cadre2", WIDTHS["desktop"])
    page.goto(page.url.replace("/cadre/", f"/catalogue/{kind}/{ITEMS[kind]}"))
    assert page.inner_text("#item-name")
    assert page.locator("#how dl.facts dt").count() >= 1
    if kind == "courses":  # 古田会议旧址现场教学: where and how
        how = page.inner_text("#how")
        assert "古田干部学院" in how and "报名" in how and "面授" in how
        assert page.locator("#offerings li").count() >= 1
    _shot(page, f"{kind}-desktop")
    page.set_viewport_size(WIDTHS["phone"])
    _fits(page)
    _shot(page, f"{kind}-phone")
    assert page.js_errors == []


def test_search_says_it_is_searching_and_links_results(search_ready, page_for) -> None:
    page = page_for("cadre2", WIDTHS["phone"])
    page.goto(page.url.replace("/cadre/", "/cadre/search"))
    page.fill("input[name=q]", "乡村振兴与集体经济")
    shown = page.evaluate("""() => { const form = document.querySelector('#search-form'); form.requestSubmit();
                                     const button = form.querySelector('button'); return [button.textContent, button.disabled]; }""")
    assert shown == ["正在检索…", True]  # said at once, before the answer arrives
    page.wait_for_selector("#results li a")
    href = page.get_attribute("#results li a", "href")
    assert href.startswith("/catalogue/")
    _fits(page)
    _shot(page, "search-phone")
    page.set_viewport_size(WIDTHS["desktop"])
    _shot(page, "search-desktop")
