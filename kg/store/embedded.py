"""The embedded default store: one SQLite file in WAL mode, no server.

SQLite gives the durability and atomicity the contract asks for: every :meth:`write` is one transaction,
so a failed or killed import leaves the previous graph intact.  A trigram FTS5 table serves Chinese
substring search without a tokenizer.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from tqdm import tqdm

from kg.model import Edge, Node
from kg.store.base import Store, WriteSummary
from kg.store.integrity import check_edges, check_nodes, missing_ends_error

__all__ = ["EmbeddedStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY, label TEXT NOT NULL, props TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nodes_label ON nodes(label, id);
CREATE TABLE IF NOT EXISTS edges (
    src TEXT NOT NULL, type TEXT NOT NULL, dst TEXT NOT NULL, props TEXT NOT NULL,
    PRIMARY KEY (src, type, dst)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS edges_dst ON edges(dst, type, src);
CREATE INDEX IF NOT EXISTS edges_type ON edges(type, src, dst);
CREATE VIRTUAL TABLE IF NOT EXISTS node_text USING fts5(id UNINDEXED, label UNINDEXED, body, tokenize='trigram');
"""
_BATCH = 5000


def _dump(props: dict[str, Any]) -> str:
    return json.dumps(props, ensure_ascii=False, sort_keys=True)


