"""A cadre's study plan and feedback: stored per cadre in one file every worker shares (``kg.choices``), read with
the profile, and respected by the next list — kept, learnt and irrelevant items are left out, 以后再说 pushes an
item down for ``feedback.later_days`` days — and said in words.  Cadres change only their own."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest

from kg.choices import CadreChoices
from recommender.catalogue.snapshot import load_snapshot
from recommender.service import Recommender
from tests.rec_world import add_cadre, catalogue, world_ontology
from tests.test_api_support import (  # noqa: F401  (fixtures)
    app, bearer, client, index_dir, template_home,
)
from tests.test_detail_pages import _login, csrf_of

TODAY = dt.date(2026, 1, 1)
NOON = dt.datetime(2026, 1, 1, 4, 0, tzinfo=dt.timezone.utc)  # 12:00 in Beijing


# ─── the ranker, on the hand-built world ───
@pytest.fixture
def world(store, ontology, tmp_path):
    nodes, edges = catalogue()
    store.write(nodes, edges)
    world_rules = world_ontology(ontology)
    snap = load_snapshot(store, dataclasses.replace(world_rules, rules={**world_rules.rules,
                                                                         "feedback": ontology.rules["feedback"]}))
    add_cadre(store)
    choices = CadreChoices(tmp_path / "choices.db")
    return Recommender(snap, store, today=TODAY, choices=choices), choices


def ids(result) -> list[str]:
    return [s.item_id for s in result.items]


def test_kept_learnt_and_irrelevant_items_leave_the_list(world) -> None:
    rec, choices = world
    before = ids(rec.recommend("cadre:1", k=5))
    assert len(before) >= 4
    for item, state in zip(before, ("planned", "done", "irrelevant")):
        choices.put("cadre:1", item, state, NOON)
    after = rec.recommend("cadre:1", k=5)
    assert not set(before[:3]) & set(ids(after))
    assert before[3] in ids(after)  # the rest of the list stays
    assert "您已标记的 3 项不再推荐（已列入学习计划 1、已学过 1、不相关 1）" in after.note
    path = rec.learning_path("cadre:1")
    assert not set(before[:3]) & {step.item.item_id for step in path.steps}  # the path respects them too


def test_later_pushes_an_item_down_for_the_configured_days_then_lets_it_back(world, ontology) -> None:
    rec, choices = world
    before = ids(rec.recommend("cadre:1", k=5))
    top = before[0]
    choices.put("cadre:1", top, "later", NOON)
    after = rec.recommend("cadre:1", k=5)
    assert ids(after)[0] != top  # no longer first
    if top in ids(after):  # still eligible, lower down, and it says why
        moved = next(s for s in after.items if s.item_id == top)
        assert any(d.startswith("您已标记「以后再说」（2026-01-01）") for d in moved.details)
    assert "1 项「以后再说」暂时排后" in after.note
    days = ontology.rules["feedback"]["later_days"]
    choices.put("cadre:1", top, "later", NOON - dt.timedelta(days=days))  # put off long enough ago: no effect now
    assert ids(rec.recommend("cadre:1", k=5)) == before


def test_dismissed_materials_are_not_suggested_again(world) -> None:
    rec, choices = world
    materials = [m.item_id for m in rec.recommend("cadre:1", k=5).materials]
    assert materials
    choices.put("cadre:1", materials[0], "irrelevant", NOON)
    assert materials[0] not in [m.item_id for m in rec.recommend("cadre:1", k=5).materials]


def test_choices_are_per_cadre_latest_word_wins_and_shared_through_the_file(tmp_path) -> None:
    one, other = CadreChoices(tmp_path / "c.db"), CadreChoices(tmp_path / "c.db")  # two workers, one file
    one.put("cadre:1", "course:x", "later", NOON)
    one.put("cadre:1", "course:x", "planned", NOON + dt.timedelta(minutes=1))
    one.put("cadre:2", "course:y", "irrelevant", NOON)
    assert [(c.item_id, c.state) for c in other.of("cadre:1")] == [("course:x", "planned")]
    assert other.of("cadre:1")[0].local.strftime("%Y-%m-%d %H:%M") == "2026-01-01 12:01"
    assert other.remove("cadre:1", ["course:x"]) == 1 and one.of("cadre:1") == ()
    assert [c.item_id for c in one.of("cadre:2")] == ["course:y"]


# ─── the API and the pages, on the fixture corpus (cadre2 = cadre:t-002 has two suggestions) ───
CADRE = "cadre:t-002"


def _recs(client, app) -> list[str]:
    body = client.get(f"/api/cadres/{CADRE}/recommendations", headers=bearer(app, "cadre2")).json
    return [i["编号"] for i in body["推荐课程"]]


def test_api_marks_change_the_next_list_and_the_plan(client, app) -> None:
    before = _recs(client, app)
    assert len(before) == 2
    kept, dismissed = before
    put = client.put(f"/api/cadres/{CADRE}/choices/{kept}", json={"state": "planned"}, headers=bearer(app, "cadre2"))
    assert put.status_code == 200 and put.json["状态名称"] == "已列入学习计划"
    client.put(f"/api/cadres/{CADRE}/choices/{dismissed}", json={"state": "irrelevant"}, headers=bearer(app, "cadre2"))
    assert _recs(client, app) == []
    plan = client.get(f"/api/cadres/{CADRE}/choices", headers=bearer(app, "cadre2")).json
    assert [e["编号"] for e in plan["学习计划"]] == [kept]
    assert [(e["编号"], e["状态名称"]) for e in plan["已标记"]] == [(dismissed, "不相关")]
    assert client.get(f"/api/cadres/{CADRE}/choices", headers=bearer(app, "admin")).status_code == 200  # admin reads
    gone = client.delete(f"/api/cadres/{CADRE}/choices/{dismissed}", headers=bearer(app, "cadre2"))
    assert gone.status_code == 200 and _recs(client, app) == [dismissed]
    again = client.delete(f"/api/cadres/{CADRE}/choices/{dismissed}", headers=bearer(app, "cadre2"))
    assert again.status_code == 404 and dismissed in again.json["错误"]


@pytest.mark.parametrize(("user", "method"), [("cadre1", "get"), ("cadre1", "put"), ("cadre1", "delete"),
                                              ("admin", "put"), ("admin", "delete"), ("designer", "get")])
def test_only_the_cadre_changes_their_own_and_reads_no_one_elses(client, app, user, method) -> None:
    url = f"/api/cadres/{CADRE}/choices" + ("" if method == "get" else "/course:t-online")
    response = getattr(client, method)(url, headers=bearer(app, user), **({"json": {"state": "planned"}} if method == "put" else {}))
    assert response.status_code == 403 and response.json["错误"]


@pytest.mark.parametrize(("item", "body", "code", "field"), [
    ("course:t-online", {"state": "maybe"}, 422, "state"),
    ("course:t-online", {}, 422, "state"),
    ("course:nothing", {"state": "planned"}, 404, None),
    ("topic:theory", {"state": "planned"}, 422, "item"),
    ("cadre:t-001", {"state": "planned"}, 404, None),
])
def test_bad_marks_are_4xx_naming_the_field(client, app, item, body, code, field) -> None:
    response = client.put(f"/api/cadres/{CADRE}/choices/{item}", json=body, headers=bearer(app, "cadre2"))
    assert response.status_code == code and response.json["错误"]
    if field:
        assert field in str(response.json["字段"])


def test_a_mark_is_checked_against_the_current_graphs_feedback_states(client, app) -> None:
    """The body's state is validated against the ontology the routes use (graph().ontology), not the default
    directory's: a state that graph adds is accepted, one it does not know is refused naming the field."""
    with app.app_context():
        from api.graph import graph

        gr = graph()
        feedback = gr.ontology.rules["feedback"]
        wider = {**feedback, "states": {**feedback["states"], "skipped": "已跳过"},
                 "actions": {**feedback["actions"], "skipped": "跳过"}}
        gr.ontology = dataclasses.replace(gr.ontology, rules={**gr.ontology.rules, "feedback": wider})
    url = f"/api/cadres/{CADRE}/choices/course:t-online"
    put = client.put(url, json={"state": "skipped"}, headers=bearer(app, "cadre2"))
    assert put.status_code == 200 and put.json["状态名称"] == "已跳过", put.json
    refused = client.put(url, json={"state": "maybe"}, headers=bearer(app, "cadre2"))
    assert refused.status_code == 422 and "skipped" in str(refused.json["字段"]["state"])


