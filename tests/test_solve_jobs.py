"""Long solves as jobs: POST /api/analytics/programme and /api/nominations/optimise answer at once when the solve
ends within SOLVE_WAIT_SECONDS, else 202 with the job; the polled job ends with the same answer, an identical
request while it runs is the same job, another user cannot read it, and the pages show 「正在求解…」.

The solver is the real one; a test that needs a solve still running when the second request arrives holds it
back with an event (the wrapper then calls the real solver), so "while it runs" is a fact, not a race."""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from tests.test_api_support import (  # noqa: F401  (fixtures)
    app, auth, bearer, client, index_dir, shared_app, shared_client, template_home,
)
from tests.test_browser import browser  # noqa: F401  (fixture: real Chromium)

PROGRAMME = {"institution": "inst:t-province-school", "class_type": "主体班", "total_hours": 5, "tolerance": 1}
NOMINATION = {"courses": 2, "textbooks": 1}
#: How long a poll loop may go on before the test gives up (a hang guard, not a timing assertion).
POLL_LIMIT_SECONDS = 120.0


def _untimed(result: dict[str, Any]) -> dict[str, Any]:
    """The answer without its solve time (the one field two runs of the same solve may differ in)."""
    return {k: v for k, v in result.items() if k != "求解用时秒"}


