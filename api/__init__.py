"""ganxun's service: a JSON API for other systems and server-rendered pages in Chinese.

Built by :func:`create_app` the way Flask's tutorial builds ``flaskr``: defaults from the environment, then an
optional config file under ``GANXUN_HOME``, then the caller's test config; every resource exposes
``init_app(app)`` and every blueprint is registered here.  Production (settings in ``gunicorn.conf.py``:
gthread workers, each loading its models and indexes after the fork, ready when ``/api/ready`` answers 200)::

    GANXUN_SECRET_KEY=… gunicorn -c gunicorn.conf.py 'api:create_app()'

Every response names the worker process that answered (``X-Ganxun-Worker``) and its time in the app
(``Server-Timing: app;dur=…``), so load tests and the deployment test can tell workers apart.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, g

from kg.config import Settings

__all__ = ["ConfigError", "create_app"]

#: The shortest secret production accepts (``secrets.token_hex(16)`` is 32 characters).
MIN_SECRET_LENGTH = 32
log = logging.getLogger(__name__)


class ConfigError(RuntimeError):
    """The service is misconfigured (e.g. no secret key in production); the message says what to set."""


def _defaults(settings: Settings) -> dict[str, Any]:
    env = os.environ
    return {
        "SETTINGS": settings,
        "STORE": None,  # None: GANXUN_STORE
        "SECRET_KEY": env.get("GANXUN_SECRET_KEY"),
        "ACCOUNTS_DB": env.get("GANXUN_ACCOUNTS_DB", str(settings.home / "accounts.db")),
        "TOKEN_DAYS": int(env.get("GANXUN_TOKEN_DAYS", "30")),
        # a login session ends after this many hours (and on logout, a password or role change, deactivation)
        "SESSION_HOURS": float(env.get("GANXUN_SESSION_HOURS", "8")),
        # wrong passwords allowed per account and per address before a 429 (api.security)
        "LOGIN_LIMIT_ACCOUNT": env.get("GANXUN_LOGIN_LIMIT_ACCOUNT", "10 per minute"),
        "LOGIN_LIMIT_ADDRESS": env.get("GANXUN_LOGIN_LIMIT_ADDRESS", "10 per minute"),
        # reverse proxies in front whose X-Forwarded-For is trusted for the client's address (0: none; api.security)
        "PROXY_HOPS": int(env.get("GANXUN_PROXY_HOPS", "0")),
        "PASSWORD_METHOD": "scrypt",  # werkzeug's default; tests use a cheaper one
        "AS_OF": env.get("GANXUN_AS_OF"),  # None: today
        "INDEX_DIR": env.get("GANXUN_INDEX_DIR", str(settings.home / "index")),
        "MAX_CONTENT_LENGTH": int(env.get("GANXUN_MAX_UPLOAD_MB", "32")) * 1024 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env.get("GANXUN_SECURE_COOKIES", "").lower() in ("1", "true", "yes"),
        "DEVELOPMENT": False,
        # every request is answered within this many seconds (api.errors.RequestGuard); keep it below gunicorn's timeout
        "REQUEST_TIMEOUT": float(env.get("GANXUN_REQUEST_TIMEOUT", "30")),
        # OpenAPI (flask-smorest); the browsable docs load Swagger UI from our own static files
        "API_TITLE": "干训 ganxun API",
        "API_VERSION": "1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": "/static/vendor/swagger-ui/",
        "API_SPEC_OPTIONS": {
            "info": {"description": "干部教育培训知识图谱与推荐服务。认证：Authorization: Bearer <令牌>（POST /api/auth/token 获取）或登录后的会话 Cookie。"},
        },
    }


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the service.  ``test_config`` overrides everything (tests pass one; production passes none)."""
    app = Flask(__name__)
    settings = (test_config or {}).get("SETTINGS") or Settings.from_env()
    app.config.from_mapping(_defaults(settings))
    app.config.from_pyfile(str(Path(settings.home) / "api_config.py"), silent=True)
    if test_config:
        app.config.from_mapping(test_config)
    _secret_key(app)
    app.config["PERMANENT_SESSION_LIFETIME"] = dt.timedelta(hours=app.config["SESSION_HOURS"])
    app.json.ensure_ascii = False
    app.json.sort_keys = False

    from api import accounts, auth, errors, graph, jobs, services

    app.before_request(_start_clock)
    app.after_request(_stamp)
    accounts.init_app(app)
    graph.init_app(app)
    jobs.init_app(app)
    auth.init_app(app)
    services.init_app(app)

    api = errors.GanxunApi(app)
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    api.spec.components.security_scheme("cookie", {"type": "apiKey", "in": "cookie", "name": "session"})

    from api import admin, analytics, cadres, catalogue, nominations, review, search, transfer

    for module in (services, auth, catalogue, search, cadres, analytics, nominations, transfer, review, admin):
        api.register_blueprint(module.bp)

    from api import pages, security

    pages.init_app(app)
    security.init_app(app)
    app.wsgi_app = errors.RequestGuard(app.wsgi_app, app.config["REQUEST_TIMEOUT"])
    return app


def _secret_key(app: Flask) -> None:
    """Production needs ``GANXUN_SECRET_KEY`` of at least :data:`MIN_SECRET_LENGTH` characters; a development or
    test server without one signs with a random key of its own, so no session can be forged from a constant
    in the source (and its sessions end when it restarts)."""
    development = app.testing or app.debug or app.config["DEVELOPMENT"]
    hint = "（例如 python -c 'import secrets; print(secrets.token_hex(32))'）"
    key = app.config["SECRET_KEY"]
    if not key:
        if not development:
            raise ConfigError(f"生产环境必须设置环境变量 GANXUN_SECRET_KEY{hint}")
        app.config["SECRET_KEY"] = secrets.token_hex(32)
        log.warning("未设置 GANXUN_SECRET_KEY，已为本次启动生成随机密钥，重启后会话失效")
    elif not development and len(key) < MIN_SECRET_LENGTH:
        raise ConfigError(f"GANXUN_SECRET_KEY 太短（{len(key)} 个字符）：生产环境至少 {MIN_SECRET_LENGTH} 个字符{hint}")


def _start_clock() -> None:
    g.ganxun_started = time.perf_counter()


def _stamp(response: Response) -> Response:
    """Name the answering worker and the app's time on every response."""
    response.headers["X-Ganxun-Worker"] = str(os.getpid())
    started = g.get("ganxun_started")
    if started is not None:
        response.headers["Server-Timing"] = f"app;dur={1000 * (time.perf_counter() - started):.1f}"
    return response
