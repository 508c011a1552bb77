"""One contract, two back ends: every store operation answers the same on the embedded store and on Neo4j.

Each test runs once per back end (``store_under_test``) and checks hand-computed expected values, so the two
agree because both are right.  The Neo4j half needs a real server at ``NEO4J_URI``: it skips without one on a
developer's machine and fails in CI (``CI=true`` or ``GANXUN_REQUIRE_NEO4J=1``).  Text search is compared as
sets: the embedded store ranks by FTS5 trigram bm25, Neo4j by Lucene's ``cjk`` analyzer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kg.build import build_graph, import_files
from kg.model import Edge, Node, NodeWithEdges
from kg.ontology import Ontology
from kg.store import Store, StoreError, WriteSummary
from kg.store.embedded import EmbeddedStore
from kg.store.neo4j import Neo4jStore
from tests.conftest import FIXTURE_CORPUS
from tests.neo4j_support import neo4j_settings, open_neo4j

BACKENDS = ["embedded", "neo4j"]


@pytest.fixture(params=BACKENDS)
def store_under_test(request: pytest.FixtureRequest, tmp_path: Path, ontology: Ontology) -> Store:
    if request.param == "embedded":
        text_labels = [c.name for c in ontology.classes.values() if not c.personal]
        store = EmbeddedStore(tmp_path / "contract.db", text_labels=text_labels).open()
    else:
        store = open_neo4j()
    yield store
    store.close()


# ─── a small graph, built by hand ───
THEORY = Node("topic:c-theory", "Topic", {"name": "党的创新理论", "planPriority": 1, "altLabels": ["创新理论", "理论武装"]})
RURAL = Node("topic:c-rural", "Topic", {"name": "乡村振兴", "planPriority": 2})
COURSE = Node(
    "course:c-1",
    "Course",
    {
        "name": "村集体经济发展案例研讨",
        "description": "围绕山区村合作社的实践开展案例研讨",
        "hours": 2,
        "rating": 4.5,
        "isCase": True,
        "teachingMethod": ["案例式", "研讨式"],
    },
)
COURSE2 = Node("course:c-2", "Course", {"name": "新时代理论专题", "description": "系统讲授科学体系", "hours": 3})
TEACHER = Node("teacher:c-1", "Teacher", {"name": "甲老师", "isFamous": False})
KLASS = Node("class:c-1", "TrainingClass", {"name": "进修班"})
CADRE = Node("cadre:c-1", "Cadre", {"name": "乡村振兴干部"})  # personal: never searchable
NODES = [THEORY, RURAL, COURSE, COURSE2, TEACHER, KLASS, CADRE]
EDGES = [
    Edge("course:c-1", "COVERS", "topic:c-rural"),
    Edge("course:c-1", "TAUGHT_BY", "teacher:c-1"),
    Edge("course:c-2", "COVERS", "topic:c-theory"),
    Edge("teacher:c-1", "EXPERT_IN", "topic:c-rural"),
    Edge("class:c-1", "INCLUDES_COURSE", "course:c-2", {"ord": 1}),
    Edge("class:c-1", "INCLUDES_COURSE", "course:c-1", {"ord": 2}),
    Edge("topic:c-rural", "RELATED", "topic:c-theory"),
]


def seeded(store: Store) -> Store:
    store.write(NODES, EDGES)
    return store


def keys(edges) -> list[tuple[str, str, str]]:
    return [e.key for e in edges]


def ids(nodes) -> list[str]:
    return [n.id for n in nodes]


def another_reader(store: Store, ontology: Ontology) -> Store:
    """A second store on the same data with its own connection: another worker process's view."""
    if isinstance(store, EmbeddedStore):
        return EmbeddedStore(store.path, text_labels=store.text_labels).open()
    return Neo4jStore.from_settings(neo4j_settings(), ontology).open()  # its own driver