def test_page_buttons_keep_and_dismiss_and_the_overview_shows_the_plan(client, app) -> None:
    _login(client, "cadre2")
    html = client.get("/cadre/").get_data(as_text=True)
    shown = re.findall(r'<li class="rec" data-id="(course:[^"]+)"', html)
    assert len(shown) == 2
    token = csrf_of(html)
    kept = client.post("/cadre/choices", data={"item": shown[0], "state": "planned", "next": "/cadre/", "csrf_token": token})
    assert kept.status_code == 302 and kept.headers["Location"].endswith("/cadre/")
    client.post("/cadre/choices", data={"item": shown[1], "state": "later", "next": "/cadre/", "csrf_token": token})
    html = client.get("/cadre/").get_data(as_text=True)
    assert "已将『" in html and "标记为「以后再说」" in html  # the flash says what happened
    plan = html[html.index('id="plan"'):html.index('id="path"')]
    assert shown[0] in plan and "已在别处学完" in plan
    recs = re.findall(r'<li class="rec" data-id="(course:[^"]+)"', html)
    assert shown[0] not in recs  # kept: in the plan, not suggested again
    if shown[1] in recs:  # put off: pushed down, with the reason
        assert "您已标记「以后再说」" in html
    removed = client.post("/cadre/choices/remove", data={"item": shown[0], "next": "/cadre/", "csrf_token": token})
    assert removed.status_code == 302
    assert shown[0] in re.findall(r'<li class="rec" data-id="(course:[^"]+)"', client.get("/cadre/").get_data(as_text=True))


