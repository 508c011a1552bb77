"""The batch as it was before issue 16, frozen as the peer of ``bench/batch_scale.py``: a home-made
``multiprocessing`` pool, one store call per cadre for the profile, the parent writing every row into SQLite.

Not used by the project; kept only so that the benchmark measures the new batch beside the old one on the same
cadres in the same run (like ``bench/tagging_before.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing as mp
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from tqdm import tqdm

from kg.store.base import Store
from recommender.errors import InvalidRequest
from recommender.learner.gaps import analyse_gaps
from recommender.labelled import Labelled
from recommender.service import Recommender

__all__ = ["run_batch"]

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE suggestions (
    cadre_id TEXT NOT NULL, rank INTEGER NOT NULL, item_id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    score REAL NOT NULL, reason TEXT NOT NULL, gap_topic TEXT, section TEXT, PRIMARY KEY (cadre_id, rank)) WITHOUT ROWID;
CREATE TABLE gaps (
    cadre_id TEXT NOT NULL, topic_id TEXT NOT NULL, level TEXT NOT NULL, weight REAL NOT NULL, coverage REAL NOT NULL,
    threshold REAL NOT NULL, PRIMARY KEY (cadre_id, topic_id)) WITHOUT ROWID;
CREATE INDEX gaps_topic ON gaps(topic_id, level);
CREATE VIEW demand AS
    SELECT topic_id, count(*) AS cadres, sum(level = 'essential') AS essential, avg(weight) AS mean_weight
    FROM gaps GROUP BY topic_id;
"""
_CHUNK = 64


@dataclass(frozen=True)
class BatchSummary(Labelled):
    path: Path
    today: dt.date
    k: int
    cadres: int
    suggestions: int
    seconds: float

    LABELS: ClassVar[dict[str, str]] = {
        "path": "结果文件", "today": "统计日期", "k": "每人推荐条数", "cadres": "干部人数", "suggestions": "推荐条目",
        "seconds": "用时（秒）", "rate": "每秒处理干部数",
    }

    @property
    def rate(self) -> float:
        return self.cadres / self.seconds if self.seconds > 0 else 0.0


Rows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


def _rows(recommender: Recommender, cadre_id: str, k: int, today: dt.date) -> Rows:
    """Suggestion rows and gap rows of one cadre."""
    profile = recommender.profile(cadre_id, today)
    report = analyse_gaps(profile, recommender.snapshot, today, recommender.coverage)
    ranked = recommender.ranker.rank(profile, report, today, k=k)
    suggestions = [(cadre_id, s.rank, s.item_id, s.kind, s.name, s.score, s.reason, s.gap_topic, s.section)
                   for s in (*ranked.items, *ranked.materials)]
    gaps = [(cadre_id, g.topic_id, g.requirement.level, round(g.weight, 4), g.coverage, g.threshold) for g in report.gaps]
    return suggestions, gaps


_WORKER: dict[str, Any] = {}


def _init_worker(store_factory: Callable[[], Store]) -> None:
    parent: Recommender = _WORKER["parent"]
    _WORKER["recommender"] = Recommender(parent.snapshot, store_factory(), coverage=parent.coverage,
                                         ranking=parent.ranker.config)


def _work(args: tuple[list[str], int, dt.date]) -> list[Rows]:
    ids, k, today = args
    return [_rows(_WORKER["recommender"], cadre_id, k, today) for cadre_id in ids]


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def _results(recommender: Recommender, ids: Sequence[str], k: int, today: dt.date, workers: int,
             store_factory: Callable[[], Store] | None) -> Iterator[list[Rows]]:
    if workers <= 1:
        for chunk in _chunks(ids, _CHUNK):
            yield [_rows(recommender, cadre_id, k, today) for cadre_id in chunk]
        return
    if store_factory is None:
        raise InvalidRequest("workers>1 时需要提供 store_factory（在每个子进程中打开存储）")
    _WORKER["parent"] = recommender
    context = mp.get_context("fork")
    with context.Pool(workers, initializer=_init_worker, initargs=(store_factory,)) as pool:
        yield from pool.imap(_work, ((chunk, k, today) for chunk in _chunks(ids, _CHUNK)))


def run_batch(
    recommender: Recommender,
    cadre_ids: Iterable[str] | None = None,
    *,
    k: int = 10,
    today: dt.date | None = None,
    path: Path | None = None,
    progress: bool = True,
    workers: int = 1,
    store_factory: Callable[[], Store] | None = None,
    on_progress: Callable[[int, int], Any] | None = None,
) -> BatchSummary:
    """Recommend for every cadre (or the given ones) and store the results atomically at ``path``.

    ``on_progress(done, total)`` is told after each chunk of cadres (64) is stored, for a job's progress bar."""
    if not 1 <= k <= 200:
        raise InvalidRequest(f"k（每人推荐条数）应在 1 到 200 之间，实际为 {k}")
    if workers < 1:
        raise InvalidRequest(f"workers（并行进程数）应为正整数，实际为 {workers}")
    day = recommender.today(today)
    ids = list(cadre_ids) if cadre_ids is not None else [n.id for n in recommender.store.nodes("Cadre")]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    started = time.perf_counter()
    n_suggestions = n_done = 0
    conn = sqlite3.connect(tmp)
    try:
        conn.executescript(_SCHEMA)
        with tqdm(total=len(ids), desc="批量推荐", unit="人", disable=not progress) as bar:
            for chunk in _results(recommender, ids, k, day, workers, store_factory):
                for suggestions, gaps in chunk:
                    conn.executemany("INSERT INTO suggestions VALUES (?,?,?,?,?,?,?,?,?)", suggestions)
                    conn.executemany("INSERT INTO gaps VALUES (?,?,?,?,?,?)", gaps)
                    n_suggestions += len(suggestions)
                bar.update(len(chunk))
                n_done += len(chunk)
                if on_progress is not None:
                    on_progress(n_done, len(ids))
        seconds = time.perf_counter() - started
        meta = {"today": day.isoformat(), "k": k, "cadres": len(ids), "created": dt.datetime.now().isoformat(timespec="seconds")}
        conn.executemany("INSERT INTO meta VALUES (?, ?)", [(key, json.dumps(v)) for key, v in meta.items()])
        conn.commit()
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    conn.close()
    tmp.replace(path)
    return BatchSummary(path, day, k, len(ids), n_suggestions, seconds)
