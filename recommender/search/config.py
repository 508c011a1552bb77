"""Index and fusion parameters (:class:`IndexConfig`), each settable from the environment (``GANXUN_SEARCH_*``).

Exact inner-product search (``IndexFlatIP``) is used up to :attr:`IndexConfig.exact_max` vectors; above that an
approximate index (PCA-HNSW by default, plain HNSW or IVF-Flat on request) whose recall against exact search is
measured by ``bench/search_speed.py``.  Vectors are unit length, so inner product is cosine similarity.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from recommender.search.documents import MAX_CHUNK_CHARS
from recommender.search.errors import SearchError

__all__ = ["APPROX_KINDS", "MODES", "IndexConfig"]

APPROX_KINDS: tuple[str, ...] = ("hnsw", "pca-hnsw", "ivf")
#: Retrieval modes of a search: both rankings fused (RRF), embeddings only, BM25 only.  Here, with the other
#: parameters, so the API validates against them without importing the service.
MODES: tuple[str, ...] = ("hybrid", "dense", "bm25")


@dataclass(frozen=True)
class IndexConfig:
    """Index and fusion parameters; every one can be set from the environment (``GANXUN_SEARCH_*``).

    ``exact_max``: above this many vectors the approximate index is used (exact search costs about 1 ms
    at 10k vectors and 14 ms at 100k on the 2-core hosts).  ``threads`` (OpenMP, for building indexes) and
    ``search_threads`` (for one query at a time) are separate: faiss parallelises a search over queries,
    so a single query gains nothing from more threads, and on a busy 2-core host the idle OpenMP team made
    one exact search 30× slower.

    The approximate default is PCA128 → HNSW32 (efConstruction 64, efSearch 256) with exact re-ranking of
    8 × k candidates: on catalogue-like synthetic vectors it gave recall@10 0.965 at p50 1.6 ms for 100k
    vectors, against 0.973 at 2.5 ms for plain HNSW32, and builds faster.  At 1M vectors neither reaches
    recall 0.95 within 2 ms (``bench/search_speed.py`` prints the whole trade-off).  RRF ``rrf_k`` = 5 and
    ``dense_weight`` = 3 were tuned on ``bench/queries.jsonl`` by ``bench/search_quality.py``.
    """

    exact_max: int = 50_000
    approx: str = "pca-hnsw"
    hnsw_m: int = 32
    hnsw_ef_construction: int = 64
    hnsw_ef_search: int = 256
    pca_dims: int = 128
    refine_factor: int = 8
    ivf_nlist: int = 0  # 0: 4·√n, rounded to a power of two
    ivf_nprobe: int = 64
    rrf_k: int = 5
    dense_weight: float = 3.0
    bm25_weight: float = 1.0
    candidates: int = 100
    threads: int = 2
    search_threads: int = 1
    max_chunk_chars: int = MAX_CHUNK_CHARS

    _ENV = {
        "exact_max": "GANXUN_SEARCH_EXACT_MAX",
        "approx": "GANXUN_SEARCH_APPROX",
        "hnsw_m": "GANXUN_SEARCH_HNSW_M",
        "hnsw_ef_construction": "GANXUN_SEARCH_HNSW_EF_CONSTRUCTION",
        "hnsw_ef_search": "GANXUN_SEARCH_HNSW_EF_SEARCH",
        "pca_dims": "GANXUN_SEARCH_PCA_DIMS",
        "refine_factor": "GANXUN_SEARCH_REFINE_FACTOR",
        "ivf_nlist": "GANXUN_SEARCH_IVF_NLIST",
        "ivf_nprobe": "GANXUN_SEARCH_IVF_NPROBE",
        "rrf_k": "GANXUN_SEARCH_RRF_K",
        "dense_weight": "GANXUN_SEARCH_DENSE_WEIGHT",
        "bm25_weight": "GANXUN_SEARCH_BM25_WEIGHT",
        "candidates": "GANXUN_SEARCH_CANDIDATES",
        "threads": "GANXUN_SEARCH_THREADS",
        "search_threads": "GANXUN_SEARCH_QUERY_THREADS",
        "max_chunk_chars": "GANXUN_SEARCH_CHUNK_CHARS",
    }

    def __post_init__(self) -> None:
        if self.approx not in APPROX_KINDS:
            raise SearchError(f"近似索引类型 approx『{self.approx}』无效，应为 {'、'.join(APPROX_KINDS)}")
        for name in ("exact_max", "hnsw_m", "hnsw_ef_construction", "hnsw_ef_search", "pca_dims", "refine_factor",
                     "ivf_nprobe", "rrf_k",
                     "candidates", "threads", "search_threads", "max_chunk_chars"):
            if getattr(self, name) < 1:
                raise SearchError(f"索引参数 {name} 应为正整数，实际为 {getattr(self, name)}")
        if self.ivf_nlist < 0 or self.dense_weight < 0 or self.bm25_weight < 0:
            raise SearchError("索引参数 ivf_nlist、dense_weight、bm25_weight 不能为负数")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IndexConfig:
        """Defaults overridden by ``GANXUN_SEARCH_*`` variables; a malformed value is a clear error."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = cls._ENV.get(f.name)
            raw = env.get(var, "").strip() if var else ""
            if not raw:
                continue
            kind = type(getattr(cls, f.name))
            try:
                values[f.name] = kind(raw)
            except ValueError:
                raise SearchError(f"环境变量 {var}={raw!r} 无效，应为{'整数' if kind is int else '数值'}") from None
        return cls(**values)

    def vector_index_spec(self, n: int, dim: int | None = None) -> dict[str, Any]:
        """The faiss index ``n`` vectors get: a factory string, its metric and build parameters.

        ``pca-hnsw`` searches an HNSW graph over PCA projections in L2 (for unit vectors L2 order is cosine
        order; inner product would not survive the centring PCA does) and re-ranks ``refine_factor × k``
        candidates with the full vectors; vectors of ``pca_dims`` dimensions or fewer get plain HNSW.
        """
        if n <= self.exact_max:
            return {"type": "flat", "factory": "Flat", "metric": "ip"}
        if self.approx == "hnsw" or (self.approx == "pca-hnsw" and dim is not None and dim <= self.pca_dims):
            return {"type": "hnsw", "factory": f"HNSW{self.hnsw_m}", "metric": "ip",
                    "efConstruction": self.hnsw_ef_construction}
        if self.approx == "pca-hnsw":
            return {"type": "pca-hnsw", "factory": f"PCA{self.pca_dims},HNSW{self.hnsw_m},Refine(Flat)",
                    "metric": "l2", "efConstruction": self.hnsw_ef_construction}
        nlist = self.ivf_nlist or 1 << max(4, round(np.log2(4 * np.sqrt(n))))
        return {"type": "ivf", "factory": f"IVF{nlist},Flat", "metric": "ip", "nlist": int(nlist)}

