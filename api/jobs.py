"""Long jobs (re-indexing, Neo4j sync, batch recommendations, exports…) shared by every worker process.

Following huey's habit, a job's state, progress, result and error live in storage, not in a process: one
SQLite table (``$GANXUN_HOME/jobs.db`` by default, WAL, busy timeout) that every gunicorn worker opens, so
whichever worker a poll reaches answers ``GET /api/admin/jobs/<id>`` and the list.  The work itself is a
plain function ``work(progress) -> result`` that runs in a thread of the worker that accepted the job and
writes its progress to the table (throttled, plus the final report).

Why a table of our own and not huey with its SqliteStorage: huey keeps a queue and results, but what the
service needs besides — progress while a job runs, who started it, one job of a kind at a time across
workers, and jobs whose process died — would be a table beside huey's anyway, and huey would add a consumer
process that every deployment must start and keep alive.  A thread in the accepting worker needs nothing
started beside gunicorn.

Guarantees, all enforced in the database, none in a process:

- *One job of a kind at a time*: ``submit`` checks and inserts in one ``BEGIN IMMEDIATE`` transaction, and
  a partial unique index (``kind WHERE state = 'running'``) makes a second running row impossible.  A busy
  kind raises :class:`JobBusy`, which carries the running job.
- *Idempotent submission*: a ``key`` names the work; submitting the same kind and key again while that job
  runs, or after it succeeded, returns that job instead of starting another (a failed one is tried again).
- *Dead workers*: the running thread's process beats a heartbeat every quarter of ``stale_seconds``; a
  running job whose heartbeat is older than that is marked failed ("执行该任务的进程已退出") by whichever
  worker reads it next, so a crash never leaves "运行中" forever and the kind is free again.

Large results (a Turtle export) are files: ``work`` writes under :meth:`Jobs.output_path` (inside
``GANXUN_HOME``, which every worker shares) and returns that path; any worker then serves it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from kg.sqlite import immediate, private_file

__all__ = ["DEAD_WORKER", "Job", "JobBusy", "Jobs", "Progress", "STATES", "Work", "beijing_time", "init_app", "jobs"]

log = logging.getLogger(__name__)

#: ``progress(done, total, message)``: how far the work is; called from its own loop.
Progress = Callable[[int, int, str], None]
#: A job's work: returns a JSON-able mapping, or the path of a file it wrote under :meth:`Jobs.output_path`.
Work = Callable[[Progress], "dict[str, Any] | Path | None"]

STATES = {"running": "运行中", "done": "已完成", "failed": "失败"}
DEAD_WORKER = "执行该任务的进程已退出"
#: Attempts at writing a finished job's outcome, each waiting up to the busy timeout for the write lock.
FINISH_ATTEMPTS = 5
#: Times are stored in UTC; pages show them in 北京时间 (UTC+8 all year: China keeps no daylight saving).
LOCAL_TIME = dt.timezone(dt.timedelta(hours=8), "北京时间")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT,
    state TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    done INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    message TEXT NOT NULL,
    result TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    file TEXT,
    started_by TEXT,
    worker TEXT NOT NULL,
    started TEXT NOT NULL,
    heartbeat REAL NOT NULL,
    finished TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_one_running ON jobs(kind) WHERE state = 'running';
CREATE INDEX IF NOT EXISTS jobs_kind_key ON jobs(kind, key);
"""
_COLUMNS = "id, kind, key, state, done, total, message, result, error, file, started_by, worker, started, finished"


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def beijing_time(stamp: str | None) -> str | None:
    """An ISO UTC stamp as 北京时间 for people: ``2026-01-05 14:03:12``."""
    if stamp is None:
        return None
    return dt.datetime.fromisoformat(stamp).astimezone(LOCAL_TIME).strftime("%Y-%m-%d %H:%M:%S")


