"""The dense half of search: faiss indexes over unit vectors — choose by measured recall, build, configure, read.

Row ``i`` of the vector matrix is faiss id ``i``; mapping rows to documents is the caller's business
(:class:`recommender.search.table.DocumentTable`).  An index is described by a *spec* (a JSON-able dict: faiss
factory string, metric, build parameters, and ``params`` — the search parameters, set through faiss's
``ParameterSpace``); :func:`choose_vector_index` makes the spec of a new index by measuring candidates,
:func:`build_vector_index` rebuilds one from its spec (exact indexes are not stored, only their spec).  faiss is
imported lazily, so modules that only read metadata do not load it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from recommender.search.config import FLAT_SPEC, Candidate, IndexConfig

if TYPE_CHECKING:  # pragma: no cover
    import faiss

__all__ = ["QUERY_NOISE", "build_vector_index", "choose_vector_index", "configure_vector_index", "describe_choice",
           "index_label", "is_flat", "measure_latency", "omp_threads", "read_index", "recall_at_k", "similarities",
           "tuning_queries", "write_index"]

#: recall@k measured at this k (the first page of results).
RECALL_K = 10
#: Norms of the Gaussian noise added to catalogue vectors to make held-out queries (before renormalising:
#: cosine to the source about 0.97, 0.89, 0.71) — a real query is near a passage but not on it.
QUERY_NOISE: tuple[float, ...] = (0.25, 0.5, 1.0)
#: Every this-many-th held-out query is a catalogue vector as it is ("more like this"); the others are perturbed.
AS_IS_EVERY = 4
#: Queries timed one at a time per configuration (recall uses all of them, in one batched search); exact
#: search above ``exact_max`` costs tens of milliseconds a query, so it is timed on fewer.
TIMED_QUERIES = 200
TIMED_EXACT = 40
_WARMUP = 20
#: The parts of a spec that say how to build the index (the rest are measurements and search parameters).
BUILD_KEYS = ("type", "factory", "metric", "nlist", "efConstruction")
#: IVF k-means: training vectors per list and iterations — enough for stable centroids, and it keeps a
#: 1M-vector build to about a minute on 2 cores.  PCA learns from at most this many vectors.
IVF_TRAIN_PER_LIST = 64
IVF_NITER = 10
PCA_TRAIN = 100_000

#: ``note(message)``: a Chinese line on what the chooser is measuring (shown as job progress).
Note = Callable[[str], None]


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


# ───────────────────────────── building from a spec ─────────────────────────────
def build_vector_index(vectors: np.ndarray, spec: Mapping[str, Any], threads: int = 2,
                       holdout: np.ndarray | None = None) -> faiss.Index:
    """The faiss index ``spec`` describes, over unit ``vectors`` (row ``i`` gets id ``i``), search parameters set.

    Trained parts learn from a sample that leaves out the ``holdout`` rows (the chooser's queries): IVF
    k-means from :data:`IVF_TRAIN_PER_LIST` vectors per list, PCA from :data:`PCA_TRAIN`.
    """
    faiss = _faiss()
    faiss.omp_set_num_threads(threads)
    n, dim = vectors.shape
    metric = faiss.METRIC_L2 if spec["metric"] == "l2" else faiss.METRIC_INNER_PRODUCT
    index = faiss.index_factory(dim, spec["factory"], metric)
    hnsw = _hnsw_of(index)
    if hnsw is not None and "efConstruction" in spec:
        hnsw.hnsw.efConstruction = spec["efConstruction"]
    if not index.is_trained:
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None:
            ivf.cp.niter = IVF_NITER
        size = ivf.nlist * IVF_TRAIN_PER_LIST if ivf is not None else PCA_TRAIN
        rows = np.random.default_rng(0).permutation(n)
        if holdout is not None and len(holdout) < n:
            rows = rows[~np.isin(rows, holdout)]
        index.train(vectors[np.sort(rows[:size])])
    index.add(vectors)
    configure_vector_index(index, spec.get("params", {}))
    return index


def configure_vector_index(index: faiss.Index, params: Mapping[str, float]) -> None:
    """Set search parameters (``nprobe``, ``efSearch``, ``k_factor_rf`` …) by their faiss ``ParameterSpace`` names."""
    space = _faiss().ParameterSpace()
    for name, value in params.items():
        space.set_index_parameter(index, name, float(value))


# ───────────────────────────── measuring ─────────────────────────────
def tuning_queries(vectors: np.ndarray, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(queries, rows)``: ``count`` held-out queries made from distinct sampled rows of ``vectors``.

    One in :data:`AS_IS_EVERY` is a sampled vector as it is (a "more like this" look-up); the rest get Gaussian
    noise of the :data:`QUERY_NOISE` norms in turn and are renormalised — queries near the catalogue but
    not on it, so a neighbourhood is measured, not an identity.
    """
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(vectors), size=min(count, len(vectors)), replace=False))
    queries = np.array(vectors[rows], dtype=np.float32)
    noisy = np.arange(len(rows)) % AS_IS_EVERY != 0
    scales = np.resize(np.asarray(QUERY_NOISE, dtype=np.float32), int(noisy.sum()))
    noise = rng.standard_normal((int(noisy.sum()), vectors.shape[1]), dtype=np.float32)
    queries[noisy] += noise * (scales / np.sqrt(vectors.shape[1]))[:, None]
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return queries, rows


