"""Near-duplicate courses: pairs whose texts mean nearly the same, for designers consolidating a catalogue.

Two courses are a pair when the cosine of their item vectors (the normalised mean of their chunk vectors,
as :meth:`SearchService.document_vector` gives) reaches a threshold.  The encoder's vectors are
anisotropic — unrelated courses on the sample catalogue still score about 0.87 — so the threshold sits
high; :data:`DEFAULT_THRESHOLD` was chosen by reading the pairs above and below it on the sample
catalogue (rewordings of one course score ≥ 0.96, courses on the same topic 0.90–0.95).
Pairs are found with faiss ``range_search`` on an exact inner-product index (all pairs, no sampling).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recommender.search.service import SearchFilters, SearchService

__all__ = ["COURSE_CLASS", "DEFAULT_THRESHOLD", "DuplicatePair", "near_duplicates"]

#: The class whose items are compared by default (an identifier, not a label).
COURSE_CLASS = "Course"
DEFAULT_THRESHOLD = 0.96


@dataclass(frozen=True)
class DuplicatePair:
    """Two items (``a`` < ``b`` by id) and the cosine similarity of their vectors."""

    a: str
    b: str
    score: float


def near_duplicates(
    service: SearchService,
    threshold: float = DEFAULT_THRESHOLD,
    filters: SearchFilters | None = None,
    ids: Sequence[str] | None = None,
) -> list[DuplicatePair]:
    """Pairs of items with cosine ≥ ``threshold``, most similar first.

    By default every course is compared whatever its status (a draft may duplicate a published course);
    ``filters`` narrows the items, ``ids`` names them outright.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"相似度阈值 threshold 应在 (0, 1] 之间，实际为 {threshold}")
    if ids is None:
        mask = service.allowed_mask(filters or SearchFilters(kinds=(COURSE_CLASS,), statuses=()))
        ids = service.ids_where(mask)
    ids, vectors = service.document_vectors(ids)
    if len(ids) < 2:
        return []
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    # float32 rounding can put an exact duplicate a hair under 1.0; compare with a small tolerance
    limits, scores, labels = index.range_search(vectors, np.float32(threshold) - np.float32(1e-6))
    pairs: list[DuplicatePair] = []
    for i in range(len(ids)):
        for j, score in zip(labels[limits[i] : limits[i + 1]], scores[limits[i] : limits[i + 1]]):
            if i < j:
                pairs.append(DuplicatePair(ids[i], ids[int(j)], min(float(score), 1.0)))
    pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    return pairs
