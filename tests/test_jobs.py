"""Jobs shared by worker processes through one SQLite table (``api.jobs``): two ``Jobs`` objects on the same
database stand for two gunicorn workers, a killed subprocess for a worker that died, and two apps on the same
``GANXUN_HOME`` for two workers of the service.  Real SQLite throughout; nothing about the storage is mocked."""

from __future__ import annotations

import io
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from api.jobs import DEAD_WORKER, Job, JobBusy, Jobs
from tests.test_api_admin import NEW_COURSE
from tests.test_api_support import (  # noqa: F401  (fixtures)
    PASSWORD, app, app_config, bearer, index_dir, template_home, with_csrf_client,
)

ROOT = Path(__file__).resolve().parents[1]


def _until(read, ready, what: str, limit: float = 120.0):
    """Poll ``read()`` until ``ready(value)``; the limit only keeps a broken build from hanging the suite."""
    deadline = time.monotonic() + limit
    while not ready(value := read()):
        assert time.monotonic() < deadline, f"等待超时：{what}（最后一次：{value}）"
        time.sleep(0.02)
    return value


class Held:
    """A work function that reports some progress, then waits until released (or fails when told to)."""

    def __init__(self, done: int = 3, total: int = 10, fail: bool = False) -> None:
        self.release = threading.Event()
        self.calls = 0
        self.done, self.total, self.fail = done, total, fail

    def __call__(self, progress):
        self.calls += 1
        progress(self.done, self.total, f"已处理 {self.done} / {self.total}")
        self.release.wait(60)
        if self.fail:
            raise RuntimeError("故意失败")
        progress(self.total, self.total, "处理完毕")
        return {"items": self.total}


@pytest.fixture
def workers(tmp_path):
    """Two "workers": two Jobs objects on one database."""
    path = tmp_path / "jobs.db"
    return Jobs(path, progress_seconds=0), Jobs(path, progress_seconds=0)


def record_progress(db: Path) -> None:
    """Log every progress write to the jobs table at ``db`` (a trigger in the real database, so the test sees
    each write the job made, however fast it ran)."""
    with sqlite3.connect(db) as conn:
        conn.executescript("""
            CREATE TABLE progress_log (job INTEGER, done INTEGER, total INTEGER);
            CREATE TRIGGER log_progress AFTER UPDATE OF done, total ON jobs
            BEGIN INSERT INTO progress_log VALUES (new.id, new.done, new.total); END;
        """)


def assert_progress_rises_to_total(db: Path, job_id: int, intermediate: int) -> list[tuple[int, int]]:
    """The job's progress writes never go back, end at their total, and include ``intermediate`` distinct
    values strictly between start and end."""
    with sqlite3.connect(db) as conn:
        log = conn.execute("SELECT done, total FROM progress_log WHERE job = ? ORDER BY rowid", (job_id,)).fetchall()
    dones = [d for d, _ in log]
    assert dones == sorted(dones), log
    total = log[-1][1]
    assert total > 0 and log[-1] == (total, total), log
    assert len({d for d, t in log if 0 < d < t}) >= intermediate, f"进度只有开始与结束：{log}"
    return log


def _finished(jobs: Jobs, job_id: int) -> Job:
    return _until(lambda: jobs.get(job_id), lambda j: j.state != "running", f"任务 {job_id} 结束")


def test_a_job_started_by_one_worker_is_seen_with_its_progress_by_the_other(workers) -> None:
    first, second = workers
    work = Held()
    job = first.submit("重建索引", work, user="admin")
    seen = _until(lambda: second.get(job.id), lambda j: j.done == 3, "进度写入")
    assert (seen.state, seen.state_name, seen.total, seen.percent, seen.started_by) == ("running", "运行中", 10, 30.0, "admin")
    assert [j.id for j in second.recent()] == [job.id] and second.latest("重建索引").id == job.id
    work.release.set()
    done = _finished(second, job.id)
    assert (done.state, done.done, done.total, done.result, done.message) == ("done", 10, 10, {"items": 10}, "处理完毕")
    assert done.finished is not None and done.to_dict()["finished_local"] is not None
    assert second.get(job.id + 1) is None


def test_one_job_of_a_kind_at_a_time_across_workers(workers) -> None:
    first, second = workers
    work = Held()
    job = first.submit("批量推荐", work)
    with pytest.raises(JobBusy) as busy:
        second.submit("批量推荐", Held())
    assert busy.value.job.id == job.id and str(job.id) in str(busy.value)
    other = second.submit("Neo4j 同步", lambda progress: {"ok": True})  # another kind is not blocked
    assert _finished(first, other.id).state == "done"
    work.release.set()
    _finished(second, job.id)
    again = second.submit("批量推荐", lambda progress: {})
    assert again.id != job.id and _finished(first, again.id).state == "done"


