"""The embedded store's own layout: full-text rows keyed by rowid, the version row, and opening an older file.

The contract suite checks what both back ends answer; these tests check how the embedded one gets there, because
the failure they guard against is not a wrong answer but a slow one (a merge import that scanned the whole FTS
table per row) or a database file from an earlier release that no longer opens.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from kg.model import Edge, Node
from kg.store.embedded import SCHEMA_VERSION, EmbeddedStore

TEXT_LABELS = ["Course", "Topic"]

# the first layout, as an earlier release wrote it (kg/store/embedded.py before the schema had a version)
LAYOUT_0 = """
CREATE TABLE nodes (id TEXT PRIMARY KEY, label TEXT NOT NULL, props TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX nodes_label ON nodes(label, id);
CREATE TABLE edges (
    src TEXT NOT NULL, type TEXT NOT NULL, dst TEXT NOT NULL, props TEXT NOT NULL,
    PRIMARY KEY (src, type, dst)) WITHOUT ROWID;
CREATE INDEX edges_dst ON edges(dst, type, src);
CREATE INDEX edges_type ON edges(type, src, dst);
CREATE VIRTUAL TABLE node_text USING fts5(id UNINDEXED, label UNINDEXED, body, tokenize='trigram');
INSERT INTO nodes VALUES ('course:old-1', 'Course', '{"description": "乡村振兴的案例研讨", "name": "旧课程甲"}');
INSERT INTO nodes VALUES ('course:old-2', 'Course', '{"description": "党的创新理论专题", "name": "旧课程乙"}');
INSERT INTO nodes VALUES ('topic:old', 'Topic', '{"name": "乡村振兴"}');
INSERT INTO edges VALUES ('course:old-1', 'COVERS', 'topic:old', '{}');
INSERT INTO node_text(id, label, body) VALUES ('course:old-1', 'Course', '旧课程甲' || char(10) || '乡村振兴的案例研讨');
INSERT INTO node_text(id, label, body) VALUES ('topic:old', 'Topic', '乡村振兴' || char(10));
INSERT INTO node_text(id, label, body) VALUES ('course:old-2', 'Course', '旧课程乙' || char(10) || '党的创新理论专题');
"""


def found(store: EmbeddedStore, query: str) -> list[str]:
    return sorted(n.id for n, _ in store.text_search(query))


def text_rows(store: EmbeddedStore) -> dict[str, int]:
    """id → rowid of every full-text row, checked to agree with the id → rowid map."""
    conn = store._conn()
    fts = dict(conn.execute("SELECT id, rowid FROM node_text"))
    assert fts == dict(conn.execute("SELECT id, docid FROM node_text_key")), "全文行与编号映射不一致"
    return fts


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    path = tmp_path / "layout0.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(LAYOUT_0)
    return path


def test_an_older_file_opens_and_keeps_its_search_results(old_file: Path) -> None:
    before = sqlite3.connect(old_file).execute("SELECT id, rowid FROM node_text ORDER BY id").fetchall()
    with EmbeddedStore(old_file, text_labels=TEXT_LABELS) as store:
        assert store._conn().execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert sorted(text_rows(store).items()) == before  # the text rows keep their rowids: nothing re-indexed
        assert found(store, "乡村振兴") == ["course:old-1", "topic:old"]
        assert found(store, "理论") == ["course:old-2"]
        assert store.version() == 0
        # a rewrite after the migration replaces the old text row by its rowid
        store.write([Node("course:old-1", "Course", {"name": "新课程", "description": "数字政府建设"})], [])
        assert found(store, "乡村振兴") == ["topic:old"]
        assert found(store, "数字政府") == ["course:old-1"]
        assert store.version() == 1
        assert list(store.edges()) == []  # the rewritten node's outgoing edge went with it, as the contract says


def test_a_migrated_file_opens_without_waiting_for_a_writer(old_file: Path) -> None:
    EmbeddedStore(old_file, text_labels=TEXT_LABELS).open().close()  # migrates
    writer = sqlite3.connect(old_file, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process in the middle of a long import
    try:
        started = time.monotonic()
        with EmbeddedStore(old_file, text_labels=TEXT_LABELS) as store:
            assert store.get_node("topic:old") is not None
            assert store.version() == 0
        assert time.monotonic() - started < 5
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_two_stores_opening_an_old_file_at_once_migrate_it_once(old_file: Path) -> None:
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            with EmbeddedStore(old_file, text_labels=TEXT_LABELS) as store:
                text_rows(store)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with EmbeddedStore(old_file, text_labels=TEXT_LABELS) as store:
        assert len(text_rows(store)) == 3


def test_text_rows_stay_in_step_through_rewrites_class_changes_and_deletes(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "g.db", text_labels=TEXT_LABELS) as store:
        store.write([Node(f"course:k-{i}", "Course", {"name": f"课程{i}号", "description": "干部教育"}) for i in range(6)], [])
        first = text_rows(store)
        store.write([Node("course:k-1", "Course", {"name": "改写后的课程"})], [])
        store.write([Node("course:k-2", "Cadre", {"name": "课程2号"})], [])  # not searchable any more
        store.delete_nodes(["course:k-3", "course:nobody"])
        rows = text_rows(store)
        assert sorted(rows) == ["course:k-0", "course:k-1", "course:k-4", "course:k-5"]
        assert rows["course:k-0"] == first["course:k-0"]  # untouched rows keep their rowid
        assert found(store, "干部教育") == ["course:k-0", "course:k-4", "course:k-5"]
        assert found(store, "改写后") == ["course:k-1"]
        store.write([Node("topic:k", "Topic", {"name": "干部教育主题"})], [], replace=True)
        assert sorted(text_rows(store)) == ["topic:k"]
        assert found(store, "干部教育") == ["topic:k"]


def test_a_merge_write_deletes_text_by_rowid_and_reads_the_version_in_one_row(tmp_path: Path) -> None:
    """The statements themselves: no full-text delete by the unindexed id column (a scan per row)."""
    with EmbeddedStore(tmp_path / "g.db", text_labels=TEXT_LABELS) as store:
        nodes = [Node(f"course:s-{i}", "Course", {"name": f"课程{i}"}) for i in range(20)]
        store.write(nodes, [])
        statements: list[str] = []
        store._conn().set_trace_callback(statements.append)
        store.write(nodes, [Edge("course:s-1", "REPLACED_BY", "course:s-2")])
        store.delete_nodes(["course:s-3"])
        store._conn().set_trace_callback(None)
        text_deletes = [s for s in statements if s.startswith("DELETE FROM node_text ")]  # not node_text_key
        assert len(text_deletes) == 21  # one per replaced or deleted row
        assert all(s.startswith("DELETE FROM node_text WHERE rowid = ") for s in text_deletes), text_deletes

        store._conn().set_trace_callback(statements.append)
        statements.clear()
        assert store.version() == 3
        store._conn().set_trace_callback(None)
        assert statements == ["SELECT version FROM meta"]


def test_a_failed_write_rolls_back_the_version_with_the_data(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "g.db", text_labels=TEXT_LABELS) as store:
        store.write([Node("topic:a", "Topic", {"name": "甲"})], [])
        with pytest.raises(Exception, match="关系的端点不存在"):
            store.write([Node("topic:b", "Topic", {"name": "乙"})], [Edge("topic:b", "RELATED", "topic:zz")])
        assert store.version() == 1
        assert found(store, "乙") == []
        assert sorted(text_rows(store)) == ["topic:a"]
