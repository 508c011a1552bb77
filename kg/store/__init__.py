"""Graph stores, chosen by name from configuration and imported lazily.

The embedded default never imports the Neo4j driver; ``open_store("neo4j")`` does so only when asked.
"""

from __future__ import annotations

from kg.config import Settings
from kg.ontology import Ontology, load_ontology
from kg.store.base import Store, StoreError, UnsupportedOperation, WriteSummary

__all__ = ["STORES", "Store", "StoreError", "UnsupportedOperation", "WriteSummary", "open_store"]

STORES = ("embedded", "neo4j")


def open_store(name: str | None = None, settings: Settings | None = None, ontology: Ontology | None = None) -> Store:
    """Open the named back end (default from ``GANXUN_STORE``), configured from the environment."""
    settings = settings or Settings.from_env()
    ontology = ontology or load_ontology()
    name = name or settings.store
    text_labels = [c.name for c in ontology.classes.values() if not c.personal]
    if name == "embedded":
        from kg.store.embedded import EmbeddedStore

        return EmbeddedStore(settings.db_path, text_labels=text_labels).open()
    if name == "neo4j":
        from kg.store.neo4j import Neo4jStore

        return Neo4jStore.from_settings(settings, ontology).open()
    raise StoreError(f"未知的存储后端『{name}』，应为 {'、'.join(STORES)}")
