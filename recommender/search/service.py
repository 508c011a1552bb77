"""The search service: hybrid search, similar items and vector look-ups over one persisted index generation.

Nothing heavy happens in a request.  A worker opens the service at start (:meth:`SearchService.open` with
``update=False``, then :meth:`SearchService.warm`): that loads the process's one encoder and the generation on
disk, and says through :attr:`SearchService.stale` whether the store has moved on since; re-encoding is left to a
job that calls :meth:`SearchService.update` with a progress callback.  A query first compares the generation
named on disk with the one in memory (one small read, at most every :data:`CHECK_INTERVAL` seconds per service)
and, when another worker's job has written a newer one, installs it — so all workers serve a finished update
within a second without re-encoding anything.  Query vectors are cached per process
(:func:`recommender.search.embedding.query_vector`), so they outlive a service reopened after a graph change.

The topic tree (topic filters reach narrower topics), the topic labels the tokenizer keeps whole, and the
published status come from the catalogue read model (:class:`recommender.catalogue.snapshot.CatalogueSnapshot`);
documents — with the textbook and case descriptions the snapshot does not hold — are read from the store by
:mod:`recommender.search.documents`.  The parts live in their own modules: :mod:`.config` (parameters),
:mod:`.vectors` (faiss), :mod:`.lexical` (tokens, BM25, fusion), :mod:`.persist` (generations on disk),
:mod:`.indexing` (the next generation), :mod:`.table` and :mod:`.filters` (documents, filters, hits).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import monotonic, perf_counter
from typing import Any, Literal

import numpy as np

from kg.config import Settings
from kg.ontology import Ontology
from kg.store.base import Store
from recommender.catalogue.snapshot import CatalogueSnapshot, load_snapshot
from recommender.search.config import MODES, IndexConfig
from recommender.search.documents import Document, load_documents
from recommender.search.embedding import Encoder, get_encoder, query_vector
from recommender.search.errors import IndexNotReady, InvalidFilter, SearchError
from recommender.search.filters import FilterRules, Hit, SearchFilters
from recommender.search.indexing import IndexUpdate, Progress, is_current, next_generation
from recommender.search.lexical import Tokenizer, rrf_fuse
from recommender.search.persist import Generation, IndexDir
from recommender.search.table import DocumentTable
from recommender.search.vectors import build_vector_index, configure_vector_index, index_label, is_flat, search_index

__all__ = ["CHECK_INTERVAL", "MODES", "Hit", "IndexNotReady", "InvalidFilter", "SearchError", "SearchFilters",
           "SearchService"]

Mode = Literal["hybrid", "dense", "bm25"]
#: Seconds between two looks at the index's ``CURRENT`` file in one service (as ``api.graph`` checks the graph
#: version): one recommendation asks the index several times, and another worker's update is seen within a second.
CHECK_INTERVAL = 0.25
#: Id sequences whose document positions one generation keeps (one per catalogue snapshot in use).
_POSITION_SETS = 4


@dataclass(frozen=True)
class _Live:
    """The installed generation; replaced as a whole, so a query that took it sees one consistent index."""

    generation: str | None
    table: DocumentTable
    vectors: np.ndarray
    dense: Any
    bm25: Any
    ready: bool
    stale: bool
    spec: dict[str, Any] = field(default_factory=dict)  # the manifest's vector index spec (the measured choice)
    _positions: dict[int, tuple[Sequence[str], np.ndarray, np.ndarray]] = field(default_factory=dict, compare=False)

    def positions(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(row, index)``: each id's document position (-1 when not indexed), and each document's index in
        ``ids`` (-1 when absent).  Kept per id sequence — a snapshot's ``course_ids`` — so a ranker's many
        look-ups map its course mask with numpy, not a loop over the catalogue."""
        entry = self._positions.get(id(ids))
        if entry is None or entry[0] is not ids:
            position = self.table.position
            row = np.fromiter((position.get(i, -1) for i in ids), dtype=np.int64, count=len(ids))
            index = np.full(len(self.table.docs), -1, dtype=np.int64)
            found = np.flatnonzero(row >= 0)
            index[row[found]] = found
            if len(self._positions) >= _POSITION_SETS:
                self._positions.clear()
            entry = self._positions[id(ids)] = (ids, row, index)  # the entry holds ``ids``, so its id stays unique
        return entry[1], entry[2]


_NOTHING = _Live(None, DocumentTable.empty(), np.zeros((0, 0), dtype=np.float32), None, None, False, True)


