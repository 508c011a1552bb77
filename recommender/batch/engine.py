"""The blocks of a batch on a Dask cluster — a local one or a real one by address.

Why Dask (``dask[distributed]``): it installs from PyPI as pure Python (about 2 MB with its dependencies, beside
pyarrow), a ``LocalCluster`` of worker processes starts in seconds on two cores, and ``Client(address)`` runs the
same tasks on a cluster started with ``dask scheduler`` / ``dask worker`` — nothing else changes.  Ray (79 MB
wheel, plus its GCS, raylet and dashboard daemons) and Spark (a JVM, and Python rows crossing into it) cost more to
start and hold than the whole batch needs here; see ``recommender/README.md`` for the figures.

Heavy state is held once per worker process, not per task: a :class:`BatchState` worker plugin receives the
caller's catalogue snapshot (its fields, pickled once) and a picklable store opener, and builds one
:class:`~recommender.service.Recommender` in ``setup``; each task (:func:`_block_on_worker`) finds it there and
runs :func:`recommender.batch.blocks.run_block`, the same function the inline path calls.  Workers write their
blocks' Parquet parts themselves (on a cluster the output directory must be shared), so rows never travel back
through the scheduler: a task answers with counts only.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import dask
from distributed import Client, LocalCluster, as_completed, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from kg.config import Settings
from kg.store.base import Store
from recommender.batch.blocks import BatchPlan, BlockResult, BlockTask, run_block
from recommender.catalogue.snapshot import CatalogueSnapshot
from recommender.learner.gaps import CoverageConfig
from recommender.ranking.recommend import RankConfig
from recommender.service import Recommender

__all__ = ["BatchState", "dask_blocks", "store_opener"]

_PLUGIN = "ganxun-batch"
#: glibc's trim threshold for the local cluster's worker processes.  Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_`` to
#: 64 KiB by default (to hand fragmented memory back early); the ranker allocates and frees catalogue-sized NumPy
#: arrays for every cadre, and trimming after each made a worker 1.5× slower per cadre than the same code in this
#: process (5.2 against 3.4 ms at 100,000 courses).  At 128 MiB a worker runs as fast as this process does.
TRIM_THRESHOLD = 128 * 1024 * 1024


def _open_embedded(path: Path, text_labels: tuple[str, ...]) -> Store:
    from kg.store.embedded import EmbeddedStore

    return EmbeddedStore(path, text_labels=text_labels).open()


def _open_named(name: str) -> Store:
    from kg.store import open_store

    return open_store(name, settings=Settings.from_env())


def store_opener(store: Store) -> Callable[[], Store]:
    """A picklable function that opens, in a worker process, the store ``store`` is: the same SQLite file, or the
    named back end configured from the worker's own environment (``NEO4J_*`` on a cluster's machines)."""
    from kg.store.embedded import EmbeddedStore

    if isinstance(store, EmbeddedStore):
        return partial(_open_embedded, store.path, tuple(sorted(store.text_labels)))
    return partial(_open_named, store.name)


def _snapshot_fields(snapshot: CatalogueSnapshot) -> dict[str, Any]:
    """The snapshot's catalogue without its per-process cache and lock, which are built anew where it lands."""
    return {f.name: getattr(snapshot, f.name) for f in dataclasses.fields(snapshot) if f.name not in ("requirement_cache", "requirement_lock")}


class BatchState(WorkerPlugin):
    """Dask worker plugin: one recommender per worker process over the caller's snapshot and the worker's own store
    connection (``setup``), closed in ``teardown``."""

    def __init__(self, snapshot: CatalogueSnapshot, open_store: Callable[[], Store], coverage: CoverageConfig,
                 ranking: RankConfig) -> None:
        self.fields = _snapshot_fields(snapshot)
        self.open_store = open_store
        self.coverage = coverage
        self.ranking = ranking
        self.recommender: Recommender | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "recommender": None}

    def setup(self, worker: Any) -> None:
        snapshot = CatalogueSnapshot(**self.fields)
        self.recommender = Recommender(snapshot, self.open_store(), coverage=self.coverage, ranking=self.ranking)

    def teardown(self, worker: Any) -> None:
        if self.recommender is not None:
            self.recommender.store.close()


def _block_on_worker(plugin: str, plan: BatchPlan, task: BlockTask) -> BlockResult:
    return run_block(get_worker().plugins[plugin].recommender, plan, task)


@contextmanager
def _client(address: str | None, workers: int) -> Iterator[Any]:
    """A client of the cluster at ``address``, or of a new local cluster of ``workers`` processes (one thread each:
    the work is Python and NumPy, so processes, not threads, are what run in parallel)."""
    if address is not None:
        with Client(address) as client:
            yield client
        return
    trim = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": TRIM_THRESHOLD}  # read as nannies start
    with dask.config.set(trim), LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                             dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        yield client


def dask_blocks(recommender: Recommender, plan: BatchPlan, tasks: Sequence[BlockTask], *, workers: int,
                address: str | None, open_store: Callable[[], Store]) -> Iterator[BlockResult]:
    """Every block as a task on a Dask cluster, answered as each finishes; a failed block cancels the rest and
    raises its error here."""
    with _client(address, workers) as client:
        name = f"{_PLUGIN}-{Path(plan.out).name}"
        client.register_plugin(BatchState(recommender.snapshot, open_store, recommender.coverage,
                                          recommender.ranker.config), name=name)
        futures = [client.submit(_block_on_worker, name, plan, task, key=f"{name}-{task.number:05d}", pure=False)
                   for task in tasks]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            client.cancel(futures)
            client.unregister_worker_plugin(name)
