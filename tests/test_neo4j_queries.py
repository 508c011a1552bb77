"""The designers' named Cypher queries, each run on the real Neo4j server over the fixture corpus.

Expected rows are worked out by hand from ``tests/fixtures/corpus`` (four courses, one case study, two sites,
one route, two teachers, two cadres with three records) and the ontology's topic scheme.
"""

from __future__ import annotations

import pytest

from kg.build import build_graph
from kg.cypher import LIBRARY, STORE, CypherTemplateError, render
from kg.ontology import Ontology
from kg.store.neo4j import Neo4jStore
from tests.conftest import FIXTURE_CORPUS
from tests.neo4j_support import open_neo4j


@pytest.fixture(scope="module")
def graph(ontology: Ontology) -> Neo4jStore:
    store = open_neo4j()
    build_graph(store, [FIXTURE_CORPUS], ontology)
    yield store
    store.close()


def topic_ids(ontology: Ontology) -> list[str]:
    nodes, _ = ontology.concept_graph()
    return sorted(n.id for n in nodes if n.label == "Topic")


def narrower_or_self(ontology: Ontology, top: str) -> set[str]:
    _, edges = ontology.concept_graph()
    broader = ontology.relationship_types["broader"]
    found, frontier = {top}, {top}
    while frontier:
        frontier = {e.src for e in edges if e.type == broader and e.dst in frontier} - found
        found |= frontier
    return found


# ─── coverage by topic ───
def test_coverage_of_one_top_concept_counts_every_kind_of_material(graph: Neo4jStore, ontology: Ontology) -> None:
    rows = graph.run_named("coverage_by_topic", top="topic:competence")
    assert {r["topic"] for r in rows} == narrower_or_self(ontology, "topic:competence")
    competence = rows[-1]  # the only one with a course: sorted last
    assert competence["topic"] == "topic:competence"
    assert {k: competence[k] for k in ("courses", "caseCourses", "textbooks", "cases", "sites")} == {
        "courses": 1,  # course:t-village-case
        "caseCourses": 1,
        "textbooks": 1,  # textbook:t-cases
        "cases": 1,  # case:t-village
        "sites": 1,  # site:t-village
    }
    assert all(r["courses"] == 0 for r in rows[:-1])


def test_coverage_of_every_topic(graph: Neo4jStore, ontology: Ontology) -> None:
    rows = {r["topic"]: r for r in graph.run_named("coverage_by_topic", top=None)}
    assert sorted(rows) == topic_ids(ontology)
    assert (rows["topic:theory"]["courses"], rows["topic:theory"]["caseCourses"]) == (1, 0)
    assert (rows["topic:political"]["courses"], rows["topic:political"]["sites"]) == (1, 1)  # the draft; the memorial
    assert rows["topic:newtech"]["courses"] == 1


# ─── topics without case courses ───
def test_only_the_topic_with_a_case_course_is_left_out(graph: Neo4jStore, ontology: Ontology) -> None:
    rows = {r["topic"]: r for r in graph.run_named("topics_without_case_courses", top=None)}
    assert sorted(rows) == [t for t in topic_ids(ontology) if t != "topic:competence"]
    assert (rows["topic:theory"]["courses"], rows["topic:theory"]["availableCases"]) == (1, 0)


def test_topics_without_case_courses_under_one_top_concept(graph: Neo4jStore, ontology: Ontology) -> None:
    rows = graph.run_named("topics_without_case_courses", top="topic:competence")
    assert {r["topic"] for r in rows} == narrower_or_self(ontology, "topic:competence") - {"topic:competence"}


# ─── teachers and sites for a topic ───
def test_teachers_and_sites_for_a_topic(graph: Neo4jStore, ontology: Ontology) -> None:
    expected = [
        {"kind": "teacher", "id": "teacher:t-b", "name": "乙同志", "place": "测试县委党校", "routes": []},
        {"kind": "site", "id": "site:t-village", "name": "测试乡村振兴示范村", "place": "测试省", "routes": ["红色传承与乡村振兴教学路线"]},
    ]
    assert graph.run_named("teachers_and_sites_for_topic", topic="topic:competence") == expected
    by_name = graph.get_node("topic:competence").props["name"]
    assert graph.run_named("teachers_and_sites_for_topic", topic=by_name) == expected