class SearchService:
    """Hybrid search, similar items and query scoring over one store's catalogue.

    Open it with :meth:`open`.  It is safe to share between threads: queries read one installed generation,
    which a refresh or an update replaces atomically.  :attr:`check_interval` is how often (seconds) it looks
    for another process's newer generation.
    """

    check_interval: float = CHECK_INTERVAL

    def __init__(self, ontology: Ontology, config: IndexConfig, index_dir: Path, snapshot: CatalogueSnapshot,
                 encoder: Encoder) -> None:
        self.ontology = ontology
        self.config = config
        self.snapshot = snapshot
        self.encoder = encoder
        self._dir = IndexDir(index_dir)
        self._topic_props = dict(zip(snapshot.topic_ids, snapshot.topic_props))
        self._tokenizer = Tokenizer.for_topics(snapshot.topic_props)
        self._rules = FilterRules.of(ontology, snapshot.vocab.published, snapshot.topic_ids, self.narrower_topics)
        self._live = _NOTHING
        self._store: Store | None = None
        self._refreshing = threading.Lock()
        self._checked = float("-inf")
        self.last_update: IndexUpdate | None = None

    # ── opening, warming, updating ──
    @classmethod
    def open(
        cls,
        store: Store,
        settings: Settings | None = None,
        *,
        snapshot: CatalogueSnapshot | None = None,
        ontology: Ontology | None = None,
        config: IndexConfig | None = None,
        encoder: Encoder | None = None,
        index_dir: Path | None = None,
        update: bool = True,
        rebuild: bool = False,
        progress: Progress | None = None,
    ) -> SearchService:
        """The service over ``store`` with the index under ``settings.home/index`` (or ``index_dir``).

        ``update=True`` (the CLI, jobs, tests) brings the index in line with the store first, re-encoding only
        changed texts; ``update=False`` (API workers) serves the generation on disk as it is — :attr:`stale`
        says whether the store has changed since, :attr:`ready` whether there is a usable index at all.
        ``rebuild=True`` encodes everything again.  ``snapshot`` is the catalogue read model of ``store``
        (loaded here when not given); ``encoder`` defaults to the process's one (:func:`get_encoder`).
        """
        settings = settings or Settings.from_env()
        if snapshot is None:
            snapshot = load_snapshot(store, ontology)
        service = cls(ontology or snapshot.ontology, config or IndexConfig.from_env(),
                      index_dir or settings.home / "index", snapshot, encoder or get_encoder())
        if update or rebuild:
            service.update(store, rebuild=rebuild, progress=progress)
        else:
            service._store = store
            service._install(service._dir.load(), service._documents(store))
        return service

    def warm(self) -> dict[str, Any]:
        """Run one query through the encoder and the index, so the first request pays nothing; say what is loaded.

        For a worker-start hook and a readiness endpoint: the answer is JSON-able.
        """
        self.encode_query("干部教育培训")
        live = self._current()
        return {"就绪": live.ready, "待更新": live.stale, "索引版本": live.generation, "条目数": len(live.table.position),
                "向量数": int(len(live.vectors)), "向量索引": self.index_type, "编码器": self.encoder.fingerprint}

    def update(self, store: Store, *, rebuild: bool = False, progress: Progress | None = None) -> IndexUpdate:
        """Bring the index in line with ``store``: encode new or changed texts, drop deleted items.

        Holds the writers' lock throughout, so a second update (another worker's job) waits and then finds
        nothing to encode.  ``progress(done, total, message)`` is called as documents are encoded and a last
        time with ``done == total`` once the new generation is live.  ``rebuild=True`` encodes everything.
        """
        started = perf_counter()
        self._store = store
        docs = self._documents(store)
        with self._dir.locked():
            old = None if rebuild else self._dir.load()
            generation, report = next_generation(docs, old, self.encoder, self._tokenizer, self.config, progress)
            if report.changed or old is None:
                generation = self._dir.save(generation)
            else:
                generation = Generation(generation.manifest, generation.vectors, generation.dense, generation.bm25,
                                        old.name)
        self._install(generation, docs)
        report.index_type = self.index_type
        report.seconds = perf_counter() - started
        self.last_update = report
        if progress is not None:
            progress(len(docs), len(docs), f"完成：{len(docs)} 个条目，新编码 {report.encoded} 个，复用 {report.reused} 个")
        return report

    def refresh(self, force: bool = False) -> bool:
        """Install the generation on disk if another process (or thread) has written a newer one.

        The check reads the small ``CURRENT`` file, at most every :attr:`check_interval` seconds unless
        ``force``; only a changed name loads anything.  While one thread loads, the others go on with the
        installed generation.  True when a new generation was installed.
        """
        now = monotonic()
        if self._store is None or (not force and now - self._checked < self.check_interval):
            return False
        self._checked = now
        if self._dir.current_name() == self._live.generation:
            return False
        if not self._refreshing.acquire(blocking=False):
            return False
        try:
            if self._dir.current_name() == self._live.generation:
                return False
            self._install(self._dir.load(), self._documents(self._store))
            return True
        finally:
            self._refreshing.release()

    def _documents(self, store: Store) -> list[Document]:
        return load_documents(store, self.ontology, self.config.max_chunk_chars)

    def _install(self, generation: Generation | None, docs: list[Document]) -> None:
        """Make ``generation`` live with the store's current metadata; one of another encoder is not usable."""
        if generation is None or generation.manifest.get("model") != self.encoder.fingerprint:
            self._live = _Live(generation.name if generation else None, DocumentTable.empty(), _NOTHING.vectors,
                               None, None, False, True)
            return
        table = DocumentTable.from_manifest(generation.manifest["documents"], {d.id: d for d in docs})
        dense, spec = generation.dense, generation.manifest["dense"]
        if dense is None and len(generation.vectors):
            dense = build_vector_index(generation.vectors, spec, self.config.threads)  # exact: not stored
        elif dense is not None:
            configure_vector_index(dense, spec.get("params", {}))
        stale = not is_current(generation.manifest, docs, self.encoder, self._tokenizer, self.config)
        self._live = _Live(generation.name, table, generation.vectors, dense, generation.bm25, True, stale, spec)
        self._checked = monotonic()  # CURRENT was just read (or written) to get this generation

    def _current(self) -> _Live:
        self.refresh()
        return self._live

    def _ready(self) -> _Live:
        live = self._current()
        if not live.ready:
            raise IndexNotReady("检索索引尚未建立或由其他编码模型建立：请在管理页运行“重建索引”任务，"
                                "或运行 `python -m recommender index`")
        return live

    # ── what is indexed ──
    @property
    def ready(self) -> bool:
        """True when a generation made by this service's encoder is installed."""
        return self._current().ready

    @property
    def stale(self) -> bool:
        """True when the store's searchable texts (or the encoder, tokenizer, index type) differ from the index."""
        return self._current().stale

    @property
    def generation(self) -> str | None:
        """The installed generation's folder name (changes with every saved update)."""
        return self._current().generation

    @property
    def documents(self) -> list[Document]:
        """Indexed documents still in the store, in index order (sorted by id)."""
        live = self._current()
        return [live.table.docs[p] for p in live.table.position.values()]

    def document(self, item_id: str) -> Document | None:
        live = self._current()
        pos = live.table.position.get(item_id)
        return None if pos is None else live.table.docs[pos]

    def ids_where(self, mask: np.ndarray) -> list[str]:
        """Ids of the documents a mask from :meth:`allowed_mask` selects."""
        docs = self._matching(mask).table.docs
        return [docs[p].id for p in np.flatnonzero(mask)]

    def _matching(self, mask: np.ndarray) -> _Live:
        """The installed generation, checked to be the one ``mask`` (from :meth:`allowed_mask`) was made on."""
        live = self._live
        if len(mask) != len(live.table.docs):
            raise SearchError("检索索引刚刚更新，筛选结果已失效，请重试")
        return live

    @property
    def index_dir(self) -> Path:
        """The folder that holds the index (``Settings.home/index`` by default)."""
        return self._dir.root

    @property
    def model_fingerprint(self) -> str:
        """Identifies the encoder, so caches of its vectors can tell when they are stale."""
        return self.encoder.fingerprint

    @property
    def index_type(self) -> str:
        """The vector index in use: faiss factory string and search parameters (``Flat`` is exact search)."""
        return index_label(self._live.spec) if len(self._live.vectors) else "none"

    @property
    def topic_props(self) -> dict[str, dict[str, Any]]:
        """Topic id → properties (name, altLabels, definition …), from the catalogue snapshot."""
        return self._topic_props

    def narrower_topics(self, topic_id: str) -> set[str]:
        """The topic and every topic below it (``BROADER`` edges, any depth); an unknown id is just itself."""
        return self.snapshot.narrower_closure(topic_id) if topic_id in self.snapshot.topic_pos else {topic_id}

    @property
    def tokenizer(self) -> Tokenizer:
        return self._tokenizer

    def document_vector(self, item_id: str) -> np.ndarray | None:
        """The item's unit vector: the normalised mean of its chunk vectors (None when not indexed)."""
        live = self._current()
        pos = live.table.position.get(item_id)
        return None if pos is None else live.table.mean_vectors(live.vectors, [pos])[0]

    def document_vectors(self, item_ids: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
        """Unit vectors of the given (or all) indexed items, with the ids in row order."""
        live = self._current()
        position = live.table.position
        ids = [i for i in (item_ids if item_ids is not None else list(position)) if i in position]
        return ids, live.table.mean_vectors(live.vectors, [position[i] for i in ids])

    # ── filters ──
    def allowed_mask(self, filters: SearchFilters | None) -> np.ndarray:
        """Boolean mask over indexed documents: True where the item passes ``filters``."""
        return self._rules.mask(self._current().table, filters)

    # ── retrieval ──
    def encode_query(self, text: str) -> np.ndarray:
        """The unit query vector of ``text`` (E5 query prompt), cached per process for repeated queries."""
        return query_vector(self.encoder, self._clean_query(text)).copy()

    @staticmethod
    def _clean_query(text: str) -> str:
        text = (text or "").strip()
        if not text:
            raise SearchError("检索词不能为空")
        return text

    def _dense_ranking(self, live: _Live, query_vector: np.ndarray, mask: np.ndarray, n: int) -> list[tuple[int, float]]:
        """Top ``n`` (document position, cosine) among allowed documents; a document scores its best chunk."""
        table, vectors = live.table, live.vectors
        if not len(vectors) or not mask.any():
            return []
        q = np.ascontiguousarray(query_vector, dtype=np.float32).reshape(-1)
        restricted = not mask.all()
        rows = table.rows_where(mask) if restricted else None
        fetch = min(len(vectors), max(n * 2, n + 16))
        flat = is_flat(live.dense)
        if rows is not None and not flat and len(rows) <= self.config.exact_max:
            # few allowed vectors: exact scores beat a graph walk that must skip most of its nodes
            scores = vectors[rows] @ q
            top = np.argsort(-scores, kind="stable")[:fetch]
            found = list(zip(rows[top].tolist(), scores[top].tolist()))
        else:
            allowed = None
            if rows is not None and not flat:  # approximate index, many allowed: over-fetch, then filter
                allowed = np.zeros(len(vectors), dtype=bool)
                allowed[rows] = True
                fetch = min(len(vectors), fetch * -(-len(vectors) // len(rows)), 4096)
            scores, labels = search_index(live.dense, q, fetch, rows if flat else None, self.config.search_threads)
            found = [(int(r), float(s)) for r, s in zip(labels, scores) if r >= 0 and (allowed is None or allowed[r])]
        best: dict[int, float] = {}
        for row, score in found:
            best.setdefault(int(table.row_doc[row]), score)
        return list(best.items())[:n]

    def _bm25_ranking(self, live: _Live, query: str, mask: np.ndarray, n: int) -> list[tuple[int, float]]:
        """Top ``n`` (document position, BM25 score > 0) among allowed documents."""
        tokens = self._tokenizer(query)
        if not tokens or live.bm25 is None or not len(live.table.docs):
            return []
        scores = np.where(mask, np.asarray(live.bm25.get_scores(tokens), dtype=np.float64), 0.0)
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
        live = self._ready()
        mask = self._rules.mask(live.table, filters)
        n = max(self.config.candidates, k)
        dense = self._dense_ranking(live, self.encode_query(query), mask, n) if mode != "bm25" else []
        lexical = self._bm25_ranking(live, query, mask, n) if mode != "dense" else []
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
        docs = live.table.docs
        return [
            Hit(docs[pos].id, docs[pos].kind, float(score), dense_rank.get(pos), bm25_rank.get(pos))
            for pos, score in ranked[:k]
        ]

    def similar_to(self, item_id: str, k: int = 10, filters: SearchFilters | None = None) -> list[Hit]:
        """Items most similar in meaning to an indexed item (itself excluded), by cosine of item vectors."""
        live = self._ready()
        pos = live.table.position.get(item_id)
        if pos is None:
            raise SearchError(f"条目『{item_id}』不在检索索引中")
        mask = self._rules.mask(live.table, filters)
        mask[pos] = False
        ranked = self._dense_ranking(live, live.table.mean_vectors(live.vectors, [pos])[0], mask, k)
        docs = live.table.docs
        return [Hit(docs[p].id, docs[p].kind, s, dense_rank=r) for r, (p, s) in enumerate(ranked, start=1)]

    def nearest(self, query_vector: np.ndarray, ids: Sequence[str], allowed: np.ndarray,
                k: int) -> list[tuple[int, float]]:
        """The ``k`` items among ``ids[allowed]`` closest to ``query_vector`` (best chunk cosine), best first,
        as ``(index into ids, cosine)``.

        Through the index (exact over few allowed items, the approximate index over many); unindexed ids are
        left out.  For the ranker's "nearest to this intent among what the cadre may take": ``ids`` is its
        snapshot's course list, whose document positions the installed generation keeps, so the mask is
        mapped with numpy.
        """
        live = self._ready()
        allowed = np.asarray(allowed, dtype=bool)
        if allowed.shape != (len(ids),):
            raise SearchError(f"allowed 的长度应为 ids 的长度 {len(ids)}，实际为 {allowed.shape}")
        row, index = live.positions(ids)
        chosen = row[allowed]
        mask = np.zeros(len(live.table.docs), dtype=bool)
        mask[chosen[chosen >= 0]] = True
        return [(int(index[p]), s) for p, s in self._dense_ranking(live, query_vector, mask, k)]
