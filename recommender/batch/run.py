"""Batch mode: suggestions and gaps for every cadre, as Parquet for analysis and in one SQLite file for the API
and for designers.

Cadres go in blocks (:mod:`recommender.batch.blocks`): each block is read from the store in two calls, its
changed cadres are recomputed and the others keep the last run's rows, and its rows are written as one Parquet file
per table (``batch-parquet/<run>/suggestions/part-00000.parquet`` …, beside the SQLite file).  Blocks run in this
process (one worker, no address) or on a Dask cluster (:mod:`recommender.batch.engine`): a local cluster of
``workers`` processes, or the cluster at ``address`` / ``GANXUN_BATCH_ADDRESS`` — the same code either way.

The SQLite file (``Settings.home/recommender/batch.sqlite`` by default) is the read view: per cadre the ranked
suggestions with their reasons and the gaps with their weights, a ``demand`` view (cadres with a gap per topic)
that curriculum designers read against the supply of courses, each cadre's fingerprint for the next incremental
run, and ``meta`` (date, k, run key, where the Parquet files are).  It is filled from the blocks' Parquet parts as
they finish, written beside the old file and renamed into place, so readers see either the previous complete run or
the new one; the previous run's Parquet directory is marked superseded and removed only then (a run still in
progress beside it is never touched).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow.parquet as pq
from tqdm import tqdm

from kg.config import Settings
from kg.store.base import Store
from recommender.batch.blocks import TABLES, BatchPlan, BlockResult, BlockTask, part_path, run_block, run_key
from recommender.errors import InvalidRequest
from recommender.labelled import Labelled
from recommender.service import Recommender

__all__ = ["ADDRESS_ENV", "BLOCK_SIZE", "ENGINES", "BatchSummary", "batch_address", "batch_parquet", "batch_path",
           "load_suggestions", "run_batch", "stored_demand"]

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE suggestions (
    cadre_id TEXT NOT NULL, rank INTEGER NOT NULL, item_id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    score REAL NOT NULL, reason TEXT NOT NULL, gap_topic TEXT, section TEXT, PRIMARY KEY (cadre_id, rank)) WITHOUT ROWID;
CREATE TABLE gaps (
    cadre_id TEXT NOT NULL, topic_id TEXT NOT NULL, level TEXT NOT NULL, weight REAL NOT NULL, coverage REAL NOT NULL,
    threshold REAL NOT NULL, PRIMARY KEY (cadre_id, topic_id)) WITHOUT ROWID;
CREATE TABLE cadres (cadre_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, part INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX gaps_topic ON gaps(topic_id, level);
CREATE VIEW demand AS
    SELECT topic_id, count(*) AS cadres, sum(level = 'essential') AS essential, avg(weight) AS mean_weight
    FROM gaps GROUP BY topic_id;
"""
#: Cadres per block: large enough that a block's two store reads and its Parquet files cost little per cadre,
#: small enough that progress moves and a cluster's workers share the tail of a run.
BLOCK_SIZE = 500
#: ``inline``: this process; ``dask``: a Dask cluster; ``auto``: Dask when an address or more than one worker is given.
ENGINES = ("auto", "inline", "dask")
#: Written into a run's Parquet directory once the SQLite view names a newer run: only marked directories are
#: removed, so a run still in progress beside this one (a CLI run beside an API job) keeps its output.
SUPERSEDED = ".superseded"
#: The Dask scheduler's address (``tcp://host:8786``): when set, the batch runs on that cluster.
ADDRESS_ENV = "GANXUN_BATCH_ADDRESS"


def batch_path(settings: Settings | None = None) -> Path:
    """Where batch results live for these settings."""
    return (settings or Settings.from_env()).home / "recommender" / "batch.sqlite"


def batch_address(address: str | None = None, env: dict[str, str] | None = None) -> str | None:
    """The cluster to run on: ``address`` when given, else :data:`ADDRESS_ENV`, else None (this machine)."""
    return address or (os.environ if env is None else env).get(ADDRESS_ENV) or None


