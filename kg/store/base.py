"""The one store interface both back ends implement.

Lifecycle first, then the core operations every back end must provide, then defaults built on the core
(which a back end may override for speed), then optional groups announced by capability flags.  A back end
that lacks an optional group raises :class:`UnsupportedOperation`, never a silent wrong answer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from kg.model import Edge, Node, NodeWithEdges

__all__ = ["Direction", "Store", "StoreError", "UnsupportedOperation", "WriteSummary"]

Direction = Literal["out", "in", "both"]


class StoreError(RuntimeError):
    """A store could not do what was asked; the message is for people (Chinese)."""


class UnsupportedOperation(StoreError):
    """The back end does not provide this optional operation."""


@dataclass
class WriteSummary:
    """What one atomic write changed."""

    nodes_written: int = 0
    edges_written: int = 0
    nodes_deleted: int = 0
    edges_deleted: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Store(ABC):
    """A property graph of ontology classes (labels) and relationship types.

    Contract shared by every back end (and checked by ``tests/test_store_contract.py``):

    * ids are unique over the whole graph; a node has exactly one label;
    * an edge is identified by ``(src, type, dst)``; writing it again replaces its properties;
    * :meth:`write` is atomic: after an error, or a process killed mid-write, the store holds exactly what
      it held before;
    * reads return plain :class:`Node` / :class:`Edge` values, sorted by id (edges by ``(src, type, dst)``),
      so that two back ends holding the same graph answer identically;
    * :meth:`version` is a graph version stamp: every committed mutation raises it in the same transaction as
      the change, so a reader in any process sees a new value exactly when new data is visible, and a rejected
      or rolled-back write leaves it as it was.  Caches (the recommender's catalogue snapshot, per-request
      answers) compare it instead of reloading the graph.
    """

    name: ClassVar[str]
    supports_text_search: ClassVar[bool] = False

    # ─── lifecycle ───
    def open(self) -> "Store":
        """Connect or open files; idempotent.  Returns self so ``with open_store(...) as s`` reads well."""
        return self

    def close(self) -> None:
        """Release connections; idempotent."""

    def __enter__(self) -> "Store":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ─── core writes ───
    @abstractmethod
    def write(
        self,
        nodes: Iterable[Node],
        edges: Iterable[Edge],
        *,
        replace: bool = False,
        progress: bool = False,
    ) -> WriteSummary:
        """Upsert nodes and edges in one atomic unit.

        A written node is replaced whole: its properties and its outgoing edges become exactly those given
        in this write (a record carries its own relations).  Edges from nodes not written here are upserted.

        With ``replace=True`` the graph afterwards holds exactly the given nodes and edges.  An edge whose
        end is neither written nor already stored raises :class:`StoreError` and nothing changes.
        """

    @abstractmethod
    def delete_nodes(self, ids: Iterable[str]) -> WriteSummary:
        """Delete nodes and every edge touching them, atomically; unknown ids are ignored."""

    # ─── core reads ───
    @abstractmethod
    def get_node(self, node_id: str) -> Node | None:
        """The node with this id, or None."""

    @abstractmethod
    def nodes(self, label: str | None = None) -> Iterator[Node]:
        """All nodes, or those of one label, sorted by id."""

    @abstractmethod
    def edges(self, src: str | None = None, type: str | None = None, dst: str | None = None) -> Iterator[Edge]:
        """Edges matching every given end and type, sorted by (src, type, dst)."""

    @abstractmethod
    def version(self) -> int:
        """The graph's version stamp: a non-negative integer that every committed :meth:`write` (``replace`` builds
        included), :meth:`delete_nodes` and any other mutation increases, in the same transaction as the change.

        Reads never change it, and a failed write leaves it unchanged.  Only equality and order matter: values
        are not counts of writes (a back end may skip numbers), and two back ends holding the same graph need
        not agree on it.  Cheap enough to call on every web request (one single-row read).
        """

    @abstractmethod
    def node_counts(self) -> dict[str, int]:
        """Number of nodes per label (labels with none are absent)."""

    @abstractmethod
    def edge_counts(self) -> dict[str, int]:
        """Number of edges per relationship type."""

    # ─── defaults built on the core ───
    def neighbours(self, node_id: str, type: str | None = None, direction: Direction = "out") -> list[Node]:
        """Nodes one edge away, sorted by id."""
        ids: set[str] = set()
        if direction in ("out", "both"):
            ids |= {e.dst for e in self.edges(src=node_id, type=type)}
        if direction in ("in", "both"):
            ids |= {e.src for e in self.edges(dst=node_id, type=type)}
        return [n for n in (self.get_node(i) for i in sorted(ids)) if n is not None]

    def get_nodes(self, ids: Iterable[str]) -> list[Node]:
        """Nodes for the ids that exist, sorted by id."""
        return [n for n in (self.get_node(i) for i in sorted(set(ids))) if n is not None]

    def edges_from(self, srcs: Iterable[str], type: str | None = None) -> dict[str, list[Edge]]:
        """Outgoing edges of many nodes at once: ``{src: edges}`` for every distinct id asked, keys in id order,
        each list sorted by ``(src, type, dst)`` and limited to ``type`` when given.

        An id with no such edges, or no node at all, maps to ``[]``, so callers index without checking.  This
        default asks :meth:`edges` once per id; both back ends answer it natively in one query per large chunk,
        which is what makes fetching the edges of a whole page of nodes one round trip instead of hundreds.
        """
        return {src: list(self.edges(src=src, type=type)) for src in sorted(set(srcs))}

    def edges_to(self, dsts: Iterable[str], type: str | None = None) -> dict[str, list[Edge]]:
        """Incoming edges of many nodes at once: ``{dst: edges}``, with the same contract as :meth:`edges_from`
        (every distinct id a key in id order, ``[]`` when none, each list sorted by ``(src, type, dst)``)."""
        return {dst: list(self.edges(dst=dst, type=type)) for dst in sorted(set(dsts))}

    def referrers(self, dsts: Iterable[str], type: str | None = None) -> dict[str, list[NodeWithEdges]]:
        """The nodes that point at each of ``dsts`` (through an edge of ``type`` when given), each with all of its
        own outgoing edges: ``{dst: [NodeWithEdges, …]}``.

        Made for records that carry their relations: a cadre's training records point at the cadre
        (``ofCadre``) and at a course, platform or class, so ``referrers([cadre], "OF_CADRE")`` is the cadre's
        whole record history in one call.  Every distinct id asked is a key (in id order, ``[]`` when nothing
        points at it); under each, sources are sorted by id and each source's edges by ``(src, type, dst)``; a
        source pointing at two asked ids appears under both.  Both back ends answer it in one query (so it is
        also one consistent reading of the graph); this default composes :meth:`edges_to`, :meth:`get_nodes` and
        :meth:`edges_from`.
        """
        into = self.edges_to(dsts, type)
        srcs = {e.src for edges in into.values() for e in edges}
        nodes = {n.id: n for n in self.get_nodes(srcs)}
        out = self.edges_from(srcs)
        return {
            dst: [NodeWithEdges(nodes[s], out[s]) for s in sorted({e.src for e in edges}) if s in nodes]
            for dst, edges in into.items()
        }

    def nodes_with_edges(self, ids: Iterable[str]) -> dict[str, NodeWithEdges]:
        """The nodes asked that exist, each with all of its outgoing edges: ``{id: NodeWithEdges}`` in id order,
        edges sorted by ``(src, type, dst)``; an unknown id is absent.

        Made for work over many cadres at once (the nightly batch): a block of cadres with the category, domain
        and groups they point at, next to :meth:`referrers` for their records, is two reads for the whole block
        instead of three per cadre.  Both back ends answer it in one query (per large chunk of ids); this default
        composes :meth:`get_nodes` and :meth:`edges_from`.
        """
        nodes = self.get_nodes(ids)
        out = self.edges_from(n.id for n in nodes)
        return {n.id: NodeWithEdges(n, out[n.id]) for n in nodes}

    def label_of(self, node_id: str) -> str | None:
        node = self.get_node(node_id)
        return node.label if node else None

    def labels_of(self, ids: Iterable[str]) -> dict[str, str]:
        """id → label for the ids that exist (used by validation to resolve references in bulk)."""
        return {n.id: n.label for n in self.get_nodes(ids)}

    def is_empty(self) -> bool:
        return not self.node_counts()

    # ─── look-up by name ───
    def find_by_name(self, label: str, prefix: str, limit: int = 20) -> list[Node]:
        """Nodes of ``label`` whose ``name`` starts with ``prefix``, ordered by name then id, at most ``limit``
        (an empty prefix finds nothing).

        For finding a person by name (the administrator's 查找干部): cadres are personal data, kept out of the
        text index, and a province holds a million of them, so both back ends answer from an index on
        (label, name), reading only the matches.  This default scans the label's nodes.
        """
        if not prefix:
            return []
        found = (n for n in self.nodes(label) if str(n.props.get("name", "")).startswith(prefix))
        return sorted(found, key=lambda n: (str(n.props.get("name", "")), n.id))[:limit]

    # ─── optional: full-text search ───
    def text_search(self, query: str, labels: Iterable[str] | None = None, limit: int = 20) -> list[tuple[Node, float]]:
        """Nodes whose name or description match the query, best first, with a back-end score."""
        raise UnsupportedOperation(f"存储后端 {self.name} 不支持全文检索")
