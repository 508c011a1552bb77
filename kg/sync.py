"""Copy a store (the embedded one) into Neo4j, batch by batch, so that Neo4j ends up holding exactly the same graph.

Why not one :meth:`~kg.store.base.Store.write`: a graph of millions of records does not fit in one Neo4j
transaction.  Each batch is its own transaction instead, and only differences are written, so an interrupted sync
is finished by running it again, and a second sync of an unchanged graph changes nothing — the server's change
counters, which the report carries, stay at zero.

How the differences are found without reading the server's properties: every node in Neo4j carries a content
hash (:func:`kg.store.neo4j.node_hash`, relationships with properties :func:`~kg.store.neo4j.edge_hash`).  For each
chunk of ``batch_size`` source nodes one query answers the stored label and hash of those ids; equal hashes are
skipped, the rest sorted into creates (``UNWIND … CREATE``), updates (``UNWIND … MATCH … SET``, a label change
included) and, in one pass over pages of the server's ids checked against the source, deletes (``DETACH DELETE``)
and the relationships: each page's stored ``(type, dst, hash)`` against the source's edges of the same nodes.  Rows
of one operation and one label or type are written together, ``batch_size`` per transaction, so a sync into an
empty database is a plain ``UNWIND $rows CREATE`` loader plus one hash property; when the server held nothing to
begin with even the lookups are skipped.  Memory stays at a few batches, whatever the graph's size.  Values are not
checked again: the source is a store, which refused at its own write what no back end can hold.

A first load into an empty database goes faster still through ``neo4j-admin database import full``
(:mod:`kg.neo4j_import`); ``kg sync`` chooses it when the server can be stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from tqdm import tqdm

from kg.model import Edge
from kg.store.base import Store, StoreError
from kg.store.neo4j import Neo4jStore, edge_hash, edge_row, node_hash, node_row

__all__ = ["SyncReport", "graph_checksum", "sync_graph"]


@dataclass
class SyncReport:
    """Counts before and after, per label and per relationship type, and what the server changed.

    ``method`` is ``sync`` (differences written through Bolt) or ``import`` (a first load by ``neo4j-admin``,
    :func:`kg.neo4j_import.first_load`, whose ``changes`` are the imported counts)."""

    source_nodes: dict[str, int]
    source_edges: dict[str, int]
    before_nodes: dict[str, int]
    before_edges: dict[str, int]
    after_nodes: dict[str, int] = field(default_factory=dict)
    after_edges: dict[str, int] = field(default_factory=dict)
    changes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds spent on nodes, stale nodes, edges
    method: str = "sync"

    @property
    def in_step(self) -> bool:
        """Neo4j now holds as many nodes and edges of each kind as the source."""
        return self.after_nodes == self.source_nodes and self.after_edges == self.source_edges

    @property
    def changed(self) -> bool:
        return any(self.changes.values())


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class _Writer:
    """Rows collected per (operation, label or type) and written ``size`` at a time, each batch one transaction
    (:meth:`Neo4jStore.write_delta`); the server's counters add up in ``changes``."""

    def __init__(self, target: Neo4jStore, size: int, changes: Counter[str]) -> None:
        self.target, self.size, self.changes = target, size, changes
        self.pending: dict[tuple[str, str | None], list[Any]] = defaultdict(list)

    def add(self, op: str, name: str | None, row: Any) -> None:
        rows = self.pending[(op, name)]
        rows.append(row)
        if len(rows) >= self.size:
            self.flush(op, name)

    def flush(self, op: str, name: str | None) -> None:
        rows = self.pending.pop((op, name), None)
        if rows:
            self.changes += self.target.write_delta(op, name, rows)

    def flush_all(self) -> None:
        """Deletes first, then creates, then updates (a relationship stored twice is deleted, then made once)."""
        order = {"delete": 0, "create": 1, "update": 2}
        for op, name in sorted(self.pending, key=lambda key: (order[key[0].split("_")[0]], key)):
            self.flush(op, name)


def _sync_nodes(source: Store, target: Neo4jStore, writer: _Writer, lookup: bool, done: Callable[[int], None]) -> None:
    """Source nodes against the stored label and hash of their ids (skipped when the server held no node)."""
    for chunk in _chunks(source.nodes(), target.batch_size):
        stored = target.node_hashes([n.id for n in chunk]) if lookup else {}
        for node in chunk:
            old = stored.get(node.id)
            if old is None:
                writer.add("create_nodes", node.label, {"props": node_row(node)})
            elif old != (node.label, node_hash(node.label, node.props)):
                stale = [old[0]] if old[0] != node.label and old[0] else []
                writer.add("update_nodes", node.label, {"id": node.id, "props": node_row(node), "stale": stale})
        done(len(chunk))
    writer.flush_all()


def _delete_stale(source: Store, target: Neo4jStore, writer: _Writer) -> None:
    """Nodes the server holds and the source does not, found a page of server ids at a time."""
    for page in _chunks(target.node_ids(), target.batch_size):
        known = source.labels_of(page)
        for node_id in page:
            if node_id not in known:
                writer.add("delete_nodes", None, node_id)
    writer.flush_all()


