"""The numbers a cadre reads agree (issue 12): for one gap topic, the figure in a recommendation's reason on the
overview page, that topic's bar, and the learning map's figure, read in real headless Chromium from what the
page shows — the reason's text, the bar's drawn width and the map tile's figures — are one coverage
figure.  Reuses the app, server, browser and login fixtures of ``tests/test_browser.py``; in CI it fails,
not skips, when Chromium is missing (the ``browser`` fixture's rule)."""

from __future__ import annotations

import re

from tests.test_api_support import index_dir, sample_app, sample_home, sample_index_dir  # noqa: F401  (fixtures)
from tests.test_browser import base_url, browser, page_for  # noqa: F401  (fixtures)

#: "…要求学习『防范化解金融风险』，有效学时 1.5 / 4 学时（37%）…" — the standing a gap's reason quotes.
STANDING = re.compile(r"学习『(?P<topic>[^』]+)』，有效学时 (?P<hours>[\d.]+) / (?P<threshold>[\d.]+) 学时（(?P<percent>\d+)%）")

#: The map's tiles as shown: (branch, topic, percent shown, hours, threshold) of each tile.
MAP_LEAVES = """el => [...el.querySelectorAll('.map-branch')].flatMap(branch => [...branch.querySelectorAll('li.tile')].map(
    t => [branch.dataset.branch, t.querySelector('.tile-name').textContent, parseInt(t.querySelector('.tile-figure').textContent),
          t.dataset.hours, t.dataset.threshold]))"""


def test_reason_bar_and_map_show_one_figure_for_a_gap_topic(page_for) -> None:
    page = page_for("cadre1")
    assert page.url.endswith("/cadre/")
    reasons = page.locator("#recommendations li.rec .reason").all_inner_texts()
    quoted = [m for m in map(STANDING.search, reasons) if m]
    assert quoted, f"no recommendation quotes a gap's standing: {reasons}"
    # prefer a topic partly covered, where a disagreement between the figures could show
    reason = next((m for m in quoted if 0 < float(m["hours"])), quoted[0])
    topic, percent = reason["topic"], int(reason["percent"])
    hours, threshold = float(reason["hours"]), float(reason["threshold"])
    assert percent == int(100 * min(1.0, hours / threshold) + 1e-9)  # the reason is consistent in itself

    exact = re.compile(f"^{re.escape(topic)}$")
    gap = page.locator("#gaps li").filter(has=page.locator("strong", has_text=exact)).first
    bar = gap.locator(".progress")
    title = re.fullmatch(r"([\d.]+) / ([\d.]+) 学时（(\d+)%）", bar.get_attribute("title") or "")
    assert title and (float(title[1]), float(title[2]), int(title[3])) == (hours, threshold, percent), title
    drawn = bar.evaluate("el => el.firstElementChild.getBoundingClientRect().width / el.getBoundingClientRect().width")
    assert abs(100 * drawn - percent) < 1.0, f"bar drawn at {100 * drawn:.1f}%, reason says {percent}%"

    page.click("text=学习地图")
    leaves = [leaf for leaf in page.eval_on_selector("#learning-map", MAP_LEAVES) if leaf[1] == topic]
    assert len(leaves) == 1, f"{topic} on the map: {leaves}"
    _, _, map_percent, map_hours, map_threshold = leaves[0]
    assert (map_percent, float(map_hours), float(map_threshold)) == (percent, hours, threshold)
    row = page.locator("tbody tr").filter(has=page.locator("td", has_text=exact)).first
    cells = row.locator("td").all_inner_texts()
    assert (float(cells[4]), cells[5]) == (hours, f"{percent}%"), cells
    assert page.js_errors == []