def recall_at_k(vectors: np.ndarray, queries: np.ndarray, exact_scores: np.ndarray, found: np.ndarray,
                k: int = RECALL_K) -> float:
    """Share of returned ids whose true similarity reaches the k-th exact similarity (ties allowed).

    As faiss ``contrib/evaluation`` does for range ties: a vector as similar as the k-th true neighbour is
    as good an answer as it, whichever of them exact search happened to list.
    """
    kth = exact_scores[:, k - 1]
    hits = 0
    for q, bound, ids in zip(queries, kth, found[:, :k]):
        ids = ids[ids >= 0]
        hits += int(np.sum(vectors[ids] @ q >= bound - 1e-5))
    return hits / (len(queries) * k)


def measure_latency(index: faiss.Index, queries: np.ndarray, k: int = RECALL_K, threads: int = 1,
                    warmup: int = _WARMUP) -> dict[str, float]:
    """Milliseconds of one-query searches on ``threads`` threads: wall p50/p95 and the thread's CPU-time p50.

    The search runs on the calling thread, so its CPU time is the query's own cost; on a shared host the
    wall clock also counts time spent waiting for a core.
    """
    wall, cpu = [], []
    with omp_threads(threads):
        for q in queries[:warmup]:
            index.search(q[None, :], k)
        for q in queries:
            started, started_cpu = time.perf_counter(), time.thread_time()
            index.search(q[None, :], k)
            cpu.append((time.thread_time() - started_cpu) * 1000)
            wall.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(float(np.percentile(wall, 50)), 4), "p95_ms": round(float(np.percentile(wall, 95)), 4),
            "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 4)}


