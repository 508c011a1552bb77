"""The seam between the recommender and sentence embeddings: course vectors and query vectors, from the index.

The ranker needs a unit vector per snapshot course and a unit vector for a cadre's free-text intent.  Both come
from the search engine (:class:`recommender.search.service.SearchService`): course vectors are the ones its
persisted index already holds, and queries go through the process's one encoder — there is no second model and
no second encoding of the catalogue.  :meth:`SearchVectors.nearest` asks the index for the courses nearest an
intent among the ones the ranker allows.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from recommender.catalogue.snapshot import CatalogueSnapshot

__all__ = ["CourseVectors", "SearchVectors", "intent_scores"]


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
    """Course and query vectors from an open search service (its index must cover the snapshot's courses).

    The course matrix is cached per index generation: when another worker's update is installed, the next call
    takes the new vectors.
    """

    def __init__(self, service: Any, snapshot: CatalogueSnapshot) -> None:
        self.service = service
        self.snapshot = snapshot
        self._matrix: np.ndarray | None = None
        self._generation: Any = None

    def course_vectors(self) -> np.ndarray:
        generation = getattr(self.service, "generation", None)
        if self._matrix is None or generation != self._generation:
            ids, vectors = self.service.document_vectors(self.snapshot.course_ids)
            matrix = np.zeros((self.snapshot.n_courses, vectors.shape[1] if len(ids) else 1), dtype=np.float32)
            for item_id, row in zip(ids, vectors):
                matrix[self.snapshot.course_pos[item_id]] = row
            self._matrix, self._generation = matrix, generation
        return self._matrix

    def encode_query(self, text: str) -> np.ndarray:
        return np.asarray(self.service.encode_query(text), dtype=np.float32)

    def nearest(self, text: str, allowed_mask: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` courses closest to ``text`` among the allowed course positions: ``(course_pos, cosine)``.

        ``allowed_mask`` is a boolean array over the snapshot's course positions; the cosine is that of the
        course's best-matching chunk, as search scores it.  Courses the index does not hold are never returned.
        """
        allowed = np.asarray(allowed_mask, dtype=bool)
        if allowed.shape != (self.snapshot.n_courses,):
            raise ValueError(f"allowed_mask 的长度应为课程数 {self.snapshot.n_courses}，实际为 {allowed.shape}")
        return self.service.nearest(self.encode_query(text), self.snapshot.course_ids, allowed, k)