class JobBusy(RuntimeError):
    """A job of this kind is already running; ``job`` is that job."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"同类任务「{job.kind}」正在运行（任务 {job.id}）")
        self.job = job


@dataclass(frozen=True)
class Job:
    """One row of the jobs table, as read at one moment."""

    id: int
    kind: str
    key: str | None
    state: str
    done: int
    total: int
    message: str
    result: dict[str, Any]
    error: str | None
    file: str | None  # relative to GANXUN_HOME
    started_by: str | None
    worker: str
    started: str
    finished: str | None

    @classmethod
    def _from_row(cls, row: tuple[Any, ...]) -> Job:
        values = list(row)
        values[7] = json.loads(values[7])
        return cls(*values)

    @property
    def state_name(self) -> str:
        return STATES[self.state]

    @property
    def percent(self) -> float:
        if self.total:
            return round(100 * min(self.done, self.total) / self.total, 1)
        return 100.0 if self.state == "done" else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "key": self.key,
            "state": self.state,
            "state_name": self.state_name,
            "done": self.done,
            "total": self.total,
            "percent": self.percent,
            "message": self.message,
            "result": self.result,
            "error": self.error,
            "file": Path(self.file).name if self.file else None,
            "started_by": self.started_by,
            "worker": self.worker,
            "started": self.started,
            "started_local": beijing_time(self.started),
            "finished": self.finished,
            "finished_local": beijing_time(self.finished),
        }


class _Live:
    """The running job's latest report inside its own process, written out by ``flush``."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.done, self.total, self.message = 0, 0, "排队中"
        self.written = 0.0  # monotonic time of the last write
        self.lock = threading.Lock()


