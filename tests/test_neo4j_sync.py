"""``kg sync`` and ``kg --store neo4j build`` on the real server; bad connection settings give one Chinese line.

The first load through ``neo4j-admin`` stops and restarts its server, so those tests run on a second server of their
own (:func:`tests.neo4j_support.start_own_server`); the shared one is only ever cleared."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kg.build import build_graph
from kg.cli import main
from kg.model import Edge, Node
from kg.ontology import Ontology
from kg.store import Store, StoreError
from kg.store.embedded import EmbeddedStore
from kg.cypher import HASH_PROPERTY, NODE_LABEL
from kg.neo4j_import import ARRAY_DELIMITER, first_load, local_server, write_import_files
from kg.store.neo4j import Neo4jStore, node_hash
from kg.sync import graph_checksum, sync_graph
from tests.conftest import FIXTURE_CORPUS
from tests.neo4j_support import OwnServer, neo4j_settings, open_neo4j, start_own_server


@pytest.fixture
def neo4j():
    store = open_neo4j()
    yield store
    store.close()


def test_sync_copies_exactly_and_a_second_sync_changes_nothing(built_store: Store, neo4j) -> None:
    # Neo4j starts out of step: a node the source lacks, an extra edge, a changed property, a node of another class
    course = built_store.get_node("course:t-theory")
    neo4j.write(
        [
            Node("topic:t-stale", "Topic", {"name": "多余主题"}),
            Node("course:t-theory", "Course", {**course.props, "hours": 99}),
            Node("case:t-village", "Textbook", {"name": "错类"}),
        ],
        [Edge("course:t-theory", "COVERS", "topic:t-stale")],
    )
    first = sync_graph(built_store, neo4j)
    assert first.in_step and first.changed
    assert first.changes["nodes_deleted"] == 1  # topic:t-stale, with its incoming edge
    assert first.changes["labels_removed"] == 1  # Textbook → CaseStudy
    assert graph_checksum(neo4j) == graph_checksum(built_store)
    assert neo4j.get_node("course:t-theory") == course

    second = sync_graph(built_store, neo4j)
    assert not second.changed, second.changes  # not one node, edge, label or property written
    assert (second.before_nodes, second.before_edges) == (second.after_nodes, second.after_edges)
    assert second.after_nodes == built_store.node_counts()
    assert graph_checksum(neo4j) == graph_checksum(built_store)


def test_sync_removes_edges_of_nodes_that_have_none_in_the_source(built_store: Store, neo4j) -> None:
    sync_graph(built_store, neo4j)
    assert list(built_store.edges(src="inst:t-county-school")) == []
    neo4j.write([], [Edge("inst:t-county-school", "AFFILIATED_WITH", "inst:t-province-school")])
    report = sync_graph(built_store, neo4j)
    assert dict(+report.changes) == {"relationships_deleted": 1}
    assert list(neo4j.edges(src="inst:t-county-school")) == []


def embedded_home(tmp_path: Path, ontology: Ontology) -> Path:
    text_labels = [c.name for c in ontology.classes.values() if not c.personal]
    with EmbeddedStore(tmp_path / "ganxun.db", text_labels=text_labels) as store:
        build_graph(store, [FIXTURE_CORPUS], ontology)
    return tmp_path


def test_the_sync_command_prints_counts_and_is_idempotent(tmp_path: Path, ontology: Ontology, neo4j) -> None:
    home = embedded_home(tmp_path, ontology)
    with EmbeddedStore(home / "ganxun.db") as store:
        expected_nodes = sum(store.node_counts().values())
    env = {"GANXUN_HOME": str(home)}
    runner = CliRunner()
    first = runner.invoke(main, ["sync", "--no-import"], env=env)  # the Bolt path; the import has its own test
    assert first.exit_code == 0, first.output
    assert "同步前" in first.output and "同步后" in first.output and f"本次变更：新建节点 {expected_nodes}" in first.output
    second = runner.invoke(main, ["sync"], env=env)
    assert second.exit_code == 0, second.output
    assert "本次没有写入任何数据" in second.output
    assert "新建节点 0，删除节点 0，新建关系 0，删除关系 0，写入属性 0，增加标签 0，移除标签 0" in second.output


def test_build_straight_into_neo4j(built_store: Store, neo4j) -> None:
    result = CliRunner().invoke(main, ["--store", "neo4j", "build", "--corpus", str(FIXTURE_CORPUS)])
    assert result.exit_code == 0, result.output
    assert "存储：neo4j" in result.output
    assert graph_checksum(neo4j) == graph_checksum(built_store)


def test_sync_of_an_empty_source_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["sync"], env={"GANXUN_HOME": str(tmp_path)})
    assert result.exit_code == 1
    assert "源图谱为空" in result.output


# ─── bad connection settings: one line, non-zero exit, no traceback (no server needed for most) ───
@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NEO4J_URI": "bolt://127.0.0.1:1"}, "无法连接 Neo4j（bolt://127.0.0.1:1）：服务器没有响应"),
        ({"NEO4J_URI": "http://127.0.0.1:7687"}, "NEO4J_URI『http://127.0.0.1:7687』无效"),
        ({"NEO4J_URI": "bolt://127.0.0.1:notaport"}, "NEO4J_URI『bolt://127.0.0.1:notaport』无效"),
    ],
)
def test_bad_connection_settings_give_one_clear_line(tmp_path: Path, ontology: Ontology, env: dict, message: str) -> None:
    env = {"GANXUN_HOME": str(embedded_home(tmp_path, ontology)), **env}
    for args in (["sync"], ["--store", "neo4j", "stats"]):
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == 1, result.output
        assert message in result.output
        assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NEO4J_USER": "nobody-here"}, "拒绝登录：请检查 NEO4J_USER 与 NEO4J_PASSWORD"),
        ({"NEO4J_DATABASE": "nosuchdb"}, "中没有数据库『nosuchdb』"),
    ],
)
def test_wrong_user_or_database_on_a_live_server(neo4j, env: dict, message: str) -> None:
    result = CliRunner().invoke(main, ["--store", "neo4j", "stats"], env=env)
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_settings_name_the_server_the_tests_use() -> None:
    assert neo4j_settings(NEO4J_URI="bolt://example:7687").neo4j_uri == "bolt://example:7687"


# ─── only differences, found by content hash ───
def test_an_incremental_sync_after_edits_gives_the_source_graph(built_store: Store, neo4j) -> None:
    sync_graph(built_store, neo4j)
    course, klass = built_store.get_node("course:t-theory"), built_store.get_node("class:t-main-2025")
    class_edges = [  # the class's course order swapped (edge properties change), its HELD_BY edge dropped
        Edge(e.src, e.type, e.dst, {"ord": 1 - e.props["ord"]}) if e.type == "INCLUDES_COURSE" else e
        for e in built_store.edges(src=klass.id)
        if e.type != "HELD_BY"
    ]
    built_store.write(  # a rewritten node comes with all its outgoing edges
        [
            Node("topic:t-new", "Topic", {"name": "新增主题", "altLabels": ["别名一", "别名二"]}),
            Node(course.id, "Course", {**course.props, "hours": 7.5, "name": "改名后的课程"}),
            Node("case:t-village", "Textbook", {"name": "改成教材"}),  # a node that changes class
            klass,
        ],
        [*built_store.edges(src=course.id), Edge(course.id, "COVERS", "topic:t-new"), *class_edges],
    )
    built_store.delete_nodes(["teacher:t-a"])  # with every edge touching it
    report = sync_graph(built_store, neo4j)
    assert report.in_step
    assert report.changes["nodes_created"] == 1 and report.changes["nodes_deleted"] == 1
    assert report.changes["labels_removed"] == 1 and report.changes["relationships_created"] == 1
    assert report.changes["relationships_deleted"] >= 3  # the teacher's edges and HELD_BY
    assert graph_checksum(neo4j) == graph_checksum(built_store)
    assert [e.props for e in neo4j.edges(src=klass.id, type="INCLUDES_COURSE")] == [e.props for e in class_edges
                                                                                    if e.type == "INCLUDES_COURSE"]
    assert neo4j.get_node("topic:t-new").props["altLabels"] == ["别名一", "别名二"]
    assert neo4j.get_node("course:t-theory") == built_store.get_node("course:t-theory")
    again = sync_graph(built_store, neo4j)
    assert not again.changed, again.changes


def test_a_node_written_behind_the_syncs_back_without_its_hash_is_rewritten(built_store: Store, neo4j) -> None:
    """The hash is what a writer wrote: a node changed by hand (hash dropped) is compared again and fixed."""
    sync_graph(built_store, neo4j)
    neo4j._write(lambda tx: tx.run(f"MATCH (n:{NODE_LABEL} {{id: 'course:t-theory'}}) "
                                   f"SET n.hours = 1000 REMOVE n.{HASH_PROPERTY}").consume())
    report = sync_graph(built_store, neo4j)
    assert report.changes["properties_set"] > 0 and not report.changes["nodes_created"]
    assert graph_checksum(neo4j) == graph_checksum(built_store)


# ─── the first load through neo4j-admin, on a server of the tests' own ───
ODD = Node(
    "course:t-odd",
    "Course",
    {
        "name": '引号"、逗号,分号;以及\n换行\n第二行',
        "teachingMethod": ["含,逗号", '含"引号', "含;分号"],
        "hours": 2.0,
        "isCase": False,
        "ratingCount": 3,
    },
)
EMPTY = Node("course:t-empty", "Course", {"name": "空列表", "teachingMethod": []})  # CSV cannot carry it: patched


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> OwnServer:
    server = start_own_server(tmp_path_factory.mktemp("own-neo4j"))
    yield server
    server.stop()


def emptied(server: OwnServer, ontology: Ontology) -> Neo4jStore:
    store = Neo4jStore.from_settings(server.settings, ontology).open()
    store.clear()
    return store


def test_the_first_load_by_neo4j_admin_gives_the_embedded_graph(
    built_store: Store, own_server: OwnServer, ontology: Ontology, tmp_path: Path
) -> None:
    built_store.write([ODD, EMPTY], [Edge(ODD.id, "COVERS", "topic:theory")])
    emptied(own_server, ontology).close()
    server = local_server(own_server.settings, own_server.script_env)
    assert server is not None, "scripts/neo4j-dev runs this server, so the import may stop it"
    report = first_load(built_store, own_server.settings, ontology, server=server, directory=tmp_path / "csv")
    assert report.method == "import" and report.in_step
    assert report.after_nodes == built_store.node_counts() and report.after_edges == built_store.edge_counts()
    assert not (tmp_path / "csv").exists()  # removed after a good load
    with Neo4jStore.from_settings(own_server.settings, ontology).open() as loaded:
        assert graph_checksum(loaded) == graph_checksum(built_store)
        assert loaded.get_node(ODD.id) == ODD and loaded.get_node(EMPTY.id) == EMPTY
        for node_id in ("cadre:t-001", "course:t-theory", "topic:theory", "class:t-main-2025"):
            assert loaded.get_node(node_id) == built_store.get_node(node_id)
        constraints = {r["name"] for r in loaded._read(lambda tx: list(tx.run("SHOW CONSTRAINTS YIELD name")))}
        assert {f"gx_{label}_id" for label in [*ontology.classes, NODE_LABEL]} <= constraints
        assert "gx_text" in {r["name"] for r in loaded._read(lambda tx: list(tx.run("SHOW INDEXES YIELD name")))}
        assert [n.id for n, _score in loaded.text_search("测试县委党校")] == ["inst:t-county-school"]
        assert loaded.version() > 0
        again = sync_graph(built_store, loaded)  # the imported hashes are the sync's: nothing to write
        assert not again.changed, again.changes


def test_kg_sync_chooses_the_import_for_an_empty_local_database(
    tmp_path: Path, own_server: OwnServer, ontology: Ontology
) -> None:
    home = embedded_home(tmp_path, ontology)
    emptied(own_server, ontology).close()
    env = {"GANXUN_HOME": str(home), **own_server.script_env, **own_server.env}
    first = CliRunner().invoke(main, ["sync", "--import-min", "0"], env=env)  # the fixture graph is small
    assert first.exit_code == 0, first.output
    assert "首次载入（neo4j-admin database import full）" in first.output
    with EmbeddedStore(home / "ganxun.db") as source:
        assert f"节点 {sum(source.node_counts().values()):,}" in first.output
    second = CliRunner().invoke(main, ["sync", "--import-min", "0"], env=env)  # not empty now: differences only
    assert second.exit_code == 0, second.output
    assert "本次没有写入任何数据" in second.output


def test_only_a_server_the_script_runs_here_may_be_stopped() -> None:
    assert local_server(neo4j_settings(NEO4J_URI="bolt://db.example:7687")) is None  # not this machine
    assert local_server(neo4j_settings(NEO4J_URI="bolt://127.0.0.1:1")) is None  # nothing of the script's there


def test_csv_files_for_an_operator(built_store: Store, tmp_path: Path) -> None:
    built_store.write([ODD, EMPTY], [])
    files = write_import_files(built_store, tmp_path / "out")
    args = (tmp_path / "out" / "import.args").read_text(encoding="utf-8").split()
    assert args == files.args and "--array-delimiter=U+001F" in args
    assert files.command().startswith("neo4j-admin database import full neo4j --overwrite-destination=true")
    course_files = [a.split("=", 1)[1] for a in args if a.startswith("--nodes=nodes-Course-")]
    rows = [(tmp_path / "out" / name).read_text(encoding="utf-8") for name in course_files]
    odd = next(text for text in rows if ODD.id in text)
    header = odd.splitlines()[0].split(",")
    assert header[:2] == ["id:ID", ":LABEL"] and f"{HASH_PROPERTY}:long" == header[-1]
    assert {"hours:double", "ratingCount:long", "isCase:boolean", "teachingMethod:string[]"} <= set(header)
    assert f'"Course{ARRAY_DELIMITER}{NODE_LABEL}"' in odd
    assert ARRAY_DELIMITER.join(["含,逗号", '含""引号', "含;分号"]) in odd  # quotes doubled inside a quoted cell
    multiline = next(a for a in args if a.startswith("--multiline-fields="))
    assert any(name in multiline for name in course_files)  # the line break is named, not every file
    empty = next(text for text in rows if EMPTY.id in text)
    assert "teachingMethod" not in empty.splitlines()[0]  # the empty list waits for the patch
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("别删我", encoding="utf-8")
    with pytest.raises(StoreError, match="不是空的，也不是先前写出的导入目录"):
        write_import_files(built_store, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").exists()
    assert files.node_patches["Course"] == [
        {"id": EMPTY.id, "props": {"teachingMethod": [], HASH_PROPERTY: node_hash("Course", EMPTY.props)}}
    ]