@contextmanager
def round_trips(store: Store) -> Iterator[list[object]]:
    """Record each statement sent to SQLite, or each read transaction sent to Neo4j, while the block runs."""
    calls: list[object] = []
    if isinstance(store, EmbeddedStore):
        conn = store._conn()
        conn.set_trace_callback(calls.append)
        try:
            yield calls
        finally:
            conn.set_trace_callback(None)
    else:
        read = store._read
        store._read = lambda *args, **kwargs: (calls.append(args), read(*args, **kwargs))[1]
        try:
            yield calls
        finally:
            del store._read


# ─── reads after one write ───
def test_a_written_node_reads_back_equal(store_under_test: Store) -> None:
    seeded(store_under_test)
    assert store_under_test.get_node("course:c-1") == COURSE
    assert store_under_test.get_node("topic:c-theory").props["altLabels"] == ["创新理论", "理论武装"]
    assert store_under_test.get_node("course:nope") is None


def test_nodes_are_sorted_by_id_and_filter_by_label(store_under_test: Store) -> None:
    seeded(store_under_test)
    assert list(store_under_test.nodes()) == sorted(NODES, key=lambda n: n.id)
    assert ids(store_under_test.nodes("Course")) == ["course:c-1", "course:c-2"]
    assert list(store_under_test.nodes("Textbook")) == []
    assert list(store_under_test.nodes("NoSuchClass")) == []


def test_edges_are_sorted_and_filter_by_every_end_and_type(store_under_test: Store) -> None:
    seeded(store_under_test)
    assert list(store_under_test.edges()) == sorted(EDGES, key=lambda e: e.key)
    assert keys(store_under_test.edges(src="course:c-1")) == [
        ("course:c-1", "COVERS", "topic:c-rural"),
        ("course:c-1", "TAUGHT_BY", "teacher:c-1"),
    ]
    assert keys(store_under_test.edges(type="COVERS")) == [
        ("course:c-1", "COVERS", "topic:c-rural"),
        ("course:c-2", "COVERS", "topic:c-theory"),
    ]
    assert keys(store_under_test.edges(dst="topic:c-rural")) == [
        ("course:c-1", "COVERS", "topic:c-rural"),
        ("teacher:c-1", "EXPERT_IN", "topic:c-rural"),
    ]
    assert keys(store_under_test.edges(src="course:c-1", type="COVERS", dst="topic:c-rural")) == [
        ("course:c-1", "COVERS", "topic:c-rural")
    ]
    assert list(store_under_test.edges(src="course:c-1", dst="topic:c-theory")) == []
    assert list(store_under_test.edges(type="NO_SUCH_TYPE")) == []


def test_ordered_relations_keep_their_ord(store_under_test: Store) -> None:
    seeded(store_under_test)
    ordered = list(store_under_test.edges(src="class:c-1", type="INCLUDES_COURSE"))
    assert [(e.dst, e.props) for e in ordered] == [("course:c-1", {"ord": 2}), ("course:c-2", {"ord": 1})]


def test_counts_per_label_and_type(store_under_test: Store) -> None:
    assert store_under_test.node_counts() == {}
    assert store_under_test.edge_counts() == {}
    assert store_under_test.is_empty()
    seeded(store_under_test)
    assert store_under_test.node_counts() == {"Cadre": 1, "Course": 2, "Teacher": 1, "Topic": 2, "TrainingClass": 1}
    assert store_under_test.edge_counts() == {
        "COVERS": 2,
        "EXPERT_IN": 1,
        "INCLUDES_COURSE": 2,
        "RELATED": 1,
        "TAUGHT_BY": 1,
    }
    assert not store_under_test.is_empty()


def test_get_nodes_and_labels_of_skip_unknown_ids_and_sort(store_under_test: Store) -> None:
    seeded(store_under_test)
    asked = ["topic:c-rural", "course:c-1", "nobody:x", "course:c-1"]
    assert ids(store_under_test.get_nodes(asked)) == ["course:c-1", "topic:c-rural"]
    assert store_under_test.labels_of(asked) == {"course:c-1": "Course", "topic:c-rural": "Topic"}
    assert store_under_test.label_of("teacher:c-1") == "Teacher"
    assert store_under_test.label_of("nobody:x") is None


