"""Who is asking: session cookies for the pages, bearer tokens for other systems, roles on every API route.

The cookie holds only the id of a session kept in the accounts database (:mod:`api.accounts`), so logout, a
password or role change and a deactivation end it on the server; a cookie of the older ``{"user_id": …}`` shape
is not honoured.  The JSON API answers an anonymous request with 401 and a request from the wrong role with
403; the pages redirect anonymous visitors to the login page (see ``api.errors``).  Every change is written to
the audit log through :func:`audit`; login attempts are throttled by :mod:`api.security`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Flask, g, request, session
from flask_smorest import Blueprint

from api import fields as f
from api.accounts import ROLES, User, accounts
from api.errors import fail

__all__ = ["ApiBlueprint", "audit", "bp", "current_user", "end_session", "init_app", "role_check", "start_session"]

SECURITY = [{"bearer": []}, {"cookie": []}]


def current_user() -> User | None:
    return g.get("user")


def role_check(roles: tuple[str, ...]) -> None:
    """Abort with 401 when nobody is logged in, 403 when the user's role is not among ``roles`` (empty: any)."""
    user = current_user()
    if user is None:
        fail(401, "请先登录（或在 Authorization 头中提供令牌）")
    if roles and user.role not in roles:
        fail(403, "该操作仅限以下角色：" + "、".join(ROLES[r] for r in roles))


class ApiBlueprint(Blueprint):
    """A flask-smorest blueprint whose ``requires`` both enforces roles and documents 401/403 and security."""

    def requires(self, *roles: str) -> Callable:
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"未知角色：{unknown}")

        def decorator(view: Callable) -> Callable:
            @functools.wraps(view)
            def wrapped(*args: Any, **kwargs: Any) -> Any:
                role_check(roles)
                return view(*args, **kwargs)

            wrapped = self.alt_response(401, response="UNAUTHORIZED")(wrapped)
            if roles:
                wrapped = self.alt_response(403, response="FORBIDDEN")(wrapped)
            who = "、".join(ROLES[r] for r in roles) if roles else "任何已登录用户"
            return self.doc(security=SECURITY, description=f"权限：{who}。")(wrapped)

        return decorator


def audit(action: str, target: str | None = None, **detail: Any) -> None:
    """Record a change: who (the current user), what (action, target, detail), when, from where."""
    user = current_user()
    accounts().audit(user.username if user else None, action, target, detail, request.remote_addr)


def start_session(user: User) -> None:
    """Log ``user`` in on this browser: a fresh cookie (nothing of an earlier session, or of an attacker's
    planted one, survives) naming a new server-side session of ``SESSION_HOURS``."""
    session.clear()
    session["sid"] = accounts().open_session(user)
    session.permanent = True  # the cookie expires with the server-side session (PERMANENT_SESSION_LIFETIME)
    g.user = user


def end_session() -> None:
    """Log out on this browser: the server-side session is deleted, so a copy of the cookie is worth nothing."""
    session_id = session.get("sid")
    if isinstance(session_id, str):
        accounts().end_session(session_id)
    session.clear()


def _load_user() -> None:
    """Resolve the caller once per request: a bearer token wins over the session cookie."""
    g.user = None
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        g.user = accounts().user_for_token(header[7:].strip())
        return
    session_id = session.get("sid")
    if isinstance(session_id, str):
        g.user = accounts().user_for_session(session_id)


def init_app(app: Flask) -> None:
    app.before_request(_load_user)


# ─── the token endpoints ───
bp = ApiBlueprint("auth", __name__, url_prefix="/api/auth", description="登录与令牌")


class Credentials(f.Schema):
    username = f.String(required=True, validate=f.length(1, 80), metadata={"description": "用户名"})
    password = f.String(required=True, validate=f.length(1, 200), metadata={"description": "密码"})


class TokenSchema(f.Schema):
    token = f.String(metadata={"description": "在 Authorization: Bearer … 中使用"})
    expires = f.String(metadata={"description": "过期时间（UTC，ISO 8601）"})
    user = f.Dict()


class UserSchema(f.Schema):
    id = f.Integer()
    username = f.String()
    display_name = f.String()
    role = f.String(metadata={"description": "cadre | designer | evaluator | admin"})
    role_name = f.String()
    cadre_id = f.String(allow_none=True)
    active = f.Boolean()
    created = f.String()


@bp.route("/token", methods=["POST"])
@bp.arguments(Credentials)
@bp.response(201, TokenSchema)
@bp.alt_response(401, response="UNAUTHORIZED")
@bp.alt_response(429, response="TOO_MANY_REQUESTS", description="登录失败次数过多（按账号、按地址分别计数），稍后再试")
def issue_token(creds: dict[str, str]) -> dict[str, Any]:
    """用用户名和密码换取访问令牌（密码错误过多时 429）"""
    user = accounts().authenticate(creds["username"], creds["password"])
    if user is None:
        accounts().audit(creds["username"], "登录失败", None, {"方式": "令牌"}, request.remote_addr)
        fail(401, "用户名或密码错误")
    token, expires = accounts().issue_token(user)
    g.user = user
    audit("签发令牌", f"user:{user.id}")
    return {"token": token, "expires": expires, "user": user.to_dict()}


@bp.route("/token", methods=["DELETE"])
@bp.requires()
@bp.response(204)
def revoke_token() -> None:
    """吊销当前请求所用的令牌"""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        accounts().revoke_token(header[7:].strip())
        audit("吊销令牌")


@bp.route("/me")
@bp.requires()
@bp.response(200, UserSchema)
def me() -> dict[str, Any]:
    """当前用户"""
    return current_user().to_dict()
