"""The vector index chosen by measured recall: exact below the threshold, a measured approximate index above it.

Data are clustered unit vectors made the way ``bench/search_speed.py`` makes them from catalogue embeddings
(a random centre plus Gaussian noise at several scales, renormalised), small enough to build in seconds.
Recall is checked again here, on queries the chooser never saw, against exact search; nothing is timed.
"""

from __future__ import annotations

import json
from dataclasses import replace

import faiss
import numpy as np
import pytest

from recommender.search.config import FLAT_SPEC, IndexConfig
from recommender.search.documents import Document
from recommender.search.errors import SearchError
from recommender.search.indexing import IndexUpdate, is_current, next_generation
from recommender.search.lexical import Tokenizer
from recommender.search.persist import Generation, IndexDir
from recommender.search.vectors import (
    QUERY_NOISE, build_vector_index, choose_vector_index, describe_choice, index_label, recall_at_k, tuning_queries,
)

DIM = 96


def clustered(n: int, seed: int, centres: int = 400) -> np.ndarray:
    """``n`` unit vectors around ``centres`` random centres, with noise of norm 0.2, 0.4 or 0.8 (before renormalising)."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((centres, DIM)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    scale = np.array([0.2, 0.4, 0.8], dtype=np.float32)[rng.integers(0, 3, n)] / np.sqrt(DIM)
    x = base[rng.integers(0, centres, n)] + rng.standard_normal((n, DIM)).astype(np.float32) * scale[:, None]
    return x / np.linalg.norm(x, axis=1, keepdims=True)


SMALL = IndexConfig(exact_max=2_000, approx="ivf,hnsw", tune_queries=300, hnsw_m=16,
                    hnsw_ef_construction=40, pca_dims=16)


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return clustered(20_000, seed=1)


@pytest.fixture(scope="module")
def chosen(vectors):
    return choose_vector_index(vectors, SMALL)


class TestConfig:
    def test_candidates_and_grids_come_from_the_configuration(self):
        config = IndexConfig.from_env({"GANXUN_SEARCH_APPROX": "ivf,pca-hnsw", "GANXUN_SEARCH_IVF_NPROBE_GRID": "1,4",
                                       "GANXUN_SEARCH_RECALL_TARGET": "0.9"})
        kinds = [c.spec["type"] for c in config.candidates_for(10**6, 384)]
        assert kinds == ["flat", "ivf", "pca-hnsw"]  # exact search is always a candidate
        ivf = config.candidates_for(10**6, 384)[1]
        assert ivf.spec["factory"] == "IVF4096,Flat" and (ivf.knob, ivf.grid) == ("nprobe", (1, 4))
        assert config.recall_target == 0.9
        assert [c.spec["type"] for c in config.candidates_for(10**6, 64)] == ["flat", "ivf"]  # too few dims for PCA

    def test_bad_values_name_the_parameter_or_variable(self):
        with pytest.raises(SearchError, match="approx"):
            IndexConfig(approx="ivf,lsh")
        with pytest.raises(SearchError, match="recall_target"):
            IndexConfig(recall_target=1.5)
        with pytest.raises(SearchError, match="ivf_nprobe_grid"):
            IndexConfig(ivf_nprobe_grid=(8, 2))
        with pytest.raises(SearchError, match="GANXUN_SEARCH_HNSW_EF_GRID"):
            IndexConfig.from_env({"GANXUN_SEARCH_HNSW_EF_GRID": "16,很多"})

    def test_policy_is_exact_below_the_threshold_and_the_tuning_settings_above(self):
        config = IndexConfig(exact_max=1_000)
        assert config.index_policy(1_000) == {"exact": True}
        above = config.index_policy(1_001)
        assert above["exact"] is False and above["recall_target"] == 0.95 and above["ivf_nlist"] == 128
        assert IndexConfig(exact_max=1_000, recall_target=0.99).index_policy(1_001) != above


class TestQueries:
    def test_held_out_queries_are_unit_vectors_near_distinct_catalogue_rows(self, vectors):
        queries, rows = tuning_queries(vectors, 400)
        assert len(set(rows.tolist())) == 400
        assert np.allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)
        cosine = np.sum(queries * vectors[rows], axis=1)
        assert np.allclose(cosine[::4], 1.0, atol=1e-5)  # a quarter as they are
        perturbed = np.delete(cosine, np.s_[::4])
        assert perturbed.max() < 0.999  # the rest near their row, not on it: cosine ≈ 1/√(1+σ²) per noise norm σ
        for i, sigma in enumerate(QUERY_NOISE):
            assert perturbed[i :: len(QUERY_NOISE)].mean() == pytest.approx(1 / np.sqrt(1 + sigma**2), abs=0.03)

    def test_recall_counts_ties_with_the_kth_exact_neighbour(self):
        x = np.eye(4, dtype=np.float32)[[0, 0, 1, 2]]  # rows 0 and 1 are the same vector
        q = x[:1]
        exact = np.array([[1.0, 1.0, 0.0]], dtype=np.float32)
        assert recall_at_k(x, q, exact, np.array([[1, 0, 3]]), k=3) == 1.0  # row 3 ties the 3rd (0.0)
        assert recall_at_k(x, q, exact, np.array([[1, 2, -1]]), k=3) == pytest.approx(2 / 3)


class TestChooser:
    def test_exact_below_the_threshold(self):
        x = clustered(1_500, seed=2)
        index, spec = choose_vector_index(x, SMALL)
        assert spec["type"] == "flat" and spec["policy"] == {"exact": True} and "trials" not in spec
        assert index.ntotal == 1_500 and "精确检索" in describe_choice(spec)

    def test_approximate_above_the_threshold_and_its_recall_holds_on_unseen_queries(self, vectors, chosen):
        index, spec = chosen
        assert spec["type"] in ("ivf", "hnsw") and spec["recall_at_10"] >= SMALL.recall_target
        assert spec["policy"] == SMALL.index_policy(len(vectors))
        # every trial reaching the target was no faster (in CPU time) than the choice
        qualified = [t for t in spec["trials"] if t["recall_at_10"] >= SMALL.recall_target]
        assert min(t["cpu_p50_ms"] for t in qualified) == spec["cpu_p50_ms"]
        assert {t["factory"] for t in spec["trials"]} >= {"Flat", "IVF512,Flat", "HNSW16"}
        # fresh queries from another seed: the recall the manifest promises is the recall users get
        queries, _ = tuning_queries(vectors, 500, seed=99)
        exact = build_vector_index(vectors, FLAT_SPEC)
        exact_scores, _ = exact.search(queries, 10)
        _, found = index.search(queries, 10)
        assert recall_at_k(vectors, queries, exact_scores, found) >= SMALL.recall_target - 0.02
        assert spec["sample"]["queries"] == 300 and spec["sample"]["vectors"] == len(vectors)

    def test_an_unreachable_target_falls_back_to_exact_search(self):
        x = clustered(3_000, seed=4)
        config = IndexConfig(exact_max=2_000, approx="ivf", ivf_nprobe_grid=(1,), tune_queries=200,
                             recall_target=1.0)
        index, spec = choose_vector_index(x, config)
        assert spec["type"] == "flat" and spec["recall_at_10"] == 1.0
        assert [t["factory"] for t in spec["trials"]] == ["Flat", "IVF256,Flat"]
        # a previous choice that no longer reaches the target is measured first, then everything else is
        previous = {"type": "ivf", "factory": "IVF256,Flat", "metric": "ip", "nlist": 256, "params": {"nprobe": 1},
                    "policy": config.index_policy(len(x)), "recall_at_10": 0.97}
        _, again = choose_vector_index(x, config, previous=previous)
        assert [t["factory"] for t in again["trials"]] == ["IVF256,Flat", "Flat", "IVF256,Flat"]
        assert again["type"] == "flat" and "kept" not in again


class _Encoder:
    """Stands in for the real encoder: the generation code only needs its fingerprint and dimension."""

    fingerprint = "test-vectors"
    dim = DIM


def test_manifest_records_the_choice_and_a_reopened_index_uses_it(tmp_path, vectors):
    n = 2_500
    docs = [Document(id=f"course:{i:05d}", kind="Course", title=f"课程{i}", description="",
                     chunks=(f"课程{i}",)) for i in range(n)]
    config = SMALL
    old_manifest = {"model": _Encoder.fingerprint, "tokenizer": Tokenizer().fingerprint, "dim": DIM,
                    "documents": [{"id": d.id, "hash": d.content_hash, "chunks": 1} for d in docs]}
    old = Generation({**old_manifest, "dense": {"type": "pca-hnsw"}}, vectors[:n], None, None)
    generation, report = next_generation(docs, old, _Encoder(), Tokenizer(), config)
    assert isinstance(report, IndexUpdate) and report.rebuilt_dense and report.encoded == 0
    assert "按实测选定" in report.index_choice and index_label(generation.manifest["dense"]) in report.index_choice

    directory = IndexDir(tmp_path / "index")
    with directory.locked():
        saved = directory.save(generation)
    on_disk = json.loads((tmp_path / "index" / saved.name / "manifest.json").read_text(encoding="utf-8"))
    dense = on_disk["dense"]
    assert dense["factory"] == generation.manifest["dense"]["factory"] and dense["recall_at_10"] >= 0.95
    assert {"p50_ms", "p95_ms", "cpu_p50_ms", "trials", "sample", "policy"} <= dense.keys()
    assert is_current(on_disk, docs, _Encoder(), Tokenizer(), config)
    assert not is_current(on_disk, docs, _Encoder(), Tokenizer(), replace(SMALL, recall_target=0.99))

    reopened = directory.load()
    assert dense["type"] in ("ivf", "hnsw") and reopened.dense is not None
    inner = faiss.downcast_index(reopened.dense)
    (knob, value), = dense["params"].items()
    assert (inner.nprobe if knob == "nprobe" else inner.hnsw.efSearch) == value  # the measured parameter is kept
    again, second = next_generation(docs, reopened, _Encoder(), Tokenizer(), config)
    assert not second.rebuilt_dense and again.manifest["dense"] == dense  # same rows, same policy: kept

    # an import removes an item: the rows change, so the index is rebuilt — the previous choice measured first
    # and kept, since it still reaches the target on the new rows
    fewer, third = next_generation(docs[1:], reopened, _Encoder(), Tokenizer(), config)
    rebuilt = fewer.manifest["dense"]
    assert third.rebuilt_dense and third.removed == 1 and rebuilt["kept"] is True
    assert index_label(rebuilt) == index_label(dense) and len(rebuilt["trials"]) == 1
    assert rebuilt["recall_at_10"] >= 0.95 and "沿用上次的选择并复测" in third.index_choice
    assert fewer.dense.ntotal == n - 1


def test_the_service_serves_the_measured_choice_and_a_reopened_service_keeps_it(built_store, tmp_path, ontology):
    """With the threshold below the fixture catalogue's size the service builds a measured index, says which,
    and a worker that opens the index from disk (``update=False``) serves the same choice, not a fresh one."""
    from recommender.search.service import SearchService
    from tests import searchkit

    config = IndexConfig(exact_max=2, approx="hnsw", hnsw_m=8, tune_queries=4)
    first = SearchService.open(built_store, index_dir=tmp_path / "index", ontology=ontology,
                               encoder=searchkit.encoder(), config=config)
    report = first.last_update
    manifest = json.loads((tmp_path / "index" / first.generation / "manifest.json").read_text(encoding="utf-8"))
    dense = manifest["dense"]
    assert dense["policy"] == config.index_policy(report.chunks) and dense["sample"]["vectors"] == report.chunks
    assert first.index_type == index_label(dense) and report.index_type == first.index_type
    assert dense["factory"] in {t["factory"] for t in dense["trials"]} and "按实测选定" in report.index_choice
    worker = SearchService.open(built_store, index_dir=tmp_path / "index", ontology=ontology,
                                encoder=searchkit.encoder(), config=config, update=False)
    assert worker.ready and not worker.stale and worker.index_type == first.index_type
    assert worker.search("数字政府", k=1, mode="dense")[0].id == first.search("数字政府", k=1, mode="dense")[0].id
    # another recall target is another policy: the index on disk is stale until rebuilt under it
    stricter = SearchService.open(built_store, index_dir=tmp_path / "index", ontology=ontology,
                                  encoder=searchkit.encoder(), config=replace(config, recall_target=0.99), update=False)
    assert stricter.stale
