"""The embedded default store: one SQLite file in WAL mode, no server.

SQLite gives the durability and atomicity the contract asks for: every :meth:`write` is one transaction,
so a failed or killed import leaves the previous graph intact.  A trigram FTS5 table serves Chinese
substring search without a tokenizer.

Layout (``PRAGMA user_version`` is :data:`SCHEMA_VERSION`; an older file is migrated once on open):

* ``nodes`` and ``edges`` are ``WITHOUT ROWID`` tables clustered on their keys, with indexes for each edge end;
* ``node_text`` (FTS5) holds name and description of searchable nodes.  Its id column cannot be indexed, so
  its rows are keyed by rowid: ``node_text_key`` maps a node id to the rowid (``docid``) of its text row, and
  every delete or replace of text goes by that rowid.  (Deleting ``WHERE id = ?`` scans the whole FTS table,
  which made a merge import quadratic: 20,000 rows took 83 s.)
* ``meta`` is one row holding the graph's version stamp, raised inside every write transaction.

Lists of ids travel as one JSON parameter read with ``json_each`` (:func:`_ids`), so a lookup of any number of
ids is one statement that SQLite answers by index, and no id reaches the SQL text.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import groupby, islice
from pathlib import Path
from typing import Any

from tqdm import tqdm

from kg.model import Edge, Node, NodeWithEdges
from kg.sqlite import immediate, private_file
from kg.store.base import Store, WriteSummary
from kg.store.integrity import check_edges, check_nodes, missing_ends_error

__all__ = ["SCHEMA_VERSION", "EmbeddedStore"]

SCHEMA_VERSION = 2
"""0: the first layout (FTS rows found by their unindexed id column, no version stamp); 1: keyed FTS rows, ``meta``;
2: ``nodes_name``, the (label, name) index :meth:`EmbeddedStore.find_by_name` reads."""

_NAME = "json_extract(props, '$.name')"
"""A node's name as the ``nodes_name`` index holds it: a query must spell the expression the same to use it."""
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY, label TEXT NOT NULL, props TEXT NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS nodes_label ON nodes(label, id)",
    f"CREATE INDEX IF NOT EXISTS nodes_name ON nodes(label, {_NAME}, id)",
    """CREATE TABLE IF NOT EXISTS edges (
        src TEXT NOT NULL, type TEXT NOT NULL, dst TEXT NOT NULL, props TEXT NOT NULL,
        PRIMARY KEY (src, type, dst)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS edges_dst ON edges(dst, type, src)",
    "CREATE INDEX IF NOT EXISTS edges_type ON edges(type, src, dst)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS node_text USING fts5(id UNINDEXED, label UNINDEXED, body, tokenize='trigram')",
    "CREATE TABLE IF NOT EXISTS node_text_key (docid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE)",
    "CREATE TABLE IF NOT EXISTS meta (one INTEGER PRIMARY KEY CHECK (one = 1), version INTEGER NOT NULL)",
    "INSERT INTO meta(one, version) VALUES (1, 0) ON CONFLICT(one) DO NOTHING",
)
_MIGRATE_TO_1 = (
    # a layout-0 file keeps its text rows and their rowids; only the id → rowid map is new (one linear pass)
    "DELETE FROM node_text WHERE rowid NOT IN (SELECT max(rowid) FROM node_text GROUP BY id)",
    "INSERT INTO node_text_key(docid, id) SELECT rowid, id FROM node_text WHERE true ON CONFLICT DO NOTHING",
)
_CLEAR = ("DELETE FROM nodes", "DELETE FROM edges", "DELETE FROM node_text", "DELETE FROM node_text_key")
_BUMP_VERSION = "INSERT INTO meta(one, version) VALUES (1, 1) ON CONFLICT(one) DO UPDATE SET version = version + 1"
_IDS = "SELECT value FROM json_each(?)"
"""The rows of one JSON-array parameter: ``WHERE id IN (_IDS)`` matches a list of any length by index."""
_BATCH = 5000


def _dump(props: dict[str, Any]) -> str:
    return json.dumps(props, ensure_ascii=False, sort_keys=True)


def _ids(ids: Iterable[str]) -> str:
    """The parameter for :data:`_IDS`: the ids as one JSON array."""
    return json.dumps(list(ids), ensure_ascii=False)


def _batches(items: Iterable[Any], size: int = _BATCH) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _edge(row: tuple[str, str, str, str]) -> Edge:
    return Edge(row[0], row[1], row[2], json.loads(row[3]))


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
            private_file(self.path)  # cadres and their training records are personal data
            self._ensure_schema(self._conn())
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

    @staticmethod
    def _ensure_schema(conn: sqlite3.Connection) -> None:
        """Create the tables of a new file, or migrate an older one, once.

        A file already at :data:`SCHEMA_VERSION` is only read here, so opening never waits for the write lock of
        a long import in another process; the version is checked again under the lock, so two processes opening
        an old file at once migrate it once.
        """
        if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            return
        with immediate(conn):
            found = conn.execute("PRAGMA user_version").fetchone()[0]
            if found < SCHEMA_VERSION:
                for statement in _SCHEMA:
                    conn.execute(statement)
                for statement in _MIGRATE_TO_1 if found < 1 else ():
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")  # a pragma takes no parameters

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
        bar = tqdm(total=len(nodes) + len(edges), desc="写入嵌入式存储", unit="条", disable=not progress)
        try:
            with self._transaction() as conn:
                if replace:
                    summary.nodes_deleted = conn.execute("SELECT count(*) FROM nodes").fetchone()[0]
                    summary.edges_deleted = conn.execute("SELECT count(*) FROM edges").fetchone()[0]
                    for statement in _CLEAR:
                        conn.execute(statement)
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
        finally:
            bar.close()
        return summary

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` with the version stamp raised just before the commit, in the same
        transaction; any error rolls back everything, the stamp included."""
        with immediate(self._conn()) as conn:
            yield conn
            conn.execute(_BUMP_VERSION)

    def _write_nodes(self, conn: sqlite3.Connection, batch: list[Node], fresh: bool) -> None:
        """Upsert one batch of nodes; unless the graph was just emptied, their old text rows and outgoing edges go
        first (a written node is replaced whole)."""
        conn.executemany(
            "INSERT INTO nodes(id, label, props) VALUES (?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET label=excluded.label, props=excluded.props",
            [(n.id, n.label, _dump(n.props)) for n in batch],
        )
        ids = [n.id for n in batch]
        if not fresh:
            self._drop_text(conn, ids)
            conn.execute(f"DELETE FROM edges WHERE src IN ({_IDS})", (_ids(ids),))
        texts = [n for n in batch if n.label in self.text_labels]
        if texts:
            first = conn.execute("SELECT coalesce(max(docid), 0) + 1 FROM node_text_key").fetchone()[0]
            docids = range(first, first + len(texts))
            conn.executemany("INSERT INTO node_text_key(docid, id) VALUES (?,?)", zip(docids, (n.id for n in texts)))
            conn.executemany(
                "INSERT INTO node_text(rowid, id, label, body) VALUES (?,?,?,?)",
                [(d, n.id, n.label, f"{n.get('name', '')}\n{n.get('description', '')}") for d, n in zip(docids, texts)],
            )

    @staticmethod
    def _drop_text(conn: sqlite3.Connection, ids: list[str]) -> None:
        """Delete the text rows of these nodes by rowid (an FTS5 lookup by rowid is indexed; by id it scans)."""
        docids = conn.execute(f"SELECT docid FROM node_text_key WHERE id IN ({_IDS})", (_ids(ids),)).fetchall()
        if docids:
            conn.executemany("DELETE FROM node_text WHERE rowid = ?", docids)
            conn.executemany("DELETE FROM node_text_key WHERE docid = ?", docids)

    @staticmethod
    def _check_edge_ends(conn: sqlite3.Connection, edges: list[Edge]) -> None:
        ends = sorted({e.src for e in edges} | {e.dst for e in edges})
        if not ends:
            return
        found = {r[0] for r in conn.execute(f"SELECT id FROM nodes WHERE id IN ({_IDS})", (_ids(ends),))}
        missing = [i for i in ends if i not in found]
        if missing:
            raise missing_ends_error(missing)

    def delete_nodes(self, ids: Iterable[str]) -> WriteSummary:
        ids = sorted(set(ids))
        summary = WriteSummary()
        with self._transaction() as conn:
            if ids:
                param = _ids(ids)
                summary.edges_deleted = conn.execute(
                    f"DELETE FROM edges WHERE src IN ({_IDS}) OR dst IN ({_IDS})", (param, param)
                ).rowcount
                summary.nodes_deleted = conn.execute(f"DELETE FROM nodes WHERE id IN ({_IDS})", (param,)).rowcount
                self._drop_text(conn, ids)
        return summary

    # ─── reads ───
    @staticmethod
    def _node(row: tuple[str, str, str]) -> Node:
        return Node(row[0], row[1], json.loads(row[2]))

    def version(self) -> int:
        """One single-row read; in WAL mode it sees the last transaction committed by any process."""
        row = self._conn().execute("SELECT version FROM meta").fetchone()
        return row[0] if row else 0

    def get_node(self, node_id: str) -> Node | None:
        row = self._conn().execute("SELECT id, label, props FROM nodes WHERE id = ?", (node_id,)).fetchone()
        return self._node(row) if row else None

    def get_nodes(self, ids: Iterable[str]) -> list[Node]:
        rows = self._conn().execute(f"SELECT id, label, props FROM nodes WHERE id IN ({_IDS}) ORDER BY id", (_ids(set(ids)),))
        return [self._node(r) for r in rows]

    def find_by_name(self, label: str, prefix: str, limit: int = 20) -> list[Node]:
        """A range over the ``nodes_name`` index: names from ``prefix`` up to ``prefix`` followed by the highest
        code point (SQLite compares text as UTF-8 bytes, which sort as code points)."""
        if not prefix:
            return []
        rows = self._conn().execute(
            f"SELECT id, label, props FROM nodes WHERE label = ? AND {_NAME} >= ? AND {_NAME} < ? "
            f"ORDER BY {_NAME}, id LIMIT ?",
            (label, prefix, prefix + "\U0010ffff", limit),
        )
        return [self._node(r) for r in rows]

    def labels_of(self, ids: Iterable[str]) -> dict[str, str]:
        return dict(self._conn().execute(f"SELECT id, label FROM nodes WHERE id IN ({_IDS})", (_ids(set(ids)),)))

    def nodes(self, label: str | None = None) -> Iterator[Node]:
        if label is None:
            rows = self._conn().execute("SELECT id, label, props FROM nodes ORDER BY id")
        else:
            rows = self._conn().execute("SELECT id, label, props FROM nodes WHERE label = ? ORDER BY id", (label,))
        for row in rows:
            yield self._node(row)

    def _select_edges(self, where: dict[str, str | list[str] | None], order: str = "src, type, dst") -> Iterator[Edge]:
        """Edges matching every given column: a text must equal it, a list of ids must contain it."""
        clauses, params = [], []
        for column, value in where.items():
            if isinstance(value, list):
                clauses.append(f"{column} IN ({_IDS})")
                params.append(_ids(value))
            elif value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        text = f"SELECT src, type, dst, props FROM edges {'WHERE ' if clauses else ''}{' AND '.join(clauses)} ORDER BY {order}"
        return map(_edge, self._conn().execute(text, params))

    def edges(self, src: str | None = None, type: str | None = None, dst: str | None = None) -> Iterator[Edge]:
        yield from self._select_edges({"src": src, "type": type, "dst": dst})  # lazy: the query runs when read

    def edges_from(self, srcs: Iterable[str], type: str | None = None) -> dict[str, list[Edge]]:
        """One indexed query for all ids (see :meth:`Store.edges_from`)."""
        asked = sorted(set(srcs))
        if not asked:
            return {}
        found = {s: list(g) for s, g in groupby(self._select_edges({"src": asked, "type": type}), key=lambda e: e.src)}
        return {s: found.get(s, []) for s in asked}

    def edges_to(self, dsts: Iterable[str], type: str | None = None) -> dict[str, list[Edge]]:
        """One indexed query for all ids (see :meth:`Store.edges_to`)."""
        asked = sorted(set(dsts))
        if not asked:
            return {}
        rows = self._select_edges({"dst": asked, "type": type}, order="dst, src, type")
        found = {d: list(g) for d, g in groupby(rows, key=lambda e: e.dst)}
        return {d: found.get(d, []) for d in asked}

    def referrers(self, dsts: Iterable[str], type: str | None = None) -> dict[str, list[NodeWithEdges]]:
        """One statement (so one consistent snapshot): the sources of the matching edges, joined to their node
        and to all their outgoing edges (see :meth:`Store.referrers`)."""
        asked = sorted(set(dsts))
        if not asked:
            return {}
        typed = "AND type = ?" if type is not None else ""
        rows = self._conn().execute(
            f"""
            WITH hit AS (SELECT DISTINCT dst AS target, src FROM edges WHERE dst IN ({_IDS}) {typed})
            SELECT hit.target, n.id, n.label, n.props, o.src, o.type, o.dst, o.props
            FROM hit JOIN nodes n ON n.id = hit.src JOIN edges o ON o.src = hit.src
            ORDER BY hit.target, n.id, o.type, o.dst
            """,
            [_ids(asked), *([type] if type is not None else [])],
        )
        result: dict[str, list[NodeWithEdges]] = {d: [] for d in asked}
        for (target, *_node), group in groupby(rows, key=lambda r: r[:4]):
            result[target].append(NodeWithEdges(self._node(tuple(_node)), [_edge(r[4:]) for r in group]))
        return result

    def nodes_with_edges(self, ids: Iterable[str]) -> dict[str, NodeWithEdges]:
        """One statement: the nodes left-joined to their outgoing edges (see :meth:`Store.nodes_with_edges`)."""
        asked = sorted(set(ids))
        if not asked:
            return {}
        rows = self._conn().execute(
            f"""
            SELECT n.id, n.label, n.props, o.src, o.type, o.dst, o.props
            FROM nodes n LEFT JOIN edges o ON o.src = n.id
            WHERE n.id IN ({_IDS}) ORDER BY n.id, o.type, o.dst
            """,
            (_ids(asked),),
        )
        result: dict[str, NodeWithEdges] = {}
        for node, group in groupby(rows, key=lambda r: r[:3]):
            result[node[0]] = NodeWithEdges(self._node(node), [_edge(r[3:]) for r in group if r[3] is not None])
        return result

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
