"""Administration: users and roles, the audit log, all-or-nothing import with row-by-row errors, export
in four formats, background jobs with progress, and the error shape for every kind of bad request."""

from __future__ import annotations

import io
import json
import time

import pytest
from openpyxl import load_workbook
from rdflib import Graph

from api.accounts import accounts
from api.graph import graph
from tests.test_api_support import (  # noqa: F401  (fixtures)
    PASSWORD, app, auth, bearer, client, index_dir, runner, template_home,
)


@pytest.fixture
def admin(client, app):
    header = bearer(app, "admin")
    return lambda method, url, **kw: client.open(url, method=method, headers=header, **kw)


# ─── users and roles ───
def test_create_user_then_log_in_with_it(admin, client) -> None:
    created = admin("POST", "/api/admin/users", json={"username": "cadre3", "password": "long-enough-1",
                                                       "role": "cadre", "cadre_id": "cadre:t-002"})
    assert created.status_code == 201 and created.json["role_name"] == "学员"
    token = client.post("/api/auth/token", json={"username": "cadre3", "password": "long-enough-1"}).json["token"]
    assert client.get("/api/cadres/cadre:t-002/hours", headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"username": "admin", "password": "long-enough-1", "role": "admin"}, 409, "username"),
    ({"username": "x", "password": "long-enough-1", "role": "cadre"}, 422, "cadre_id"),
    ({"username": "x", "password": "long-enough-1", "role": "cadre", "cadre_id": "cadre:nobody"}, 422, "cadre_id"),
    ({"username": "x", "password": "short", "role": "designer"}, 422, "password"),
    ({"username": "x", "password": "long-enough-1", "role": "superuser"}, 422, "role"),
])
def test_bad_new_users_are_refused(admin, body, status, field) -> None:
    response = admin("POST", "/api/admin/users", json=body)
    assert response.status_code == status and field in response.json["字段"]


def test_list_users_shows_roles_without_passwords(admin) -> None:
    users = admin("GET", "/api/admin/users").json
    assert {u["username"]: u["role_name"] for u in users}["cadre1"] == "学员"
    assert all("password" not in key for u in users for key in u)


def test_change_role_and_deactivate(admin, app) -> None:
    with app.app_context():
        designer = accounts().by_username("designer")
    changed = admin("PATCH", f"/api/admin/users/{designer.id}", json={"role": "evaluator"})
    assert changed.json["role"] == "evaluator"
    assert admin("PATCH", f"/api/admin/users/{designer.id}", json={"active": False}).json["active"] is False
    assert admin("PATCH", "/api/admin/users/999", json={"active": False}).status_code == 404


def test_admin_cannot_demote_themself(admin, app) -> None:
    with app.app_context():
        me = accounts().by_username("admin")
    assert admin("PATCH", f"/api/admin/users/{me.id}", json={"role": "designer"}).status_code == 422


def test_writes_are_audited_with_who_what_when(admin) -> None:
    admin("POST", "/api/admin/users", json={"username": "d2", "password": "long-enough-1", "role": "designer"})
    log = admin("GET", "/api/admin/audit", query_string={"action": "新建用户"}).json
    entry = log["items"][0]
    assert log["total"] == 1 and entry["username"] == "admin" and entry["detail"]["username"] == "d2"
    assert entry["at"].startswith("20")


# ─── import ───
NEW_COURSE = {"type": "Course", "id": "course:t-new", "name": "新上线的基层治理课程",
              "description": "介绍基层治理中网格化管理与协商议事的做法。", "offeredBy": "inst:t-county-school",
              "dateCreated": "2026-01-05", "dateModified": "2026-01-05",
              "courseType": "专题课", "deliveryMode": "面授", "teachingMethod": ["讲授"], "lecturerType": "基层干部",
              "hours": 2, "isCase": False, "status": "已发布", "version": 1, "covers": ["topic:competence"]}


def _upload(admin, name: str, content: bytes, **form):
    return admin("POST", "/api/admin/import", content_type="multipart/form-data",
                 data={"files": (io.BytesIO(content), name), **form})


