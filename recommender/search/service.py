"""Semantic and keyword search over the catalogue: a faiss index, BM25 over jieba tokens, and their fusion.

Why both: the encoder finds a course from a paraphrase that shares no words with it, while BM25 is
precise on names, numbers and rare terms the encoder blurs.  Reciprocal rank fusion (Cormack et al.,
SIGIR 2009) combines the two rankings without calibrating their scores against each other.

The index lives beside the store, under ``Settings.home/index/``, one *generation* folder at a time:
``manifest.json`` (document ids, content hashes, chunk counts, model fingerprint), ``vectors.npy`` (one
unit row per chunk), ``dense.faiss`` (approximate indexes only) and ``bm25/``.  ``CURRENT`` names the live
generation and is replaced atomically, so an interrupted update leaves the previous index usable.  An
update re-encodes only documents whose text hash changed; the faiss structure is rebuilt from the stored
vectors, because HNSW cannot delete and encoding, not indexing, is the expensive step.

Exact inner-product search (``IndexFlatIP``) is used up to :attr:`IndexConfig.exact_max` vectors; above
that an approximate index (HNSW by default, IVF-Flat on request) whose recall against exact search is
measured by ``bench/search_speed.py``.  Vectors are unit length, so inner product is cosine similarity.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from kg.config import Settings
from kg.ontology import Ontology, load_ontology
from kg.store.base import Store
from recommender.search.documents import (
    MAX_CHUNK_CHARS,
    TOPIC_CLASS,
    Document,
    load_documents,
    searchable_classes,
)
from recommender.search.embedding import encode_passages, encode_queries, load_encoder, resolve_model_source

if TYPE_CHECKING:  # pragma: no cover
    import faiss
    from sentence_transformers import SentenceTransformer

__all__ = [
    "APPROX_KINDS",
    "PUBLISHED_STATUS",
    "Hit",
    "IndexConfig",
    "IndexUpdate",
    "InvalidFilter",
    "SearchError",
    "SearchFilters",
    "SearchService",
    "Tokenizer",
    "build_vector_index",
    "configure_vector_index",
    "omp_threads",
    "similarities",
    "published_status",
    "rrf_fuse",
]

log = logging.getLogger(__name__)

#: The lifecycle status of items users may see; checked against the ontology's allowed statuses on use.
PUBLISHED_STATUS = "已发布"
#: Bump when the on-disk layout changes; an index of another format is rebuilt (re-encoding everything).
INDEX_FORMAT = 1
Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[str, ...] = ("hybrid", "dense", "bm25")
APPROX_KINDS: tuple[str, ...] = ("hnsw", "pca-hnsw", "ivf")


class SearchError(RuntimeError):
    """A search or index operation could not be done; the message is for people (Chinese)."""


class InvalidFilter(SearchError, ValueError):
    """A search filter names an unknown value; the message names the field and what was expected."""


# ───────────────────────────────────────────── configuration ─────────────────────────────────────────────


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


def build_vector_index(vectors: np.ndarray, config: IndexConfig, progress: bool = False) -> faiss.Index:
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
    step = 20_000
    from tqdm import tqdm

    for start in tqdm(range(0, n, step), desc="构建向量索引", unit="批", disable=not progress or n <= step):
        index.add(vectors[start : start + step])
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
    faiss = _faiss()
    return 1.0 - distances / 2.0 if index.metric_type == faiss.METRIC_L2 else distances


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


# ───────────────────────────────────────────── tokenising ─────────────────────────────────────────────

_TOKEN_OK = re.compile(r"[\w\u4e00-\u9fff]", re.UNICODE)
#: Function words that carry no topic; single characters and a few frequent particles.
_STOPWORDS = frozenset(
    "的 了 和 与 及 或 在 是 为 对 把 被 从 向 以 等 中 上 下 之 其 这 那 也 都 就 而 并 又 由 于 将 让 使 "
    "如何 怎么 怎样 什么 哪些 一个 一些 有关 关于 我们 我 你 他 她 它 请 想 要 能 会 可以 进行 相关".split()
)


class Tokenizer:
    """jieba in search mode with the topic scheme's labels as whole words, minus punctuation and stopwords.

    A private ``jieba.Tokenizer`` keeps the added words out of jieba's global dictionary.  ``fingerprint``
    changes when the added words do, so a stored BM25 index made with other words is rebuilt.
    """

    def __init__(self, words: Iterable[str] = ()) -> None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self._words = tuple(sorted({w.strip() for w in words if w and len(w.strip()) > 1}))
        self._jieba = jieba.Tokenizer()
        for word in self._words:
            self._jieba.add_word(word)
        self.fingerprint = hashlib.sha256(
            ("\n".join(self._words) + f"|jieba {jieba.__version__}").encode("utf-8")
        ).hexdigest()[:16]

    def __call__(self, text: str) -> list[str]:
        tokens = (t.strip().lower() for t in self._jieba.lcut_for_search(text or ""))
        return [t for t in tokens if t and _TOKEN_OK.search(t) and t not in _STOPWORDS]

    @classmethod
    def for_topics(cls, topic_props: Iterable[Mapping[str, Any]]) -> Tokenizer:
        """A tokenizer that knows every topic label and synonym as a word."""
        words: list[str] = []
        for props in topic_props:
            words.append(str(props.get("name") or ""))
            words.extend(str(a) for a in props.get("altLabels") or ())
        return cls(w for word in words for w in re.split(r"[、，,“”\"《》（）()\s]+", word))


# ───────────────────────────────────────────── filters and hits ─────────────────────────────────────────


def published_status(ontology: Ontology) -> str:
    """The status of published items, checked against the statuses the ontology allows."""
    allowed = {v for spec in ontology.classes.values() if "status" in spec.fields
               for v in (spec.fields["status"].allowed or ())}
    if PUBLISHED_STATUS not in allowed:
        raise SearchError(f"本体的状态取值中没有『{PUBLISHED_STATUS}』，请检查 ontology/shapes.ttl 的 gx:status")
    return PUBLISHED_STATUS


@dataclass(frozen=True)
class SearchFilters:
    """What may be returned.  Empty tuples mean "any"; ``statuses=None`` means published items only.

    ``topics`` match an item tagged with the topic or with any narrower topic (``BROADER`` edges, any
    depth).  An hours range excludes items that have no hours (textbooks, cases).
    """

    kinds: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    institutions: tuple[str, ...] = ()
    delivery_modes: tuple[str, ...] = ()
    case_only: bool = False
    min_hours: float | None = None
    max_hours: float | None = None
    statuses: tuple[str, ...] | None = None

    @property
    def any_status(self) -> bool:
        return self.statuses is not None and not self.statuses


@dataclass(frozen=True)
class Hit:
    """One result: ``score`` is the fused (or single-method) score; ranks are 1-based, None when absent."""

    id: str
    kind: str
    score: float
    dense_rank: int | None = None
    bm25_rank: int | None = None


@dataclass
class IndexUpdate:
    """What an update did: documents encoded anew, reused, removed, and the resulting index."""

    documents: int = 0
    chunks: int = 0
    encoded: int = 0
    reused: int = 0
    removed: int = 0
    rebuilt_dense: bool = False
    rebuilt_bm25: bool = False
    index_type: str = ""
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return self.encoded > 0 or self.removed > 0 or self.rebuilt_dense or self.rebuilt_bm25


def rrf_fuse(
    rankings: Sequence[Sequence[str]], k: int = 60, weights: Sequence[float] | None = None
) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: ``Σ wᵢ / (k + rankᵢ(d))`` over the rankings that contain ``d``, best first.

    Ties keep the order of first appearance (rankings earlier in the list win), so results are stable.

    >>> rrf_fuse([["a", "b"], ["b", "c"]], k=1)
    [('b', 0.8333333333333333), ('a', 0.5), ('c', 0.3333333333333333)]
    """
    weights = weights or [1.0] * len(rankings)
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    order = {item: i for i, item in enumerate(dict.fromkeys(x for r in rankings for x in r))}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))


