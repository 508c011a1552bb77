"""The documents of one index generation in row order, with the arrays that filters and chunk scoring read.

A generation's rows come from its manifest; the metadata (status, topics, institution …) comes from the store
when the generation is installed, so a status change shows at once.  A document the store no longer has keeps
its rows (the faiss index cannot drop them without a rebuild) but is marked absent and never returned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recommender.search.documents import Document

__all__ = ["DocumentTable"]


@dataclass
class DocumentTable:
    """Documents in index order, chunk-row maps, and postings per filterable field.

    ``present[i]`` is False for a document indexed once but gone from the store; ``position`` maps only
    present documents.
    """

    docs: list[Document]
    chunk_counts: np.ndarray
    present: np.ndarray
    starts: np.ndarray = field(init=False)
    row_doc: np.ndarray = field(init=False)
    position: dict[str, int] = field(init=False)
    postings: dict[str, dict[Any, np.ndarray]] = field(init=False)
    hours: np.ndarray = field(init=False)
    is_case: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.starts = np.concatenate([[0], np.cumsum(self.chunk_counts)[:-1]]).astype(np.int64)
        self.row_doc = np.repeat(np.arange(len(self.docs)), self.chunk_counts)
        self.position = {d.id: i for i, d in enumerate(self.docs) if self.present[i]}
        names = ("kind", "status", "institution", "delivery", "topic")
        lists: dict[str, dict[Any, list[int]]] = {name: {} for name in names}
        for i, doc in enumerate(self.docs):
            for name, values in (("kind", [doc.kind]), ("status", [doc.status]), ("institution", [doc.institution]),
                                 ("delivery", [doc.delivery_mode]), ("topic", doc.topics)):
                for value in values:
                    lists[name].setdefault(value, []).append(i)
        self.postings = {name: {v: np.asarray(ps, dtype=np.int64) for v, ps in by.items()} for name, by in lists.items()}
        self.hours = np.array([np.nan if d.hours is None else d.hours for d in self.docs], dtype=np.float64)
        self.is_case = np.array([d.is_case for d in self.docs], dtype=bool)

    @classmethod
    def empty(cls) -> DocumentTable:
        return cls([], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool))

    @classmethod
    def from_manifest(cls, entries: Sequence[Mapping[str, Any]], by_id: Mapping[str, Document]) -> DocumentTable:
        """Rows as the manifest lists them, each with the store's current document (absent if it is gone)."""
        docs = [by_id.get(e["id"]) or Document(id=e["id"], kind="", title="", description="") for e in entries]
        return cls(docs, np.asarray([e["chunks"] for e in entries], dtype=np.int64),
                   np.asarray([e["id"] in by_id for e in entries], dtype=bool))

    def having(self, name: str, values: Iterable[Any]) -> np.ndarray:
        """Mask of documents whose field ``name`` takes any of ``values``."""
        mask = np.zeros(len(self.docs), dtype=bool)
        for value in values:
            mask[self.postings[name].get(value, np.zeros(0, dtype=np.int64))] = True
        return mask

    def rows_where(self, mask: np.ndarray) -> np.ndarray:
        """Chunk rows of the documents selected by ``mask``."""
        return np.flatnonzero(mask[self.row_doc]).astype(np.int64)

    def block(self, vectors: np.ndarray, pos: int) -> np.ndarray:
        """The chunk vectors of the document at ``pos``."""
        return vectors[self.starts[pos] : self.starts[pos] + self.chunk_counts[pos]]

    def mean_vectors(self, vectors: np.ndarray, positions: Sequence[int]) -> np.ndarray:
        """Unit item vectors: the normalised mean of each document's chunk vectors."""
        out = np.zeros((len(positions), vectors.shape[1] if vectors.ndim == 2 else 0), dtype=np.float32)
        for i, pos in enumerate(positions):
            mean = self.block(vectors, pos).mean(axis=0)
            out[i] = mean / max(float(np.linalg.norm(mean)), 1e-12)
        return out