def test_import_jsonl_adds_nodes_and_refreshes_derived_models(admin, app) -> None:
    before = admin("GET", "/api/catalogue/courses").json["total"]
    response = _upload(admin, "new.jsonl", json.dumps(NEW_COURSE, ensure_ascii=False).encode())
    assert response.status_code == 201 and response.json["nodes"] == 1
    assert admin("GET", "/api/catalogue/courses").json["total"] == before + 1
    assert admin("GET", "/api/catalogue/courses/course:t-new").json["name"] == "新上线的基层治理课程"


def test_import_with_errors_lists_each_row_and_writes_nothing(admin, app) -> None:
    rows = "id,name,hours,status,covers\ncourse:t-ok,好的课程,2,已发布,topic:theory\ncourse:t-bad,坏的课程,两小时,发布,topic:nope\n"
    response = _upload(admin, "courses.csv", rows.encode("utf-8"), type="Course")
    assert response.status_code == 422
    issues = response.json["问题"]
    assert {i["file"] for i in issues} == {"courses.csv"}
    bad_fields = {i["field"] for i in issues if i["line"] == 3}
    assert {"hours", "status", "covers"} <= bad_fields
    assert "未写入任何数据" in response.json["错误"]
    with app.app_context():
        assert graph().store.get_node("course:t-ok") is None


def test_import_refuses_unknown_format_and_type(admin) -> None:
    assert _upload(admin, "x.txt", b"hello").json["字段"]["files"][0].startswith("x.txt")
    assert "type" in _upload(admin, "x.csv", b"id\n", type="Nothing").json["字段"]


# ─── export ───
def test_export_turtle_and_jsonld_parse(admin) -> None:
    turtle = admin("GET", "/api/admin/export", query_string={"format": "turtle", "type": "Course"})
    g = Graph().parse(data=turtle.data.decode(), format="turtle")
    assert len(g) > 20 and "新时代党的创新理论专题讲授" in turtle.data.decode()
    jsonld = admin("GET", "/api/admin/export", query_string={"format": "jsonld", "type": "Textbook"})
    assert len(Graph().parse(data=jsonld.data.decode(), format="json-ld")) > 5


def test_csv_export_reimports_unchanged(admin, app) -> None:
    exported = admin("GET", "/api/admin/export", query_string={"format": "csv", "type": "Course"})
    assert exported.headers["Content-Disposition"].endswith('.csv"')
    with app.app_context():
        before = {n.id: n.props for n in graph().store.nodes("Course")}
    response = _upload(admin, "courses.csv", exported.data, type="Course")
    assert response.status_code == 201, response.json
    with app.app_context():
        assert {n.id: n.props for n in graph().store.nodes("Course")} == before


def test_personal_export_needs_consent_and_is_audited(admin) -> None:
    refused = admin("GET", "/api/admin/export", query_string={"format": "xlsx", "type": "Cadre"})
    assert refused.status_code == 422 and "include_personal" in refused.json["字段"]
    started = admin("GET", "/api/admin/export", query_string={"format": "xlsx", "include_personal": "true"})
    assert started.status_code == 202  # the whole graph is exported by a job
    assert _wait(admin, started.json["id"])["state"] == "done"
    xlsx = admin("GET", f"/api/admin/jobs/{started.json['id']}/file")
    book = load_workbook(io.BytesIO(xlsx.data))
    assert "干部" in book.sheetnames and "培训记录" in book.sheetnames
    log = admin("GET", "/api/admin/audit", query_string={"action": "导出个人数据"}).json
    assert log["total"] == 1


