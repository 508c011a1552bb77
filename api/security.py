"""What guards the service beyond roles: cross-site request checks, login throttling, security headers and
private files.

- **CSRF.** A cookie-authenticated state change (POST, PUT, PATCH, DELETE) needs Flask-WTF's token — the hidden
  ``csrf_token`` field of every form, or the ``X-CSRFToken`` header that ``gxFetch`` (``static/js/app.js``)
  sends from the ``csrf-token`` meta tag — and, when the browser names where the request comes from
  (``Origin``, else ``Referer``), this site.  A request that authenticates with ``Authorization: Bearer`` carries
  no ambient credential, so other systems call the API without either; so does an ``/api/`` request with no
  session cookie (it is anonymous and answered 401 where a login is needed).  The login form is checked too, so
  a foreign page cannot log a victim into the attacker's account.  Refusals are a 403 naming the field.
- **Login throttling** (the ``limits`` library, moving window, :class:`LoginThrottle`): attempts are counted per
  account and per address before the password is checked, and taken back unless they fail, shared by the login
  page and ``POST /api/auth/token``; once ``LOGIN_LIMIT_ACCOUNT`` / ``LOGIN_LIMIT_ADDRESS`` is used up the next
  attempt is a 429 before any password hashing (so the limit also caps the CPU an attacker
  can burn), with a Chinese message — JSON for the API, the login page for the form.  The counts live in
  :class:`SqliteStorage`, a ``limits`` storage on a table of the accounts database: gunicorn's workers are
  separate processes and a ``memory://`` store per worker would let an attacker multiply the limit by the
  number of workers; SQLite needs no server, and ``BEGIN IMMEDIATE`` makes check-and-count atomic across them.
  Behind a reverse proxy every client would share its address: ``PROXY_HOPS`` (``GANXUN_PROXY_HOPS``, default 0:
  no proxy trusted) makes werkzeug's ``ProxyFix`` take the address from that many ``X-Forwarded-For`` hops.
- **Headers** on every response: no framing, no MIME sniffing, ``Referrer-Policy: same-origin``, a
  Content-Security-Policy whose scripts are this site's files and inline blocks carrying the request's nonce
  (``nonce="{{ csp_nonce() }}"`` in the templates), and ``Cache-Control: no-store`` on every answer to a
  logged-in user (a cadre's records, gaps and pages must not stay in a shared browser's cache).
- **Private files.** The service's processes create files for their owner only (umask 077): job results,
  exports and uploads can hold personal records; the databases are narrowed to 0600 when opened
  (:func:`kg.sqlite.private_file`).
"""

from __future__ import annotations

import functools
import os
import secrets
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from limits import RateLimitItem, parse
from limits.storage import MovingWindowSupport, Storage
from limits.strategies import MovingWindowRateLimiter
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from api.errors import API_PREFIX, error_body, fail, wants_json
from kg.sqlite import immediate, private_file

__all__ = ["LOGIN_ENDPOINTS", "LoginThrottle", "SqliteStorage", "csrf", "init_app"]

csrf = CSRFProtect()

#: The views that check a password (endpoint names), throttled together.
LOGIN_ENDPOINTS = ("auth.issue_token", "account.login")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


