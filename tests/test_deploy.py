"""The production line for real: README's gunicorn command with 4 workers over a small built catalogue.

What only a multi-process deployment shows: every worker loads its models and answers ready; a write through
one worker is seen by all of them (the store's version stamp, checked per request); a job started on one
worker is polled from any; client mistakes are 4xx JSON and nothing in a burst of search, intent and export
requests is a 5xx.  Each worker names itself in ``X-Ganxun-Worker``, so the checks prove all four answered.
Without gunicorn the test skips on a developer's machine and fails in CI (``tests.conftest.require``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from api.services import INDEX_JOB
from kg.ontology import load_ontology
from bench.deploy_load import Answer, ProductionLine, import_jsonl, multipart, request
from tests.conftest import FIXTURE_CORPUS, require
from tests.test_api_support import AS_OF, NO_NEO4J, TOKENS_FILE, build_template

WORKERS = 4
#: How many fresh-connection reads a check makes at most: enough for four workers to each answer many times.
READS = 200
NEW_COURSE = {"type": "Course", "id": "course:t-deploy", "name": "部署检验新课程：基层应急处置",
              "description": "在多进程部署中导入的新课程，讲授基层应急处置的组织与协同。", "offeredBy": "inst:t-county-school",
              "dateCreated": "2026-01-05", "dateModified": "2026-01-05", "courseType": "专题课", "deliveryMode": "网络",
              "teachingMethod": ["讲授"], "lecturerType": "基层干部", "hours": 2, "isCase": False, "status": "已发布",
              "version": 1, "covers": ["topic:competence"]}


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProductionLine]:
    require(shutil.which("gunicorn") is not None, "gunicorn 未安装（scripts/test 会安装）")
    home = tmp_path_factory.mktemp("deploy-home")
    build_template(home)
    env = {"GANXUN_HOME": str(home), "GANXUN_CORPORA": str(FIXTURE_CORPUS), "NEO4J_URI": NO_NEO4J,
           "GANXUN_AS_OF": AS_OF, "GANXUN_ACCOUNTS_DB": str(home / "accounts.db")}
    server = ProductionLine(env, workers=WORKERS, log=home / "gunicorn.log")
    try:
        server.start()
        server.ready = server.wait_ready(timeout=600)
    except RuntimeError as exc:  # gunicorn could not start or never got ready: a failure everywhere, not a skip
        server.stop()
        pytest.fail(str(exc))
    server.tokens = json.loads((home / TOKENS_FILE).read_text())
    yield server
    server.stop()


def reads(line: ProductionLine, path: str, user: str, n: int = READS, clients: int = 4) -> list[Answer]:
    """``n`` GETs of ``path`` on fresh connections from ``clients`` threads (so the workers take turns)."""
    token = line.tokens[user]
    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(lambda _: request(line.port, "GET", path, token), range(n)))


def test_every_worker_gets_ready_with_its_models(line: ProductionLine) -> None:
    assert len(line.ready) == WORKERS and set(line.ready) <= set(line.worker_pids())
    for pid, body in line.ready.items():
        assert body["状态"] == 200 and body["进程"] == pid and body["图谱版本"] >= 0
        assert {"目录快照", "检索索引与编码器"} <= set(body["已加载"])


def test_an_import_through_one_worker_is_seen_by_every_worker(line: ProductionLine) -> None:
    """Every worker answers from the new graph soon after a committed import, and none answers the old one after
    it has seen the new.  How soon (≤ 1 s: each worker compares the store's version at most every 0.25 s) is a
    figure for ``bench/deploy_load.py``, not a timed assertion on a noisy machine."""
    listing = "/api/catalogue/courses?per_page=100&q=" + urllib.parse.quote("部署检验新课程")
    before = reads(line, listing, "admin", n=40)
    assert all(a.status == 200 and a.json()["total"] == 0 for a in before)
    imported = import_jsonl(line.port, line.tokens["admin"], [NEW_COURSE])
    assert imported.status == 201, imported.body
    current: set[int] = set()
    deadline = time.monotonic() + 30
    while current != set(line.ready) and time.monotonic() < deadline:
        for answer in reads(line, listing, "admin", n=16, clients=1):  # one at a time: "went back" is then real
            assert answer.status == 200, answer.body
            if [i["id"] for i in answer.json()["items"]] == [NEW_COURSE["id"]]:
                current.add(answer.worker)
            else:
                assert answer.worker not in current, f"worker {answer.worker} went back to the old graph"
    assert current == set(line.ready), f"workers still answering from the old graph: {sorted(set(line.ready) - current)}"


def test_the_imported_course_becomes_searchable_on_every_worker_after_the_index_job(line: ProductionLine) -> None:
    """Searches answer from the persisted index meanwhile; the update job (one, in some worker) encodes the new
    course and every worker installs the new generation."""
    path = "/api/search?q=" + urllib.parse.quote("部署检验新课程：基层应急处置") + "&k=3"
    found: set[int] = set()
    deadline = time.monotonic() + 180
    while found != set(line.ready) and time.monotonic() < deadline:
        answer = request(line.port, "GET", path, line.tokens["cadre1"])
        assert answer.status == 200, answer.body  # never a 5xx while the index is being updated
        if NEW_COURSE["id"] in [h["id"] for h in answer.json()["hits"]]:
            found.add(answer.worker)
    assert found == set(line.ready)
    jobs = request(line.port, "GET", "/api/admin/jobs", line.tokens["admin"]).json()
    assert [j["state"] for j in jobs if j["kind"] == INDEX_JOB][:1] == ["done"]


def test_a_withdrawn_course_stops_being_recommended_on_every_worker(line: ProductionLine) -> None:
    admin, path = line.tokens["admin"], "/api/cadres/cadre:t-001/recommendations?k=10"
    # the fixture cadre has completed every fixture course: give them one to be recommended (an import is a merge,
    # so this holds whichever test ran first)
    assert import_jsonl(line.port, admin, [NEW_COURSE]).status == 201
    deadline = time.monotonic() + 30
    while not (first := request(line.port, "GET", path, admin)).json().get("推荐课程") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert first.status == 200 and first.json()["推荐课程"], first.body
    withdrawn = first.json()["推荐课程"][0]["编号"]
    exported = request(line.port, "GET", "/api/admin/export?format=csv&type=Course", admin)
    table = list(csv.reader(io.StringIO(exported.body.decode("utf-8-sig"))))
    course = load_ontology().classes["Course"]  # the export heads its columns with the fields' Chinese labels
    header, status = table[0], table[0].index(course.fields["status"].label)
    row = next(r for r in table if r[1] == withdrawn)  # 类型, 编号, then the fields
    row[status] = "已退出"
    out = io.StringIO()
    csv.writer(out).writerows([header, row])
    body, media = multipart({"files": ("withdraw.csv", out.getvalue().encode("utf-8"))}, {"type": "Course"})
    assert request(line.port, "POST", "/api/admin/import", admin, body, {"Content-Type": media}).status == 201
    current: set[int] = set()  # workers that no longer recommend it (none may go back)
    deadline = time.monotonic() + 30
    while current != set(line.ready) and time.monotonic() < deadline:
        for answer in reads(line, path, "admin", n=16, clients=1):  # one at a time: "again" is then real
            assert answer.status == 200, answer.body
            if withdrawn in {c["编号"] for c in answer.json()["推荐课程"]}:
                assert answer.worker not in current, f"worker {answer.worker} recommends {withdrawn} again"
            else:
                current.add(answer.worker)
    assert current == set(line.ready), f"{withdrawn} still recommended by workers {sorted(set(line.ready) - current)}"


def test_a_job_started_on_one_worker_is_polled_from_every_worker(line: ProductionLine) -> None:
    admin = line.tokens["admin"]
    started = request(line.port, "GET", "/api/admin/export?format=turtle", admin)
    assert started.status == 202, started.body
    job_id = started.json()["id"]
    answered: set[int] = set()
    deadline = time.monotonic() + 120
    job = started.json()
    while (job["state"] == "running" or answered != set(line.ready)) and time.monotonic() < deadline:
        poll = request(line.port, "GET", f"/api/admin/jobs/{job_id}", admin)
        assert poll.status == 200 and poll.json()["id"] == job_id
        answered.add(poll.worker)
        job = poll.json()
    assert answered == set(line.ready) and job["state"] == "done", job
    files = reads(line, f"/api/admin/jobs/{job_id}/file", "admin", n=40)
    assert all(f.status == 200 and b"@prefix" in f.body for f in files) and len({f.worker for f in files}) > 1


@pytest.mark.parametrize(("path", "user", "status"), [
    ("/api/search?q=", "cadre1", 422),
    ("/api/search?q=x&kind=Teacher", "cadre1", 422),
    ("/api/search?q=x&topic=topic:none", "cadre1", 422),
    ("/api/cadres/cadre:t-001/recommendations?k=0", "cadre1", 422),
    ("/api/cadres/cadre:t-001/recommendations?intent=" + urllib.parse.quote("学" * 201), "cadre1", 422),
    ("/api/cadres/cadre:t-002/hours", "cadre1", 403),
    ("/api/cadres/cadre:nobody/gaps", "admin", 404),
    ("/api/catalogue/courses/course:none", "cadre1", 404),
    ("/api/admin/export?format=csv", "admin", 422),
    ("/api/catalogue/courses?page=0", "cadre1", 422),
])
def test_bad_requests_are_4xx_json(line: ProductionLine, path: str, user: str, status: int) -> None:
    answer = request(line.port, "GET", path, line.tokens[user])
    assert answer.status == status and answer.headers["content-type"].startswith("application/json")
    assert answer.json()["状态"] == status and answer.json()["错误"]


def test_a_malformed_body_is_4xx_json(line: ProductionLine) -> None:
    answer = request(line.port, "POST", "/api/auth/token", body=b"{not json", headers={"Content-Type": "application/json"})
    assert 400 <= answer.status < 500 and answer.json()["状态"] == answer.status


def test_no_5xx_over_a_burst_of_search_intent_and_export_requests(line: ProductionLine) -> None:
    intents = ["乡村振兴与基层治理", "数字政府", "党性修养", "应急管理", "党的创新理论"]
    paths = [
        *(f"/api/search?q={urllib.parse.quote(q)}" for q in intents),
        *(f"/api/search/similar/{c}" for c in ("course:t-village-case", "course:t-online")),
        *(f"/api/cadres/cadre:t-001/recommendations?k=5&intent={urllib.parse.quote(q)}" for q in intents),
        *(f"/api/cadres/cadre:t-001/learning-path?intent={urllib.parse.quote(q)}" for q in intents),
        "/api/admin/export?format=turtle&type=Course", "/api/admin/export?format=jsonld&type=Textbook",
        "/api/admin/export?format=jsonld", "/api/admin/export?format=turtle&include_personal=true",
    ]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda p: (p, request(line.port, "GET", p, line.tokens["admin"], timeout=120)),
                                paths * 3))
    faults = [(p, a.status, a.body[:200]) for p, a in answers if a.status >= 500]
    assert faults == []
    assert all(a.status in (200, 202, 409) for _, a in answers), [(p, a.status) for p, a in answers if a.status >= 300]
    assert all(a.headers["content-type"].split(";")[0] != "text/html" for _, a in answers)


def test_the_cadre_overview_page_answers_with_its_server_time(line: ProductionLine) -> None:
    answer = request(line.port, "GET", "/cadre/", line.tokens["cadre1"])
    assert answer.status == 200 and "text/html" in answer.headers["content-type"]
    assert answer.server_ms is not None and answer.server_ms > 0 and answer.worker in line.ready


def test_login_throttling_holds_across_workers(line: ProductionLine) -> None:
    """Ten wrong passwords for one account, each on a fresh connection (so the workers take turns), use up the
    account's minute; after that every worker answers 429, also those that saw few of the ten: the counts are in
    the accounts database, not in one process.  (Last among the production-line tests: the address's minute is
    used up too.)"""
    wrong = json.dumps({"username": "evaluator", "password": "not-the-password"}).encode()
    headers = {"Content-Type": "application/json"}
    failed = [request(line.port, "POST", "/api/auth/token", body=wrong, headers=headers) for _ in range(10)]
    assert [a.status for a in failed] == [401] * 10
    refused: list[Answer] = []
    with ThreadPoolExecutor(4) as pool:
        while len({a.worker for a in refused}) < 2 and len(refused) < 80:
            refused += pool.map(lambda _: request(line.port, "POST", "/api/auth/token", body=wrong, headers=headers),
                                range(8))
    assert {a.status for a in refused} == {429}
    assert len({a.worker for a in refused}) >= 2, "every refusal came from one worker"
    assert refused[0].json()["错误"] == "登录失败次数过多，请 1 分钟后再试"


def test_the_cadre_overview_reads_the_cadre_once_and_analyses_gaps_once(tmp_path: Path) -> None:
    """In process: the page shows profile, hours, gaps, recommendations and path from one CadreView."""
    from api import create_app, services
    from api.graph import graph
    from tests.test_api_support import app_config, bearer

    build_template(tmp_path / "home")
    app = create_app(app_config(tmp_path / "home", tmp_path / "index"))
    with app.app_context():
        store, rec = graph().store, services.recommender()
        calls = {"get_node": 0, "nodes_with_edges": 0, "gaps_for": 0}

        def counted(name: str, method):
            def wrapper(*args, **kwargs):
                asked = args[0] if args else ()
                if name == "gaps_for" or asked == "cadre:t-001" or (not isinstance(asked, str) and "cadre:t-001" in asked):
                    calls[name] += 1
                return method(*args, **kwargs)
            return wrapper

        store.get_node = counted("get_node", store.get_node)
        store.nodes_with_edges = counted("nodes_with_edges", store.nodes_with_edges)
        rec.gaps_for = counted("gaps_for", rec.gaps_for)
    response = app.test_client().get("/cadre/", headers=bearer(app, "cadre1"))
    assert response.status_code == 200 and "推荐" in response.get_data(as_text=True)
    assert calls["get_node"] + calls["nodes_with_edges"] == 1 and calls["gaps_for"] == 1, calls
    app.extensions["ganxun.graph"].close()


# ─── in process: the guard, the error table and readiness, without gunicorn ───
@pytest.fixture
def small_app(tmp_path: Path):
    from api import create_app
    from tests.test_api_support import app_config

    build_template(tmp_path / "home")
    app = create_app(app_config(tmp_path / "home", tmp_path / "index", REQUEST_TIMEOUT=0.5))
    yield app
    app.extensions["ganxun.graph"].close()


def test_a_request_past_the_guard_is_a_503_json_with_an_error_id(small_app, caplog) -> None:
    import threading

    release = threading.Event()

    @small_app.route("/api/slow")
    def slow() -> str:
        release.wait(10)  # bounded; released below once the guard has answered
        return "late"

    try:
        response = small_app.test_client().get("/api/slow")
    finally:
        release.set()
    body = response.json
    assert response.status_code == 503 and body["状态"] == 503 and "超过" in body["错误"]
    assert len(body["错误编号"]) == 32 and body["错误编号"] in caplog.text


@pytest.mark.parametrize(("error", "status"), [
    ("recommender.errors:InvalidRequest", 422),
    ("recommender.errors:UnknownCadre", 404),
    ("recommender.analytics.errors:RuleError", 422),
    ("recommender.analytics.errors:SolverError", 503),
    ("recommender.search.errors:InvalidFilter", 422),
    ("recommender.search.errors:IndexNotReady", 503),
    ("kg.store.base:StoreError", 503),
])
def test_domain_errors_map_to_their_status_in_one_place(small_app, error: str, status: int) -> None:
    import importlib

    module, name = error.split(":")
    cls = getattr(importlib.import_module(module), name)

    @small_app.route(f"/api/raise-{name}")
    def raising() -> None:
        raise cls("cadre:x") if name == "UnknownCadre" else cls("领域错误的说明")

    response = small_app.test_client().get(f"/api/raise-{name}")
    assert response.status_code == status and response.json["状态"] == status
    assert ("错误编号" in response.json) == (status >= 500)
    if status < 500:
        assert "领域错误的说明" in response.json["错误"] or "cadre:x" in response.json["错误"]


def test_ready_is_503_until_the_worker_is_warm_then_200(small_app) -> None:
    from api.services import warm_up

    client = small_app.test_client()
    loading = client.get("/api/ready")
    assert loading.status_code == 503 and loading.json == {"状态": 503, "错误": "服务正在加载模型与索引…"}
    assert warm_up(small_app).state == "ready"
    ready = client.get("/api/ready").json
    assert ready["状态"] == 200 and ready["图谱版本"] >= 0 and "检索索引与编码器" in ready["已加载"]


def test_a_worker_whose_warm_up_failed_never_encodes_inside_a_request(small_app) -> None:
    """Only a worker never asked to warm (tests, commands) updates the index inline; a served one whose warm-up
    failed opens the index as it is on disk (here: none yet) and leaves the encoding to the index job."""
    from api.jobs import jobs
    from api.services import readiness, search_service

    with small_app.app_context():
        readiness().state = "failed"
        service = search_service()
        assert service.stale and not service.ready
        job = next(j for j in jobs().recent() if j.kind == INDEX_JOB)
        deadline = time.monotonic() + 300  # only keeps a broken build from hanging the suite
        while (job := jobs().get(job.id)).state == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert job.state == "done" and job.result["encoded"] > 0


def test_cadre_answers_default_to_today_without_a_configured_date(tmp_path: Path) -> None:
    from api import create_app
    from tests.test_api_support import app_config, bearer

    build_template(tmp_path / "home")
    app = create_app(app_config(tmp_path / "home", tmp_path / "index", AS_OF=None))
    client, header = app.test_client(), bearer(app, "cadre1")
    for path in ("hours", "gaps", "recommendations", "learning-path"):
        response = client.get(f"/api/cadres/cadre:t-001/{path}", headers=header)
        assert response.status_code == 200 and response.json["统计日期"] == dt.date.today().isoformat(), path
    app.extensions["ganxun.graph"].close()