def test_neighbours_in_each_direction(store_under_test: Store) -> None:
    seeded(store_under_test)
    assert ids(store_under_test.neighbours("course:c-1")) == ["teacher:c-1", "topic:c-rural"]
    assert ids(store_under_test.neighbours("course:c-1", type="COVERS")) == ["topic:c-rural"]
    assert ids(store_under_test.neighbours("topic:c-rural", direction="in")) == ["course:c-1", "teacher:c-1"]
    assert ids(store_under_test.neighbours("topic:c-rural", direction="both")) == [
        "course:c-1",
        "teacher:c-1",
        "topic:c-theory",
    ]
    assert store_under_test.neighbours("nobody:x", direction="both") == []


# ─── many ids in one call ───
def test_edges_from_many_sources_in_one_call(store_under_test: Store) -> None:
    seeded(store_under_test)
    asked = ["course:c-1", "class:c-1", "nobody:x", "course:c-1", "topic:c-theory"]
    with round_trips(store_under_test) as trips:
        found = store_under_test.edges_from(iter(asked))
    assert len(trips) == 1
    assert list(found) == ["class:c-1", "course:c-1", "nobody:x", "topic:c-theory"]
    assert {src: keys(edges) for src, edges in found.items()} == {
        "class:c-1": [("class:c-1", "INCLUDES_COURSE", "course:c-1"), ("class:c-1", "INCLUDES_COURSE", "course:c-2")],
        "course:c-1": [("course:c-1", "COVERS", "topic:c-rural"), ("course:c-1", "TAUGHT_BY", "teacher:c-1")],
        "nobody:x": [],
        "topic:c-theory": [],
    }
    assert found["class:c-1"] == list(store_under_test.edges(src="class:c-1"))  # properties (ord) included
    assert store_under_test.edges_from(asked, type="COVERS") == {
        "class:c-1": [],
        "course:c-1": [Edge("course:c-1", "COVERS", "topic:c-rural")],
        "nobody:x": [],
        "topic:c-theory": [],
    }
    assert store_under_test.edges_from([]) == {}


def test_edges_to_many_targets_in_one_call(store_under_test: Store) -> None:
    seeded(store_under_test)
    with round_trips(store_under_test) as trips:
        found = store_under_test.edges_to(["topic:c-theory", "topic:c-rural", "nobody:x"])
    assert len(trips) == 1
    assert {dst: keys(edges) for dst, edges in found.items()} == {
        "nobody:x": [],
        "topic:c-rural": [("course:c-1", "COVERS", "topic:c-rural"), ("teacher:c-1", "EXPERT_IN", "topic:c-rural")],
        "topic:c-theory": [("course:c-2", "COVERS", "topic:c-theory"), ("topic:c-rural", "RELATED", "topic:c-theory")],
    }
    assert list(found) == ["nobody:x", "topic:c-rural", "topic:c-theory"]
    assert store_under_test.edges_to(["course:c-1", "course:c-2"], type="INCLUDES_COURSE") == {
        "course:c-1": [Edge("class:c-1", "INCLUDES_COURSE", "course:c-1", {"ord": 2})],
        "course:c-2": [Edge("class:c-1", "INCLUDES_COURSE", "course:c-2", {"ord": 1})],
    }
    assert store_under_test.edges_to([], type="COVERS") == {}


