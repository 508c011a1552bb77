"""Copy a store (the embedded one) into Neo4j, batch by batch, so that Neo4j ends up holding exactly the same graph.

Why not one :meth:`~kg.store.base.Store.write`: a graph of millions of records does not fit in one Neo4j
transaction.  Each batch is its own transaction instead, and every batch is idempotent (``MERGE``, and ``SET``
only where a value differs), so an interrupted sync is finished by running it again, and a second sync of an
unchanged graph changes nothing — the server's change counters, which the report carries, stay at zero.

Steps: nodes Neo4j holds but the source does not are deleted; every source node is upserted; then, source node
by source node, its outgoing edges are made exactly the source's (missing ones merged, extra ones removed).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from tqdm import tqdm

from kg.model import Edge, Node
from kg.store.base import Store
from kg.store.neo4j import Batch, Neo4jStore

__all__ = ["SyncReport", "graph_checksum", "sync_graph"]


@dataclass
class SyncReport:
    """Counts before and after, per label and per relationship type, and what the server changed."""

    source_nodes: dict[str, int]
    source_edges: dict[str, int]
    before_nodes: dict[str, int]
    before_edges: dict[str, int]
    after_nodes: dict[str, int] = field(default_factory=dict)
    after_edges: dict[str, int] = field(default_factory=dict)
    changes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds spent on nodes, stale nodes, edges

    @property
    def in_step(self) -> bool:
        """Neo4j now holds as many nodes and edges of each kind as the source."""
        return self.after_nodes == self.source_nodes and self.after_edges == self.source_edges

    @property
    def changed(self) -> bool:
        return any(self.changes.values())


def _edge_batches(
    edges: Iterable[Edge], size: int, seen: set[str]
) -> Iterator[tuple[list[str], list[Edge]]]:
    """Edges grouped by source node (the store returns them sorted by src), cut into batches of about ``size``
    edges that never split one node's edges; each source id is added to ``seen``."""
    owners: list[str] = []
    batch: list[Edge] = []
    for src, group in groupby(edges, key=lambda e: e.src):
        owners.append(src)
        seen.add(src)
        batch.extend(group)
        if len(batch) >= size or len(owners) >= size:
            yield owners, batch
            owners, batch = [], []
    if owners:
        yield owners, batch


def _node_batches(nodes: Iterable[Node], size: int, ids: set[str]) -> Iterator[list[Node]]:
    batch: list[Node] = []
    for node in nodes:
        ids.add(node.id)
        batch.append(node)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def sync_graph(
    source: Store,
    target: Neo4jStore,
    *,
    progress: bool = False,
    on_phase: Callable[[str, float], Any] | None = None,
    on_progress: Callable[[int, int], Any] | None = None,
) -> SyncReport:
    """Make ``target`` hold exactly ``source``'s graph; see the module docstring for how and why.

    ``on_phase(name, seconds)`` is told as each phase (nodes, stale, edges) ends, for long runs;
    ``on_progress(done, total)`` after each chunk of source nodes and edges written (``total`` is the source's
    node and edge count; a batch retried after a transient error is not counted twice past it)."""
    phase_done = on_phase or (lambda _name, _seconds: None)
    started = time.perf_counter()
    size = target.batch_size
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

    try:
        source_ids: set[str] = set()
        clock = time.perf_counter()
        for nodes in _node_batches(source.nodes(), size, source_ids):
            report.changes += target.apply(Batch(nodes=nodes), rows)
        report.phases["nodes"], clock = time.perf_counter() - clock, time.perf_counter()
        phase_done("nodes", report.phases["nodes"])
        stale = [i for i in target.node_ids() if i not in source_ids]
        for start in range(0, len(stale), size):
            report.changes += target.apply(Batch(delete=stale[start : start + size]))
        report.phases["stale"], clock = time.perf_counter() - clock, time.perf_counter()
        phase_done("stale", report.phases["stale"])
        with_edges: set[str] = set()
        for owners, edges in _edge_batches(source.edges(), size, with_edges):
            # ends were all upserted above, and the counts are compared at the end
            report.changes += target.apply(Batch(edges=edges, owners=owners, check_ends=False), rows)
        without = sorted(source_ids - with_edges)  # their stale outgoing edges in Neo4j must go too
        for start in range(0, len(without), size):
            report.changes += target.apply(Batch(owners=without[start : start + size]))
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