def _parquet_root(path: Path) -> Path:
    return path.with_name(f"{path.stem}-parquet")


@dataclass(frozen=True)
class BatchSummary(Labelled):
    path: Path
    today: dt.date
    k: int
    cadres: int
    suggestions: int
    seconds: float
    computed: int = 0
    carried: int = 0
    parquet: Path | None = None
    engine: str = "inline"
    workers: int = 1

    LABELS: ClassVar[dict[str, str]] = {
        "path": "结果文件", "today": "统计日期", "k": "每人推荐条数", "cadres": "干部人数", "suggestions": "推荐条目",
        "seconds": "用时（秒）", "rate": "每秒处理干部数", "computed": "重新计算人数", "carried": "沿用上次结果人数",
        "parquet": "Parquet 目录", "engine": "执行方式", "workers": "工作进程数",
    }

    @property
    def rate(self) -> float:
        return self.cadres / self.seconds if self.seconds > 0 else 0.0


def _previous(path: Path, key: str) -> tuple[Path | None, dict[str, tuple[str, int]]]:
    """The last run's Parquet directory and each cadre's (fingerprint, part), when it ran under the same key."""
    if not path.exists():
        return None, {}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        meta = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}
        if meta.get("run_key") != key or "parquet" not in meta:
            return None, {}
        directory = path.parent / meta["parquet"]
        if not directory.is_dir():
            return None, {}
        return directory, {c: (f, p) for c, f, p in conn.execute("SELECT cadre_id, fingerprint, part FROM cadres")}
    except sqlite3.Error:  # a file from before fingerprints: everyone is recomputed
        return None, {}
    finally:
        conn.close()


def _tasks(ids: Sequence[str], block_size: int, previous: dict[str, tuple[str, int]],
           choices_of: Callable[[str], tuple[Any, ...]] | None) -> list[BlockTask]:
    tasks = []
    for number, start in enumerate(range(0, len(ids), block_size)):
        block = tuple(ids[start:start + block_size])
        chosen = {c: found for c in block if (found := choices_of(c))} if choices_of is not None else {}
        tasks.append(BlockTask(number, block, {c: previous[c] for c in block if c in previous}, chosen))
    return tasks