def test_referrers_come_with_their_node_and_all_their_outgoing_edges(store_under_test: Store) -> None:
    seeded(store_under_test)
    with round_trips(store_under_test) as trips:
        found = store_under_test.referrers(["topic:c-rural", "nobody:x"], type="COVERS")
    assert len(trips) == 1
    assert found == {
        "nobody:x": [],
        "topic:c-rural": [NodeWithEdges(COURSE, list(store_under_test.edges(src="course:c-1")))],
    }
    # without a type: every source, each once; a source pointing at two asked ids appears under both
    untyped = store_under_test.referrers(["topic:c-rural", "topic:c-theory"])
    assert {dst: [(r.node.id, keys(r.edges)) for r in refs] for dst, refs in untyped.items()} == {
        "topic:c-rural": [
            ("course:c-1", [("course:c-1", "COVERS", "topic:c-rural"), ("course:c-1", "TAUGHT_BY", "teacher:c-1")]),
            ("teacher:c-1", [("teacher:c-1", "EXPERT_IN", "topic:c-rural")]),
        ],
        "topic:c-theory": [
            ("course:c-2", [("course:c-2", "COVERS", "topic:c-theory")]),
            ("topic:c-rural", [("topic:c-rural", "RELATED", "topic:c-theory")]),
        ],
    }
    both = store_under_test.referrers(["course:c-1", "course:c-2"], type="INCLUDES_COURSE")
    assert both["course:c-1"] == both["course:c-2"] == [NodeWithEdges(KLASS, list(store_under_test.edges(src="class:c-1")))]
    assert store_under_test.referrers([]) == {}


def test_a_cadres_training_records_are_one_round_trip(store_under_test: Store) -> None:
    """The recommender's and the API's per-request read: a cadre's records with the course or class of each."""
    platform = Node("platform:c-1", "Platform", {"name": "网络学院"})
    other = Node("cadre:c-2", "Cadre", {"name": "另一名干部"})
    records = [
        Node("record:c-1-001", "TrainingRecord", {"date": "2024-03-01", "completed": True, "mode": "网络自学", "minutes": 90}),
        Node("record:c-1-002", "TrainingRecord", {"date": "2024-05-09", "completed": False, "mode": "集中培训", "hours": 3}),
        Node("record:c-2-001", "TrainingRecord", {"date": "2024-06-01", "completed": True, "mode": "集中培训", "hours": 2}),
    ]
    links = [
        Edge("record:c-1-001", "OF_CADRE", "cadre:c-1"),
        Edge("record:c-1-001", "FOR_COURSE", "course:c-2"),
        Edge("record:c-1-001", "VIA_PLATFORM", "platform:c-1"),
        Edge("record:c-1-002", "OF_CADRE", "cadre:c-1"),
        Edge("record:c-1-002", "FOR_COURSE", "course:c-1"),
        Edge("record:c-1-002", "IN_CLASS", "class:c-1"),
        Edge("record:c-2-001", "OF_CADRE", "cadre:c-2"),
        Edge("record:c-2-001", "FOR_COURSE", "course:c-1"),
    ]
    store_under_test.write([*NODES, platform, other, *records], [*EDGES, *links])
    with round_trips(store_under_test) as trips:
        history = store_under_test.referrers(["cadre:c-1"], type="OF_CADRE")["cadre:c-1"]
    assert len(trips) == 1
    assert [r.node for r in history] == records[:2]
    assert [{e.type: e.dst for e in r.edges} for r in history] == [
        {"OF_CADRE": "cadre:c-1", "FOR_COURSE": "course:c-2", "VIA_PLATFORM": "platform:c-1"},
        {"OF_CADRE": "cadre:c-1", "FOR_COURSE": "course:c-1", "IN_CLASS": "class:c-1"},
    ]
    # the native answer equals the base class's default, composed from edges_to, get_nodes and edges_from
    cadres = ["cadre:c-1", "cadre:c-2"]
    assert store_under_test.referrers(cadres, type="OF_CADRE") == Store.referrers(store_under_test, cadres, type="OF_CADRE")