# ─── jobs ───
def _wait(admin, job_id: int) -> dict:
    deadline = time.monotonic() + 300
    while (job := admin("GET", f"/api/admin/jobs/{job_id}").json)["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.3)
    return job


def test_sync_failure_is_reported_by_the_job(admin) -> None:
    started = admin("POST", "/api/admin/sync")  # the test settings point NEO4J_URI at a closed port
    assert started.status_code == 202 and started.json["kind"] == "Neo4j 同步"
    job = _wait(admin, started.json["id"])
    assert job["state"] == "failed" and job["message"].startswith("失败：")


def test_sync_to_a_real_neo4j_with_progress(template_home, index_dir, tmp_path) -> None:
    import shutil

    from api import create_app
    from tests.neo4j_support import neo4j_settings, open_neo4j
    from tests.test_api_support import app_config
    from tests.test_jobs import assert_progress_rises_to_total, record_progress

    server = open_neo4j()  # skips (fails in CI) without a server; clears its graph
    home = tmp_path / "home"
    shutil.copytree(template_home, home)
    settings = neo4j_settings(GANXUN_HOME=str(home), GANXUN_NEO4J_BATCH="50")  # several batches: several reports
    app = create_app(app_config(home, index_dir, SETTINGS=settings, JOBS_PROGRESS_SECONDS=0))
    record_progress(home / "jobs.db")
    client = app.test_client()
    header = bearer(app, "admin")

    def admin(method, url, **kw):
        return client.open(url, method=method, headers=header, **kw)

    try:
        job = _wait(admin, admin("POST", "/api/admin/sync").json["id"])
        assert job["state"] == "done", job
        with app.app_context():
            source = graph().store.node_counts()
        assert job["result"]["in_step"] is True and job["done"] == job["total"] > 0, (job, source, server.node_counts())
        assert server.node_counts() == source
        assert_progress_rises_to_total(home / "jobs.db", job["id"], intermediate=3)  # from sync_graph's batches
    finally:
        server.clear()
        server.close()
        app.extensions["ganxun.graph"].close()


def test_reindex_runs_in_background_with_progress(admin) -> None:
    started = admin("POST", "/api/admin/reindex", json={})
    assert started.status_code == 202 and started.json["state"] == "running"
    job = _wait(admin, started.json["id"])
    assert job["state"] == "done", job
    assert job["percent"] == 100.0 and job["result"]["documents"] == 6  # 4 courses, 1 textbook, 1 case
    assert admin("GET", "/api/admin/jobs/999").status_code == 404
    assert [j["id"] for j in admin("GET", "/api/admin/jobs").json] == [job["id"]]


def test_batch_job_stores_results_that_demand_then_reads(admin, app) -> None:
    from recommender.batch.run import batch_path

    job = _wait(admin, admin("POST", "/api/admin/batch", json={"k": 3}).json["id"])
    assert job["state"] == "done", job
    assert job["result"]["cadres"] == 2 and job["done"] == job["total"] == 2
    with app.app_context():
        assert batch_path(graph().settings).exists()
    assert admin("POST", "/api/admin/batch", json={"k": 0}).status_code == 422


# ─── the error shape ───
def test_malformed_json_is_400(admin) -> None:
    response = admin("POST", "/api/admin/users", data="{oops", content_type="application/json")
    assert response.status_code == 400 and response.json == {"状态": 400, "错误": "请求体不是有效的 JSON"}


def test_unknown_field_is_named(admin) -> None:
    response = admin("POST", "/api/admin/users", json={"username": "x", "password": "long-enough-1",
                                                        "role": "designer", "isAdmin": True})
    assert response.status_code == 422 and response.json["字段"] == {"isAdmin": ["不认识的字段"]}


def test_405_keeps_allow_header(admin) -> None:
    response = admin("DELETE", "/api/catalogue/courses")
    assert response.status_code == 405 and "GET" in response.headers["Allow"] and response.json["状态"] == 405


def test_unknown_api_path_is_json_404_and_page_is_html(client, auth) -> None:
    assert client.get("/api/nothing").json == {"状态": 404, "错误": "未找到"}
    auth.login("admin")
    page = client.get("/nothing")
    assert page.status_code == 404 and "text/html" in page.content_type


def test_oversized_upload_is_413(admin, app) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = _upload(admin, "big.jsonl", b"x" * 4096)
    assert response.status_code == 413 and response.json["错误"] == "上传内容过大"


def test_unexpected_error_is_500_without_details(app, client) -> None:
    @app.route("/api/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    response = client.get("/api/boom")
    body = dict(response.json)
    error_id = body.pop("错误编号")  # the same id is in the log line, for whoever investigates
    assert response.status_code == 500 and body == {"状态": 500, "错误": "服务器内部错误"}
    assert len(error_id) == 32 and int(error_id, 16) >= 0 and "secret" not in response.get_data(as_text=True)


def test_production_needs_a_secret_key(tmp_path, monkeypatch) -> None:
    from api import ConfigError, create_app
    from tests.test_api_support import settings_for

    monkeypatch.delenv("GANXUN_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="GANXUN_SECRET_KEY"):
        create_app({"SETTINGS": settings_for(tmp_path), "ACCOUNTS_DB": str(tmp_path / "a.db")})
