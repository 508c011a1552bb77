"""The Neo4j back end: the same store contract over Bolt with the official driver.

* The :class:`neo4j.Driver` is injected (``from_settings`` builds one from ``NEO4J_*``); every session names its
  database.
* Labels are ontology class names, relationship types the ontology's; both are checked against the ontology before
  they reach query text (they are identifiers, not parameters).  Every value travels as a ``$``-parameter, and all
  Cypher text lives in :mod:`kg.cypher`.
* Besides its class label every node carries :data:`kg.cypher.NODE_LABEL`, whose uniqueness constraint on ``id``
  enforces the contract's graph-wide ids and lets an edge find its ends without knowing their class.  Each class
  also has its own ``id`` constraint, date fields of catalogue classes a range index, and name/description of the
  catalogue classes a full-text index with the ``cjk`` analyzer; all created idempotently on connect.
* Writes go in ``UNWIND $rows … MERGE`` batches through ``execute_write``, so transient errors are retried; every
  batch is idempotent (``MERGE``; ``SET`` only where a value differs), which makes a retry or a second sync write
  nothing.  :meth:`Neo4jStore.write` runs its batches in one transaction, which is what makes it atomic; bulk
  copies that need not be atomic use :meth:`Neo4jStore.apply` per batch, or :meth:`Neo4jStore.write_delta` for
  rows a diff has already sorted into creates, updates and deletes (see :mod:`kg.sync`).
* Every node, and every relationship with properties, carries :data:`kg.cypher.HASH_PROPERTY`, a hash of its
  content (:func:`node_hash`, :func:`edge_hash`) set by every write; reads drop it.  A sync reads only ids,
  labels and hashes (:meth:`Neo4jStore.node_hashes`, :meth:`Neo4jStore.edge_hashes`) to find what differs.
* The graph's version stamp lives on one bookkeeping node labelled :data:`kg.cypher.META_LABEL` (not a
  :data:`~kg.cypher.NODE_LABEL`, so no read, count, export or clear sees it); every write transaction raises it as
  its last statement, so it changes exactly when that transaction commits.
* Reads of many ids (``get_nodes``, ``labels_of``, ``edges_from``, ``edges_to``, ``referrers``, ``nodes_with_edges``) are one
  ``UNWIND $ids`` query per ``batch_size`` ids.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from typing import Any
from urllib.parse import urlsplit

from neo4j import READ_ACCESS, WRITE_ACCESS, Driver, GraphDatabase, ManagedTransaction
from neo4j import exceptions as neo4j_errors
from tqdm import tqdm

from kg.config import Settings
from kg.cypher import HASH_PROPERTY, LIBRARY, META_KEY, META_LABEL, NODE_LABEL, STORE, TEXT_INDEX
from kg.model import Edge, Node, NodeWithEdges
from kg.ontology import Ontology
from kg.store.base import Direction, Store, StoreError, WriteSummary
from kg.store.integrity import check_edges, check_nodes, missing_ends_error

__all__ = ["DELTA_QUERIES", "Batch", "Neo4jStore", "edge_hash", "edge_row", "node_hash", "node_row"]

_COUNTERS = (
    "nodes_created",
    "nodes_deleted",
    "relationships_created",
    "relationships_deleted",
    "properties_set",
    "labels_added",
    "labels_removed",
)
_SHORT_QUERY = 3  # the embedded store's trigram index needs three characters; shorter queries scan, on both


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")


def _check_uri(uri: str) -> None:
    """Refuse a Bolt URI the driver would only choke on later (bad scheme, no host, port not a number)."""
    try:
        parts = urlsplit(uri)
        ok = parts.scheme in _SCHEMES and bool(parts.hostname) and (parts.port is None or parts.port > 0)
    except ValueError:
        ok = False
    if not ok:
        raise StoreError(f"NEO4J_URI『{uri}』无效：应形如 bolt://127.0.0.1:7687 或 neo4j://主机:7687（协议 {'、'.join(_SCHEMES)}）")


def _plain(props: dict[str, Any]) -> dict[str, Any]:
    """Properties as the driver returns them: tuples become lists."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in props.items()}