def test_nodes_with_their_outgoing_edges_are_one_round_trip(store_under_test: Store) -> None:
    """The batch's read of a block of cadres: each node with every edge it points out along (category, groups…)."""
    seeded(store_under_test)
    asked = ["class:c-1", "nobody:x", "course:c-1", "teacher:c-1", "class:c-1", "course:c-2", "cadre:c-1"]
    with round_trips(store_under_test) as trips:
        found = store_under_test.nodes_with_edges(iter(asked))
    assert len(trips) == 1
    assert list(found) == ["cadre:c-1", "class:c-1", "course:c-1", "course:c-2", "teacher:c-1"]  # unknown ids absent
    assert found["cadre:c-1"] == NodeWithEdges(CADRE, [])  # a node with no outgoing edge is still there
    assert found["course:c-1"] == NodeWithEdges(COURSE, [Edge("course:c-1", "COVERS", "topic:c-rural"),
                                                         Edge("course:c-1", "TAUGHT_BY", "teacher:c-1")])
    assert [e.props for e in found["class:c-1"].edges] == [{"ord": 2}, {"ord": 1}]  # (src, type, dst) order, props kept
    # the native answer equals the base class's default, composed from get_nodes and edges_from
    assert found == Store.nodes_with_edges(store_under_test, asked)
    assert store_under_test.nodes_with_edges([]) == {} and store_under_test.nodes_with_edges(["nobody:x"]) == {}


def test_get_nodes_and_labels_of_are_one_round_trip(store_under_test: Store) -> None:
    seeded(store_under_test)
    asked = [n.id for n in NODES] + ["nobody:x"]
    with round_trips(store_under_test) as trips:
        assert store_under_test.get_nodes(asked) == sorted(NODES, key=lambda n: n.id)
        assert store_under_test.labels_of(asked) == {n.id: n.label for n in NODES}
    assert len(trips) == 2


