"""The property-graph records every store reads and writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Edge", "Node", "NodeWithEdges"]


@dataclass(frozen=True)
class Node:
    """A node: compact id (``course:dj-001``), class name from the ontology, and scalar or list properties."""

    id: str
    label: str
    props: dict[str, Any] = field(default_factory=dict, compare=True, hash=False)

    def get(self, key: str, default: Any = None) -> Any:
        return self.props.get(key, default)


@dataclass(frozen=True)
class Edge:
    """A relationship ``src -[type]-> dst``; ``props`` holds ``ord`` for ordered relations only."""

    src: str
    type: str
    dst: str
    props: dict[str, Any] = field(default_factory=dict, compare=True, hash=False)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.src, self.type, self.dst)


@dataclass(frozen=True)
class NodeWithEdges:
    """A node together with all of its outgoing edges (sorted by ``(src, type, dst)``).

    What :meth:`kg.store.base.Store.referrers` answers: a record-like node (a training record, say) carries its
    own relations, so a caller needs the node and where it points in the same answer.
    """

    node: Node
    edges: list[Edge] = field(default_factory=list, compare=True, hash=False)
