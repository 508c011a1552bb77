"""``kg sync`` and ``kg --store neo4j build`` on the real server; bad connection settings give one Chinese line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kg.build import build_graph
from kg.cli import main
from kg.model import Edge, Node
from kg.ontology import Ontology
from kg.store import Store
from kg.store.embedded import EmbeddedStore
from kg.sync import graph_checksum, sync_graph
from tests.conftest import FIXTURE_CORPUS
from tests.neo4j_support import neo4j_settings, open_neo4j


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
    first = runner.invoke(main, ["sync"], env=env)
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