def test_an_import_looks_up_every_stored_reference_in_one_call(
    store_under_test: Store, ontology: Ontology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded(store_under_test)
    rows = [
        {"type": "TrainingRecord", "id": f"record:c-1-{i:03d}", "ofCadre": "cadre:c-1",
         "forCourse": f"course:c-{i % 2 + 1}", "date": "2024-01-01", "completed": True, "mode": "集中培训"}
        for i in range(40)
    ]
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    asked: list[list[str]] = []
    labels_of = store_under_test.labels_of
    monkeypatch.setattr(store_under_test, "labels_of", lambda ids: asked.append(sorted(ids)) or labels_of(ids))
    monkeypatch.setattr(store_under_test, "label_of", lambda _id: pytest.fail("一次只查一个编号"))
    report = import_files(store_under_test, [path], ontology)
    assert asked == [["cadre:c-1", "course:c-1", "course:c-2"]]
    assert len(report.nodes) == 40 and len(report.edges) == 80
    assert len(store_under_test.referrers(["cadre:c-1"], type="OF_CADRE")["cadre:c-1"]) == 40


# ─── the version stamp ───
def test_every_kind_of_write_raises_the_version(store_under_test: Store) -> None:
    seen = [store_under_test.version()]

    def raised() -> bool:
        seen.append(store_under_test.version())
        return seen[-1] > seen[-2]

    assert isinstance(seen[0], int) and seen[0] >= 0
    seeded(store_under_test)
    assert raised()
    store_under_test.write([Node("course:c-1", "Course", {"name": "改名"})], [])  # a node replaced
    assert raised()
    store_under_test.write([], [Edge("class:c-1", "INCLUDES_COURSE", "course:c-1", {"ord": 5})])  # edges only
    assert raised()
    store_under_test.delete_nodes(["teacher:c-1"])
    assert raised()
    store_under_test.write([THEORY, RURAL], [Edge("topic:c-rural", "BROADER", "topic:c-theory")], replace=True)
    assert raised()
    store_under_test.write([], [], replace=True)
    assert raised()


def test_reads_leave_the_version_alone(store_under_test: Store) -> None:
    seeded(store_under_test)
    before = store_under_test.version()
    store_under_test.get_node("course:c-1"), store_under_test.get_nodes(["course:c-1"]), list(store_under_test.nodes())
    list(store_under_test.edges()), store_under_test.edges_from(["course:c-1"]), store_under_test.edges_to(["topic:c-rural"])
    store_under_test.referrers(["topic:c-rural"]), store_under_test.neighbours("course:c-1", direction="both")
    store_under_test.node_counts(), store_under_test.edge_counts(), store_under_test.labels_of(["course:c-1"])
    store_under_test.text_search("理论"), store_under_test.text_search("村")
    assert store_under_test.version() == before == store_under_test.version()


def test_a_rejected_write_leaves_the_version_unchanged(store_under_test: Store) -> None:
    seeded(store_under_test)
    before = store_under_test.version()
    with pytest.raises(StoreError, match="关系的端点不存在"):
        store_under_test.write([Node("course:c-3", "Course")], [Edge("course:c-3", "COVERS", "topic:c-missing")])
    with pytest.raises(StoreError, match="关系的端点不存在"):
        store_under_test.write([THEORY], [Edge("course:c-gone", "COVERS", "topic:c-gone")], replace=True)
    with pytest.raises(StoreError, match="为空值"):
        store_under_test.write([Node("course:c-bad", "Course", {"rating": None})], [])
    assert store_under_test.version() == before


def test_another_reader_sees_the_new_version_right_after_the_commit(store_under_test: Store, ontology: Ontology) -> None:
    seeded(store_under_test)
    other = another_reader(store_under_test, ontology)
    try:
        assert other.version() == store_under_test.version()
        for change in (
            lambda: store_under_test.write([Node("topic:c-new", "Topic", {"name": "新主题"})], []),
            lambda: store_under_test.delete_nodes(["topic:c-new"]),
        ):
            before = other.version()
            change()
            after = other.version()
            assert after > before and after == store_under_test.version()
        # and what the other reader sees at that version is the committed data
        store_under_test.write([Node("topic:c-later", "Topic", {"name": "后来的主题"})], [])
        assert other.get_node("topic:c-later") == Node("topic:c-later", "Topic", {"name": "后来的主题"})
    finally:
        other.close()


# ─── write semantics ───
def test_write_reports_what_it_wrote(store_under_test: Store) -> None:
    summary = store_under_test.write(NODES, EDGES)
    assert (summary.nodes_written, summary.edges_written, summary.nodes_deleted, summary.edges_deleted) == (7, 7, 0, 0)


def test_a_rewritten_node_is_replaced_whole_with_its_outgoing_edges(store_under_test: Store) -> None:
    seeded(store_under_test)
    slimmer = Node("course:c-1", "Course", {"name": "村集体经济发展案例研讨（修订）", "hours": 4})
    store_under_test.write([slimmer], [Edge("course:c-1", "COVERS", "topic:c-theory")])
    assert store_under_test.get_node("course:c-1") == slimmer  # description, rating… are gone
    assert keys(store_under_test.edges(src="course:c-1")) == [("course:c-1", "COVERS", "topic:c-theory")]
    # incoming edges belong to their sources and stay
    assert keys(store_under_test.edges(dst="course:c-1")) == [("class:c-1", "INCLUDES_COURSE", "course:c-1")]


def test_edges_of_nodes_not_written_are_upserted(store_under_test: Store) -> None:
    seeded(store_under_test)
    store_under_test.write([], [Edge("class:c-1", "INCLUDES_COURSE", "course:c-1", {"ord": 9})])
    assert [(e.dst, e.props) for e in store_under_test.edges(src="class:c-1")] == [
        ("course:c-1", {"ord": 9}),
        ("course:c-2", {"ord": 1}),
    ]


def test_a_node_may_change_class(store_under_test: Store) -> None:
    seeded(store_under_test)
    store_under_test.write([Node("teacher:c-1", "Institution", {"name": "甲单位"})], [])
    assert store_under_test.label_of("teacher:c-1") == "Institution"
    assert store_under_test.node_counts() == {"Cadre": 1, "Course": 2, "Institution": 1, "Topic": 2, "TrainingClass": 1}
    assert keys(store_under_test.edges(dst="teacher:c-1")) == [("course:c-1", "TAUGHT_BY", "teacher:c-1")]


def test_a_node_or_edge_given_twice_keeps_the_last(store_under_test: Store) -> None:
    first, last = Node("topic:c-x", "Topic", {"name": "甲"}), Node("topic:c-x", "Topic", {"name": "乙"})
    summary = store_under_test.write(
        [first, last, RURAL],
        [Edge("topic:c-x", "RELATED", "topic:c-rural", {"ord": 1}), Edge("topic:c-x", "RELATED", "topic:c-rural")],
    )
    assert (summary.nodes_written, summary.edges_written) == (2, 1)
    assert store_under_test.get_node("topic:c-x") == last
    assert list(store_under_test.edges(src="topic:c-x")) == [Edge("topic:c-x", "RELATED", "topic:c-rural")]


def test_replace_leaves_exactly_the_given_graph(store_under_test: Store) -> None:
    seeded(store_under_test)
    summary = store_under_test.write([THEORY, RURAL], [Edge("topic:c-rural", "BROADER", "topic:c-theory")], replace=True)
    assert summary == WriteSummary(nodes_written=2, edges_written=1, nodes_deleted=7, edges_deleted=7, extra=summary.extra)
    assert list(store_under_test.nodes()) == [RURAL, THEORY]
    assert list(store_under_test.edges()) == [Edge("topic:c-rural", "BROADER", "topic:c-theory")]
    assert store_under_test.write([], [], replace=True).nodes_deleted == 2
    assert store_under_test.is_empty()


def test_data_survive_closing_the_store(store_under_test: Store) -> None:
    seeded(store_under_test)
    store_under_test.close()
    store_under_test.open()
    assert store_under_test.get_node("course:c-1") == COURSE
    assert len(list(store_under_test.edges())) == len(EDGES)


# ─── bad input: the same error, nothing written ───
def test_an_edge_to_a_missing_node_fails_and_writes_nothing(store_under_test: Store) -> None:
    seeded(store_under_test)
    before_nodes, before_edges = list(store_under_test.nodes()), list(store_under_test.edges())
    newcomer = Node("course:c-3", "Course", {"name": "新课"})
    with pytest.raises(StoreError, match="关系的端点不存在：topic:c-missing$"):
        store_under_test.write(
            [newcomer, Node("course:c-1", "Course", {"name": "改名"})],
            [Edge("course:c-3", "COVERS", "topic:c-rural"), Edge("course:c-3", "COVERS", "topic:c-missing")],
        )
    assert list(store_under_test.nodes()) == before_nodes
    assert list(store_under_test.edges()) == before_edges


def test_a_replace_that_fails_keeps_the_old_graph(store_under_test: Store) -> None:
    seeded(store_under_test)
    with pytest.raises(StoreError, match="关系的端点不存在：course:c-gone、topic:c-gone$"):
        store_under_test.write([THEORY], [Edge("course:c-gone", "COVERS", "topic:c-gone")], replace=True)
    assert store_under_test.node_counts()["Course"] == 2
    assert len(list(store_under_test.edges())) == len(EDGES)


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"meta": {"a": 1}}, "节点 course:c-bad 的属性『meta』的值类型为 dict"),
        ({"rating": None}, "节点 course:c-bad 的属性『rating』为空值"),
        ({"teachingMethod": ["讲授", 1]}, "节点 course:c-bad 的属性『teachingMethod』是混合类型"),
        ({"hours": [1, True]}, "节点 course:c-bad 的属性『hours』是混合类型"),
        ({"id": "course:other"}, "节点 course:c-bad 的属性中不能有『id』"),
    ],
)
def test_property_values_no_back_end_can_hold_alike_are_refused(
    store_under_test: Store, props: dict, message: str
) -> None:
    seeded(store_under_test)
    with pytest.raises(StoreError, match=message):
        store_under_test.write([Node("course:c-bad", "Course", props), Node("topic:c-new", "Topic", {})], [])
    assert store_under_test.get_node("course:c-bad") is None
    assert store_under_test.get_node("topic:c-new") is None


