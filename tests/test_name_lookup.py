"""``Store.find_by_name`` on both back ends (the administrator's 查找干部 over a province of a million cadres): names
that start with what was typed, by name then id, bounded, one label only, from an index — and the same answer as
the interface's scanning default.  The embedded store's query plan shows the index; Neo4j's schema holds one
range index on ``name`` per class.  In CI (``GANXUN_REQUIRE_NEO4J=1``) the Neo4j half fails, not skips, without
a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from kg.model import Node
from kg.ontology import Ontology
from kg.store import Store
from kg.store.embedded import _NAME, EmbeddedStore
from tests.neo4j_support import open_neo4j
from tests.test_api_support import PASSWORD, app, index_dir, template_home  # noqa: F401  (fixtures)

CADRES = [Node("cadre:n-1", "Cadre", {"name": "梁新慧"}), Node("cadre:n-2", "Cadre", {"name": "梁新"}),
          Node("cadre:n-3", "Cadre", {"name": "梁新慧"}), Node("cadre:n-4", "Cadre", {"name": "新慧"}),
          Node("cadre:n-5", "Cadre", {"name": "王梁"}), Node("cadre:n-6", "Cadre", {})]
OTHERS = [Node("teacher:n-1", "Teacher", {"name": "梁新慧"})]


@pytest.fixture(params=["embedded", "neo4j"])
def store(request: pytest.FixtureRequest, tmp_path: Path, ontology: Ontology) -> Store:
    if request.param == "embedded":
        opened: Store = EmbeddedStore(tmp_path / "names.db").open()
    else:
        opened = open_neo4j()
    opened.write(CADRES + OTHERS, [])
    yield opened
    opened.close()


def ids(nodes: list[Node]) -> list[str]:
    return [n.id for n in nodes]


class TestFindByName:
    def test_names_that_start_with_the_prefix_by_name_then_id(self, store):
        assert ids(store.find_by_name("Cadre", "梁新")) == ["cadre:n-2", "cadre:n-1", "cadre:n-3"]
        assert ids(store.find_by_name("Cadre", "梁新慧")) == ["cadre:n-1", "cadre:n-3"]

    def test_only_the_label_asked_and_never_a_name_that_merely_contains_it(self, store):
        assert "teacher:n-1" not in ids(store.find_by_name("Cadre", "梁"))
        assert ids(store.find_by_name("Teacher", "梁")) == ["teacher:n-1"]
        assert "cadre:n-5" not in ids(store.find_by_name("Cadre", "梁"))  # 王梁 contains 梁 but does not start with it

    def test_bounded_and_empty(self, store):
        assert ids(store.find_by_name("Cadre", "梁", limit=2)) == ["cadre:n-2", "cadre:n-1"]
        assert store.find_by_name("Cadre", "") == [] and store.find_by_name("Cadre", "赵") == []
        assert store.find_by_name("Cadre", "梁新慧\U0010ffff") == []

    def test_the_same_answer_as_the_scanning_default(self, store):
        for prefix in ("梁", "梁新", "新", "王", "梁新慧"):
            assert store.find_by_name("Cadre", prefix) == Store.find_by_name(store, "Cadre", prefix), prefix


def test_the_embedded_store_reads_the_name_index(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "plan.db").open()
    plan = store._conn().execute(f"EXPLAIN QUERY PLAN SELECT id FROM nodes WHERE label = ? AND {_NAME} >= ? "
                                 f"AND {_NAME} < ? ORDER BY {_NAME}, id LIMIT 20", ("Cadre", "梁", "梁\U0010ffff"))
    assert any("USING INDEX nodes_name" in row[-1] for row in plan)


def test_neo4j_has_a_name_index_per_class(ontology: Ontology) -> None:
    store = open_neo4j()
    try:
        found = {r["name"]: r for r in store._read(lambda tx: list(tx.run(store._text("show_indexes"))))}
        assert found["gx_Cadre_name"]["labelsOrTypes"] == ["Cadre"] and found["gx_Cadre_name"]["properties"] == ["name"]
    finally:
        store.close()


def test_the_admin_page_finds_cadres_by_the_start_of_the_name_or_the_id(app) -> None:
    client = app.test_client()
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    both = client.get("/admin/cadres?q=样例干部").get_data(as_text=True)
    assert "样例干部甲" in both and "样例干部乙" in both and "（2 人）" in both
    one = client.get("/admin/cadres?q=cadre:t-002").get_data(as_text=True)
    assert "样例干部乙" in one and "样例干部甲" not in one and "（1 人）" in one
    none = client.get("/admin/cadres?q=干部甲").get_data(as_text=True)  # inside a name, not at its start
    assert "（0 人）" in none and "没有姓名以「干部甲」开头的干部" in none
