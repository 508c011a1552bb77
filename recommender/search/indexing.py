"""Making the next index generation from the store's documents and the previous generation.

An update re-encodes only documents whose text hash changed, and only when the previous generation was made by
the same encoder (its fingerprint is in the manifest): vectors of two encoders are never mixed.  The faiss
structure is rebuilt from the stored vectors whenever rows change, because HNSW cannot delete and encoding,
not indexing, is the expensive step; above the exact-search threshold the rebuild measures its candidates again
(:func:`recommender.search.vectors.choose_vector_index`, the previous choice first: kept while it reaches the
target) and the manifest's ``dense`` entry records the choice, its measured recall and latency and the sample,
under the policy (:meth:`IndexConfig.index_policy`) that made it.  Encoding runs in batches of about :data:`ENCODE_BATCH` chunks and calls
``progress(done, total, message)`` after each, ``done`` counting documents (reused ones included) out of
every document in the catalogue, so a job shows real progress and ends at ``done == total``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from recommender.search.config import IndexConfig
from recommender.search.documents import Document
from recommender.search.embedding import Encoder
from recommender.search.lexical import Tokenizer, build_bm25
from recommender.search.persist import INDEX_FORMAT, Generation
from recommender.search.vectors import choose_vector_index, describe_choice

__all__ = ["ENCODE_BATCH", "IndexUpdate", "Progress", "encode_documents", "is_current", "next_generation"]

#: ``progress(done, total, message)``: documents done so far out of all, and a Chinese line for people.
Progress = Callable[[int, int, str], None]
#: Chunks per call into the encoder (one progress report each).
ENCODE_BATCH = 64


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
    index_choice: str = ""
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return self.encoded > 0 or self.removed > 0 or self.rebuilt_dense or self.rebuilt_bm25


def _key(doc_id: str, content_hash: str) -> str:
    return f"{doc_id}\x00{content_hash}"


def _manifest_keys(manifest: dict[str, Any]) -> list[str]:
    return [_key(e["id"], e["hash"]) for e in manifest["documents"]]


def is_current(manifest: dict[str, Any], docs: Sequence[Document], encoder: Encoder, tokenizer: Tokenizer,
               config: IndexConfig) -> bool:
    """True when ``manifest`` indexes exactly ``docs``' texts with this encoder, tokenizer and index policy."""
    return (manifest.get("model") == encoder.fingerprint and manifest.get("tokenizer") == tokenizer.fingerprint
            and _manifest_keys(manifest) == [_key(d.id, d.content_hash) for d in docs]
            and _same_policy(manifest, config, sum(e["chunks"] for e in manifest["documents"])))


def _same_policy(manifest: dict[str, Any], config: IndexConfig, n: int) -> bool:
    """True when the manifest's vector index was made under the policy ``config`` sets for ``n`` vectors."""
    return (manifest.get("dense") or {}).get("policy") == config.index_policy(n)


def _batches(docs: Sequence[Document]) -> Iterator[list[Document]]:
    batch: list[Document] = []
    size = 0
    for doc in docs:
        batch.append(doc)
        size += len(doc.chunks)
        if size >= ENCODE_BATCH:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def encode_documents(encoder: Encoder, docs: Sequence[Document], progress: Progress | None = None,
                     already: int = 0, total: int | None = None) -> dict[str, np.ndarray]:
    """Chunk vectors of each of ``docs`` by id, encoded in batches, reporting ``already + done`` of ``total``."""
    total = len(docs) + already if total is None else total
    out: dict[str, np.ndarray] = {}
    done = 0
    for batch in _batches(docs):
        vectors = encoder.passage([c for d in batch for c in d.chunks])
        row = 0
        for doc in batch:
            out[doc.id] = vectors[row : row + len(doc.chunks)]
            row += len(doc.chunks)
        done += len(batch)
        if progress is not None:
            progress(already + done, total, f"编码 {done}/{len(docs)} 条")
    return out


def next_generation(docs: list[Document], old: Generation | None, encoder: Encoder, tokenizer: Tokenizer,
                    config: IndexConfig, progress: Progress | None = None) -> tuple[Generation, IndexUpdate]:
    """The generation that indexes ``docs``, reusing ``old``'s vectors for unchanged texts of the same encoder."""
    reusable: dict[str, np.ndarray] = {}
    if old is not None and old.manifest.get("model") == encoder.fingerprint:
        row = 0
        for entry in old.manifest["documents"]:
            reusable[_key(entry["id"], entry["hash"])] = old.vectors[row : row + entry["chunks"]]
            row += entry["chunks"]
    keys = [_key(d.id, d.content_hash) for d in docs]
    todo = [d for d, key in zip(docs, keys) if key not in reusable]
    if progress is not None:
        progress(len(docs) - len(todo), len(docs), f"复用 {len(docs) - len(todo)} 条，需编码 {len(todo)} 条")
    fresh = encode_documents(encoder, todo, progress, already=len(docs) - len(todo), total=len(docs))
    blocks = [reusable[key] if key in reusable else fresh[d.id] for d, key in zip(docs, keys)]
    vectors = np.ascontiguousarray(np.vstack(blocks) if blocks else np.zeros((0, encoder.dim)), dtype=np.float32)

    old_ids = {e["id"] for e in old.manifest["documents"]} if old is not None else set()
    report = IndexUpdate(documents=len(docs), chunks=len(vectors), encoded=len(todo),
                         reused=len(docs) - len(todo), removed=len(old_ids - {d.id for d in docs}))
    same_rows = old is not None and not todo and _manifest_keys(old.manifest) == keys
    if (same_rows and _same_policy(old.manifest, config, len(vectors))
            and (old.dense is not None or old.manifest["dense"]["type"] == "flat")):
        dense, spec = old.dense, old.manifest["dense"]
    else:
        def note(message: str) -> None:
            if progress is not None:
                progress(max(len(docs) - 1, 0), len(docs), message)

        dense, spec = choose_vector_index(vectors, config, note, old.manifest.get("dense") if old else None)
        report.rebuilt_dense = True
    report.index_choice = describe_choice(spec)
    if same_rows and old.manifest.get("tokenizer") == tokenizer.fingerprint and old.bm25 is not None:
        bm25 = old.bm25
    else:
        bm25 = build_bm25(tokenizer, [d.text for d in docs])
        report.rebuilt_bm25 = True
    manifest = {
        "format": INDEX_FORMAT,
        "model": encoder.fingerprint,
        "dim": int(vectors.shape[1]),
        "dense": spec,
        "tokenizer": tokenizer.fingerprint,
        "documents": [{"id": d.id, "hash": d.content_hash, "chunks": len(d.chunks)} for d in docs],
        "config": asdict(config),
    }
    return Generation(manifest, vectors, dense, bm25), report