def _digest(value: Any) -> int:
    """A signed 64-bit BLAKE2b of the value's canonical JSON (sorted keys), so it fits a Neo4j integer.  JSON keeps
    1, 1.0 and true apart, as :func:`_same` does."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True)


def node_hash(label: str, props: Mapping[str, Any]) -> int:
    """The content hash a node carries in Neo4j: its class and its properties (the id is the key, not content)."""
    return _digest([label, props])


def edge_hash(props: Mapping[str, Any]) -> int | None:
    """The content hash of a relationship's properties; None for one without any, which then carries no hash at
    all (most relationships: nothing extra to write).  A stored hash of None therefore means "no properties"."""
    return _digest(props) if props else None


def node_row(node: Node) -> dict[str, Any]:
    """What a node's properties are in Neo4j: its own, its id and its content hash."""
    return {**_plain(node.props), "id": node.id, HASH_PROPERTY: node_hash(node.label, node.props)}


def edge_row(edge: Edge) -> dict[str, Any]:
    """A relationship's ``src``, ``dst`` and properties in Neo4j (with the hash only when it has properties)."""
    if not edge.props:  # most relationships, and a sync writes hundreds of thousands of them
        return {"src": edge.src, "dst": edge.dst, "props": {}}
    props = _plain(edge.props)
    if props:
        props[HASH_PROPERTY] = edge_hash(edge.props)
    return {"src": edge.src, "dst": edge.dst, "props": props}


DELTA_QUERIES = {
    "create_nodes": "insert_nodes",
    "update_nodes": "update_nodes",
    "patch_nodes": "patch_nodes",
    "delete_nodes": "delete_nodes",
    "create_edges": "insert_edges",
    "update_edges": "update_edges",
    "patch_edges": "patch_edges",
    "delete_edges": "delete_edges",
}
"""The operations :meth:`Neo4jStore.write_delta` runs, each one named query of :data:`kg.cypher.STORE`."""


def _same(a: Any, b: Any) -> bool:
    """Equality that also compares types, so 1, 1.0 and True differ (Cypher's ``=`` would call them equal)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _rows(tx: ManagedTransaction, text: str, **params: Any) -> list[Any]:
    """The ``rows`` list of a query that collects its answer into one record."""
    return tx.run(text, params).single(strict=True)["rows"]


def _lucene_phrase(text: str) -> str:
    """A Lucene phrase query for the text: only ``\\`` and ``"`` are special inside quotes."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class Batch:
    """One unit of change, applied in one transaction by :meth:`Neo4jStore.apply`.

    Applied in this order: ``delete`` (ids, with their edges), ``nodes`` (upserted whole), a check that every
    end of ``edges`` exists, then the outgoing edges of each id in ``owners`` that are not among ``edges`` are
    removed, and ``edges`` are upserted.
    """

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.nodes) + len(self.edges)