# ───────────────────────────────────────────── persistence ─────────────────────────────────────────────


def _model_fingerprint(source: str) -> str:
    """Identify the encoder: its name or folder plus the folder's build record or config, if any."""
    digest = hashlib.sha256(source.encode("utf-8"))
    folder = Path(source).expanduser()
    for name in ("ganxun-build.json", "config.json", "modules.json"):
        if (folder / name).is_file():
            digest.update((folder / name).read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class _Generation:
    """One consistent on-disk index, loaded in memory."""

    manifest: dict[str, Any]
    vectors: np.ndarray
    dense: Any
    bm25: Any


class _IndexDir:
    """The ``index/`` folder: generations, the ``CURRENT`` pointer and the lock that guards them."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @contextmanager
    def locked(self, exclusive: bool) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def current(self) -> Path | None:
        pointer = self.root / "CURRENT"
        if not pointer.is_file():
            return None
        path = self.root / pointer.read_text(encoding="utf-8").strip()
        return path if (path / "manifest.json").is_file() else None

    def load(self) -> _Generation | None:
        path = self.current()
        if path is None:
            return None
        try:
            manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
            if manifest.get("format") != INDEX_FORMAT:
                return None
            vectors = np.load(path / "vectors.npy")
            dense = _faiss().read_index(str(path / "dense.faiss")) if (path / "dense.faiss").is_file() else None
            import bm25s

            bm25 = bm25s.BM25.load(str(path / "bm25"), show_progress=False) if (path / "bm25").is_dir() else None
        except (OSError, ValueError, RuntimeError) as exc:
            log.warning("索引 %s 无法读取（%s），将重建", path, exc)
            return None
        return _Generation(manifest, vectors, dense, bm25)

    def save(self, generation: _Generation) -> Path:
        """Write a new generation folder, then point ``CURRENT`` at it and remove older ones."""
        name = f"gen-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 1_000_000}"
        path = self.root / name
        tmp = self.root / f".{name}.tmp"
        tmp.mkdir(parents=True)
        np.save(tmp / "vectors.npy", generation.vectors)
        if generation.dense is not None and not isinstance(generation.dense, _faiss().IndexFlat):
            _faiss().write_index(generation.dense, str(tmp / "dense.faiss"))
        if generation.bm25 is not None:
            generation.bm25.save(str(tmp / "bm25"), show_progress=False)
        (tmp / "manifest.json").write_text(json.dumps(generation.manifest, ensure_ascii=False), encoding="utf-8")
        tmp.rename(path)
        pointer_tmp = self.root / ".CURRENT.tmp"
        pointer_tmp.write_text(name, encoding="utf-8")
        os.replace(pointer_tmp, self.root / "CURRENT")
        for old in self.root.iterdir():
            if old.is_dir() and old.name != name and (old.name.startswith("gen-") or old.name.endswith(".tmp")):
                shutil.rmtree(old, ignore_errors=True)
        return path


# ───────────────────────────────────────────── the service ─────────────────────────────────────────────


@dataclass
class _Catalogue:
    """Documents in index order, the arrays that map chunk rows to documents, and postings for filters."""

    docs: list[Document]
    chunk_counts: np.ndarray
    starts: np.ndarray = field(init=False)
    row_doc: np.ndarray = field(init=False)
    position: dict[str, int] = field(init=False)
    postings: dict[str, dict[Any, np.ndarray]] = field(init=False)
    hours: np.ndarray = field(init=False)
    is_case: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.starts = np.concatenate([[0], np.cumsum(self.chunk_counts)[:-1]]).astype(np.int64)
        self.row_doc = np.repeat(np.arange(len(self.docs)), self.chunk_counts)
        self.position = {d.id: i for i, d in enumerate(self.docs)}
        lists: dict[str, dict[Any, list[int]]] = {name: {} for name in ("kind", "status", "institution", "delivery", "topic")}
        for i, doc in enumerate(self.docs):
            for name, values in (("kind", [doc.kind]), ("status", [doc.status]), ("institution", [doc.institution]),
                                 ("delivery", [doc.delivery_mode]), ("topic", doc.topics)):
                for value in values:
                    lists[name].setdefault(value, []).append(i)
        self.postings = {name: {v: np.asarray(ps, dtype=np.int64) for v, ps in by.items()} for name, by in lists.items()}
        self.hours = np.array([np.nan if d.hours is None else d.hours for d in self.docs], dtype=np.float64)
        self.is_case = np.array([d.is_case for d in self.docs], dtype=bool)

    def having(self, name: str, values: Iterable[Any]) -> np.ndarray:
        """Mask of documents whose field ``name`` takes any of ``values``."""
        mask = np.zeros(len(self.docs), dtype=bool)
        for value in values:
            mask[self.postings[name].get(value, np.zeros(0, dtype=np.int64))] = True
        return mask

    def rows_where(self, mask: np.ndarray) -> np.ndarray:
        """Chunk rows of the documents selected by ``mask``."""
        return np.flatnonzero(mask[self.row_doc]).astype(np.int64)


class SearchService:
    """Hybrid search, similar items and query scoring over one store's catalogue.

    Open it with :meth:`open`, which brings the persisted index up to date with the store (re-encoding
    only changed texts).  The encoder is loaded on first need, so an up-to-date index opens quickly and
    BM25-only searches never load it.
    """

    def __init__(
        self,
        ontology: Ontology,
        config: IndexConfig,
        index_dir: Path,
        model: str | None = None,
        encoder: SentenceTransformer | None = None,
    ) -> None:
        self.ontology = ontology
        self.config = config
        self._dir = _IndexDir(index_dir)
        self._model_source = resolve_model_source(model)
        self._model_fp = _model_fingerprint(self._model_source)
        self._encoder = encoder
        self._published = published_status(ontology)
        self._kinds = tuple(searchable_classes(ontology))
        self._catalogue = _Catalogue([], np.zeros(0, dtype=np.int64))
        self._vectors = np.zeros((0, 0), dtype=np.float32)
        self._dense: Any = None
        self._bm25: Any = None
        self._narrower: dict[str, set[str]] = {}
        self._topic_props: dict[str, dict[str, Any]] = {}
        self._tokenizer: Tokenizer | None = None
        self.last_update: IndexUpdate | None = None
        # per instance, so a dropped service (the API reopens one after each import) takes its cache along
        self._encode_query_cached = lru_cache(maxsize=512)(self._encode_query_uncached)

    # ── opening and updating ──
    @classmethod
    def open(
        cls,
        store: Store,
        settings: Settings | None = None,
        *,
        ontology: Ontology | None = None,
        config: IndexConfig | None = None,
        model: str | None = None,
        encoder: SentenceTransformer | None = None,
        index_dir: Path | None = None,
        update: bool = True,
        rebuild: bool = False,
        progress: bool = False,
    ) -> SearchService:
        """Load the index under ``settings.home/index`` (or ``index_dir``) and sync it with ``store``.

        ``rebuild=True`` encodes everything again; the report of the update is kept in ``last_update``.
        With ``update=False`` the stored index is used as it is (documents deleted since are skipped,
        new ones are missing) — for read-only workers that leave updating to ``python -m recommender index``.
        """
        settings = settings or Settings.from_env()
        service = cls(
            ontology or load_ontology(),
            config or IndexConfig.from_env(),
            index_dir or settings.home / "index",
            model=model,
            encoder=encoder,
        )
        if update or rebuild:
            service.update(store, rebuild=rebuild, progress=progress)
        else:
            service._load_only(store)
        return service

    @property
    def encoder(self) -> SentenceTransformer:
        if self._encoder is None:
            self._encoder = load_encoder(self._model_source)
        return self._encoder

    def _load_topics(self, store: Store) -> None:
        broader = self.ontology.relationship_types["broader"]
        children: dict[str, set[str]] = {}
        for edge in store.edges(type=broader):
            children.setdefault(edge.dst, set()).add(edge.src)
        self._topic_props = {n.id: dict(n.props) for n in store.nodes(TOPIC_CLASS)}
        self._narrower = {}
        for topic in self._topic_props:
            seen, frontier = {topic}, [topic]
            while frontier:
                for child in children.get(frontier.pop(), ()):
                    if child not in seen:
                        seen.add(child)
                        frontier.append(child)
            self._narrower[topic] = seen
        self._tokenizer = Tokenizer.for_topics(self._topic_props.values())

    def _load_only(self, store: Store) -> None:
        self._load_topics(store)
        with self._dir.locked(exclusive=False):
            generation = self._dir.load()
        if generation is None:
            raise SearchError("尚未建立检索索引，请先运行 `python -m recommender index`")
        by_id = {d.id: d for d in load_documents(store, self.ontology, self.config.max_chunk_chars)}
        self._install(generation, by_id)

    def update(self, store: Store, *, rebuild: bool = False, progress: bool = False) -> IndexUpdate:
        """Bring the index in line with ``store``: encode new or changed texts, drop deleted items.

        ``rebuild=True`` ignores the stored index and encodes everything again.
        """
        started = time.perf_counter()
        self._load_topics(store)
        docs = load_documents(store, self.ontology, self.config.max_chunk_chars)
        with self._dir.locked(exclusive=True):
            old = None if rebuild else self._dir.load()
            generation, report = self._next_generation(docs, old, progress)
            if report.changed or old is None:
                self._dir.save(generation)
        self._install(generation, {d.id: d for d in docs})
        report.index_type = self.index_type
        report.seconds = time.perf_counter() - started
        self.last_update = report
        return report

    def _reusable(self, old: _Generation | None) -> dict[str, np.ndarray]:
        """Stored vectors by ``(id, hash)`` key, if they were made by the same model."""
        if old is None or old.manifest.get("model") != self._model_fp:
            return {}
        reusable: dict[str, np.ndarray] = {}
        row = 0
        for entry in old.manifest["documents"]:
            reusable[f"{entry['id']}\x00{entry['hash']}"] = old.vectors[row : row + entry["chunks"]]
            row += entry["chunks"]
        return reusable

    def _next_generation(
        self, docs: list[Document], old: _Generation | None, progress: bool
    ) -> tuple[_Generation, IndexUpdate]:
        reusable = self._reusable(old)
        keys = [f"{d.id}\x00{d.content_hash}" for d in docs]
        todo = [d for d, key in zip(docs, keys) if key not in reusable]
        fresh = self._encode_documents(todo, progress)
        blocks = [reusable[key] if key in reusable else fresh[d.id] for d, key in zip(docs, keys)]
        dim = blocks[0].shape[1] if blocks else (old.vectors.shape[1] if old is not None and old.vectors.ndim == 2 else 0)
        vectors = np.ascontiguousarray(np.vstack(blocks) if blocks else np.zeros((0, dim)), dtype=np.float32)

        old_ids = {e["id"] for e in old.manifest["documents"]} if old is not None else set()
        report = IndexUpdate(documents=len(docs), chunks=len(vectors), encoded=len(todo),
                             reused=len(docs) - len(todo), removed=len(old_ids - {d.id for d in docs}))
        spec = self.config.vector_index_spec(*vectors.shape)
        same_rows = old is not None and not todo and [
            f"{e['id']}\x00{e['hash']}" for e in old.manifest["documents"]] == keys
        if same_rows and old.manifest.get("dense") == spec and (old.dense is not None or spec["type"] == "flat"):
            dense = old.dense
        else:
            dense = build_vector_index(vectors, self.config, progress=progress) if len(vectors) else None
            report.rebuilt_dense = True
        assert self._tokenizer is not None
        if same_rows and old.manifest.get("tokenizer") == self._tokenizer.fingerprint and old.bm25 is not None:
            bm25 = old.bm25
        else:
            bm25 = self._build_bm25(docs)
            report.rebuilt_bm25 = True
        manifest = {
            "format": INDEX_FORMAT,
            "model": self._model_fp,
            "model_source": self._model_source,
            "dim": int(vectors.shape[1]) if vectors.ndim == 2 else 0,
            "dense": spec,
            "tokenizer": self._tokenizer.fingerprint,
            "documents": [{"id": d.id, "hash": d.content_hash, "chunks": len(d.chunks)} for d in docs],
            "config": asdict(self.config),
        }
        return _Generation(manifest, vectors, dense, bm25), report

    def _encode_documents(self, docs: list[Document], progress: bool) -> dict[str, np.ndarray]:
        """Encode the chunks of ``docs`` in batches (with a progress bar when asked)."""
        if not docs:
            return {}
        from tqdm import tqdm

        chunks = [c for d in docs for c in d.chunks]
        batch = 64
        parts: list[np.ndarray] = []
        with tqdm(total=len(chunks), desc="编码文本", unit="段", disable=not progress) as bar:
            for start in range(0, len(chunks), batch):
                parts.append(encode_passages(self.encoder, chunks[start : start + batch]))
                bar.update(len(parts[-1]))
        vectors = np.vstack(parts)
        out: dict[str, np.ndarray] = {}
        row = 0
        for doc in docs:
            out[doc.id] = vectors[row : row + len(doc.chunks)]
            row += len(doc.chunks)
        return out

    def _build_bm25(self, docs: list[Document]) -> Any:
        import bm25s

        assert self._tokenizer is not None
        retriever = bm25s.BM25()
        corpus = [self._tokenizer(d.text) or [""] for d in docs]
        if corpus:
            retriever.index(corpus, show_progress=False)
        return retriever

    def _install(self, generation: _Generation, by_id: Mapping[str, Document]) -> None:
        """Make ``generation`` live, with current metadata from the store for its documents."""
        entries = generation.manifest["documents"]
        docs, counts, keep_rows = [], [], []
        row = 0
        for entry in entries:
            doc = by_id.get(entry["id"])
            if doc is not None:
                docs.append(doc)
                counts.append(entry["chunks"])
                keep_rows.append(np.arange(row, row + entry["chunks"]))
            row += entry["chunks"]
        if len(docs) != len(entries):  # read-only open over a store that has lost items since indexing
            generation = self._without_missing(generation, docs, np.concatenate(keep_rows) if keep_rows else [])
        self._catalogue = _Catalogue(docs, np.asarray(counts, dtype=np.int64))
        self._vectors = generation.vectors
        self._dense = generation.dense
        if self._dense is None and len(self._vectors):
            self._dense = build_vector_index(self._vectors, self.config)
        elif self._dense is not None:
            configure_vector_index(self._dense, self.config)
        self._bm25 = generation.bm25

    def _without_missing(self, generation: _Generation, docs: list[Document], rows: Any) -> _Generation:
        vectors = np.ascontiguousarray(generation.vectors[np.asarray(rows, dtype=np.int64)])
        return _Generation(generation.manifest, vectors, build_vector_index(vectors, self.config) if len(vectors) else None,
                           self._build_bm25(docs))

    # ── what is indexed ──
    @property
    def documents(self) -> list[Document]:
        """Indexed documents, sorted by id."""
        return list(self._catalogue.docs)

    def document(self, item_id: str) -> Document | None:
        pos = self._catalogue.position.get(item_id)
        return None if pos is None else self._catalogue.docs[pos]

    @property
    def index_dir(self) -> Path:
        """The folder that holds the index (``Settings.home/index`` by default)."""
        return self._dir.root

    @property
    def model_fingerprint(self) -> str:
        """Identifies the encoder, so caches of its vectors can tell when they are stale."""
        return self._model_fp

    @property
    def index_type(self) -> str:
        """The vector index in use, as a faiss factory string (``Flat`` is exact search)."""
        return self.config.vector_index_spec(*self._vectors.shape)["factory"] if len(self._vectors) else "none"

    @property
    def topic_props(self) -> dict[str, dict[str, Any]]:
        """Topic id → properties (name, altLabels, definition …) as read from the store."""
        return self._topic_props

    def narrower_topics(self, topic_id: str) -> set[str]:
        """The topic and every topic below it (``BROADER`` edges, any depth)."""
        return set(self._narrower.get(topic_id, {topic_id}))

    @property
    def tokenizer(self) -> Tokenizer:
        assert self._tokenizer is not None
        return self._tokenizer

    def document_vector(self, item_id: str) -> np.ndarray | None:
        """The item's unit vector: the normalised mean of its chunk vectors (None when not indexed)."""
        pos = self._catalogue.position.get(item_id)
        if pos is None:
            return None
        return self._doc_vectors(np.array([pos]))[0]

    def _doc_vectors(self, positions: np.ndarray) -> np.ndarray:
        cat = self._catalogue
        out = np.zeros((len(positions), self._vectors.shape[1]), dtype=np.float32)
        for i, pos in enumerate(positions):
            block = self._vectors[cat.starts[pos] : cat.starts[pos] + cat.chunk_counts[pos]]
            mean = block.mean(axis=0)
            out[i] = mean / max(float(np.linalg.norm(mean)), 1e-12)
        return out

    def document_vectors(self, item_ids: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
        """Unit vectors of the given (or all) indexed items, with the ids in row order."""
        cat = self._catalogue
        ids = [i for i in (item_ids if item_ids is not None else [d.id for d in cat.docs]) if i in cat.position]
        return ids, self._doc_vectors(np.array([cat.position[i] for i in ids], dtype=np.int64))

    # ── filters ──
    def _check_choice(self, field_name: str, label: str, values: Iterable[str], allowed: Iterable[str]) -> None:
        allowed = list(allowed)
        for value in values:
            if value not in allowed:
                shown = "、".join(allowed[:12]) + ("…" if len(allowed) > 12 else "")
                raise InvalidFilter(f"筛选条件 {field_name}（{label}）的值『{value}』无效，应为：{shown}")

    def _field_allowed(self, field_name: str) -> list[str]:
        values: list[str] = []
        for kind in self._kinds:
            spec = self.ontology.classes[kind].fields.get(field_name)
            allowed = spec.allowed if spec is not None and spec.allowed else ()
            values.extend(v for v in allowed if v not in values)
        return values

    def allowed_mask(self, filters: SearchFilters | None) -> np.ndarray:
        """Boolean mask over indexed documents: True where the item passes ``filters``."""
        f = filters or SearchFilters()
        self._check_choice("kinds", "资源类型", f.kinds, self._kinds)
        if f.delivery_modes:
            self._check_choice("delivery_modes", "授课方式", f.delivery_modes, self._field_allowed("deliveryMode"))
        statuses = (self._published,) if f.statuses is None else f.statuses
        self._check_choice("statuses", "状态", statuses, self._field_allowed("status"))
        for topic in f.topics:
            if topic not in self._topic_props:
                raise InvalidFilter(f"筛选条件 topics（主题）的值『{topic}』不是已知主题编号，应形如 topic:rural-revitalization")
        for bound_name, bound in (("min_hours", f.min_hours), ("max_hours", f.max_hours)):
            if bound is not None and bound < 0:
                raise InvalidFilter(f"筛选条件 {bound_name}（学时）应为不小于 0 的数，实际为 {bound}")
        if f.min_hours is not None and f.max_hours is not None and f.min_hours > f.max_hours:
            raise InvalidFilter(f"筛选条件学时范围无效：min_hours={f.min_hours} 大于 max_hours={f.max_hours}")
        cat = self._catalogue
        mask = np.ones(len(cat.docs), dtype=bool)
        if f.kinds:
            mask &= cat.having("kind", f.kinds)
        if not f.any_status:
            mask &= cat.having("status", statuses)
        if f.topics:
            mask &= cat.having("topic", set().union(*(self.narrower_topics(t) for t in f.topics)))
        if f.institutions:
            mask &= cat.having("institution", f.institutions)
        if f.delivery_modes:
            mask &= cat.having("delivery", f.delivery_modes)
        if f.case_only:
            mask &= cat.is_case
        if f.min_hours is not None:
            mask &= cat.hours >= f.min_hours  # NaN (no hours) compares False
        if f.max_hours is not None:
            mask &= cat.hours <= f.max_hours
        return mask

    # ── retrieval ──
    def encode_query(self, text: str) -> np.ndarray:
        """The unit query vector of ``text`` (E5 query prompt), cached for repeated queries."""
        return self._encode_query_cached(self._clean_query(text)).copy()

    def _encode_query_uncached(self, text: str) -> np.ndarray:
        return encode_queries(self.encoder, [text])[0]

    @staticmethod
    def _clean_query(text: str) -> str:
        text = (text or "").strip()
        if not text:
            raise SearchError("检索词不能为空")
        return text

    def dense_ranking(self, query_vector: np.ndarray, mask: np.ndarray, n: int) -> list[tuple[int, float]]:
        """Top ``n`` (document position, cosine) among allowed documents; a document scores its best chunk."""
        cat = self._catalogue
        if not len(self._vectors) or not mask.any():
            return []
        q = np.ascontiguousarray(query_vector, dtype=np.float32).reshape(1, -1)
        restricted = not mask.all()
        rows = cat.rows_where(mask) if restricted else None
        fetch = min(len(self._vectors), max(n * 2, n + 16))
        if rows is not None and not self._is_flat and len(rows) <= self.config.exact_max:
            # few allowed vectors: exact scores beat a graph walk that must skip most of its nodes
            scores = self._vectors[rows] @ q[0]
            top = np.argsort(-scores, kind="stable")[:fetch]
            found = list(zip(rows[top].tolist(), scores[top].tolist()))
        else:
            params = None
            allowed = None
            if rows is not None and self._is_flat:
                params = _faiss().SearchParameters(sel=_faiss().IDSelectorBatch(rows))
            elif rows is not None:  # approximate index, many allowed: over-fetch, then filter
                allowed = np.zeros(len(self._vectors), dtype=bool)
                allowed[rows] = True
                fetch = min(len(self._vectors), fetch * -(-len(self._vectors) // len(rows)), 4096)
            with omp_threads(self.config.search_threads):
                distances, labels = self._dense.search(q, fetch, params=params)
            scores = similarities(self._dense, distances[0])
            found = [(int(r), float(s)) for r, s in zip(labels[0], scores)
                     if r >= 0 and (allowed is None or allowed[r])]
        best: dict[int, float] = {}
        for row, score in found:
            doc = int(cat.row_doc[row])
            if doc not in best:
                best[doc] = score
        return list(best.items())[:n]

    @property
    def _is_flat(self) -> bool:
        return isinstance(self._dense, _faiss().IndexFlat)

    def bm25_ranking(self, query: str, mask: np.ndarray, n: int) -> list[tuple[int, float]]:
        """Top ``n`` (document position, BM25 score > 0) among allowed documents."""
        tokens = self.tokenizer(query)
        if not tokens or self._bm25 is None or not len(self._catalogue.docs):
            return []
        scores = np.asarray(self._bm25.get_scores(tokens), dtype=np.float64)
        scores = np.where(mask, scores, 0.0)
        top = np.argsort(-scores, kind="stable")[:n]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]

    def search(self, query: str, filters: SearchFilters | None = None, k: int = 10, mode: Mode = "hybrid") -> list[Hit]:
        """The best ``k`` items for ``query`` that pass ``filters`` (published only by default).

        ``mode`` picks hybrid (RRF of both), ``dense`` or ``bm25``; benchmarks compare the three.
        """
        query = self._clean_query(query)
        if mode not in MODES:
            raise SearchError(f"检索方式『{mode}』无效，应为 {'、'.join(MODES)}")
        if not 1 <= k <= 1000:
            raise SearchError(f"返回条数 k 应在 1 到 1000 之间，实际为 {k}")
        mask = self.allowed_mask(filters)
        n = max(self.config.candidates, k)
        dense = self.dense_ranking(self.encode_query(query), mask, n) if mode != "bm25" else []
        lexical = self.bm25_ranking(query, mask, n) if mode != "dense" else []
        dense_rank = {pos: r for r, (pos, _) in enumerate(dense, start=1)}
        bm25_rank = {pos: r for r, (pos, _) in enumerate(lexical, start=1)}
        if mode == "hybrid":
            fused = rrf_fuse(
                [[str(p) for p, _ in dense], [str(p) for p, _ in lexical]],
                k=self.config.rrf_k,
                weights=[self.config.dense_weight, self.config.bm25_weight],
            )
            ranked = [(int(p), s) for p, s in fused]
        else:
            ranked = dense or lexical
        docs = self._catalogue.docs
        return [
            Hit(docs[pos].id, docs[pos].kind, float(score), dense_rank.get(pos), bm25_rank.get(pos))
            for pos, score in ranked[:k]
        ]

    def similar_to(self, item_id: str, k: int = 10, filters: SearchFilters | None = None) -> list[Hit]:
        """Items most similar in meaning to an indexed item (itself excluded), by cosine of item vectors."""
        vector = self.document_vector(item_id)
        if vector is None:
            raise SearchError(f"条目『{item_id}』不在检索索引中")
        mask = self.allowed_mask(filters)
        mask[self._catalogue.position[item_id]] = False
        ranked = self.dense_ranking(vector, mask, k)
        docs = self._catalogue.docs
        return [Hit(docs[p].id, docs[p].kind, s, dense_rank=r) for r, (p, s) in enumerate(ranked, start=1)]

    def score_ids(self, query_vector: np.ndarray, ids: Iterable[str]) -> dict[str, float]:
        """Cosine of ``query_vector`` with each given indexed item (best chunk); unknown ids are left out.

        For blending a cadre's free-text intent into a ranking computed elsewhere.
        """
        cat = self._catalogue
        q = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        out: dict[str, float] = {}
        for item_id in ids:
            pos = cat.position.get(item_id)
            if pos is not None:
                block = self._vectors[cat.starts[pos] : cat.starts[pos] + cat.chunk_counts[pos]]
                out[item_id] = float((block @ q).max())
        return out