def _ingest(conn: sqlite3.Connection, out: Path, result: BlockResult) -> None:
    """Copy one finished block's Parquet parts into the SQLite read view."""
    for name in ("suggestions", "gaps", "cadres"):
        table = pq.read_table(part_path(out, name, result.number), schema=TABLES[name])
        columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
        if name == "cadres":
            conn.executemany("INSERT INTO cadres VALUES (?,?,?)", ((c, f, result.number) for c, f, _ in zip(*columns)))
        else:
            marks = ",".join("?" * table.num_columns)
            conn.executemany(f"INSERT INTO {name} VALUES ({marks})", zip(*columns))


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
    address: str | None = None,
    engine: str = "auto",
    block_size: int = BLOCK_SIZE,
    incremental: bool = True,
) -> BatchSummary:
    """Recommend for every cadre (or the given ones) and store the results atomically at ``path``.

    ``workers`` processes of a local Dask cluster, or the cluster at ``address`` (default ``GANXUN_BATCH_ADDRESS``);
    ``store_factory`` opens the store in a worker (default: the same SQLite file, or the configured back end).  With
    ``incremental`` only cadres whose fingerprint changed since the last run at ``path`` are recomputed.
    ``on_progress(done, total)`` is told after each block is stored, for a job's progress bar."""
    if not 1 <= k <= 200:
        raise InvalidRequest(f"k（每人推荐条数）应在 1 到 200 之间，实际为 {k}")
    if workers < 1:
        raise InvalidRequest(f"workers（并行进程数）应为正整数，实际为 {workers}")
    if block_size < 1:
        raise InvalidRequest(f"block_size（每块干部数）应为正整数，实际为 {block_size}")
    if engine not in ENGINES:
        raise InvalidRequest(f"engine（执行方式）应为 {'、'.join(ENGINES)}，实际为『{engine}』")
    address = batch_address(address)
    if engine == "auto":
        engine = "dask" if address is not None or workers > 1 else "inline"
    day = recommender.today(today)
    ids = sorted(set(cadre_ids) if cadre_ids is not None else (n.id for n in recommender.store.nodes("Cadre")))
    path = path or batch_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    key = run_key(recommender, day, k)
    before, previous = _previous(path, key) if incremental else (None, {})
    out = _parquet_root(path) / f"{dt.datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    out.mkdir(parents=True)
    plan = BatchPlan(k, day, key, str(out), str(before) if before is not None else None)
    choices = recommender.choices
    tasks = _tasks(ids, block_size, previous, choices.of if choices is not None else None)
    tmp = path.with_name(f".{path.name}.{out.name}.tmp")  # per run: two runs in one process (API jobs) never share it
    n_suggestions = n_done = n_computed = 0
    conn = sqlite3.connect(tmp)
    try:
        conn.executescript(_SCHEMA)
        with tqdm(total=len(ids), desc="批量推荐", unit="人", disable=not progress) as bar:
            for result in _blocks(recommender, plan, tasks, engine, workers, address, store_factory):
                _ingest(conn, out, result)
                n_suggestions += result.suggestions
                n_computed += result.computed
                n_done += result.cadres
                bar.update(result.cadres)
                if on_progress is not None:
                    on_progress(n_done, len(ids))
        seconds = time.perf_counter() - started
        meta = {"today": day.isoformat(), "k": k, "cadres": len(ids), "created": dt.datetime.now().isoformat(timespec="seconds"),
                "run_key": key, "parquet": str(out.relative_to(path.parent)), "computed": n_computed,
                "carried": n_done - n_computed, "engine": engine}
        conn.executemany("INSERT INTO meta VALUES (?, ?)", [(name, json.dumps(v)) for name, v in meta.items()])
        conn.commit()
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        shutil.rmtree(out, ignore_errors=True)
        raise
    conn.close()
    replaced = _stored_parquet(path)
    tmp.replace(path)
    if replaced is not None and replaced != out:
        (replaced / SUPERSEDED).touch()
    for old in _parquet_root(path).iterdir():  # only superseded runs: one still running beside this one is unmarked
        if old != out and (old / SUPERSEDED).exists():
            shutil.rmtree(old, ignore_errors=True)
    return BatchSummary(path, day, k, len(ids), n_suggestions, seconds, n_computed, n_done - n_computed, out, engine,
                        workers if engine == "dask" and address is None else 1)


def _blocks(recommender: Recommender, plan: BatchPlan, tasks: Sequence[BlockTask], engine: str, workers: int,
            address: str | None, store_factory: Callable[[], Store] | None) -> Iterator[BlockResult]:
    if engine == "inline":
        for task in tasks:
            yield run_block(recommender, plan, task)
        return
    from recommender.batch.engine import dask_blocks, store_opener

    yield from dask_blocks(recommender, plan, tasks, workers=workers, address=address,
                           open_store=store_factory or store_opener(recommender.store))


def batch_parquet(path: Path | None = None) -> Path:
    """The Parquet directory of the run stored at ``path`` (``suggestions/``, ``gaps/``, ``cadres/``, one file per
    block), for readers that take a dataset: pyarrow, pandas, DuckDB, Spark."""
    conn = _read(path or batch_path())
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'parquet'").fetchone()
    finally:
        conn.close()
    if row is None:
        raise FileNotFoundError(f"批量推荐结果 {path} 没有 Parquet 目录；请重新运行 python -m recommender batch")
    return (path or batch_path()).parent / json.loads(row[0])


def _stored_parquet(path: Path) -> Path | None:
    """The Parquet directory the file at ``path`` names now (None when there is none): the run a new one replaces."""
    try:
        directory = batch_parquet(path)
    except (FileNotFoundError, sqlite3.Error):
        return None
    return directory if directory.is_dir() else None


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