def _poll(http: Any, job_id: int, headers: dict[str, str]) -> dict[str, Any]:
    """The job once it is no longer running, read through the starter's route."""
    deadline = time.monotonic() + POLL_LIMIT_SECONDS
    while True:
        job = http.get(f"/api/analytics/jobs/{job_id}", headers=headers)
        assert job.status_code == 200, job.json
        if job.json["state"] != "running":
            return job.json
        assert time.monotonic() < deadline, f"任务 {job_id} 仍在运行：{job.json}"
        time.sleep(0.05)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Both real solvers wait for the returned event before they start; set on teardown in any case."""
    import recommender.analytics.nominations as nominations
    import recommender.analytics.programme as programme

    release = threading.Event()
    for module, name in ((programme, "build_programme"), (nominations, "optimise_nominations")):
        real = getattr(module, name)

        def waiting(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            assert release.wait(POLL_LIMIT_SECONDS), "求解一直未被放行"
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, waiting)
    yield release
    release.set()


@pytest.fixture
def waitless(app: Flask) -> Flask:
    app.config["SOLVE_WAIT_SECONDS"] = 0
    return app


@pytest.mark.parametrize(("url", "body", "role"), [
    ("/api/analytics/programme", PROGRAMME, "designer"),
    ("/api/nominations/optimise", NOMINATION, "evaluator"),
])
def test_waitless_solve_is_a_job_with_the_immediate_answer(waitless: Flask, held: threading.Event, shared_client,
                                                           shared_app: Flask, url: str, body: dict, role: str) -> None:
    client, headers = waitless.test_client(), bearer(waitless, role)
    first = client.post(url, json=body, headers=headers)
    assert first.status_code == 202, first.json
    job_id = first.json["id"]
    assert first.json["state"] == "running" and first.json["started_by"] == role
    assert f"/api/analytics/jobs/{job_id}" in first.json["说明"] and first.headers["Location"].endswith(f"/jobs/{job_id}")

    again = client.post(url, json=body, headers=headers)  # still held: the same job, nothing started
    assert again.status_code == 202 and again.json["id"] == job_id
    other = client.post(url, json={**body, "format": "csv"}, headers=headers)  # another format is another job
    assert other.status_code == 202 and other.json["id"] != job_id

    held.set()
    job = _poll(client, job_id, headers)
    assert job["state"] == "done", job
    immediate = shared_client.post(url, json=body, headers=bearer(shared_app, role))  # default wait, another jobs db
    assert immediate.status_code == 200
    assert _untimed(job["result"]) == _untimed(immediate.json)
    after = client.post(url, json=body, headers=headers)  # finished: the same job's answer, at once
    assert after.status_code == 200 and after.json == job["result"]


def test_waitless_csv_is_served_from_the_job_file(waitless: Flask) -> None:
    client, headers = waitless.test_client(), bearer(waitless, "designer")
    body = {**PROGRAMME, "format": "csv"}
    first = client.post("/api/analytics/programme", json=body, headers=headers)
    if first.status_code == 202:
        assert _poll(client, first.json["id"], headers)["file"].endswith(".csv")
        first = client.post("/api/analytics/programme", json=body, headers=headers)
    assert first.status_code == 200 and first.headers["Content-Disposition"] == 'attachment; filename="programme.csv"'
    rows = list(csv.reader(io.StringIO(first.data.decode("utf-8-sig"))))
    assert any("班次" in cell for row in rows for cell in row)


def test_only_the_starter_and_admins_read_a_solve_job(waitless: Flask, held: threading.Event) -> None:
    client = waitless.test_client()
    job = client.post("/api/analytics/programme", json=PROGRAMME, headers=bearer(waitless, "designer")).json
    assert client.get(f"/api/analytics/jobs/{job['id']}", headers=bearer(waitless, "evaluator")).status_code == 404
    assert client.get(f"/api/analytics/jobs/{job['id']}", headers=bearer(waitless, "admin")).json["id"] == job["id"]
    assert client.get(f"/api/analytics/jobs/{job['id']}", headers=bearer(waitless, "cadre1")).status_code == 403
    held.set()


def test_a_failed_solve_is_503_with_an_error_id(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    import recommender.analytics.programme as programme
    from recommender.analytics.errors import SolverError

    def stopped(*_: Any, **__: Any) -> Any:
        raise SolverError("HiGHS 在时间限制内未找到方案")

    monkeypatch.setattr(programme, "build_programme", stopped)
    answer = app.test_client().post("/api/analytics/programme", json=PROGRAMME, headers=bearer(app, "designer"))
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert "HiGHS 在时间限制内未找到方案" in answer.json["错误"] and answer.json["错误编号"]


def test_unknown_institution_is_404_before_any_job(waitless: Flask) -> None:
    client = waitless.test_client()
    answer = client.post("/api/analytics/programme", json={**PROGRAMME, "institution": "inst:none"},
                         headers=bearer(waitless, "designer"))
    assert answer.status_code == 404
    assert client.get("/api/admin/jobs", headers=bearer(waitless, "admin")).json == []


def test_programme_page_shows_solving_then_the_result(waitless: Flask, held: threading.Event, client, auth) -> None:
    auth.login("designer")
    form = {k: str(v) for k, v in PROGRAMME.items()}
    page = client.post("/designer/programme", data=form)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "正在求解…" in text and "/api/analytics/jobs/" in text and 'id="programme-result"' not in text
    job_id = int(text.split('data-job="')[1].split('"')[0])
    held.set()
    assert _poll(client, job_id, bearer(waitless, "designer"))["state"] == "done"
    done = client.get(f"/designer/programme?job={job_id}").get_data(as_text=True)
    assert 'id="programme-result"' in done and "正在求解…" not in done


def test_optimiser_page_shows_solving_then_reloads_to_the_result(waitless: Flask, held: threading.Event,
                                                                 client, auth) -> None:
    auth.login("evaluator")
    query = {"run": "1", "courses": "2", "textbooks": "1"}
    text = client.get("/evaluator/", query_string=query).get_data(as_text=True)
    assert "正在求解…" in text and 'id="nomination-result"' not in text
    job_id = int(text.split('data-job="')[1].split('"')[0])
    held.set()
    assert _poll(client, job_id, bearer(waitless, "evaluator"))["state"] == "done"
    done = client.get("/evaluator/", query_string=query).get_data(as_text=True)  # what the page's reload asks
    assert 'id="nomination-result"' in done and "正在求解…" not in done


def test_programme_page_polls_the_job_in_chromium(waitless: Flask, browser) -> None:
    """Real Chromium: with no wait the page is handed the running job, and its script polls the starter's route
    and moves on to ``?job=<id>`` with the result once the job is done."""
    from werkzeug.serving import make_server

    from tests.test_api_support import PASSWORD

    server = make_server("127.0.0.1", 0, waitless, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    context = browser.new_context(locale="zh-CN")
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        base = f"http://127.0.0.1:{server.server_port}"
        page.goto(f"{base}/login")
        page.fill("input[name=username]", "designer")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        page.goto(f"{base}/designer/programme")
        page.select_option("select[name=institution]", PROGRAMME["institution"])
        page.select_option("select[name=class_type]", PROGRAMME["class_type"])
        page.fill("input[name=total_hours]", str(PROGRAMME["total_hours"]))
        page.click("#programme-form button")
        page.wait_for_selector("#programme-result")
        assert "?job=" in page.url  # reached only through the script's done callback
        assert "班次课程方案" in page.inner_text("#programme-result") and errors == []
    finally:
        context.close()
        server.shutdown()
        thread.join(timeout=10)
