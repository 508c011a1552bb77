"""The dense half of search: faiss indexes over unit vectors — build, configure for search, read scores.

Row ``i`` of the vector matrix is faiss id ``i``; mapping rows to documents is the caller's business
(:class:`recommender.search.table.DocumentTable`).  faiss is imported lazily, so modules that only read
metadata do not load it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from recommender.search.config import IndexConfig

if TYPE_CHECKING:  # pragma: no cover
    import faiss

__all__ = ["build_vector_index", "configure_vector_index", "is_flat", "omp_threads", "read_index", "similarities",
           "write_index"]


def _faiss() -> Any:
    import faiss  # imported lazily: the module is importable for metadata-only use without faiss

    return faiss


def _hnsw_of(index: faiss.Index) -> Any:
    """The HNSW index inside ``index`` (through Refine and PreTransform wrappers), or None."""
    faiss = _faiss()
    while index is not None:
        index = faiss.downcast_index(index)
        if isinstance(index, faiss.IndexHNSW):
            return index
        index = getattr(index, "base_index", None) or getattr(index, "index", None)
    return None


def build_vector_index(vectors: np.ndarray, config: IndexConfig) -> faiss.Index:
    """A faiss index over unit ``vectors``: exact inner product up to ``config.exact_max``, else approximate.

    Row ``i`` of ``vectors`` gets faiss id ``i``.  Trained parts learn from a sample: PCA from 100k
    vectors; IVF k-means (10 iterations) from 64 vectors per list — enough for stable centroids, and it
    keeps a 1M-vector build to minutes on 2 cores.
    """
    faiss = _faiss()
    faiss.omp_set_num_threads(config.threads)
    n, dim = vectors.shape
    spec = config.vector_index_spec(n, dim)
    metric = faiss.METRIC_L2 if spec["metric"] == "l2" else faiss.METRIC_INNER_PRODUCT
    index = faiss.index_factory(dim, spec["factory"], metric)
    hnsw = _hnsw_of(index)
    if hnsw is not None:
        hnsw.hnsw.efConstruction = spec["efConstruction"]
    if not index.is_trained:
        if spec["type"] == "ivf":
            faiss.downcast_index(index).cp.niter = 10
        size = spec["nlist"] * 64 if spec["type"] == "ivf" else 100_000
        index.train(vectors[np.random.default_rng(0).permutation(n)[:size]])
    index.add(vectors)
    configure_vector_index(index, config)
    return index


def configure_vector_index(index: faiss.Index, config: IndexConfig) -> None:
    """Apply the search-time parameters of ``config`` (efSearch, nprobe, re-rank factor) to ``index``."""
    faiss = _faiss()
    space = faiss.ParameterSpace()
    if _hnsw_of(index) is not None:
        space.set_index_parameter(index, "efSearch", config.hnsw_ef_search)
    if isinstance(faiss.downcast_index(index), faiss.IndexRefine):
        space.set_index_parameter(index, "k_factor_rf", config.refine_factor)
    if isinstance(faiss.downcast_index(index), faiss.IndexIVF):
        space.set_index_parameter(index, "nprobe", config.ivf_nprobe)


def similarities(index: faiss.Index, distances: np.ndarray) -> np.ndarray:
    """faiss distances as cosine similarities (L2 indexes return squared distances of unit vectors)."""
    return 1.0 - distances / 2.0 if index.metric_type == _faiss().METRIC_L2 else distances


@contextmanager
def omp_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` OpenMP threads in faiss, then restore the previous setting."""
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def is_flat(index: faiss.Index | None) -> bool:
    """True for an exact index (rebuilt from the vectors on load rather than stored)."""
    return index is not None and isinstance(index, _faiss().IndexFlat)


def read_index(path: str) -> faiss.Index:
    """An index written by :func:`write_index`."""
    return _faiss().read_index(path)


def write_index(index: faiss.Index, path: str) -> None:
    """Persist an approximate index (building one costs minutes at 1M vectors; exact ones are rebuilt)."""
    _faiss().write_index(index, path)


def search_index(
    index: faiss.Index, query: np.ndarray, k: int, rows: np.ndarray | None, threads: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` (cosine, row) of one query; ``rows`` restricts an exact index to those rows (faiss selector)."""
    faiss = _faiss()
    params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(rows)) if rows is not None else None
    with omp_threads(threads):
        distances, labels = index.search(query.reshape(1, -1), k, params=params)
    return similarities(index, distances[0]), labels[0]
