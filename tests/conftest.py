"""Shared fixtures: the ontology, a fresh embedded store, and the small fixture corpus."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kg.build import build_graph
from kg.ontology import Ontology, load_ontology
from kg.store.embedded import EmbeddedStore

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_CORPUS = FIXTURES / "corpus"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
#: The password ``scripts/neo4j-dev`` gives the server it starts (the code itself has no default for it).
os.environ.setdefault("NEO4J_PASSWORD", "ganxun-dev-password")


def require(condition: bool, reason: str) -> None:
    """Skip with a clear reason on a developer's machine; fail in CI, where every component must be present."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI 中缺少必需组件：{reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def ontology() -> Ontology:
    return load_ontology()


@pytest.fixture
def store(tmp_path: Path, ontology: Ontology) -> EmbeddedStore:
    text_labels = [c.name for c in ontology.classes.values() if not c.personal]
    with EmbeddedStore(tmp_path / "graph.db", text_labels=text_labels) as s:
        yield s


@pytest.fixture
def built_store(store: EmbeddedStore, ontology: Ontology) -> EmbeddedStore:
    build_graph(store, [FIXTURE_CORPUS], ontology)
    return store
