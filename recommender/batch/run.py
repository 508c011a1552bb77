"""Batch mode: suggestions and gaps for every cadre, stored in one SQLite file for the API and for designers.

The file (``Settings.home/recommender/batch.sqlite`` by default) holds, per cadre, the ranked suggestions
with their reasons and the gaps with their weights, plus a ``demand`` view (cadres with a gap per topic)
that curriculum designers read against the supply of courses.  A run writes a new file beside the old one
and renames it into place, so readers see either the previous complete run or the new one.

With ``workers > 1`` cadres are split across forked processes that share the snapshot copy-on-write and
open their own store connection; the parent writes everything.
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

from kg.config import Settings
from kg.store.base import Store
from recommender.errors import InvalidRequest
from recommender.learner.gaps import analyse_gaps
from recommender.labelled import Labelled
from recommender.service import Recommender

__all__ = ["BatchSummary", "batch_path", "load_suggestions", "run_batch", "stored_demand"]

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


def batch_path(settings: Settings | None = None) -> Path:
    """Where batch results live for these settings."""
    return (settings or Settings.from_env()).home / "recommender" / "batch.sqlite"


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
    path = path or batch_path()
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


def _read(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise FileNotFoundError(f"尚无批量推荐结果：{path}；请先运行 python -m recommender batch")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def load_suggestions(cadre_id: str, path: Path | None = None) -> list[dict[str, Any]]:
    """A cadre's stored suggestions, best first, with Chinese keys (empty when the cadre was not in the run)."""
    conn = _read(path or batch_path())
    try:
        rows = conn.execute("SELECT rank, item_id, kind, name, score, reason, gap_topic, section FROM suggestions "
                            "WHERE cadre_id = ? ORDER BY rank", (cadre_id,)).fetchall()
    finally:
        conn.close()
    keys = ("序号", "编号", "类型", "名称", "得分", "推荐理由", "缺口主题", "规划条目")
    return [dict(zip(keys, row)) for row in rows]


def stored_demand(path: Path | None = None, level: str | None = None) -> dict[str, int]:
    """Topic id → cadres with a gap on it, from a stored run (``level`` narrows to essential/optional)."""
    conn = _read(path or batch_path())
    try:
        if level is None:
            rows = conn.execute("SELECT topic_id, count(*) FROM gaps GROUP BY topic_id").fetchall()
        else:
            rows = conn.execute("SELECT topic_id, count(*) FROM gaps WHERE level = ? GROUP BY topic_id", (level,)).fetchall()
    finally:
        conn.close()
    return {topic: int(n) for topic, n in sorted(rows)}