def test_page_form_without_token_or_with_a_bad_state_is_refused(client, app) -> None:
    _login(client, "cadre2")
    assert client.post("/cadre/choices", data={"item": "course:t-online", "state": "planned"}, csrf=False).status_code == 403
    token = csrf_of(client.get("/cadre/").get_data(as_text=True))
    bad = client.post("/cadre/choices", data={"item": "course:t-online", "state": "x", "csrf_token": token})
    assert bad.status_code == 422


def test_item_page_shows_the_cadres_mark_and_buttons(client, app) -> None:
    _login(client, "cadre2")
    page = client.get("/catalogue/courses/course:t-online").get_data(as_text=True)
    assert 'id="my-choice"' in page and "加入学习计划" in page
    client.post("/cadre/choices", data={"item": "course:t-online", "state": "done", "csrf_token": csrf_of(page)})
    page = client.get("/catalogue/courses/course:t-online").get_data(as_text=True)
    assert "您已标记：" in page and "已学过" in page and "撤销标记" in page


def test_one_private_connection_per_thread(tmp_path) -> None:
    """kg.sqlite.ThreadConnections, shared by the choices file and the accounts database: each thread its own
    connection (the same one on every call), WAL mode, the owner's pragmas, and a file only the owner can read."""
    import stat
    import threading

    from api.accounts import Accounts
    from kg.choices import CadreChoices
    from kg.sqlite import ThreadConnections

    connections = ThreadConnections(tmp_path / "private" / "x.db", "foreign_keys=ON")
    mine = connections.get()
    other: list = []
    thread = threading.Thread(target=lambda: other.append(connections.get()))
    thread.start()
    thread.join(60)
    assert connections.get() is mine and other and other[0] is not mine
    assert mine.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert mine.execute("PRAGMA foreign_keys").fetchone() == (1,)
    assert stat.S_IMODE((tmp_path / "private" / "x.db").stat().st_mode) == 0o600
    choices = CadreChoices(tmp_path / "choices.db")
    assert choices._connections.get().execute("PRAGMA foreign_keys").fetchone() == (0,)
    assert Accounts(tmp_path / "accounts.db", password_method="pbkdf2:sha256:1")._connections.get().execute(
        "PRAGMA foreign_keys").fetchone() == (1,)
    assert {stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("choices.db", "accounts.db")} == {0o600}