# ─── the limits storage shared by every worker ───
class SqliteStorage(Storage, MovingWindowSupport):
    """A ``limits`` storage in a SQLite file (``ganxun-sqlite:///path/to/file.db``): one row per counted hit,
    read and written in one ``BEGIN IMMEDIATE`` transaction, so every process on the machine sees the same
    window.  One connection per operation, so nothing is shared across a fork or between threads."""

    STORAGE_SCHEME = ["ganxun-sqlite"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.path = Path(urllib.parse.unquote(urllib.parse.urlsplit(uri or "").path))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        private_file(self.path)
        with self._connect() as conn:
            conn.executescript(
                "CREATE TABLE IF NOT EXISTS limit_hits (key TEXT NOT NULL, at REAL NOT NULL);"
                "CREATE INDEX IF NOT EXISTS limit_hits_key ON limit_hits(key, at);"
                "CREATE TABLE IF NOT EXISTS limit_counters (key TEXT PRIMARY KEY, count INTEGER NOT NULL,"
                " expires REAL NOT NULL);"
            )

    @property
    def base_exceptions(self) -> type[Exception]:
        return sqlite3.Error

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    # moving window (the strategy the service uses)
    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        now = time.time()
        with self._connect() as conn, immediate(conn):
            conn.execute("DELETE FROM limit_hits WHERE key = ? AND at < ?", (key, now - expiry))
            (count,) = conn.execute("SELECT count(*) FROM limit_hits WHERE key = ?", (key,)).fetchone()
            if count + amount > limit:
                return False
            conn.executemany("INSERT INTO limit_hits(key, at) VALUES (?, ?)", [(key, now)] * amount)
        return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        with self._connect() as conn:
            oldest, count = conn.execute("SELECT min(at), count(*) FROM limit_hits WHERE key = ? AND at >= ?",
                                         (key, now - expiry)).fetchone()
        return (oldest if count else now), count

    # fixed window (required of every storage)
    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self._connect() as conn, immediate(conn):
            conn.execute("DELETE FROM limit_counters WHERE key = ? AND expires <= ?", (key, now))
            conn.execute("INSERT INTO limit_counters(key, count, expires) VALUES (?, ?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET count = count + excluded.count", (key, amount, now + expiry))
            return conn.execute("SELECT count FROM limit_counters WHERE key = ?", (key,)).fetchone()[0]

    def get(self, key: str) -> int:
        with self._connect() as conn:
            row = conn.execute("SELECT count FROM limit_counters WHERE key = ? AND expires > ?",
                               (key, time.time())).fetchone()
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        with self._connect() as conn:
            row = conn.execute("SELECT expires FROM limit_counters WHERE key = ?", (key,)).fetchone()
        return row[0] if row else time.time()

    def check(self) -> bool:
        try:
            with self._connect() as conn:
                conn.execute("SELECT 1 FROM limit_hits LIMIT 1")
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        with self._connect() as conn, immediate(conn):
            removed = conn.execute("DELETE FROM limit_hits").rowcount + conn.execute("DELETE FROM limit_counters").rowcount
        return removed

    def release_entry(self, key: str) -> None:
        """Take back the latest hit on ``key`` (an attempt counted before it was known not to be a failure)."""
        with self._connect() as conn, immediate(conn):
            conn.execute("DELETE FROM limit_hits WHERE rowid = (SELECT max(rowid) FROM limit_hits WHERE key = ?)", (key,))

    def clear(self, key: str) -> None:
        with self._connect() as conn, immediate(conn):
            conn.execute("DELETE FROM limit_hits WHERE key = ?", (key,))
            conn.execute("DELETE FROM limit_counters WHERE key = ?", (key,))


# ─── login throttling ───
def _account_key() -> str:
    """The account a login attempt names (case and surrounding spaces ignored), from the form or the JSON body."""
    body = request.get_json(silent=True) if request.is_json else None
    name = body.get("username") if isinstance(body, dict) else request.form.get("username")
    return "account:" + (name.strip().casefold()[:80] if isinstance(name, str) and name.strip() else "-")


def _address_key() -> str:
    """The client's address: the socket's peer, or with ``PROXY_HOPS`` the one the trusted proxies forwarded."""
    return "address:" + (request.remote_addr or "-")


def _too_many(limit: RateLimitItem) -> Any:
    """The 429: the login page again with the message, or the JSON error shape, with ``Retry-After``."""
    seconds = int(limit.get_expiry())
    wait = f"{seconds // 60} 分钟" if seconds >= 60 and seconds % 60 == 0 else f"{seconds} 秒"
    message = f"登录失败次数过多，请 {wait}后再试"
    headers = {"Retry-After": str(seconds)}
    if wants_json():
        response = jsonify(error_body(429, message, {"username": [message]}))
        response.status_code = 429
        response.headers.update(headers)
        return response
    return render_template("login.html", username=request.form.get("username", ""), error=message), 429, headers


class LoginThrottle:
    """Counts a login attempt per account and per address *before* the view checks the password, and takes the
    count back when the answer is not a 401 (a user who logs in is not held back by earlier typing mistakes).

    Counting after the answer (Flask-Limiter's ``deduct_when``) tests the limit before the view and counts after
    it, so every request in flight when the ninth failure is counted gets its password checked: 4 workers × 4
    threads let through some 25 guesses a minute instead of 10.  Here the check and the count are one
    ``BEGIN IMMEDIATE`` transaction in :class:`SqliteStorage`, so at most the limit's number of passwords are
    ever checked in a window, and the 429 comes before any hashing (the limit also caps the CPU an attacker can
    burn)."""

    def __init__(self, app: Flask) -> None:
        self.storage = SqliteStorage("ganxun-sqlite://" + urllib.parse.quote(str(Path(app.config["ACCOUNTS_DB"]).resolve())))
        self.window = MovingWindowRateLimiter(self.storage)
        self.limits = ((parse(app.config["LOGIN_LIMIT_ACCOUNT"]), "login-account", _account_key),
                       (parse(app.config["LOGIN_LIMIT_ADDRESS"]), "login-address", _address_key))

    def wrap(self, view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def throttled(*args: Any, **kwargs: Any) -> Any:
            if request.method != "POST":
                return view(*args, **kwargs)
            counted: list[str] = []
            for limit, scope, key in self.limits:
                if not self.window.hit(limit, scope, key()):
                    self._take_back(counted)
                    return _too_many(limit)
                counted.append(limit.key_for(scope, key()))
            try:
                response = current_app.make_response(view(*args, **kwargs))
            except HTTPException as exc:
                if exc.code != 401:
                    self._take_back(counted)
                raise
            except BaseException:
                self._take_back(counted)
                raise
            if response.status_code != 401:
                self._take_back(counted)
            return response

        return throttled

    def _take_back(self, keys: list[str]) -> None:
        for key in keys:
            self.storage.release_entry(key)


def _throttle(app: Flask) -> None:
    """One throttle per app (its storage is that app's accounts database), wrapped around the login views."""
    throttle = LoginThrottle(app)
    for endpoint in LOGIN_ENDPOINTS:
        app.view_functions[endpoint] = throttle.wrap(app.view_functions[endpoint])


# ─── cross-site requests ───
def _same_site(url: str) -> bool:
    return urllib.parse.urlsplit(url).netloc.lower() == request.host.lower()


def _guard_state_change() -> None:
    """The CSRF check described above, before any view runs."""
    if request.method in SAFE_METHODS or request.headers.get("Authorization", "")[:7].lower() == "bearer ":
        return
    if request.path.startswith(API_PREFIX) and current_app.config["SESSION_COOKIE_NAME"] not in request.cookies:
        return
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if origin and not _same_site(origin):  # "null" (a sandboxed or file page) names no site: refused too
        fail(403, f"拒绝跨站请求：请求来自 {urllib.parse.urlsplit(origin).netloc or origin}，不是本站",
             {"Origin": ["只接受本站页面发出的修改请求"]})
    try:
        csrf.protect()
    except CSRFError as exc:
        reason = {"The CSRF token is missing.": "缺少安全令牌", "The CSRF session token is missing.": "会话中没有安全令牌",
                  "The CSRF token has expired.": "安全令牌已过期", "The CSRF tokens do not match.": "安全令牌与会话不符"}
        why = reason.get(exc.description, "安全令牌无效")
        fail(403, f"请求未通过跨站校验（{why}），请刷新页面后重试", {"csrf_token": [why]})


# ─── headers ───
def csp_nonce() -> str:
    """This request's script nonce (templates: ``<script nonce="{{ csp_nonce() }}">``)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def _headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Content-Security-Policy", (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{csp_nonce()}'; "
        "style-src 'self' 'unsafe-inline'; "  # style="width: …" on bars; no script can run from a style
        "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ))
    if g.get("user") is not None:
        headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Call after every blueprint is registered (the login views are wrapped by the throttle)."""
    os.umask(0o077)
    hops = int(app.config.get("PROXY_HOPS", 0))
    if hops:  # the address (and scheme) the trusted proxies saw, not the proxy's own
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # checked by _guard_state_change (bearer exempt)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid as long as the session, which expires itself
    app.config.setdefault("WTF_CSRF_SSL_STRICT", False)  # the Origin / Referer check above covers http and https
    csrf.init_app(app)
    app.before_request(_guard_state_change)
    app.after_request(_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    _throttle(app)