def _diff_edges(
    source_edges: list[Edge], stored: dict[tuple[str, str, str], list[int | None]], writer: _Writer, rel_types: frozenset[str]
) -> None:
    """One chunk's source edges against the stored ones of the same source nodes (``stored`` is consumed)."""
    for edge in source_edges:
        hashes = stored.pop(edge.key, None)
        if hashes is None:
            writer.add("create_edges", edge.type, edge_row(edge))
        elif len(hashes) > 1:  # stored twice (a create retried after its commit): make it one again
            writer.add("delete_edges", edge.type, {"src": edge.src, "dst": edge.dst})
            writer.flush("delete_edges", edge.type)
            writer.add("create_edges", edge.type, edge_row(edge))
        elif hashes[0] != edge_hash(edge.props):
            writer.add("update_edges", edge.type, edge_row(edge))
    for src, rel, dst in stored:
        if rel not in rel_types:
            raise StoreError(f"Neo4j 中的关系类型『{rel}』不是本体中的关系类型，无法按本体维护")
        writer.add("delete_edges", rel, {"src": src, "dst": dst})


def _sync_edges(source: Store, target: Neo4jStore, writer: _Writer, lookup: bool, done: Callable[[int], None]) -> None:
    """Every source node's outgoing edges made exactly the source's.  With no edge stored before, the source's
    edges are streamed straight into creates; otherwise one pass over pages of the server's node ids does both
    the stale nodes (ids the source lacks: deleted with their edges) and, for the others, the edge diff (one
    read on each side per page)."""
    if not lookup:
        for chunk in _chunks(source.edges(), target.batch_size):
            for edge in chunk:
                writer.add("create_edges", edge.type, edge_row(edge))
            done(len(chunk))
    else:
        for page in _chunks(target.node_ids(), target.batch_size):
            known = source.labels_of(page)
            alive = [node_id for node_id in page if node_id in known]
            for node_id in page:
                if node_id not in known:
                    writer.add("delete_nodes", None, node_id)
            edges = [e for group in source.edges_from(alive).values() for e in group]
            _diff_edges(edges, target.edge_hashes(alive), writer, target.rel_types)
            done(len(edges))
    writer.flush_all()


def sync_graph(
    source: Store,
    target: Neo4jStore,
    *,
    progress: bool = False,
    on_phase: Callable[[str, float], Any] | None = None,
    on_progress: Callable[[int, int], Any] | None = None,
) -> SyncReport:
    """Make ``target`` hold exactly ``source``'s graph; see the module docstring for how and why.

    ``on_phase(name, seconds)`` is told as each phase (nodes, stale, edges) ends, for long runs (stale nodes are
    found in the edge phase when the server held edges);
    ``on_progress(done, total)`` after each chunk of source nodes and edges compared (``total`` is the source's
    node and edge count)."""
    phase_done = on_phase or (lambda _name, _seconds: None)
    started = time.perf_counter()
    report = SyncReport(source.node_counts(), source.edge_counts(), target.node_counts(), target.edge_counts())
    total = sum(report.source_nodes.values()) + sum(report.source_edges.values())
    bar = tqdm(total=total, desc="同步到 Neo4j", unit="条", disable=not progress)
    written = 0

    def rows(n: int) -> None:
        nonlocal written
        written = min(total, written + n)
        bar.update(n)
        if on_progress is not None:
            on_progress(written, total)

    writer = _Writer(target, target.batch_size, report.changes)
    had_nodes, had_edges = bool(report.before_nodes), bool(report.before_edges)
    try:
        clock = time.perf_counter()
        _sync_nodes(source, target, writer, had_nodes, rows)
        report.phases["nodes"], clock = time.perf_counter() - clock, time.perf_counter()
        phase_done("nodes", report.phases["nodes"])
        if had_nodes and not had_edges:  # else the edge pass finds them (one pass over the server's ids, not two)
            _delete_stale(source, target, writer)
        report.phases["stale"], clock = time.perf_counter() - clock, time.perf_counter()
        phase_done("stale", report.phases["stale"])
        _sync_edges(source, target, writer, had_edges, rows)
        report.phases["edges"] = time.perf_counter() - clock
        phase_done("edges", report.phases["edges"])
    finally:
        bar.close()
    report.after_nodes, report.after_edges = target.node_counts(), target.edge_counts()
    report.seconds = time.perf_counter() - started
    return report


def graph_checksum(store: Store) -> str:
    """SHA-256 over every node and edge in the store's (sorted) reading order: equal checksums, equal graphs."""
    digest = hashlib.sha256()
    for node in store.nodes():
        digest.update(json.dumps([node.id, node.label, node.props], ensure_ascii=False, sort_keys=True).encode())
        digest.update(b"\n")
    for edge in store.edges():
        digest.update(json.dumps([edge.src, edge.type, edge.dst, edge.props], ensure_ascii=False, sort_keys=True).encode())
        digest.update(b"\n")
    return digest.hexdigest()