def _batches(items: Iterable[Any], size: int = _BATCH) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class EmbeddedStore(Store):
    """SQLite-backed store.  ``text_labels`` names the labels whose name and description are searchable."""

    name = "embedded"
    supports_text_search = True

    def __init__(self, path: Path | str, text_labels: Iterable[str] = ()) -> None:
        self.path = Path(path)
        self.text_labels = frozenset(text_labels)
        self._local = threading.local()
        self._opened = False

    # ─── lifecycle ───
    def open(self) -> "EmbeddedStore":
        if not self._opened:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._conn()
            conn.executescript(_SCHEMA)
            self._opened = True
        return self

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        self._opened = False

    def _conn(self) -> sqlite3.Connection:
        """One connection per thread: Flask serves requests from several threads."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            self._local.conn = conn
        return conn

    # ─── writes ───
    def write(
        self,
        nodes: Iterable[Node],
        edges: Iterable[Edge],
        *,
        replace: bool = False,
        progress: bool = False,
    ) -> WriteSummary:
        nodes = list({n.id: n for n in nodes}.values())  # a node or edge given twice: the last one wins
        edges = list({e.key: e for e in edges}.values())
        check_nodes(nodes)
        check_edges(edges)
        summary = WriteSummary()
        conn = self._conn()
        bar = tqdm(total=len(nodes) + len(edges), desc="写入嵌入式存储", unit="条", disable=not progress)
        try:
            conn.execute("BEGIN IMMEDIATE")
            if replace:
                summary.nodes_deleted = conn.execute("SELECT count(*) FROM nodes").fetchone()[0]
                summary.edges_deleted = conn.execute("SELECT count(*) FROM edges").fetchone()[0]
                conn.execute("DELETE FROM nodes")
                conn.execute("DELETE FROM edges")
                conn.execute("DELETE FROM node_text")
            for batch in _batches(nodes):
                self._write_nodes(conn, batch, replace)
                summary.nodes_written += len(batch)
                bar.update(len(batch))
            for batch in _batches(edges):
                conn.executemany(
                    "INSERT INTO edges(src, type, dst, props) VALUES (?,?,?,?) "
                    "ON CONFLICT(src, type, dst) DO UPDATE SET props=excluded.props",
                    [(e.src, e.type, e.dst, _dump(e.props)) for e in batch],
                )
                summary.edges_written += len(batch)
                bar.update(len(batch))
            self._check_edge_ends(conn, edges)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            bar.close()
        return summary

    def _write_nodes(self, conn: sqlite3.Connection, batch: list[Node], fresh: bool) -> None:
        conn.executemany(
            "INSERT INTO nodes(id, label, props) VALUES (?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET label=excluded.label, props=excluded.props",
            [(n.id, n.label, _dump(n.props)) for n in batch],
        )
        if not fresh:
            conn.executemany("DELETE FROM node_text WHERE id = ?", [(n.id,) for n in batch])
            conn.executemany("DELETE FROM edges WHERE src = ?", [(n.id,) for n in batch])
        conn.executemany(
            "INSERT INTO node_text(id, label, body) VALUES (?,?,?)",
            [
                (n.id, n.label, f"{n.get('name', '')}\n{n.get('description', '')}")
                for n in batch
                if n.label in self.text_labels
            ],
        )

    @staticmethod
    def _check_edge_ends(conn: sqlite3.Connection, edges: list[Edge]) -> None:
        ends = sorted({e.src for e in edges} | {e.dst for e in edges})
        missing: list[str] = []
        for batch in _batches(ends, 900):
            marks = ",".join("?" * len(batch))
            found = {r[0] for r in conn.execute(f"SELECT id FROM nodes WHERE id IN ({marks})", batch)}
            missing.extend(i for i in batch if i not in found)
        if missing:
            raise missing_ends_error(missing)

    def delete_nodes(self, ids: Iterable[str]) -> WriteSummary:
        ids = sorted(set(ids))
        summary = WriteSummary()
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for batch in _batches(ids, 900):
                marks = ",".join("?" * len(batch))
                summary.edges_deleted += conn.execute(
                    f"DELETE FROM edges WHERE src IN ({marks}) OR dst IN ({marks})", batch + batch
                ).rowcount
                summary.nodes_deleted += conn.execute(f"DELETE FROM nodes WHERE id IN ({marks})", batch).rowcount
                conn.execute(f"DELETE FROM node_text WHERE id IN ({marks})", batch)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return summary

    # ─── reads ───
    @staticmethod
    def _node(row: tuple[str, str, str]) -> Node:
        return Node(row[0], row[1], json.loads(row[2]))

    def get_node(self, node_id: str) -> Node | None:
        row = self._conn().execute("SELECT id, label, props FROM nodes WHERE id = ?", (node_id,)).fetchone()
        return self._node(row) if row else None

    def get_nodes(self, ids: Iterable[str]) -> list[Node]:
        result: list[Node] = []
        for batch in _batches(sorted(set(ids)), 900):
            marks = ",".join("?" * len(batch))
            rows = self._conn().execute(f"SELECT id, label, props FROM nodes WHERE id IN ({marks})", batch)
            result.extend(self._node(r) for r in rows)
        return sorted(result, key=lambda n: n.id)

    def labels_of(self, ids: Iterable[str]) -> dict[str, str]:
        result: dict[str, str] = {}
        for batch in _batches(sorted(set(ids)), 900):
            marks = ",".join("?" * len(batch))
            result.update(self._conn().execute(f"SELECT id, label FROM nodes WHERE id IN ({marks})", batch).fetchall())
        return result

    def nodes(self, label: str | None = None) -> Iterator[Node]:
        if label is None:
            rows = self._conn().execute("SELECT id, label, props FROM nodes ORDER BY id")
        else:
            rows = self._conn().execute("SELECT id, label, props FROM nodes WHERE label = ? ORDER BY id", (label,))
        for row in rows:
            yield self._node(row)

    def edges(self, src: str | None = None, type: str | None = None, dst: str | None = None) -> Iterator[Edge]:
        clauses, params = [], []
        for column, value in (("src", src), ("type", type), ("dst", dst)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._conn().execute(f"SELECT src, type, dst, props FROM edges {where} ORDER BY src, type, dst", params)
        for s, t, d, p in rows:
            yield Edge(s, t, d, json.loads(p))

    def node_counts(self) -> dict[str, int]:
        return dict(self._conn().execute("SELECT label, count(*) FROM nodes GROUP BY label ORDER BY label"))

    def edge_counts(self) -> dict[str, int]:
        return dict(self._conn().execute("SELECT type, count(*) FROM edges GROUP BY type ORDER BY type"))

    # ─── full-text search ───
    def text_search(self, query: str, labels: Iterable[str] | None = None, limit: int = 20) -> list[tuple[Node, float]]:
        """Trigram match for queries of three characters or more; shorter ones fall back to a substring scan."""
        query = query.strip()
        if not query:
            return []
        wanted = set(labels) if labels else None
        conn = self._conn()
        if len(query) >= 3:
            phrase = '"' + query.replace('"', '""') + '"'
            rows = conn.execute(
                "SELECT id, label, bm25(node_text) FROM node_text WHERE node_text MATCH ? ORDER BY bm25(node_text)",
                (phrase,),
            ).fetchall()
            scored = [(i, -score) for i, label, score in rows if wanted is None or label in wanted]
        else:
            # a trigram table answers LIKE wrongly for patterns under three characters (CJK ones match nothing): scan
            rows = conn.execute("SELECT id, label FROM node_text WHERE instr(lower(body), ?) > 0", (query.lower(),)).fetchall()
            scored = [(i, 1.0) for i, label in rows if wanted is None or label in wanted]
        scored.sort(key=lambda pair: (-pair[1], pair[0]))
        by_id = {n.id: n for n in self.get_nodes(i for i, _ in scored[:limit])}
        return [(by_id[i], s) for i, s in scored[:limit] if i in by_id]