class Jobs:
    """The jobs table at ``path``; any number of ``Jobs`` objects (one per worker process) may share it.

    ``home`` is where result files go (``home/jobs/``); ``stale_seconds`` is how long a running job may go
    without a heartbeat before it counts as dead; ``progress_seconds`` is the least time between two progress
    writes of one job (the final report is always written); ``app``, when given, is entered around each work
    function so it may use ``current_app`` and the app's extensions.
    """

    def __init__(
        self,
        path: Path,
        *,
        home: Path | None = None,
        stale_seconds: float = 60.0,
        progress_seconds: float = 0.2,
        busy_seconds: float = 30.0,
        app: Flask | None = None,
    ) -> None:
        if stale_seconds <= 0:
            raise ValueError(f"stale_seconds（心跳超时秒数）应为正数，实际为 {stale_seconds}")
        self.path = Path(path)
        self.home = Path(home) if home is not None else self.path.parent
        self.stale_seconds = stale_seconds
        self.progress_seconds = progress_seconds
        self.busy_seconds = busy_seconds
        self._app = app
        self.path.parent.mkdir(parents=True, exist_ok=True)
        private_file(self.path)  # results can hold personal data (a batch of recommendations)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # persistent: set once for the file
            conn.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for one operation: nothing is held across requests, threads or a fork."""
        conn = sqlite3.connect(self.path, timeout=self.busy_seconds, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE``: the write lock is taken before the first read, so check-then-insert is atomic."""
        with self._connect() as conn, immediate(conn):
            yield conn

    @staticmethod
    def _one(conn: sqlite3.Connection, where: str, params: tuple[Any, ...]) -> Job | None:
        row = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE {where} ORDER BY id DESC LIMIT 1", params).fetchone()
        return Job._from_row(row) if row else None

    def _reap(self, conn: sqlite3.Connection) -> None:
        """Mark running jobs whose heartbeat stopped as failed (their process is gone)."""
        limit = time.time() - self.stale_seconds
        if conn.execute("SELECT 1 FROM jobs WHERE state = 'running' AND heartbeat < ? LIMIT 1", (limit,)).fetchone():
            conn.execute("UPDATE jobs SET state = 'failed', message = ?, error = ?, finished = ? "
                         "WHERE state = 'running' AND heartbeat < ?",
                         (f"失败：{DEAD_WORKER}", DEAD_WORKER, _utc_now(), limit))

    # ─── reading ───
    def get(self, job_id: int) -> Job | None:
        """The job ``job_id`` as stored now (None when there is none)."""
        with self._connect() as conn:
            self._reap(conn)
            return self._one(conn, "id = ?", (job_id,))

    def latest(self, kind: str) -> Job | None:
        """The newest job of ``kind`` (running, done or failed), or None."""
        with self._connect() as conn:
            self._reap(conn)
            return self._one(conn, "kind = ?", (kind,))

    def recent(self, limit: int = 50) -> list[Job]:
        """The newest ``limit`` jobs, newest first."""
        with self._connect() as conn:
            self._reap(conn)
            rows = conn.execute(f"SELECT {_COLUMNS} FROM jobs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [Job._from_row(r) for r in rows]

    def output_path(self, kind: str, suffix: str) -> Path:
        """A fresh file path under ``home/jobs/`` for a work function's large output (e.g. ``.ttl``)."""
        folder = self.home / "jobs"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
        safe = "".join(c if c.isalnum() else "-" for c in kind)
        return folder / f"{safe}-{stamp}-{os.getpid()}-{threading.get_ident()}{suffix}"

    def file_of(self, job: Job) -> Path | None:
        """The result file of ``job`` on this machine, when it has one that still exists."""
        if job.file is None:
            return None
        path = self.home / job.file
        return path if path.is_file() else None

    # ─── running ───
    def submit(self, kind: str, work: Work, *, key: str | None = None, user: str | None = None) -> Job:
        """Start ``work`` as a job of ``kind`` in a thread of this process and return it as stored.

        Raises :class:`JobBusy` when a job of ``kind`` is running (in any process) — unless it has the same
        ``key``: a job of the same kind and key that runs or succeeded is returned as it is, nothing started.
        For example ``jobs().submit("整图导出", work, key=f"turtle:v{version}", user=name)`` exports each graph
        version once, however many workers are asked for it.
        """
        with self._transaction() as conn:
            self._reap(conn)
            if key is not None:
                same = self._one(conn, "kind = ? AND key = ? AND state IN ('running', 'done')", (kind, key))
                if same is not None and (same.file is None or self.file_of(same) is not None):
                    return same  # (a done job whose file has since been deleted is run again)
            running = self._one(conn, "kind = ? AND state = 'running'", (kind,))
            if running is not None:
                raise JobBusy(running)
            cur = conn.execute(
                "INSERT INTO jobs(kind, key, state, message, started_by, worker, started, heartbeat) "
                "VALUES (?, ?, 'running', '排队中', ?, ?, ?, ?)",
                (kind, key, user, f"{socket.gethostname()}:{os.getpid()}", _utc_now(), time.time()))
            job = self._one(conn, "id = ?", (cur.lastrowid,))
        assert job is not None
        threading.Thread(target=self._run, args=(job, work), name=f"ganxun-job-{job.id}", daemon=True).start()
        return job

    def _flush(self, live: _Live) -> None:
        """Write the latest report and a heartbeat (only while the row is still running).

        A write that fails (the database locked past the busy timeout) is logged, not raised into the work:
        the next report or heartbeat carries the same values."""
        with live.lock:
            values = (live.done, live.total, live.message, time.time(), live.job_id)
            live.written = time.monotonic()
        try:
            with self._connect() as conn:
                conn.execute("UPDATE jobs SET done = ?, total = ?, message = ?, heartbeat = ? "
                             "WHERE id = ? AND state = 'running'", values)
        except sqlite3.Error:
            log.warning("任务 %s 的进度未能写入", live.job_id, exc_info=True)

    def _beat(self, live: _Live, stop: threading.Event) -> None:
        while not stop.wait(self.stale_seconds / 4):
            self._flush(live)

    def _result(self, out: dict[str, Any] | Path | None) -> tuple[str, str | None]:
        """The result as stored: JSON text, and a file path relative to ``home`` for a file result."""
        if isinstance(out, Path):
            path = out.resolve()
            if not path.is_relative_to(self.home.resolve()) or not path.is_file():
                raise ValueError(f"结果文件应是 GANXUN_HOME（{self.home}）下已写好的文件：{out}")
            return json.dumps({"file": path.name, "bytes": path.stat().st_size}), str(path.relative_to(self.home.resolve()))
        try:
            return json.dumps(out or {}, ensure_ascii=False), None
        except TypeError as exc:
            raise ValueError(f"任务结果无法保存为 JSON：{exc}") from exc

    def _run(self, job: Job, work: Work) -> None:
        live = _Live(job.id)
        stop = threading.Event()
        threading.Thread(target=self._beat, args=(live, stop), name=f"ganxun-job-{job.id}-beat", daemon=True).start()

        def progress(done: int, total: int, message: str) -> None:
            with live.lock:
                live.done, live.total, live.message = int(done), int(total), message
                due = time.monotonic() - live.written >= self.progress_seconds
            if due:
                self._flush(live)

        try:
            if self._app is not None:
                with self._app.app_context():
                    out = work(progress)
            else:
                out = work(progress)
            result, file = self._result(out)
            state, message, error = "done", (live.message if live.message != "排队中" else "完成"), None
        except Exception as exc:  # the job's failure is reported to whoever polls, not raised in a thread
            log.exception("任务 %s（%s）失败", job.id, job.kind)
            result, file, state, message, error = "{}", None, "failed", f"失败：{exc}", str(exc)
        try:
            self._finish(live, state, message, result, error, file)
        finally:
            stop.set()

    def _finish(self, live: _Live, state: str, message: str, result: str, error: str | None, file: str | None) -> None:
        """Write a job's outcome, trying up to :data:`FINISH_ATTEMPTS` times (each within the busy timeout) while
        the heartbeat goes on — the caller stops it after — so a database locked for a while does not leave a
        finished job to be reaped later as failed.  Should every attempt fail, it is logged and the reaper marks
        the job failed once its heartbeat is stale."""
        for attempt in range(1, FINISH_ATTEMPTS + 1):
            try:
                with self._connect() as conn:
                    finished = conn.execute(
                        "UPDATE jobs SET state = ?, done = ?, total = ?, message = ?, result = ?, error = ?, "
                        "file = ?, finished = ?, heartbeat = ? WHERE id = ? AND state = 'running'",
                        (state, live.done, live.total, message, result, error, file, _utc_now(), time.time(),
                         live.job_id))
            except sqlite3.Error:
                log.warning("任务 %s 的结果第 %s 次未能写入", live.job_id, attempt, exc_info=True)
                continue
            if finished.rowcount == 0:
                log.warning("任务 %s 结束时已被标记为失败（心跳超时），结果未保存", live.job_id)
            return
        log.error("任务 %s 的结果 %s 次均未能写入，将被标记为失败", live.job_id, FINISH_ATTEMPTS)


def init_app(app: Flask) -> None:
    """One :class:`Jobs` per app, on ``JOBS_DB`` (default ``$GANXUN_HOME/jobs.db``); heartbeat limit
    ``JOBS_STALE_SECONDS`` (``GANXUN_JOB_STALE_SECONDS``, default 60), progress throttle
    ``JOBS_PROGRESS_SECONDS`` (default 0.2)."""
    home = Path(app.config["SETTINGS"].home)
    env = os.environ
    app.extensions["ganxun.jobs"] = Jobs(
        Path(app.config.get("JOBS_DB") or env.get("GANXUN_JOBS_DB") or home / "jobs.db"),
        home=home,
        stale_seconds=float(app.config.get("JOBS_STALE_SECONDS") or env.get("GANXUN_JOB_STALE_SECONDS") or 60),
        progress_seconds=float(app.config.get("JOBS_PROGRESS_SECONDS", 0.2)),
        app=app,
    )


def jobs() -> Jobs:
    """The current app's jobs."""
    return current_app.extensions["ganxun.jobs"]
