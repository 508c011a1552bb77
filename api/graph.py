"""The graph store and what is derived from it, one of each per worker process, all at one graph version.

The store is opened by ``kg.store.open_store`` from the app's settings.  Derived read models (the catalogue
snapshot, the recommender over it, the search service, the course lists) are built
lazily, or at worker start by :mod:`api.services`, and cached *for one graph version*: at the start of each
request :meth:`Graph.refresh` compares ``store.version()`` — bumped by the store in the same transaction as
every committed write, whichever process wrote — at most every :attr:`Graph.check_interval` seconds, and drops
every derived model when it moved.  So an import through any worker is seen by every worker within a second,
and a withdrawn course stops being recommended everywhere, without any worker being told.

A read model that also rests on a file outside the store (the batch run's stored results) passes a cheap
``key`` (the file's modification stamp) to :meth:`Graph.derived` and is rebuilt when the key changes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from flask import Flask, current_app

from api.errors import fail
from kg.config import Settings
from kg.model import Node
from kg.ontology import Ontology, load_ontology
from kg.store import Store, open_store

__all__ = ["CHECK_INTERVAL", "Graph", "get_node", "graph", "init_app", "require_reader_of"]

#: Seconds between two version checks in one worker: a write is seen everywhere well within a second, and a
#: busy worker reads the one-row version stamp a few times a second at most.
CHECK_INTERVAL = 0.25


class Graph:
    """Store, ontology and the read models cached for the current graph version, for one worker process."""

    def __init__(self, settings: Settings, store_name: str | None, check_interval: float = CHECK_INTERVAL) -> None:
        self.settings = settings
        self.ontology: Ontology = load_ontology()
        self.store: Store = open_store(store_name, settings, self.ontology)
        self.check_interval = check_interval
        self.version = self.store.version()
        self._checked = time.monotonic()
        self._cache: dict[str, tuple[Hashable, Any]] = {}  # name → (key, read model), all for self.version
        self._lock = threading.Lock()  # guards the dicts and the version only
        self._building: dict[str, threading.Lock] = {}  # one per read model, so a slow one blocks no other
        #: The classes that hold personal data (cadres, their records): fixed by the ontology, so read once.
        self.personal_labels: frozenset[str] = frozenset(c.name for c in self.ontology.classes.values() if c.personal)

    def refresh(self, force: bool = False) -> int:
        """The graph version, read from the store unless read less than :attr:`check_interval` ago (``force``:
        read now — after this worker's own write, so its next answer already shows it).  When it moved, every
        derived read model is dropped; each is rebuilt once, on first use, for the new version."""
        now = time.monotonic()
        if not force and now - self._checked < self.check_interval:
            return self.version
        self._checked = now
        current = self.store.version()
        if current != self.version:
            with self._lock:
                if current != self.version:
                    self.version = current
                    self._cache.clear()
        return self.version

    def derived(self, name: str, build: Callable[[], Any], key: Hashable = None) -> Any:
        """The read model ``name`` for the current graph version (and ``key``), built once under its own lock.

        A build may use other read models (the recommender uses the snapshot).  A model whose build overlapped
        a version change is returned to its caller but not cached, so the next request builds it afresh."""
        entry = self._cache.get(name)
        if entry is not None and entry[0] == key:
            return entry[1]
        with self._lock:
            lock = self._building.setdefault(name, threading.Lock())
        with lock:
            entry = self._cache.get(name)
            if entry is not None and entry[0] == key:
                return entry[1]
            version = self.version
            value = build()
            with self._lock:
                if version == self.version and value is not None:
                    self._cache[name] = (key, value)
        return value

    def close(self) -> None:
        self.store.close()


def init_app(app: Flask) -> None:
    """One store per app, from ``GANXUN_*`` settings (``app.config['SETTINGS']``) and ``STORE``; every request
    first brings the read models to the store's current version."""
    app.extensions["ganxun.graph"] = Graph(app.config["SETTINGS"], app.config.get("STORE"),
                                           float(app.config.get("VERSION_CHECK_INTERVAL", CHECK_INTERVAL)))
    app.before_request(_refresh)


def _refresh() -> None:
    graph().refresh()


def graph() -> Graph:
    return current_app.extensions["ganxun.graph"]


def get_node(node_id: str, label: str | None = None) -> Node:
    """The node ``node_id`` (of class ``label`` when given) that the current user may see.

    Aborts with 404 when it does not exist or is of another class, and with 403 when it is personal data
    (a cadre or a training record) that the current user may not read: a cadre reads only their own; an
    administrator reads anyone's; designers and evaluators read none.
    """
    g = graph()
    if label == "Cadre":  # access first: an unknown id and another cadre's id get the same 403
        require_reader_of(node_id)
    node = g.store.get_node(node_id)
    if node is None or (label is not None and node.label != label):
        spec = g.ontology.classes.get(label or "")
        fail(404, f"未找到{spec.label if spec else '节点'}『{node_id}』")
    if node.label in g.personal_labels:
        require_reader_of(node.id if node.label == "Cadre" else _owner_of(node))
    return node


def require_reader_of(cadre_id: str | None) -> None:
    """Abort with 401 / 403 unless the current user may read the personal data of cadre ``cadre_id`` (see
    :func:`get_node`).  Needs no read of the store, so a page checks access before its one profile fetch."""
    from api.auth import current_user

    user = current_user()
    if user is None:
        fail(401, "请先登录")
    if not (user.role == "admin" or (user.role == "cadre" and user.cadre_id == cadre_id)):
        fail(403, "只能查看本人的培训档案")


def _owner_of(node: Node) -> str | None:
    rel = graph().ontology.relationship_types["ofCadre"]
    return next((e.dst for e in graph().store.edges(src=node.id, type=rel)), None)