def test_concurrent_submissions_start_exactly_one(tmp_path) -> None:
    """Eight workers submit the same kind at the same moment: the database lets exactly one through."""
    path = tmp_path / "jobs.db"
    registries = [Jobs(path) for _ in range(8)]
    barrier = threading.Barrier(len(registries))
    work = Held()
    outcomes: list[int | str] = []

    def submit(jobs: Jobs) -> None:
        barrier.wait()
        try:
            outcomes.append(jobs.submit("重建索引", work).id)
        except JobBusy as exc:
            outcomes.append(f"busy:{exc.job.id}")

    threads = [threading.Thread(target=submit, args=(r,)) for r in registries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    started = [o for o in outcomes if isinstance(o, int)]
    assert len(started) == 1 and outcomes.count(f"busy:{started[0]}") == 7
    _until(lambda: work.calls, lambda n: n == 1, "工作函数开始")
    work.release.set()
    assert _finished(registries[0], started[0]).state == "done" and work.calls == 1


def test_a_second_submit_with_the_same_key_is_a_no_op(workers) -> None:
    first, second = workers
    work, twin = Held(), Held()
    job = first.submit("整图导出", work, key="turtle@7")
    assert second.submit("整图导出", twin, key="turtle@7").id == job.id
    with pytest.raises(JobBusy):
        second.submit("整图导出", twin, key="turtle@8")
    work.release.set()
    _finished(first, job.id)
    assert second.submit("整图导出", twin, key="turtle@7").id == job.id  # done: the same result stands
    assert twin.calls == 0
    failing = Held(fail=True)
    failing.release.set()
    failed = _finished(first, second.submit("整图导出", failing, key="turtle@9").id)
    assert failed.state == "failed" and failed.message == "失败：故意失败" and failed.error == "故意失败"
    retried = second.submit("整图导出", lambda progress: {}, key="turtle@9")  # a failed one is tried again
    assert retried.id != failed.id and _finished(first, retried.id).state == "done"


def test_a_job_whose_worker_died_is_reported_failed_and_frees_its_kind(tmp_path) -> None:
    """A real worker process runs a job, then is killed: its heartbeat stops and the other worker reports it."""
    path = tmp_path / "jobs.db"
    script = textwrap.dedent(f"""
        import sys, threading
        sys.path.insert(0, {str(ROOT)!r})
        from api.jobs import Jobs
        jobs = Jobs({str(path)!r}, stale_seconds=1, progress_seconds=0)
        job = jobs.submit("Neo4j 同步", lambda progress: (progress(5, 50, "写入中"), threading.Event().wait()))
        print(job.id, flush=True)
        threading.Event().wait()
    """)
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        job_id = int(worker.stdout.readline())
        survivor = Jobs(path, stale_seconds=1)
        _until(lambda: survivor.get(job_id), lambda j: j.done == 5, "进度写入")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    dead = _until(lambda: survivor.get(job_id), lambda j: j.state != "running", "心跳超时")
    assert (dead.state, dead.state_name, dead.error) == ("failed", "失败", DEAD_WORKER)
    assert DEAD_WORKER in dead.message and dead.done == 5 and dead.finished is not None
    fresh = survivor.submit("Neo4j 同步", lambda progress: {"ok": True})
    assert _finished(survivor, fresh.id).result == {"ok": True}


def test_one_running_row_per_kind_is_a_database_constraint(workers) -> None:
    """Even a writer that skips ``submit`` cannot store a second running job of a kind."""
    first, _ = workers
    work = Held()
    job = first.submit("重建索引", work)
    with sqlite3.connect(first.path) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO jobs(kind, state, message, worker, started, heartbeat) "
                     "VALUES ('重建索引', 'running', '', 'x', '2026-01-01T00:00:00+00:00', 0)")
    work.release.set()
    _finished(first, job.id)


def test_a_result_that_is_not_json_fails_the_job_with_the_reason(workers) -> None:
    first, _ = workers
    job = _finished(first, first.submit("坏结果", lambda progress: {"when": object()}).id)
    assert job.state == "failed" and "JSON" in job.message


