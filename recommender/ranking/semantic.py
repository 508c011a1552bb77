"""The seam between the recommender and sentence embeddings: course vectors and query vectors.

The ranker needs two things only — a unit vector per snapshot course and a unit vector for a cadre's
free-text intent — so this module keeps the seam that small.  :class:`SearchVectors` takes them from the
search engine (:class:`recommender.search.service.SearchService`, whose persisted faiss index already holds every
course); :class:`EncoderVectors` encodes the snapshot's course texts itself with
:mod:`recommender.search.embedding` and caches them under ``Settings.home``, for when no search index is open.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from recommender.search.embedding import encode_passages, encode_queries, load_encoder, resolve_model_source
from recommender.catalogue.snapshot import CatalogueSnapshot

if TYPE_CHECKING:  # pragma: no cover
    from sentence_transformers import SentenceTransformer

__all__ = ["CourseVectors", "EncoderVectors", "SearchVectors", "intent_scores"]


class CourseVectors(Protocol):
    """Unit vectors for the snapshot's courses (row = course position; zero rows for unknown courses)."""

    def course_vectors(self) -> np.ndarray: ...

    def encode_query(self, text: str) -> np.ndarray: ...


def intent_scores(vectors: CourseVectors, text: str) -> np.ndarray:
    """Cosine of the intent with every course, rescaled to [0, 1] over the catalogue (min–max)."""
    matrix = vectors.course_vectors()
    cosine = matrix @ vectors.encode_query(text).astype(np.float32)
    known = np.abs(matrix).sum(axis=1) > 0
    if not known.any():
        return np.zeros(len(matrix), dtype=np.float32)
    low, high = float(cosine[known].min()), float(cosine[known].max())
    scaled = (cosine - low) / max(high - low, 1e-6)
    return np.where(known, np.clip(scaled, 0.0, 1.0), 0.0).astype(np.float32)


class SearchVectors:
    """Course and query vectors from an open search service (its index must cover the snapshot's courses)."""

    def __init__(self, service: Any, snapshot: CatalogueSnapshot) -> None:
        self.service = service
        self.snapshot = snapshot
        self._matrix: np.ndarray | None = None

    def course_vectors(self) -> np.ndarray:
        if self._matrix is None:
            ids, vectors = self.service.document_vectors(self.snapshot.course_ids)
            matrix = np.zeros((self.snapshot.n_courses, vectors.shape[1] if len(ids) else 1), dtype=np.float32)
            for item_id, row in zip(ids, vectors):
                matrix[self.snapshot.course_pos[item_id]] = row
            self._matrix = matrix
        return self._matrix

    def encode_query(self, text: str) -> np.ndarray:
        return np.asarray(self.service.encode_query(text), dtype=np.float32)


class EncoderVectors:
    """Encode the snapshot's course texts with the local model; vectors cached on disk by content hash."""

    def __init__(self, snapshot: CatalogueSnapshot, cache_dir: Path | None = None, model: str | None = None,
                 encoder: SentenceTransformer | None = None) -> None:
        self.snapshot = snapshot
        self.cache_dir = cache_dir
        self.source = resolve_model_source(model)
        self._encoder = encoder
        self._matrix: np.ndarray | None = None

    @property
    def encoder(self) -> SentenceTransformer:
        if self._encoder is None:
            self._encoder = load_encoder(self.source)
        return self._encoder

    def _cache_path(self) -> Path | None:
        if self.cache_dir is None:
            return None
        digest = hashlib.sha256(self.source.encode())
        for text in self.snapshot.course_text:
            digest.update(text.encode("utf-8"))
            digest.update(b"\0")
        return self.cache_dir / f"course-vectors-{digest.hexdigest()[:16]}.npy"

    def course_vectors(self) -> np.ndarray:
        if self._matrix is None:
            path = self._cache_path()
            if path is not None and path.exists():
                self._matrix = np.load(path)
            else:
                self._matrix = encode_passages(self.encoder, self.snapshot.course_text)
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(".tmp.npy")
                    np.save(tmp, self._matrix)
                    tmp.replace(path)
        return self._matrix

    def encode_query(self, text: str) -> np.ndarray:
        return encode_queries(self.encoder, [text])[0]