def test_edge_properties_are_checked_too(store_under_test: Store) -> None:
    seeded(store_under_test)
    with pytest.raises(StoreError, match=r"关系 class:c-1 -\[INCLUDES_COURSE\]-> course:c-1 的属性『ord』为空值"):
        store_under_test.write([], [Edge("class:c-1", "INCLUDES_COURSE", "course:c-1", {"ord": None})])


def test_an_empty_list_reads_back_empty(store_under_test: Store) -> None:
    store_under_test.write([Node("course:c-empty", "Course", {"teachingMethod": []})], [])
    assert store_under_test.get_node("course:c-empty").props == {"teachingMethod": []}


# ─── deletes ───
def test_delete_removes_nodes_with_every_edge_touching_them(store_under_test: Store) -> None:
    seeded(store_under_test)
    summary = store_under_test.delete_nodes(["course:c-1", "nobody:x", "course:c-1"])
    assert (summary.nodes_deleted, summary.edges_deleted) == (1, 3)
    assert store_under_test.get_node("course:c-1") is None
    assert all("course:c-1" not in (e.src, e.dst) for e in store_under_test.edges())
    assert store_under_test.delete_nodes([]) == WriteSummary()


# ─── full-text search (set-based: rankings differ) ───
def test_text_search_finds_the_distinctive_node(store_under_test: Store) -> None:
    seeded(store_under_test)
    found = {n.id for n, _score in store_under_test.text_search("合作社的实践")}
    assert found == {"course:c-1"}
    assert {n.id for n, _ in store_under_test.text_search("乡村振兴")} == {"topic:c-rural"}  # not the cadre


