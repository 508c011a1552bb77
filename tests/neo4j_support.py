"""Reaching the real Neo4j server in tests: settings read lazily, one clear reason when it is missing.

The server is the one at ``NEO4J_URI`` (``scripts/neo4j-dev start`` on a developer's machine; ``scripts/test`` starts
it for CI).  Where ``CI=true`` or ``GANXUN_REQUIRE_NEO4J=1`` a missing server fails the test; elsewhere it skips.
Fixtures clear the database before seeding, so point ``NEO4J_URI`` at a server whose data may be thrown away.
"""

from __future__ import annotations

import os
from functools import cache

import pytest

from kg.config import Settings
from kg.ontology import load_ontology
from kg.store import StoreError
from kg.store.neo4j import Neo4jStore
from tests.conftest import require

__all__ = ["neo4j_settings", "open_neo4j", "require_neo4j", "server_problem"]


def neo4j_settings(**overrides: str) -> Settings:
    env = dict(os.environ)
    env.update(overrides)
    return Settings.from_env(env)


@cache
def server_problem() -> str | None:
    """Why the server cannot be used (the store's own Chinese message), or None when it answers."""
    try:
        Neo4jStore.from_settings(neo4j_settings(), load_ontology()).open().close()
    except StoreError as exc:
        return str(exc)
    return None


def require_neo4j() -> None:
    """Skip (developer machine) or fail (CI, ``GANXUN_REQUIRE_NEO4J=1``) when no server answers."""
    problem = server_problem()
    if problem is not None and os.environ.get("GANXUN_REQUIRE_NEO4J") == "1":
        pytest.fail(f"GANXUN_REQUIRE_NEO4J=1 但 Neo4j 不可用：{problem}")
    require(problem is None, f"Neo4j 不可用，跳过（启动：scripts/neo4j-dev start）：{problem}")


def open_neo4j() -> Neo4jStore:
    """An open store on the test server, its graph cleared."""
    require_neo4j()
    store = Neo4jStore.from_settings(neo4j_settings(), load_ontology()).open()
    store.clear()
    return store
