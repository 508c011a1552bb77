"""Index generations on disk: immutable folders, a ``CURRENT`` pointer, and the lock that serialises writers.

The index lives beside the store, under ``Settings.home/index/``, one *generation* folder at a time:
``manifest.json`` (document ids, content hashes, chunk counts, encoder fingerprint, and under ``dense`` the vector
index's spec: the structure and search parameter chosen, its measured recall@10 and latency, the sample they were
measured on, every trial and the policy that made the choice — see
:func:`recommender.search.vectors.choose_vector_index`), ``vectors.npy`` (one unit row per chunk), ``dense.faiss``
(approximate indexes only, their search parameters inside; exact ones are rebuilt from the vectors) and ``bm25/``.
``CURRENT`` names the live generation and is replaced atomically, so an interrupted update leaves the previous
index usable and a reader never sees a half-written one. Writers hold an exclusive ``flock`` for a whole update
(two jobs never encode the same texts twice); readers take no lock — they read ``CURRENT`` and, if that generation
is replaced and removed while they read it, read the newer one. Comparing the name in ``CURRENT`` with the one in
memory is how every worker notices another worker's update, at the cost of reading one small file.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recommender.search.lexical import load_bm25
from recommender.search.vectors import is_flat, read_index, write_index

__all__ = ["INDEX_FORMAT", "Generation", "IndexDir"]

log = logging.getLogger(__name__)

#: Bump when the on-disk layout changes; an index of another format is rebuilt (re-encoding everything).
INDEX_FORMAT = 1
_READ_ATTEMPTS = 3


@dataclass(frozen=True)
class Generation:
    """One consistent index, in memory: its manifest, chunk vectors, faiss index (None: build it) and BM25."""

    manifest: dict[str, Any]
    vectors: np.ndarray
    dense: Any
    bm25: Any
    name: str = ""


class IndexDir:
    """The ``index/`` folder: generations, the ``CURRENT`` pointer and the writers' lock."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the writers' lock (exclusive, across processes) for the block."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def current_name(self) -> str | None:
        """The live generation's folder name, or None before the first update (one small read)."""
        try:
            name = (self.root / "CURRENT").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def load(self) -> Generation | None:
        """The live generation, or None when there is none or it is of another format or unreadable."""
        for _ in range(_READ_ATTEMPTS):
            name = self.current_name()
            if name is None:
                return None
            try:
                return self._read(name)
            except (OSError, ValueError, RuntimeError) as exc:
                if self.current_name() != name:
                    continue  # replaced (and removed) while we read it: read the newer one
                log.warning("索引 %s 无法读取（%s），需要重建", self.root / name, exc)
                return None
        return None

    def _read(self, name: str) -> Generation | None:
        path = self.root / name
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("format") != INDEX_FORMAT:
            return None
        vectors = np.load(path / "vectors.npy")
        dense = read_index(str(path / "dense.faiss")) if (path / "dense.faiss").is_file() else None
        bm25 = load_bm25(str(path / "bm25")) if (path / "bm25").is_dir() else None
        return Generation(manifest, vectors, dense, bm25, name)

    def save(self, generation: Generation) -> Generation:
        """Write ``generation`` as a new folder, point ``CURRENT`` at it, remove older ones; return it named.

        Call it holding :meth:`locked`.
        """
        name = f"gen-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 1_000_000}"
        path = self.root / name
        tmp = self.root / f".{name}.tmp"
        tmp.mkdir(parents=True)
        np.save(tmp / "vectors.npy", generation.vectors)
        if generation.dense is not None and not is_flat(generation.dense):
            write_index(generation.dense, str(tmp / "dense.faiss"))
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
        return Generation(generation.manifest, generation.vectors, generation.dense, generation.bm25, name)