def test_text_search_respects_labels_and_limit(store_under_test: Store) -> None:
    seeded(store_under_test)
    assert {n.id for n, _ in store_under_test.text_search("理论")} == {"course:c-2", "topic:c-theory"}
    assert {n.id for n, _ in store_under_test.text_search("理论", labels=["Course"])} == {"course:c-2"}
    assert store_under_test.text_search("理论", labels=["Textbook"]) == []
    assert len(store_under_test.text_search("理论", limit=1)) == 1
    for node, score in store_under_test.text_search("理论"):
        assert isinstance(node, Node) and score > 0


def test_short_and_empty_queries(store_under_test: Store) -> None:
    seeded(store_under_test)
    assert {n.id for n, _ in store_under_test.text_search("村")} == {"course:c-1", "topic:c-rural"}
    assert {n.id for n, _ in store_under_test.text_search("振兴")} == {"topic:c-rural"}
    assert store_under_test.text_search("   ") == []
    assert store_under_test.text_search("不存在的词语组合") == []


def test_search_text_is_data_not_syntax(store_under_test: Store) -> None:
    seeded(store_under_test)
    for query in ['x" OR *:*', "不存在\\", "a:b)(", "'); MATCH (n) DETACH DELETE n //"]:
        assert store_under_test.text_search(query) == []
    assert len(list(store_under_test.nodes())) == len(NODES)


# ─── the fixture corpus, whole ───
def test_the_fixture_corpus_reads_back_identically(store_under_test: Store, built_store: Store, ontology: Ontology) -> None:
    """``built_store`` is the embedded reference; both back ends must hold exactly what it holds."""
    report = build_graph(store_under_test, [FIXTURE_CORPUS], ontology)
    assert report.written.nodes_written == len(report.nodes)
    assert list(store_under_test.nodes()) == list(built_store.nodes())
    assert list(store_under_test.edges()) == list(built_store.edges())
    assert store_under_test.node_counts() == built_store.node_counts()
    assert store_under_test.edge_counts() == built_store.edge_counts()
    assert store_under_test.neighbours("topic:competence", direction="in") == built_store.neighbours(
        "topic:competence", direction="in"
    )
