"""The topic tree: the one walk over the plan's topic scheme that every reader uses.

The scheme is a DAG, not a tree — a topic may have two broader topics (``BROADER`` edges, narrower →
broader) — so every question below is answered from the closure of that DAG, the same way for ranking,
gaps, hours, search and analytics:

* ``ancestors(t)``: t and every topic above it, nearest first (ties in the plan's order);
* ``topics_under(r)``: r and every topic below it, along any path;
* ``branches_of(ts)``: the top concepts above any of the topics, in the plan's order; ``branch_of(t)`` is
  the first of t's (a topic under two branches counts for both wherever a report counts per branch);
* ``priority_of(t)``: the plan priority t states, else the one stated nearest above it — of two parents at
  the same distance the more prominent (lower number) wins;
* ``topo_rank``: a prerequisites-first order (``HAS_PREREQUISITE``), ties by priority then plan order.

A cycle in either relation has no sensible reading and raises :class:`~recommender.errors.VocabularyMismatch`
with the topics on the cycle.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property

import networkx as nx
import numpy as np

from recommender.catalogue.rows import Topic
from recommender.errors import VocabularyMismatch

__all__ = ["TopicTree"]

_UNSTATED_PRIORITY = 9  # sorts after every priority the plan states (1–3)


class TopicTree:
    """The topic scheme with its closures, built once from topic rows (immutable afterwards)."""

    def __init__(self, topics: Sequence[Topic]) -> None:
        self.rows: dict[str, Topic] = {t.id: t for t in topics}
        self.ids: list[str] = list(self.rows)
        self.pos: dict[str, int] = {t: i for i, t in enumerate(self.ids)}
        self.hierarchy = nx.DiGraph()  # narrower → broader
        self.prerequisites = nx.DiGraph()  # topic → a topic to study first
        related = nx.Graph()
        for graph in (self.hierarchy, self.prerequisites, related):
            graph.add_nodes_from(self.ids)
        for topic in topics:
            self.hierarchy.add_edges_from((topic.id, b) for b in topic.broader if b in self.pos)
            self.prerequisites.add_edges_from((topic.id, p) for p in topic.prerequisites if p in self.pos)
            related.add_edges_from((topic.id, r) for r in topic.related if r in self.pos)
        self._refuse_cycle(self.hierarchy, "主题上下位关系（skos:broader）", "无法确定上位主题")
        self._refuse_cycle(self.prerequisites, "主题先修关系（gx:hasPrerequisite）", "无法排出学习顺序")
        n = len(self.ids)
        up = np.eye(n, dtype=bool)
        for topic in self.ids:
            for above in nx.descendants(self.hierarchy, topic):
                up[self.pos[topic], self.pos[above]] = True
        #: (T, T) bool: ``up[t, a]`` — a is t or one of its broader topics
        self.up = up
        self.related = np.zeros((n, n), dtype=bool)  # (T, T) bool, skos:related both ways
        for a, b in related.edges():
            self.related[self.pos[a], self.pos[b]] = self.related[self.pos[b], self.pos[a]] = True
        self.prereq_of = np.zeros((n, n), dtype=bool)  # prereq_of[t, p]: p is a direct prerequisite of t
        for t, p in self.prerequisites.edges():
            self.prereq_of[self.pos[t], self.pos[p]] = True
        #: the top concepts (no broader topic), in the plan's order
        self.branches: list[str] = sorted((t for t in self.ids if self.hierarchy.out_degree(t) == 0), key=self._plan_key)
        self._priority = [self._inherited_priority(t) for t in self.ids]
        tops = [self.pos[b] for b in self.branches]
        #: (T,) int: topic position of the first top concept above t (t itself for a top concept)
        self.branch = np.array([next((b for b in tops if up[i, b]), i) for i in range(n)], dtype=np.int64)
        order_key = {t: (self.priority_of(t) or _UNSTATED_PRIORITY, self.rows[t].plan_order or 0, t) for t in self.ids}
        order = nx.lexicographical_topological_sort(self.prerequisites.reverse(copy=True), key=order_key.__getitem__)
        #: (T,) int: position in a prerequisites-first order
        self.topo_rank = np.empty(n, dtype=np.int32)
        for rank, topic in enumerate(order):
            self.topo_rank[self.pos[topic]] = rank
        for array in (self.up, self.related, self.prereq_of, self.branch, self.topo_rank):
            array.flags.writeable = False

    @staticmethod
    def _refuse_cycle(graph: nx.DiGraph, relation: str, consequence: str) -> None:
        try:
            cycle = nx.find_cycle(graph)
        except nx.NetworkXNoCycle:
            return
        path = " → ".join([a for a, _ in cycle] + [cycle[0][0]])
        raise VocabularyMismatch(f"{relation}出现环路：{path}，{consequence}；请检查 ontology/topics.ttl 或导入的主题数据")

    def _plan_key(self, topic_id: str) -> tuple[int, str]:
        order = self.rows[topic_id].plan_order
        return (order if order is not None else 1_000_000, topic_id)

    def _inherited_priority(self, topic_id: str) -> int | None:
        level = [topic_id]
        seen = set(level)
        while level:
            stated = [p for p in (self.rows[t].plan_priority for t in level) if p is not None]
            if stated:
                return min(stated)
            level = sorted({b for t in level for b in self.hierarchy.successors(t)} - seen)
            seen.update(level)
        return None

    # ── questions every reader asks ──
    def __contains__(self, topic_id: object) -> bool:
        return topic_id in self.pos

    def __len__(self) -> int:
        return len(self.ids)

    def name(self, topic_id: str) -> str:
        topic = self.rows.get(topic_id)
        return topic.name if topic else topic_id

    def ancestors(self, topic_id: str) -> tuple[str, ...]:
        """The topic and every broader topic, nearest first (an unknown id: just itself)."""
        return self._ancestors.get(topic_id, (topic_id,))

    @cached_property
    def _ancestors(self) -> dict[str, tuple[str, ...]]:
        chains = {}
        for topic in self.ids:
            distance = nx.single_source_shortest_path_length(self.hierarchy, topic)
            chains[topic] = tuple(sorted(distance, key=lambda a: (distance[a], self._plan_key(a))))
        return chains

    def topics_under(self, root: str) -> frozenset[str]:
        """The root and every topic below it, along any path (empty for an unknown id)."""
        pos = self.pos.get(root)
        return frozenset() if pos is None else frozenset(self.ids[d] for d in np.flatnonzero(self.up[:, pos]))

    def is_under(self, topic_id: str, root: str) -> bool:
        """Whether the topic is the root or lies below it."""
        t, r = self.pos.get(topic_id), self.pos.get(root)
        return t is not None and r is not None and bool(self.up[t, r])

    def branches_of(self, topic_ids: Iterable[str]) -> tuple[str, ...]:
        """Distinct top concepts above any of the topics, in the plan's order."""
        rows = [self.pos[t] for t in topic_ids if t in self.pos]
        if not rows:
            return ()
        above = self.up[rows].any(axis=0)
        return tuple(b for b in self.branches if above[self.pos[b]])

    def branch_of(self, topic_id: str) -> str | None:
        """The first top concept above the topic in the plan's order (None for an unknown id)."""
        pos = self.pos.get(topic_id)
        return None if pos is None else self.ids[int(self.branch[pos])]

    def priority_of(self, topic_id: str) -> int | None:
        """The plan priority the topic states, else the one stated nearest above it (see the module docstring)."""
        pos = self.pos.get(topic_id)
        return None if pos is None else self._priority[pos]
