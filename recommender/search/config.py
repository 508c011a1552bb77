"""Index and fusion parameters (:class:`IndexConfig`), each settable from the environment (``GANXUN_SEARCH_*``).

Exact inner-product search (``IndexFlatIP``) is used up to :attr:`IndexConfig.exact_max` vectors.  Above that the
index is *chosen by measurement* when it is built (:func:`recommender.search.vectors.choose_vector_index`): the
candidates :meth:`IndexConfig.candidates_for` lists — IVF-Flat over a grid of ``nprobe``, HNSW over a grid of
``efSearch``, optionally PCA-reduced HNSW with exact re-ranking, and exact search itself, which always qualifies —
are measured for recall@10 against exact search on held-out queries drawn from the catalogue's own vectors, and
the fastest one reaching :attr:`IndexConfig.recall_target` wins.  Vectors are unit length, so inner product is
cosine similarity.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from recommender.search.documents import MAX_CHUNK_CHARS
from recommender.search.errors import SearchError

__all__ = ["APPROX_KINDS", "FLAT_SPEC", "MODES", "Candidate", "IndexConfig"]

APPROX_KINDS: tuple[str, ...] = ("ivf", "hnsw", "pca-hnsw")
#: Retrieval modes of a search: both rankings fused (RRF), embeddings only, BM25 only.  Here, with the other
#: parameters, so the API validates against them without importing the service.
MODES: tuple[str, ...] = ("hybrid", "dense", "bm25")
#: Exact inner-product search: the structure below :attr:`IndexConfig.exact_max` and the reference above it.
FLAT_SPEC: dict[str, Any] = {"type": "flat", "factory": "Flat", "metric": "ip"}


@dataclass(frozen=True)
class Candidate:
    """One index structure to try: its build spec and the search parameter whose values are measured.

    ``spec`` holds the faiss factory string, the metric and build parameters (JSON-able, written into the
    manifest); ``knob`` is a faiss ``ParameterSpace`` name (``nprobe``, ``efSearch``) or empty when the
    structure has none (exact search), and ``grid`` its values in rising effort (and cost).
    """

    spec: dict[str, Any]
    knob: str = ""
    grid: tuple[int, ...] = ()


@dataclass(frozen=True)
class IndexConfig:
    """Index and fusion parameters; every one can be set from the environment (``GANXUN_SEARCH_*``).

    ``exact_max``: up to this many vectors search is exact (one query costs about 6 ms of CPU at 100k vectors),
    above it the index is chosen by measured recall.  ``approx``: the approximate kinds tried, comma
    separated (``ivf``, ``hnsw``, ``pca-hnsw``).  ``recall_target``: the recall@10 against exact search the
    chosen index must reach on ``tune_queries`` held-out queries (a quarter of them catalogue vectors as they
    are, the rest perturbed).  The default grids reach from cheap to thorough; a kind's grid stops at the
    first value that meets the target, since more effort only costs time.  On clustered vectors made from
    the catalogue's embeddings IVF-Flat wins by far (``bench/search_speed.py``, 1M vectors: IVF4096,Flat
    nprobe 2 recall@10 1.000 at p50 0.20 ms; PCA128+HNSW32, the former fixed default, 0.650; HNSW32 at
    efSearch 128 0.641).  ``threads`` (OpenMP, for building indexes) and ``search_threads`` (for
    one query at a time) are separate: faiss parallelises a search over queries, so a single query gains
    nothing from more threads, and on a busy 2-core host the idle OpenMP team made one exact search 30×
    slower.  RRF ``rrf_k`` = 5 and ``dense_weight`` = 3 were tuned on ``bench/queries.jsonl`` by
    ``bench/search_quality.py``.
    """

    exact_max: int = 50_000
    approx: str = "ivf,hnsw"
    recall_target: float = 0.95
    tune_queries: int = 1000
    hnsw_m: int = 32
    hnsw_ef_construction: int = 64
    hnsw_ef_grid: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    pca_dims: int = 128
    refine_factor: int = 8
    ivf_nlist: int = 0  # 0: 4·√n, rounded to a power of two
    ivf_nprobe_grid: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
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
        "recall_target": "GANXUN_SEARCH_RECALL_TARGET",
        "tune_queries": "GANXUN_SEARCH_TUNE_QUERIES",
        "hnsw_m": "GANXUN_SEARCH_HNSW_M",
        "hnsw_ef_construction": "GANXUN_SEARCH_HNSW_EF_CONSTRUCTION",
        "hnsw_ef_grid": "GANXUN_SEARCH_HNSW_EF_GRID",
        "pca_dims": "GANXUN_SEARCH_PCA_DIMS",
        "refine_factor": "GANXUN_SEARCH_REFINE_FACTOR",
        "ivf_nlist": "GANXUN_SEARCH_IVF_NLIST",
        "ivf_nprobe_grid": "GANXUN_SEARCH_IVF_NPROBE_GRID",
        "rrf_k": "GANXUN_SEARCH_RRF_K",
        "dense_weight": "GANXUN_SEARCH_DENSE_WEIGHT",
        "bm25_weight": "GANXUN_SEARCH_BM25_WEIGHT",
        "candidates": "GANXUN_SEARCH_CANDIDATES",
        "threads": "GANXUN_SEARCH_THREADS",
        "search_threads": "GANXUN_SEARCH_QUERY_THREADS",
        "max_chunk_chars": "GANXUN_SEARCH_CHUNK_CHARS",
    }

    def __post_init__(self) -> None:
        unknown = [kind for kind in self.approx_kinds if kind not in APPROX_KINDS]
        if unknown or not self.approx_kinds:
            raise SearchError(f"近似索引类型 approx『{self.approx}』无效，应为 {'、'.join(APPROX_KINDS)} 中的一个或多个（逗号分隔）")
        for name in ("exact_max", "tune_queries", "hnsw_m", "hnsw_ef_construction", "pca_dims", "refine_factor",
                     "rrf_k", "candidates", "threads", "search_threads", "max_chunk_chars"):
            if getattr(self, name) < 1:
                raise SearchError(f"索引参数 {name} 应为正整数，实际为 {getattr(self, name)}")
        for name in ("hnsw_ef_grid", "ivf_nprobe_grid"):
            grid = getattr(self, name)
            if not grid or any(v < 1 for v in grid) or list(grid) != sorted(set(grid)):
                raise SearchError(f"索引参数 {name} 应为递增的正整数列表，实际为 {list(grid)}")
        if not 0 < self.recall_target <= 1:
            raise SearchError(f"索引参数 recall_target 应在 (0, 1] 之间，实际为 {self.recall_target}")
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
                values[f.name] = (tuple(int(v) for v in raw.split(",") if v.strip()) if kind is tuple
                                  else kind(raw))
            except ValueError:
                wanted = {int: "整数", tuple: "逗号分隔的整数"}.get(kind, "数值")
                raise SearchError(f"环境变量 {var}={raw!r} 无效，应为{wanted}") from None
        return cls(**values)

    @property
    def approx_kinds(self) -> tuple[str, ...]:
        """The approximate kinds to try, in the order given."""
        return tuple(kind.strip() for kind in self.approx.split(",") if kind.strip())

    def ivf_lists(self, n: int) -> int:
        """IVF list count for ``n`` vectors: ``ivf_nlist`` or about 4·√n as a power of two (at least 16), and never
        more than the n/2 vectors k-means trains on (half can be held out)."""
        return min(self.ivf_nlist or 1 << max(4, round(np.log2(4 * np.sqrt(n)))), max(1, n // 2))

    def index_policy(self, n: int) -> dict[str, Any]:
        """What decides the index of ``n`` vectors (JSON-able, kept in the manifest): an index chosen under
        another policy is rebuilt; the measured choice itself is not part of it."""
        if n <= self.exact_max:
            return {"exact": True}
        return {"exact": False, "exact_max": self.exact_max, "approx": list(self.approx_kinds),
                "recall_target": self.recall_target, "tune_queries": self.tune_queries, "hnsw_m": self.hnsw_m,
                "hnsw_ef_construction": self.hnsw_ef_construction, "hnsw_ef_grid": list(self.hnsw_ef_grid),
                "pca_dims": self.pca_dims, "refine_factor": self.refine_factor, "ivf_nlist": self.ivf_lists(n),
                "ivf_nprobe_grid": list(self.ivf_nprobe_grid)}

    def candidates_for(self, n: int, dim: int) -> list[Candidate]:
        """The structures measured for ``n`` vectors of ``dim`` dimensions; exact search is always among them.

        ``pca-hnsw`` searches an HNSW graph over PCA projections in L2 (for unit vectors L2 order is cosine
        order; inner product would not survive the centring PCA does) and re-ranks ``refine_factor × k``
        candidates with the full vectors; it is skipped for vectors of ``pca_dims`` dimensions or fewer.
        """
        out = [Candidate(FLAT_SPEC)]
        for kind in self.approx_kinds:
            if kind == "ivf":
                nlist = self.ivf_lists(n)
                out.append(Candidate({"type": "ivf", "factory": f"IVF{nlist},Flat", "metric": "ip", "nlist": nlist},
                                     "nprobe", tuple(v for v in self.ivf_nprobe_grid if v <= nlist)))
            elif kind == "hnsw":
                out.append(Candidate({"type": "hnsw", "factory": f"HNSW{self.hnsw_m}", "metric": "ip",
                                      "efConstruction": self.hnsw_ef_construction}, "efSearch", self.hnsw_ef_grid))
            elif dim > self.pca_dims:
                out.append(Candidate({"type": "pca-hnsw", "factory": f"PCA{self.pca_dims},HNSW{self.hnsw_m},Refine(Flat)",
                                      "metric": "l2", "efConstruction": self.hnsw_ef_construction,
                                      "params": {"k_factor_rf": self.refine_factor}},
                                     "efSearch", self.hnsw_ef_grid))
        return out

