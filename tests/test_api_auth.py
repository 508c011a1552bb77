"""Who may do what: 401 for anonymous callers on every protected route, 403 for the wrong role, cadres
limited to their own records, tokens, the login page and the audit trail."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from api.accounts import accounts
from tests.test_api_support import (  # noqa: F401  (fixtures)
    PASSWORD, USERS, app, auth, bearer, client, index_dir, shared_app, shared_client, template_home,
)

SAMPLE_ARGS = {"node_id": "course:t-online", "cadre_id": "cadre:t-001", "user_id": "1", "job_id": "1",
               "item_id": "course:t-online", "topic_id": "topic:theory"}
PUBLIC = {("POST", "/api/auth/token"), ("GET", "/api/ready")}  # the readiness probe answers load balancers

#: The access policy, written out by hand: blueprint (or endpoint) → roles allowed.  Everything under
#: /api/ not listed here is open to every logged-in role.
POLICY: dict[str, set[str]] = {
    "cadres": {"cadre", "admin"},
    "analytics": {"designer", "evaluator", "admin"},
    "nominations": {"evaluator", "admin"},
    "transfer": {"admin"},
    "admin": {"admin"},
    "search.duplicates": {"designer", "admin"},
    "review": {"designer", "admin"},
}


def _protected_routes() -> list[tuple[str, str, str]]:
    """(method, url, endpoint) for every JSON API route except the token endpoint, from the real URL map."""
    from api import create_app
    from tests.test_api_support import settings_for

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"TESTING": True, "SETTINGS": settings_for(Path(tmp)), "ACCOUNTS_DB": f"{tmp}/a.db"})
        routes = []
        for rule in app.url_map.iter_rules():
            if not rule.rule.startswith("/api/"):
                continue
            url = re.sub(r"<(?:[a-z]+:)?(\w+)>", lambda m: SAMPLE_ARGS[m.group(1)], rule.rule)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                if (method, rule.rule) not in PUBLIC:
                    routes.append((method, url, rule.endpoint))
        app.extensions["ganxun.graph"].close()
    return routes


ROUTES = _protected_routes()


def _page_routes() -> list[str]:
    """Every server-rendered page (GET), from the real URL map."""
    from api import create_app
    from tests.test_api_support import settings_for

    import tempfile
    from pathlib import Path

    open_paths = ("/api/", "/static/", "/favicon.ico", "/login", "/docs", "/openapi.json")
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"TESTING": True, "SETTINGS": settings_for(Path(tmp)), "ACCOUNTS_DB": f"{tmp}/a.db"})
        pages = sorted(re.sub(r"<(?:[a-z]+:)?(\w+)>", "1", r.rule) for r in app.url_map.iter_rules()
                       if "GET" in r.methods and not r.rule.startswith(open_paths))
        app.extensions["ganxun.graph"].close()
    return pages


PAGES = _page_routes()


def test_the_favicon_is_public_at_the_root(shared_client) -> None:
    response = shared_client.get("/favicon.ico")
    assert response.status_code == 200 and response.mimetype.startswith("image/") and response.data


@pytest.mark.parametrize("url", PAGES)
def test_pages_send_anonymous_visitors_to_login(shared_client, url: str) -> None:
    response = shared_client.get(url)
    assert response.status_code == 302 and response.location.startswith("/login?next=")


def allowed_roles(endpoint: str) -> set[str]:
    return POLICY.get(endpoint) or POLICY.get(endpoint.split(".")[0]) or {"cadre", "designer", "evaluator", "admin"}


def test_every_api_route_is_listed() -> None:
    endpoints = {e for _, _, e in ROUTES}
    assert len(ROUTES) >= 40
    assert {"cadres.hours", "analytics.coverage_view", "nominations.optimise_view", "transfer.import_upload",
            "admin.reindex", "search.search", "catalogue.list_courses"} <= endpoints


@pytest.mark.parametrize(("method", "url", "endpoint"), ROUTES, ids=[f"{m} {u}" for m, u, _ in ROUTES])
def test_anonymous_gets_401_json(shared_client, method: str, url: str, endpoint: str) -> None:
    response = shared_client.open(url, method=method, json={})
    assert response.status_code == 401
    assert response.is_json and response.json["状态"] == 401 and "登录" in response.json["错误"]


@pytest.mark.parametrize(("method", "url", "endpoint"), ROUTES, ids=[f"{m} {u}" for m, u, _ in ROUTES])
def test_wrong_role_gets_403(shared_client, shared_app, method: str, url: str, endpoint: str) -> None:
    denied = [u for u, (role, _) in USERS.items() if role not in allowed_roles(endpoint)]
    for username in denied:
        response = shared_client.open(url, method=method, json={}, headers=bearer(shared_app, username))
        assert response.status_code == 403, (username, response.json)
        assert "仅限" in response.json["错误"]


CADRE_ROUTES = [(m, u) for m, u, e in ROUTES if e.startswith("cadres.") and m == "GET"]  # writes: test_study_plan


@pytest.mark.parametrize(("method", "url"), CADRE_ROUTES)
def test_cadre_cannot_read_another_cadre(shared_client, shared_app, method: str, url: str) -> None:
    header = bearer(shared_app, "cadre1")
    own = shared_client.open(url, headers=header)
    other = shared_client.open(url.replace("cadre:t-001", "cadre:t-002"), headers=header)
    assert own.status_code == 200
    assert other.status_code == 403
    assert other.json == {"状态": 403, "错误": "只能查看本人的培训档案"}


def test_admin_reads_any_cadre_and_is_audited(client, auth, app: Flask) -> None:
    response = client.get("/api/cadres/cadre:t-002/records", headers=auth.token("admin"))
    assert response.status_code == 200
    assert response.json["干部编号"] == "cadre:t-002"
    with app.app_context():
        _, entries = accounts().audit_log(username="admin", action="查阅干部档案")
    assert [e.target for e in entries] == ["cadre:t-002"]


def test_token_flow(client) -> None:
    bad = client.post("/api/auth/token", json={"username": "admin", "password": "wrong"})
    assert bad.status_code == 401 and bad.json["错误"] == "用户名或密码错误"
    issued = client.post("/api/auth/token", json={"username": "cadre1", "password": PASSWORD})
    assert issued.status_code == 201
    header = {"Authorization": f"Bearer {issued.json['token']}"}
    me = client.get("/api/auth/me", headers=header)
    assert me.json["username"] == "cadre1" and me.json["cadre_id"] == "cadre:t-001" and me.json["role_name"] == "学员"
    assert client.delete("/api/auth/token", headers=header).status_code == 204
    assert client.get("/api/auth/me", headers=header).status_code == 401


def test_bogus_token_is_anonymous(client) -> None:
    assert client.get("/api/auth/me", headers={"Authorization": "Bearer not-a-token"}).status_code == 401


def test_login_page_session_and_logout(client, auth) -> None:
    assert client.get("/cadre/").status_code == 302
    assert client.get("/cadre/").location.startswith("/login?next=")
    failed = auth.login("cadre1", "nope")
    assert failed.status_code == 401 and "用户名或密码错误" in failed.get_data(as_text=True)
    response = auth.login("cadre1")
    assert response.status_code == 302
    assert client.get("/api/auth/me").json["username"] == "cadre1"  # the session cookie works on the API too
    assert client.get("/").location == "/cadre/"
    auth.logout()
    assert client.get("/api/auth/me").status_code == 401


def test_login_ignores_offsite_next(client) -> None:
    response = client.post("/login?next=//evil.example/x", data={"username": "designer", "password": PASSWORD})
    assert response.location == "/"


def test_pages_send_wrong_role_a_403_page(client, auth) -> None:
    auth.login("cadre1")
    response = client.get("/admin/users")
    assert response.status_code == 403
    assert "text/html" in response.content_type and "仅限" in response.get_data(as_text=True)


def test_deactivated_user_loses_token_and_session(client, auth, app: Flask) -> None:
    header = auth.token("designer")
    auth.login("designer")
    with app.app_context():
        user = accounts().by_username("designer")
        accounts().update_user(user.id, active=False)
    assert client.get("/api/auth/me", headers=header).status_code == 401
    assert client.get("/api/auth/me").status_code == 401


def test_logins_are_audited(client, auth, app: Flask) -> None:
    auth.login("evaluator")
    auth.login("evaluator", "wrong")
    with app.app_context():
        _, entries = accounts().audit_log(username="evaluator")
    assert [e.action for e in entries] == ["登录失败", "登录"]
