"""Server-rendered pages in Chinese, one blueprint per kind of user.

Pages call the same functions as the JSON API (never the API over HTTP) and hand chart data to the vendored
ECharts as JSON embedded in the page.  An anonymous visitor is redirected to the login page; a user of
another role gets a 403 page.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import marshmallow as ma
from flask import Flask

from api.auth import role_check

__all__ = ["init_app", "load_form", "page"]


def page(*roles: str) -> Callable:
    """Guard a page view: login required, and one of ``roles`` when given."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            role_check(roles)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def load_form(schema: ma.Schema, data: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Validate a page form with the same schema the JSON API uses; blank fields count as not given."""
    cleaned = {k: v for k, v in data.items() if v not in ("", None)}
    try:
        return schema.load(cleaned), {}
    except ma.ValidationError as exc:
        return None, exc.messages if isinstance(exc.messages, dict) else {"表单": exc.messages}


def init_app(app: Flask) -> None:
    from api.accounts import ROLES
    from api.auth import current_user
    from api.pages import account, admin, cadre, catalogue, designer, evaluator, review

    for module in (account, cadre, designer, evaluator, admin, catalogue, review):
        app.register_blueprint(module.bp)

    # at the root too, for browsers that ask there without reading the page's <link>; public like /static/
    app.add_url_rule("/favicon.ico", "favicon", lambda: app.send_static_file("favicon.ico"))

    @app.context_processor
    def navigation() -> dict[str, Any]:
        return {"user": current_user(), "ROLES": ROLES, "nav": account.navigation(current_user())}
