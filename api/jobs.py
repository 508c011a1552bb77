"""Long jobs (re-indexing, Neo4j sync) run in a background thread and report progress for polling.

A job function receives a ``progress(done, total, message)`` callback; ``GET /api/admin/jobs/<id>`` reads the
latest report.  One job of each kind at a time: starting a second while the first runs answers 409.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app

__all__ = ["Job", "JobBusy", "Jobs", "Progress", "init_app", "jobs"]

log = logging.getLogger(__name__)
Progress = Callable[[int, int, str], None]

STATES = {"running": "运行中", "done": "已完成", "failed": "失败"}


class JobBusy(RuntimeError):
    """A job of this kind is already running."""


@dataclass
class Job:
    id: int
    kind: str
    started_by: str | None
    state: str = "running"
    done: int = 0
    total: int = 0
    message: str = "排队中"
    result: dict[str, Any] = field(default_factory=dict)
    started: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    finished: str | None = None

    def to_dict(self) -> dict[str, Any]:
        percent = round(100 * self.done / self.total, 1) if self.total else (100.0 if self.state == "done" else 0.0)
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "state_name": STATES[self.state],
            "done": self.done,
            "total": self.total,
            "percent": percent,
            "message": self.message,
            "result": self.result,
            "started_by": self.started_by,
            "started": self.started,
            "finished": self.finished,
        }


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start(self, app: Flask, kind: str, user: str | None, work: Callable[[Progress], dict[str, Any]]) -> Job:
        """Run ``work`` in a daemon thread inside an app context; raise :class:`JobBusy` if ``kind`` is running."""
        with self._lock:
            if any(j.kind == kind and j.state == "running" for j in self._jobs.values()):
                raise JobBusy(kind)
            job = Job(next(self._ids), kind, user)
            self._jobs[job.id] = job

        def progress(done: int, total: int, message: str) -> None:
            job.done, job.total, job.message = done, total, message

        def run() -> None:
            with app.app_context():
                try:
                    job.result = work(progress) or {}
                    job.state, job.message = "done", job.message if job.message != "排队中" else "完成"
                except Exception as exc:  # the job's failure is reported to the poller, not raised
                    log.exception("任务 %s 失败", kind)
                    job.state, job.message = "failed", f"失败：{exc}"
                finally:
                    job.finished = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")

        threading.Thread(target=run, name=f"ganxun-{kind}-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: int) -> Job | None:
        return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: -j.id)


def init_app(app: Flask) -> None:
    app.extensions["ganxun.jobs"] = Jobs()


def jobs() -> Jobs:
    return current_app.extensions["ganxun.jobs"]
