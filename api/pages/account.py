"""Login, logout and the home page that sends each user to the pages of their role."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, url_for

from api.accounts import User, accounts
from api.auth import audit, current_user, end_session, start_session
from api.pages import page

__all__ = ["bp", "navigation"]

bp = Blueprint("account", __name__)

#: role → [(endpoint, title)], in menu order.
MENUS: dict[str, list[tuple[str, str]]] = {
    "cadre": [("cadre.overview", "我的学习"), ("cadre.learning_map", "学习地图"), ("cadre.search", "课程检索")],
    "designer": [("designer.coverage_page", "主题覆盖"), ("designer.indicators_page", "教学指标"), ("designer.programme_page", "班次方案"),
                 ("designer.topics_page", "主题资源"), ("review_page.queue_page", "标注审核"), ("cadre.search", "课程检索")],
    "evaluator": [("evaluator.nominations_page", "推荐名单"), ("evaluator.check_page", "名单核验"), ("cadre.search", "课程检索")],
    "admin": [("console.imports", "导入导出"), ("console.jobs", "同步与索引"), ("console.users", "用户与角色"),
              ("console.cadres", "查找干部"), ("console.audit_page", "审计日志"), ("designer.coverage_page", "主题覆盖"), ("evaluator.nominations_page", "推荐名单")],
}


def navigation(user: User | None) -> list[tuple[str, str]]:
    return MENUS.get(user.role, []) if user else []


#: Whitespace and control characters: browsers drop tabs and line breaks from a URL (``/\t/evil`` becomes
#: ``//evil``, another site) and a CR or LF cannot go into a ``Location`` header at all.
_UNSAFE_IN_NEXT = re.compile(r"[\x00-\x20\x7f\\]")


def _safe_next(target: str | None) -> str | None:
    """A same-site relative path to go to after logging in, or None (then: home), so the login form cannot be
    used to bounce users elsewhere: it must start with one ``/``, hold no whitespace, control character or
    backslash, and name neither a scheme nor a host."""
    if not target or not target.startswith("/") or target.startswith("//") or _UNSAFE_IN_NEXT.search(target):
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        user = accounts().authenticate(username, request.form.get("password", ""))
        if user is None:
            accounts().audit(username or None, "登录失败", None, {"方式": "页面"}, request.remote_addr)
            return render_template("login.html", username=username, error="用户名或密码错误"), 401
        start_session(user)
        audit("登录")
        return redirect(_safe_next(request.args.get("next")) or url_for("account.home"))
    return render_template("login.html", username="")


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    if current_user() is not None:
        audit("退出登录")
    end_session()
    return redirect(url_for("account.login"))


@bp.route("/")
@page()
def home() -> Any:
    menu = navigation(current_user())
    return redirect(url_for(menu[0][0]))
