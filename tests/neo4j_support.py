"""Reaching the real Neo4j server in tests: settings read lazily, one clear reason when it is missing.

The server is the one at ``NEO4J_URI`` (``scripts/neo4j-dev start`` on a developer's machine; ``scripts/test`` starts
it for CI).  Where ``CI=true`` or ``GANXUN_REQUIRE_NEO4J=1`` a missing server fails the test; elsewhere it skips.
Fixtures clear the database before seeding, so point ``NEO4J_URI`` at a server whose data may be thrown away.
"""

from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from kg.config import REPO_ROOT, Settings
from kg.ontology import load_ontology
from kg.store import StoreError
from kg.store.neo4j import Neo4jStore
from tests.conftest import require

__all__ = ["OwnServer", "neo4j_settings", "open_neo4j", "require_neo4j", "server_problem", "start_own_server"]


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


@dataclass
class OwnServer:
    """A second development server this test session started for itself (``scripts/neo4j-dev`` with its own home,
    state directory and a free port): tests that stop and restart their server use it, never the shared one."""

    script_env: dict[str, str]  # what scripts/neo4j-dev needs to find this server
    env: dict[str, str]  # the connection settings for it, as environment overrides

    @property
    def settings(self) -> Settings:
        return neo4j_settings(**self.env)

    def stop(self) -> None:
        subprocess.run([str(REPO_ROOT / "scripts" / "neo4j-dev"), "stop"], env=self.script_env, capture_output=True, check=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_own_server(base: Path) -> OwnServer:
    """Start :class:`OwnServer` under ``base``; fails in CI (``CI=true`` or ``GANXUN_REQUIRE_NEO4J=1``) and skips
    elsewhere when it cannot start (no Java, no jars), with the script's last line as the reason."""
    port = _free_port()
    script_env = {
        **os.environ,
        "GANXUN_NEO4J_STATE": str(base / "state"),
        "GANXUN_NEO4J_HOME": str(base / "home"),
        "NEO4J_BOLT_PORT": str(port),
        "NEO4J_PASSWORD": os.environ["NEO4J_PASSWORD"],  # tests.conftest sets scripts/neo4j-dev's default
    }
    done = subprocess.run([str(REPO_ROOT / "scripts" / "neo4j-dev"), "start"], env=script_env, capture_output=True,
                          text=True, check=False)
    problem = None if done.returncode == 0 else (done.stderr.strip().splitlines() or ["（无输出）"])[-1]
    if problem is not None and os.environ.get("GANXUN_REQUIRE_NEO4J") == "1":
        pytest.fail(f"GANXUN_REQUIRE_NEO4J=1 但第二个 Neo4j 服务器无法启动：{problem}")
    require(problem is None, f"第二个 Neo4j 服务器无法启动（scripts/neo4j-dev start）：{problem}")
    return OwnServer(script_env, {"NEO4J_URI": f"bolt://127.0.0.1:{port}", "NEO4J_PASSWORD": script_env["NEO4J_PASSWORD"]})