class Neo4jStore(Store):
    """A :class:`~kg.store.base.Store` over a Neo4j 5 database."""

    name = "neo4j"
    supports_text_search = True

    def __init__(
        self,
        driver: Driver,
        ontology: Ontology,
        *,
        database: str = "neo4j",
        batch_size: int = 5000,
        uri: str = "",
        reconnect: Callable[[], Driver] | None = None,
    ) -> None:
        """``driver`` is the caller's and stays open on :meth:`close`, unless ``reconnect`` is given: then the
        store owns its driver, closes it on :meth:`close` and makes a new one with ``reconnect`` on reopening."""
        if batch_size < 1:
            raise StoreError(f"GANXUN_NEO4J_BATCH 应为正整数，实为 {batch_size}")
        for own in (NODE_LABEL, META_LABEL):
            if own in ontology.classes:
                raise StoreError(f"本体中的类『{own}』与 Neo4j 存储自用的标签重名")
        self._driver: Driver | None = driver
        self.ontology = ontology
        self.database = database
        self.batch_size = batch_size
        self.uri = uri
        self._reconnect = reconnect
        self._opened = False
        self.labels = frozenset(ontology.classes)
        self.rel_types = frozenset(ontology.relationship_types.values())
        self.text_labels = tuple(sorted(c.name for c in ontology.classes.values() if not c.personal))

    @classmethod
    def from_settings(cls, settings: Settings, ontology: Ontology) -> "Neo4jStore":
        """A store on its own driver, configured from ``NEO4J_URI`` / ``NEO4J_USER`` / ``NEO4J_PASSWORD`` /
        ``NEO4J_DATABASE`` and ``GANXUN_NEO4J_BATCH``.  A malformed URI is reported here; a server that is down,
        when the store is opened."""
        uri = settings.neo4j_uri
        _check_uri(uri)

        def connect() -> Driver:
            try:
                # no NEO4J_PASSWORD: connect without credentials, so a server that wants them answers with the
                # AuthError reported as 拒绝登录 (the password has no default in code)
                auth = None if settings.neo4j_password is None else (settings.neo4j_user, settings.neo4j_password)
                return GraphDatabase.driver(uri, auth=auth, connection_timeout=5)
            except (ValueError, neo4j_errors.ConfigurationError) as exc:
                raise StoreError(f"NEO4J_URI『{uri}』无效（{exc}）：应形如 bolt://127.0.0.1:7687 或 neo4j://主机:7687") from None

        return cls(
            connect(),
            ontology,
            database=settings.neo4j_database,
            batch_size=settings.neo4j_batch_size,
            uri=uri,
            reconnect=connect,
        )

    # ─── lifecycle ───
    def open(self) -> "Neo4jStore":
        """Check the server answers and create constraints and indexes that are missing."""
        if not self._opened:
            if self._driver is None:
                self._driver = self._reconnect()
            try:
                with self._errors():
                    self._driver.verify_connectivity()
                    self._ensure_schema()
            except StoreError:
                self.close()
                raise
            self._opened = True
        return self

    def close(self) -> None:
        if self._reconnect is not None and self._driver is not None:
            self._driver.close()
            self._driver = None
        self._opened = False

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Driver and server errors → one Chinese line (a :class:`StoreError`), never a traceback."""
        where = self.uri or "Neo4j"
        try:
            yield
        except StoreError:
            raise
        except neo4j_errors.AuthError:
            raise StoreError(f"Neo4j（{where}）拒绝登录：请检查 NEO4J_USER 与 NEO4J_PASSWORD") from None
        except (neo4j_errors.ServiceUnavailable, neo4j_errors.SessionExpired, OSError):
            raise StoreError(
                f"无法连接 Neo4j（{where}）：服务器没有响应；请先启动（scripts/neo4j-dev start）或检查 NEO4J_URI"
            ) from None
        except neo4j_errors.Neo4jError as exc:
            code = exc.code or ""
            if code.endswith("DatabaseNotFound"):
                raise StoreError(f"Neo4j（{where}）中没有数据库『{self.database}』：请检查 NEO4J_DATABASE") from None
            if "MemoryPoolOutOfMemoryError" in code or "OutOfMemory" in code:
                raise StoreError(
                    "Neo4j 事务内存不足：这次写入太大，无法放进一个事务；"
                    "大批量复制请用 python -m kg sync（分批提交），或调大服务器内存（GANXUN_NEO4J_HEAP）"
                ) from None
            raise StoreError(f"Neo4j 出错（{code}）：{exc.message}") from None
        except neo4j_errors.DriverError as exc:
            raise StoreError(f"Neo4j 驱动出错（{where}）：{exc}") from None

    def _session(self, write: bool = False):
        return self._driver.session(
            database=self.database,
            default_access_mode=WRITE_ACCESS if write else READ_ACCESS,
            notifications_min_severity="OFF",  # e.g. "type does not exist yet" on an empty graph: expected, not news
        )

    def _read(self, work: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self._errors(), self._session() as session:
            return session.execute_read(work, *args, **kwargs)

    def _write(self, work: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self._errors(), self._session(write=True) as session:
            return session.execute_write(work, *args, **kwargs)

    def _text(self, name: str, **per_call: str | Iterable[str]) -> str:
        return STORE[name].text(self.ontology, **per_call)

    # ─── schema ───
    def _schema_statements(self) -> dict[str, str]:
        """Index or constraint name → the statement that creates it, all from the ontology."""
        statements: dict[str, str] = {}
        for label in sorted(self.labels | {NODE_LABEL}):
            name = f"gx_{label}_id"
            statements[name] = self._text("id_constraint", _name=name, _label=label)
        for spec in sorted(self.ontology.classes.values(), key=lambda c: c.name):
            if spec.personal:
                continue
            for prop in sorted(f.name for f in spec.fields.values() if f.datatype == "date"):
                name = f"gx_{spec.name}_{prop}"
                statements[name] = self._text("range_index", _name=name, _label=spec.name, _prop=prop)
        for label in sorted(self.labels):  # find_by_name: a range index answers STARTS WITH
            name = f"gx_{label}_name"
            statements[name] = self._text("range_index", _name=name, _label=label, _prop="name")
        statements["gx_meta_key"] = self._text("meta_constraint", _name="gx_meta_key")
        statements[TEXT_INDEX] = self._text("text_index", _name=TEXT_INDEX, _labels=self.text_labels)
        return statements

    def _ensure_schema(self) -> None:
        existing = {r["name"]: r for r in self._read(lambda tx: list(tx.run(self._text("show_indexes"))))}
        text_index = existing.get(TEXT_INDEX)
        if text_index is not None and (
            sorted(text_index["labelsOrTypes"] or []) != list(self.text_labels)
            or (text_index["options"] or {}).get("indexConfig", {}).get("fulltext.analyzer") != "cjk"
        ):
            # the ontology's catalogue classes changed since the index was made: rebuild it
            self._write(lambda tx: tx.run(self._text("drop_index", _name=TEXT_INDEX)).consume())
            del existing[TEXT_INDEX]
        missing = [text for name, text in self._schema_statements().items() if name not in existing]
        for text in missing:
            self._write(lambda tx, t=text: tx.run(t).consume())
        if missing:
            self._read(lambda tx: tx.run(self._text("await_indexes"), seconds=600).consume())

    # ─── writes ───
    def _check_schema_names(self, nodes: Sequence[Node], edges: Sequence[Edge]) -> None:
        for node in nodes:
            if node.label not in self.labels:
                raise StoreError(f"节点 {node.id} 的类别『{node.label}』不是本体中的类")
        for edge in edges:
            if edge.type not in self.rel_types:
                raise StoreError(f"关系 {edge.src} -[{edge.type}]-> {edge.dst} 的类型『{edge.type}』不是本体中的关系类型")

    def write(
        self,
        nodes: Iterable[Node],
        edges: Iterable[Edge],
        *,
        replace: bool = False,
        progress: bool = False,
    ) -> WriteSummary:
        """One transaction for the whole write, so it is atomic like the embedded store's.

        The transaction's memory on the server grows with the write; a copy too large for it fails cleanly
        (nothing written) and :mod:`kg.sync` is the way to move such a graph, batch by batch.  The summary counts
        as the embedded store's do: with ``replace=True`` everything the graph held before counts as deleted; the
        server's own change counters are in ``summary.extra``.
        """
        nodes = list({n.id: n for n in nodes}.values())  # a node or edge given twice: the last one wins
        edges = list({e.key: e for e in edges}.values())
        check_nodes(nodes)
        check_edges(edges)
        self._check_schema_names(nodes, edges)
        batch = Batch(nodes, edges, owners=[n.id for n in nodes])
        bar = tqdm(total=batch.size, desc="写入 Neo4j", unit="条", disable=not progress)

        def work(tx: ManagedTransaction) -> tuple[WriteSummary, Counter[str]]:
            bar.reset()
            summary = WriteSummary(nodes_written=len(nodes), edges_written=len(edges))
            if replace:
                counts = self._counts(tx, "count_label", "_label", self.labels), self._counts(
                    tx, "count_rel", "_rel", self.rel_types
                )
                summary.nodes_deleted, summary.edges_deleted = sum(counts[0].values()), sum(counts[1].values())
                keep = {n.id for n in nodes}
                batch.delete = [i for i in _rows(tx, self._text("all_ids")) if i not in keep]
            changes = self._apply(tx, batch, bar.update)
            self._bump_version(tx)
            return summary, changes

        try:
            summary, changes = self._write(work)
        finally:
            bar.close()
        summary.extra = dict(changes)
        return summary

    def apply(self, batch: Batch, on_rows: Callable[[int], Any] | None = None) -> Counter[str]:
        """Apply one :class:`Batch` in its own transaction (retried on transient errors); returns the server's
        change counters (``nodes_created``, ``properties_set`` …), all zero when the graph already held it."""
        check_nodes(batch.nodes)
        check_edges(batch.edges)
        self._check_schema_names(batch.nodes, batch.edges)

        def work(tx: ManagedTransaction) -> Counter[str]:
            changes = self._apply(tx, batch, on_rows)
            if any(changes.values()):  # a batch the graph already held changes nothing, the stamp included
                self._bump_version(tx)
            return changes

        return self._write(work)

    def _bump_version(self, tx: ManagedTransaction) -> None:
        """Raise the version stamp inside the caller's write transaction (its last statement, see the module
        docstring); not counted among the changes a write reports."""
        tx.run(self._text("bump_version"), key=META_KEY).consume()

    def _apply(
        self, tx: ManagedTransaction, batch: Batch, on_rows: Callable[[int], Any] | None = None
    ) -> Counter[str]:
        """Read what the batch's nodes and owners' edges hold now, then write only the difference: new ones are
        created, changed ones set, unchanged ones left alone (so a repeated batch writes nothing)."""
        changes: Counter[str] = Counter()
        done = on_rows or (lambda _n: None)

        def run(text: str, rows: list[dict[str, Any]]) -> None:
            for chunk in _chunks(rows, self.batch_size):
                counters = tx.run(text, rows=chunk).consume().counters
                for key in _COUNTERS:
                    changes[key] += getattr(counters, key)

        for chunk in _chunks(batch.delete, self.batch_size):
            counters = tx.run(self._text("delete_nodes"), ids=chunk).consume().counters
            changes["nodes_deleted"] += counters.nodes_deleted
            changes["relationships_deleted"] += counters.relationships_deleted
        for chunk in _chunks(batch.nodes, self.batch_size):
            self._upsert_nodes(tx, chunk, run)
            done(len(chunk))
        self._check_ends(tx, batch.edges)
        by_src: dict[str, list[Edge]] = defaultdict(list)
        for edge in batch.edges:
            by_src[edge.src].append(edge)
        owners = set(batch.owners)
        for srcs in _chunks(sorted(by_src.keys() | owners), self.batch_size):
            edges = [e for src in srcs for e in by_src.get(src, ())]
            self._upsert_edges(tx, srcs, owners.intersection(srcs), edges, run)
            done(len(edges))
        return changes

    def _upsert_nodes(self, tx: ManagedTransaction, nodes: list[Node], run: Callable[..., None]) -> None:
        found = _rows(tx, self._text("get_nodes"), ids=[n.id for n in nodes], node_label=NODE_LABEL)
        stored = {r["id"]: self._node(r) for r in found}
        created: dict[str, list[dict[str, Any]]] = defaultdict(list)
        updated: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for node in nodes:
            row = {"id": node.id, "props": node_row(node)}
            old = stored.get(node.id)
            if old is None:
                created[node.label].append(row)
            elif old.label != node.label or not _same(old.props, _plain(node.props)):
                stale = [old.label] if old.label != node.label and old.label else []
                updated[node.label].append({**row, "stale": stale})
        for label, rows in sorted(created.items()):
            run(self._text("create_nodes", _label=label), rows)
        for label, rows in sorted(updated.items()):
            run(self._text("update_nodes", _label=label), rows)

    def _upsert_edges(
        self, tx: ManagedTransaction, srcs: list[str], owners: set[str], edges: list[Edge], run: Callable[..., None]
    ) -> None:
        """``owners``' outgoing edges become exactly those in ``edges``; other sources' edges are upserted."""
        stored = {
            edge.key: edge.props for edge in map(self._edge, _rows(tx, self._text("edges_of"), ids=srcs, type=None, dst=None))
        }
        given = {e.key: e for e in edges}
        created: dict[str, list[dict[str, Any]]] = defaultdict(list)
        updated: dict[str, list[dict[str, Any]]] = defaultdict(list)
        deleted: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for (src, rel, dst), edge in given.items():
            row = edge_row(edge)
            if (src, rel, dst) not in stored:
                created[rel].append(row)
            elif not _same(stored[(src, rel, dst)], _plain(edge.props)):
                updated[rel].append(row)
        for src, rel, dst in stored:
            if src in owners and (src, rel, dst) not in given:
                if rel not in self.rel_types:
                    raise StoreError(f"Neo4j 中的关系类型『{rel}』不是本体中的关系类型，无法按本体维护")
                deleted[rel].append({"src": src, "dst": dst})
        for rel, rows in sorted(deleted.items()):
            run(self._text("delete_edges", _rel=rel), rows)
        for rel, rows in sorted(created.items()):
            run(self._text("create_edges", _rel=rel), rows)
        for rel, rows in sorted(updated.items()):
            run(self._text("update_edges", _rel=rel), rows)

    def _check_ends(self, tx: ManagedTransaction, edges: Sequence[Edge]) -> None:
        ends = sorted({e.src for e in edges} | {e.dst for e in edges})
        missing: list[str] = []
        for chunk in _chunks(ends, self.batch_size):
            missing.extend(_rows(tx, self._text("missing_ids"), ids=chunk))
        if missing:
            raise missing_ends_error(sorted(missing))

    def write_delta(self, op: str, name: str | None, rows: list[Any]) -> Counter[str]:
        """Run one operation of :data:`DELTA_QUERIES` over ``rows`` in its own transaction (retried on transient
        errors), raising the version stamp when the server changed anything; returns the server's counters.

        ``name`` is the class (node operations but delete) or relationship type (edge operations), checked
        against the ontology.  Rows: ``create_nodes`` ``{"props"}`` and ``update_nodes`` ``{"id", "props",
        "stale": [old label]}`` with the props of :func:`node_row`; ``patch_nodes`` ``{"id", "props"}`` (merged in);
        ``delete_nodes`` ids (with their edges); edge operations ``{"src", "dst", "props"}`` as :func:`edge_row`
        makes them (``delete_edges`` needs only the ends).  The caller has diffed: a create of something that
        exists fails on the id constraint (nodes) or makes a second relationship (edges, which the next sync's
        diff finds and repairs)."""
        if op not in DELTA_QUERIES:
            raise StoreError(f"没有名为『{op}』的写入操作；可用：{'、'.join(DELTA_QUERIES)}")
        if op == "delete_nodes":
            text, params = self._text("delete_nodes"), {"ids": rows}
        elif op.endswith("_nodes"):
            if name not in self.labels:
                raise StoreError(f"类别『{name}』不是本体中的类")
            text, params = self._text(DELTA_QUERIES[op], _label=name), {"rows": rows}
        else:
            if name not in self.rel_types:
                raise StoreError(f"关系类型『{name}』不是本体中的关系类型")
            text, params = self._text(DELTA_QUERIES[op], _rel=name), {"rows": rows}

        def work(tx: ManagedTransaction) -> Counter[str]:
            counters = tx.run(text, params).consume().counters
            changes = Counter({key: getattr(counters, key) for key in _COUNTERS})
            if any(changes.values()):
                self._bump_version(tx)
            return changes

        return self._write(work)

    def node_hashes(self, ids: Sequence[str]) -> dict[str, tuple[str, int | None]]:
        """``{id: (label, content hash)}`` for the ids the server holds (hash None when a writer left none), in
        one query per ``batch_size`` ids: what a sync compares instead of reading every property."""
        text = self._text("node_hashes")
        found: dict[str, tuple[str, int | None]] = {}
        for chunk in _chunks(ids, self.batch_size):
            found.update((i, (label, h)) for i, label, h in self._read(_rows, text, ids=chunk, node_label=NODE_LABEL))
        return found

    def edge_hashes(self, srcs: Sequence[str]) -> dict[tuple[str, str, str], list[int | None]]:
        """``{(src, type, dst): [content hash, …]}`` for every outgoing relationship of ``srcs``, one query per
        ``batch_size`` ids; a key with two hashes is a relationship stored twice (the contract allows one)."""
        text = self._text("edge_hashes")
        found: dict[tuple[str, str, str], list[int | None]] = defaultdict(list)
        for chunk in _chunks(srcs, self.batch_size):
            for src, rel, dst, h in self._read(_rows, text, ids=chunk):
                found[(src, rel, dst)].append(h)
        return dict(found)

    def node_total(self) -> int:
        """Every node in the database but the bookkeeping node, of any label, the ontology's or not: an import
        that replaces the database is allowed only when this is 0."""
        return self._read(lambda tx: tx.run(self._text("count_all")).single(strict=True)["n"])

    def delete_nodes(self, ids: Iterable[str]) -> WriteSummary:
        ids = sorted(set(ids))

        def work(tx: ManagedTransaction) -> WriteSummary:
            summary = WriteSummary()
            for chunk in _chunks(ids, self.batch_size):
                counters = tx.run(self._text("delete_nodes"), ids=chunk).consume().counters
                summary.nodes_deleted += counters.nodes_deleted
                summary.edges_deleted += counters.relationships_deleted
            self._bump_version(tx)
            return summary

        return self._write(work)

    def clear(self) -> None:
        """Delete every node and edge (constraints and indexes stay), in batches of their own transactions:
        for tests and benchmarks that start from an empty graph, not an atomic operation."""
        with self._errors(), self._session(write=True) as session:
            session.run(self._text("clear_graph"), batch=self.batch_size).consume()
        self._write(self._bump_version)

    # ─── reads ───
    @staticmethod
    def _node(record: Any) -> Node:
        props = dict(record["props"])
        props.pop("id", None)
        props.pop(HASH_PROPERTY, None)
        return Node(record["id"], record["label"], props)

    @staticmethod
    def _edge(record: Any) -> Edge:
        props = dict(record["props"])
        props.pop(HASH_PROPERTY, None)
        return Edge(record["src"], record["type"], record["dst"], props)

    def get_node(self, node_id: str) -> Node | None:
        found = self.get_nodes([node_id])
        return found[0] if found else None

    def get_nodes(self, ids: Iterable[str]) -> list[Node]:
        text = self._text("get_nodes")
        result: list[Node] = []
        for chunk in _chunks(sorted(set(ids)), self.batch_size):
            records = self._read(_rows, text, ids=chunk, node_label=NODE_LABEL)
            result.extend(self._node(r) for r in records)
        return sorted(result, key=lambda n: n.id)

    def labels_of(self, ids: Iterable[str]) -> dict[str, str]:
        """Only ids and labels travel back, not properties: validation resolves every reference of an import
        with this, one query per ``batch_size`` ids."""
        text = self._text("labels_of")
        result: dict[str, str] = {}
        for chunk in _chunks(sorted(set(ids)), self.batch_size):
            result.update(self._read(_rows, text, ids=chunk, node_label=NODE_LABEL))
        return result

    def version(self) -> int:
        """One indexed read of the bookkeeping node (0 before the first write)."""
        return self._read(lambda tx: tx.run(self._text("version"), key=META_KEY).single(strict=True)["version"])

    def find_by_name(self, label: str, prefix: str, limit: int = 20) -> list[Node]:
        """``STARTS WITH`` on the label's ``gx_<label>_name`` range index (see :meth:`Store.find_by_name`)."""
        if not prefix or label not in self.labels:
            return []
        text = self._text("nodes_by_name", _label=label)
        return [self._node(r) for r in self._read(_rows, text, prefix=prefix, limit=limit, node_label=NODE_LABEL)]

    def nodes(self, label: str | None = None) -> Iterator[Node]:
        """Paged by id (keyset), each page in its own read transaction, so a large graph streams."""
        if label is not None and label not in self.labels:
            return
        text = self._text("nodes_page", _label=label or NODE_LABEL)
        after = ""
        while True:
            page = self._read(_rows, text, after=after, page=self.batch_size, node_label=NODE_LABEL)
            yield from (self._node(r) for r in page)
            if len(page) < self.batch_size:
                return
            after = page[-1]["id"]

    def node_ids(self) -> Iterator[str]:
        """Every node id, sorted, paged like :meth:`nodes`."""
        text = self._text("ids_page")
        after = ""
        while True:
            page = self._read(_rows, text, after=after, page=self.batch_size)
            yield from page
            if len(page) < self.batch_size:
                return
            after = page[-1]

    def edges(self, src: str | None = None, type: str | None = None, dst: str | None = None) -> Iterator[Edge]:
        if src is not None:
            yield from self._edges_of([src], type, dst)
        elif dst is not None:
            yield from self._edges_into([dst], type)
        else:
            for ids in _chunks(self.node_ids(), self.batch_size):
                yield from self._edges_of(ids, type, None)

    def _edges_of(self, ids: list[str], type: str | None, dst: str | None) -> list[Edge]:
        text = self._text("edges_of")
        return [self._edge(r) for r in self._read(_rows, text, ids=ids, type=type, dst=dst)]

    def _edges_into(self, ids: list[str], type: str | None) -> list[Edge]:
        text = self._text("edges_into")
        return [self._edge(r) for r in self._read(_rows, text, ids=ids, type=type)]

    def _grouped(
        self, ids: Iterable[str], fetch: Callable[[list[str]], list[Any]], key: Callable[[Any], str]
    ) -> dict[str, list[Any]]:
        """``{id: []}`` for every distinct id, filled from one ``fetch`` per chunk of ``batch_size`` ids."""
        result: dict[str, list[Any]] = {i: [] for i in sorted(set(ids))}
        for chunk in _chunks(result, self.batch_size):
            for item in fetch(chunk):
                result[key(item)].append(item)
        return result

    def edges_from(self, srcs: Iterable[str], type: str | None = None) -> dict[str, list[Edge]]:
        """One ``UNWIND $ids`` query per ``batch_size`` ids (see :meth:`Store.edges_from`)."""
        return self._grouped(srcs, lambda chunk: self._edges_of(chunk, type, None), key=lambda e: e.src)

    def edges_to(self, dsts: Iterable[str], type: str | None = None) -> dict[str, list[Edge]]:
        """One ``UNWIND $ids`` query per ``batch_size`` ids; lists sorted by (src, type, dst) as the query returns
        them (see :meth:`Store.edges_to`)."""
        return self._grouped(dsts, lambda chunk: self._edges_into(chunk, type), key=lambda e: e.dst)

    def referrers(self, dsts: Iterable[str], type: str | None = None) -> dict[str, list[NodeWithEdges]]:
        """One query per ``batch_size`` ids, answering each source with its node and all its outgoing edges (see
        :meth:`Store.referrers`)."""
        text = self._text("referrers")

        def fetch(chunk: list[str]) -> list[tuple[str, NodeWithEdges]]:
            rows = self._read(_rows, text, ids=chunk, type=type, node_label=NODE_LABEL)
            return [
                (r["dst"], NodeWithEdges(self._node(r), sorted(map(self._edge, r["out"]), key=lambda e: e.key)))
                for r in rows
            ]

        grouped = self._grouped(dsts, fetch, key=lambda pair: pair[0])
        return {dst: sorted((item for _dst, item in pairs), key=lambda r: r.node.id) for dst, pairs in grouped.items()}

    def nodes_with_edges(self, ids: Iterable[str]) -> dict[str, NodeWithEdges]:
        """One query per ``batch_size`` ids, each node with all its outgoing edges (see :meth:`Store.nodes_with_edges`)."""
        text = self._text("nodes_with_edges")
        result: dict[str, NodeWithEdges] = {}
        for chunk in _chunks(sorted(set(ids)), self.batch_size):
            for r in self._read(_rows, text, ids=chunk, node_label=NODE_LABEL):
                result[r["id"]] = NodeWithEdges(self._node(r), sorted(map(self._edge, r["out"]), key=lambda e: e.key))
        return result

    def _counts(self, tx: ManagedTransaction, query: str, slot: str, names: Iterable[str]) -> dict[str, int]:
        counts = {}
        for name in sorted(names):
            record = tx.run(self._text(query, **{slot: name})).single()
            if record["n"]:
                counts[name] = record["n"]
        return counts

    def node_counts(self) -> dict[str, int]:
        """From Neo4j's count store: one cheap query per ontology class."""
        return self._read(self._counts, "count_label", "_label", self.labels)

    def edge_counts(self) -> dict[str, int]:
        return self._read(self._counts, "count_rel", "_rel", self.rel_types)

    def neighbours(self, node_id: str, type: str | None = None, direction: Direction = "out") -> list[Node]:
        text = self._text("neighbour_ids")
        outgoing, incoming = direction in ("out", "both"), direction in ("in", "both")
        ids = self._read(_rows, text, id=node_id, type=type, outgoing=outgoing, incoming=incoming)
        return self.get_nodes(ids)

    # ─── full-text search ───
    def text_search(self, query: str, labels: Iterable[str] | None = None, limit: int = 20) -> list[tuple[Node, float]]:
        """The ``cjk`` full-text index, as a phrase query, for three characters or more; shorter queries scan
        name and description for the substring (as the embedded store does)."""
        query = query.strip()
        if not query:
            return []
        wanted = sorted(set(labels)) if labels else None
        if len(query) < _SHORT_QUERY:
            text = self._text("text_scan", _labels=self.text_labels)
            params = {"query": query.lower(), "labels": wanted, "limit": limit}
        else:
            text = self._text("text_search")
            params = {"index": TEXT_INDEX, "query": _lucene_phrase(query), "labels": wanted, "limit": limit}
        scored = self._read(lambda tx: [(r["id"], r["score"]) for r in tx.run(text, params)])
        by_id = {n.id: n for n in self.get_nodes(i for i, _ in scored)}
        return [(by_id[i], float(s)) for i, s in scored if i in by_id]

    # ─── the designers' query library ───
    def run_named(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """Run one query of :data:`kg.cypher.LIBRARY` (read-only) and return its rows as dicts."""
        if name not in LIBRARY:
            raise StoreError(f"没有名为『{name}』的查询；可用：{'、'.join(LIBRARY)}")
        query = LIBRARY[name]
        values = {**query.example, **params}
        text = query.text(self.ontology)
        return self._read(lambda tx: [r.data() for r in tx.run(text, values)])