# ───────────────────────────── choosing ─────────────────────────────
def choose_vector_index(vectors: np.ndarray, config: IndexConfig, note: Note | None = None,
                        previous: Mapping[str, Any] | None = None) -> tuple[faiss.Index | None, dict[str, Any]]:
    """The index for unit ``vectors`` and its spec: exact up to ``config.exact_max``, else chosen by measurement.

    Above the threshold every candidate of :meth:`IndexConfig.candidates_for` is built over all the vectors
    (training leaves the queries out) and searched with each value of its grid; recall@10 is measured
    against exact search on :func:`tuning_queries`, and the one-query CPU time (single thread, as the service
    searches) decides among those reaching ``config.recall_target`` — exact search always reaches it, so
    there is always a choice.  A grid stops at its first value that reaches the target, and at a value
    already slower than the best so far (more effort only costs more).  The spec records the choice, its
    measured recall and latency, the sample and every trial, for the manifest.

    ``previous`` is the spec of the index being replaced (rows added or removed by an import): when it was
    measured under the same policy, that structure is built and measured first, and kept (``"kept": true``)
    if it still reaches the target — a few changed items do not make another structure faster, and the full
    comparison costs minutes at 100k vectors.
    """
    n, dim = vectors.shape
    policy = config.index_policy(n)
    if policy["exact"]:
        index = build_vector_index(vectors, FLAT_SPEC, config.threads) if n else None
        return index, {**FLAT_SPEC, "params": {}, "policy": policy, "exact_max": config.exact_max}
    say = note or (lambda message: None)
    queries, rows = tuning_queries(vectors, min(config.tune_queries, n // 2))  # half at most: the rest trains
    timed = queries[:TIMED_QUERIES]
    say(f"选择向量索引：精确检索作参照（{n:,} 条向量，{len(queries):,} 条留出查询）")
    exact = build_vector_index(vectors, FLAT_SPEC, config.threads)
    with omp_threads(config.threads):
        exact_scores, _ = exact.search(queries, RECALL_K)
    trials: list[dict[str, Any]] = []
    best: tuple[faiss.Index, dict[str, Any]] | None = None

    def trial(index: faiss.Index, candidate: Candidate, params: dict[str, Any], build_s: float) -> dict[str, Any]:
        """Measure one configuration, record it, and keep it if it is the fastest reaching the target."""
        nonlocal best
        configure_vector_index(index, params)
        if candidate.spec["type"] == "flat":
            recall, sample = 1.0, timed[:TIMED_EXACT]
        else:
            with omp_threads(config.threads):
                _, found = index.search(queries, RECALL_K)
            recall, sample = recall_at_k(vectors, queries, exact_scores, found), timed
        result = {"factory": candidate.spec["factory"], "params": params, "recall_at_10": round(recall, 4),
                  **measure_latency(index, sample, threads=config.search_threads), "build_s": build_s}
        trials.append(result)
        if recall >= config.recall_target and (best is None or result["cpu_p50_ms"] < best[1]["cpu_p50_ms"]):
            best = (index, {**candidate.spec, **result})
        return result

    candidates = config.candidates_for(n, dim)
    if previous is not None and previous.get("policy") == policy and previous.get("type") != "flat":
        kept = Candidate({key: previous[key] for key in BUILD_KEYS if key in previous})
        say(f"选择向量索引：复测上次选定的 {index_label(previous)}")
        started = time.perf_counter()
        index = build_vector_index(vectors, kept.spec, config.threads, holdout=rows)
        trial(index, kept, dict(previous.get("params", {})), round(time.perf_counter() - started, 1))
        if best is not None:
            candidates = []
            best[1]["kept"] = True
        del index
    for candidate in candidates:
        if candidate.spec["type"] == "flat":
            trial(exact, candidate, {}, 0.0)
            continue
        say(f"选择向量索引：构建并测量 {candidate.spec['factory']}")
        started = time.perf_counter()
        index = build_vector_index(vectors, candidate.spec, config.threads, holdout=rows)
        build_s = round(time.perf_counter() - started, 1)
        for value in candidate.grid:
            result = trial(index, candidate, {**candidate.spec.get("params", {}), candidate.knob: value}, build_s)
            if result["recall_at_10"] >= config.recall_target or result["cpu_p50_ms"] > best[1]["cpu_p50_ms"]:
                break
        del index
    assert best is not None  # exact search is always measured (or the kept index reached the target)
    index, spec = best
    spec.update(policy=policy, target=config.recall_target, trials=trials,
                sample={"queries": len(queries), "as_is": -(-len(rows) // AS_IS_EVERY),
                        "noise": list(QUERY_NOISE), "timed": len(timed), "vectors": n, "k": RECALL_K,
                        "threads": config.search_threads})
    return index, spec


def index_label(spec: Mapping[str, Any]) -> str:
    """The index as people read it: the faiss factory string and its search parameters (``IVF1024,Flat nprobe=2``)."""
    params = " ".join(f"{name}={value}" for name, value in spec.get("params", {}).items())
    return f"{spec['factory']} {params}".strip()


def describe_choice(spec: Mapping[str, Any]) -> str:
    """One Chinese line on the index and why: exact below the threshold, or the measured figures of the choice."""
    if "recall_at_10" not in spec:
        bound = spec.get("exact_max")
        return f"{index_label(spec)}（精确检索：向量数不超过阈值 {bound:,}）" if bound else index_label(spec)
    sample = spec["sample"]
    how = "沿用上次的选择并复测" if spec.get("kept") else "按实测选定"
    return (f"{index_label(spec)}（{how}：recall@10 {spec['recall_at_10']:.3f}，目标 ≥ {spec['target']:.2f}；"
            f"单条检索 p50 {spec['p50_ms']:.3f} ms、p95 {spec['p95_ms']:.3f} ms、CPU p50 {spec['cpu_p50_ms']:.3f} ms；"
            f"样本：{sample['queries']:,} 条留出查询（{sample['as_is']:,} 条目录向量原样，其余加噪）、"
            f"{sample['vectors']:,} 条向量，比较了 {len(spec['trials'])} 种配置）")


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