def test_a_topic_with_only_a_site(graph: Neo4jStore) -> None:
    rows = graph.run_named("teachers_and_sites_for_topic", topic="topic:political")
    assert [(r["kind"], r["id"], r["routes"]) for r in rows] == [("site", "site:t-memorial", ["红色传承与乡村振兴教学路线"])]


# ─── a cadre's learning map ───
def test_learning_map_of_a_cadre(graph: Neo4jStore) -> None:
    rows = graph.run_named("cadre_learning_map", cadre="cadre:t-001")
    assert [(r["area"], r["topic"], r["records"], r["courses"], r["hours"], r["minutes"], r["lastDate"]) for r in rows] == [
        ("topic:newtech", "topic:newtech", 1, 1, 0, 40, "2025-06-02"),  # 40 minutes online
        ("topic:theory", "topic:theory", 1, 1, 3, 0, "2025-04-25"),  # 3 hours in class
    ]
    other = graph.run_named("cadre_learning_map", cadre="cadre:t-002")
    assert [(r["topic"], r["hours"]) for r in other] == [("topic:competence", 2)]
    assert graph.run_named("cadre_learning_map", cadre="cadre:nobody") == []


# ─── courses not updated for N years ───
@pytest.mark.parametrize(
    ("years", "expected"),
    [
        (2, [("course:t-village-case", "2023-05-01")]),
        (1, [("course:t-village-case", "2023-05-01"), ("course:t-online", "2024-06-01")]),
        (5, []),
    ],
)
def test_courses_not_updated(graph: Neo4jStore, years: int, expected: list[tuple[str, str]]) -> None:
    rows = graph.run_named("courses_not_updated", years=years, asOf="2026-01-01")
    assert [(r["course"], r["modified"]) for r in rows] == expected


# ─── the texts themselves (no server needed) ───
@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_library_queries_are_documented_and_render_for_the_browser(name: str, ontology: Ontology) -> None:
    query = LIBRARY[name]
    assert query.title and query.description and query.params
    text = query.browser_text(ontology)
    assert "%" not in text
    assert all(f":param {key} =>" in text for key in query.example)
    assert query.text(ontology) in text


def test_every_store_query_renders(ontology: Ontology) -> None:
    per_call = {"_label": "Course", "_labels": ["Course", "Topic"], "_rel": "COVERS", "_name": "gx_x", "_prop": "name"}
    for query in STORE.values():
        assert "%" not in query.text(ontology, **per_call)


def test_templates_refuse_what_the_ontology_does_not_define(ontology: Ontology) -> None:
    with pytest.raises(CypherTemplateError, match="NoSuchClass"):
        render("MATCH (n:%NoSuchClass) RETURN n", ontology)
    with pytest.raises(CypherTemplateError):
        render("MATCH (n:%_label) RETURN n", ontology, _label="Course`) DETACH DELETE n //")
    assert render("MATCH (c:%Course)-[:%covers]->(t:%Topic)", ontology) == "MATCH (c:`Course`)-[:`COVERS`]->(t:`Topic`)"


def test_the_queries_command_lists_and_prints_them() -> None:
    from click.testing import CliRunner

    from kg.cli import main

    listing = CliRunner().invoke(main, ["queries"])
    assert listing.exit_code == 0 and all(name in listing.output for name in LIBRARY)
    one = CliRunner().invoke(main, ["queries", "courses_not_updated"])
    assert one.exit_code == 0 and ":param years => 2" in one.output and "MATCH (c:`Course`)" in one.output
    unknown = CliRunner().invoke(main, ["queries", "nope"])
    assert unknown.exit_code == 1 and "没有名为『nope』的查询" in unknown.output