def test_a_done_job_whose_file_is_gone_runs_again_and_files_stay_under_home(tmp_path) -> None:
    jobs = Jobs(tmp_path / "jobs.db", home=tmp_path / "home")

    def export(progress):
        path = jobs.output_path("整图导出", ".ttl")
        path.write_text("<urn:a> <urn:b> <urn:c> .\n", encoding="utf-8")
        return path

    first = _finished(jobs, jobs.submit("整图导出", export, key="v1").id)
    assert jobs.submit("整图导出", export, key="v1").id == first.id
    jobs.file_of(first).unlink()
    again = _finished(jobs, jobs.submit("整图导出", export, key="v1").id)
    assert again.id != first.id and again.state == "done" and jobs.file_of(again) is not None
    outside = tmp_path / "elsewhere.ttl"
    outside.write_text("x")
    stray = _finished(jobs, jobs.submit("整图导出", lambda progress: outside).id)
    assert stray.state == "failed" and "GANXUN_HOME" in stray.message


def test_a_finished_job_is_saved_although_the_database_was_locked_as_it_ended(tmp_path, caplog) -> None:
    """The outcome's write is retried: a lock held past one busy timeout does not leave a successful job to be
    reaped later as failed."""
    jobs = Jobs(tmp_path / "jobs.db", busy_seconds=0.5, progress_seconds=0)
    work = Held()
    job = jobs.submit("批量推荐", work)
    _until(lambda: jobs.get(job.id).done, lambda done: done == 3, "首次进度")
    caplog.set_level("WARNING", logger="api.jobs")
    locker = sqlite3.connect(jobs.path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    work.release.set()
    _until(lambda: [r for r in caplog.records if "结果第 1 次未能写入" in r.getMessage()], bool, "首次写入失败")
    locker.execute("ROLLBACK")
    locker.close()
    done = _finished(jobs, job.id)
    assert (done.state, done.result, done.done) == ("done", {"items": 10}, 10)


# ─── through the service: two workers of the app on one GANXUN_HOME ───
@pytest.fixture
def twin(app):
    """A second app (another gunicorn worker) on the first one's home."""
    from api import create_app

    other = with_csrf_client(create_app(app_config(Path(app.config["ACCOUNTS_DB"]).parent, Path(app.config["INDEX_DIR"]))))
    yield other
    other.extensions["ganxun.graph"].close()


def test_a_running_job_answers_409_from_another_worker_and_disables_its_button(app, twin) -> None:
    from api.jobs import jobs

    work = Held()
    with app.app_context():
        job = jobs().submit("重建索引", work, user="admin")
    client = twin.test_client()
    header = bearer(twin, "admin")
    refused = client.post("/api/admin/reindex", json={}, headers=header)
    assert refused.status_code == 409 and f"任务 {job.id}" in refused.json["错误"]
    assert str(job.id) in refused.json["字段"]["kind"][0]
    deadline = time.monotonic() + 30  # the job's thread reports its first progress soon after it starts
    while (seen := client.get(f"/api/admin/jobs/{job.id}", headers=header).json)["done"] != 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen["done"] == 3 and seen["state"] == "running"
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    page = client.get("/admin/jobs").get_data(as_text=True)
    assert '<button id="reindex" disabled>' in page and '<button id="batch">' in page
    work.release.set()
    assert _finished(twin.extensions["ganxun.jobs"], job.id).state == "done"
    assert '<button id="reindex">' in client.get("/admin/jobs").get_data(as_text=True)


def test_a_file_result_is_served_by_any_worker(app, twin) -> None:
    from api.jobs import jobs

    def export(progress):
        path = jobs().output_path("整图导出", ".ttl")
        path.write_text("<urn:a> <urn:b> <urn:c> .\n", encoding="utf-8")
        progress(1, 1, "已导出")
        return path

    with app.app_context():
        job = jobs().submit("整图导出", export, user="admin")
        plain = jobs().submit("小任务", lambda progress: {"n": 1})
    registry = twin.extensions["ganxun.jobs"]
    done = _finished(registry, job.id)
    assert done.state == "done" and done.result["bytes"] == 26 and done.to_dict()["file"].endswith(".ttl")
    client, header = twin.test_client(), bearer(twin, "admin")
    download = client.get(f"/api/admin/jobs/{job.id}/file", headers=header)
    assert download.status_code == 200 and download.data == b"<urn:a> <urn:b> <urn:c> .\n"
    assert "attachment" in download.headers["Content-Disposition"]
    _finished(registry, plain.id)
    assert client.get(f"/api/admin/jobs/{plain.id}/file", headers=header).status_code == 404
    assert client.get("/api/admin/jobs/999/file", headers=header).status_code == 404
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    page = client.get("/admin/jobs").get_data(as_text=True)
    assert f'href="/api/admin/jobs/{job.id}/file"' in page  # the finished export's file, from the jobs page
    assert f'href="/api/admin/jobs/{plain.id}/file"' not in page
    assert "<td>系统（自动）</td>" in page and "<td>None</td>" not in page  # the plain job was started by no user


def test_reindex_progress_rises_batch_by_batch_to_its_total(template_home, tmp_path) -> None:
    """A real re-index of a small world — the fixture catalogue plus 150 courses imported through the API, so
    the encoder runs several batches: progress comes from ``SearchService.update``'s callback, batch by batch,
    up to its total."""
    from api import create_app

    home = tmp_path / "home"
    shutil.copytree(template_home, home)
    app = create_app(app_config(home, tmp_path / "index", JOBS_PROGRESS_SECONDS=0))
    client, header = app.test_client(), bearer(app, "admin")
    courses = [{**NEW_COURSE, "id": f"course:t-batch-{i:03d}", "name": f"基层治理专题第 {i} 讲",
                "description": f"第 {i} 讲介绍基层治理中第 {i} 个社区的网格化管理与协商议事做法。"} for i in range(150)]
    body = "\n".join(json.dumps(c, ensure_ascii=False) for c in courses).encode()
    try:
        imported = client.post("/api/admin/import", headers=header, content_type="multipart/form-data",
                               data={"files": (io.BytesIO(body), "courses.jsonl")})
        assert imported.status_code == 201, imported.json
        record_progress(home / "jobs.db")
        started = client.post("/api/admin/reindex", json={}, headers=header)
        assert started.status_code == 202, started.json
        job = _until(lambda: app.extensions["ganxun.jobs"].get(started.json["id"]), lambda j: j.state != "running",
                     "重建索引结束", limit=900)
        assert job.state == "done" and job.percent == 100.0, job
        log = assert_progress_rises_to_total(home / "jobs.db", job.id, intermediate=2)
        assert log[-1][1] >= 156  # every document of the small world was counted
    finally:
        app.extensions["ganxun.graph"].close()


def test_the_index_update_after_a_change_and_the_admins_reindex_are_one_kind_of_job(app) -> None:
    """Whichever runs, the other waits: the admin's answers 409 (above), the automatic one does nothing."""
    from api.admin import JOB_KINDS
    from api.jobs import jobs
    from api.services import INDEX_JOB, submit_index_update

    assert JOB_KINDS["reindex"] == INDEX_JOB
    work = Held()
    with app.app_context():
        job = jobs().submit(INDEX_JOB, work, user="admin")
        assert submit_index_update() is None
        assert [j.id for j in jobs().recent() if j.kind == INDEX_JOB] == [job.id]
    work.release.set()
    assert _finished(app.extensions["ganxun.jobs"], job.id).state == "done"


def test_shared_work_is_submitted_once_per_worker_and_again_only_after_a_pause_when_it_failed(app,
                                                                                             monkeypatch) -> None:
    """While its job runs, a request only reads the job's row (no write transaction per request); a failed job
    is resubmitted after ``RETRY_AFTER_FAILURE`` seconds, not on the next request."""
    import api.services as services
    from api.jobs import jobs

    with app.app_context():
        services.readiness().state = "warming"  # a served worker: shared work runs as a job
        registry = jobs()
        submitted: list[str | None] = []
        real_submit = registry.submit
        monkeypatch.setattr(registry, "submit",
                            lambda kind, work, **kw: submitted.append(kw.get("key")) or real_submit(kind, work, **kw))
        work = Held()
        assert services.shared_result("学习需求", work, "day-1") is None
        assert services.shared_result("学习需求", work, "day-1") is None
        assert submitted == ["day-1"]
        work.release.set()
        _finished(registry, registry.latest("学习需求").id)
        assert services.shared_result("学习需求", work, "day-1") == {"items": 10} and submitted == ["day-1"]

        failing = Held(fail=True)
        failing.release.set()
        assert services.shared_result("学习需求", failing, "day-2") is None
        assert _finished(registry, registry.latest("学习需求").id).state == "failed"
        assert services.shared_result("学习需求", failing, "day-2") is None
        assert submitted == ["day-1", "day-2"]  # backing off
        monkeypatch.setattr(services, "RETRY_AFTER_FAILURE", 0.0)
        assert services.shared_result("学习需求", failing, "day-2") is None
        _finished(registry, registry.latest("学习需求").id)
        assert submitted == ["day-1", "day-2", "day-2"] and failing.calls == 2
