"""The graph store and what is derived from it, one of each per app.

The store is opened by ``kg.store.open_store`` from the app's settings; derived read models (the
recommender's catalogue snapshot, the analytics catalogue, the search index) are built lazily on first use and
dropped whenever the graph changes (:func:`graph_changed`), so a running service picks up an import.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app

from api.errors import fail
from kg.config import Settings
from kg.model import Node
from kg.ontology import Ontology, load_ontology
from kg.store import Store, open_store

__all__ = ["Graph", "get_node", "graph", "graph_changed", "init_app"]


class Graph:
    """Store, ontology and cached read models for one app."""

    def __init__(self, settings: Settings, store_name: str | None) -> None:
        self.settings = settings
        self.ontology: Ontology = load_ontology()
        self.store: Store = open_store(store_name, settings, self.ontology)
        self.generation = 0
        self._cache: dict[str, Any] = {}
        self._lock = threading.Lock()  # guards the dicts only
        self._building: dict[str, threading.Lock] = {}  # one per read model, so a slow one blocks no other

    def derived(self, name: str, build: Callable[[], Any]) -> Any:
        """The read model ``name`` for the current graph, built once (under its own lock) and cached.

        A build may use other read models (demand uses the recommender's snapshot).  A model built while the
        graph changed is returned to its caller but not cached."""
        value = self._cache.get(name)
        if value is not None:
            return value
        with self._lock:
            lock = self._building.setdefault(name, threading.Lock())
        with lock:
            value = self._cache.get(name)
            if value is None:
                generation = self.generation
                value = build()
                with self._lock:
                    if generation == self.generation:
                        self._cache[name] = value
        return value

    def changed(self) -> None:
        with self._lock:
            self.generation += 1
            self._cache.clear()

    @property
    def personal_labels(self) -> frozenset[str]:
        return frozenset(c.name for c in self.ontology.classes.values() if c.personal)

    def close(self) -> None:
        self.store.close()


def init_app(app: Flask) -> None:
    """One store per app, from ``GANXUN_*`` settings (``app.config['SETTINGS']``) and ``STORE``."""
    app.extensions["ganxun.graph"] = Graph(app.config["SETTINGS"], app.config.get("STORE"))


def graph() -> Graph:
    return current_app.extensions["ganxun.graph"]


def graph_changed() -> None:
    """Drop every derived read model; call after any write to the store."""
    graph().changed()


def get_node(node_id: str, label: str | None = None) -> Node:
    """The node ``node_id`` (of class ``label`` when given) that the current user may see.

    Aborts with 404 when it does not exist or is of another class, and with 403 when it is personal data
    (a cadre or a training record) that the current user may not read: a cadre reads only their own; an
    administrator reads anyone's; designers and evaluators read none.
    """
    from api.auth import current_user

    g = graph()
    node = g.store.get_node(node_id)
    if node is None or (label is not None and node.label != label):
        spec = g.ontology.classes.get(label or "")
        fail(404, f"未找到{spec.label if spec else '节点'}『{node_id}』")
    if node.label in g.personal_labels:
        user = current_user()
        owner = node.id if node.label == "Cadre" else _owner_of(node)
        if user is None:
            fail(401, "请先登录")
        if not (user.role == "admin" or (user.role == "cadre" and user.cadre_id == owner)):
            fail(403, "只能查看本人的培训档案")
    return node


def _owner_of(node: Node) -> str | None:
    rel = graph().ontology.relationship_types["ofCadre"]
    return next((e.dst for e in graph().store.edges(src=node.id, type=rel)), None)
