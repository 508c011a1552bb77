"""One error shape for the whole JSON API, and HTML error pages for the web pages.

Every error on ``/api/…`` is answered with ``{"状态": 422, "错误": "…", "字段": {"page": ["应不小于 1"]}}``
(``字段`` only when fields are at fault).  The domain's own exceptions are mapped to statuses here, in one
table (:data:`DOMAIN_ERRORS`), so no route catches them: a client's mistake (a bad parameter, an unknown
cadre, an invalid filter, a rejected import) is a 4xx with the domain's Chinese message; a server fault (a
solver that ran out of time, an index not built yet, a store that cannot be reached, any unexpected
exception) is a 5xx whose body carries an ``错误编号`` (uuid) that is also in the log line, never a
traceback.  :class:`RequestGuard` bounds every request's time, so even under gunicorn a slow request is
answered with this JSON shape (503) instead of the worker being killed and the client seeing HTML.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

import marshmallow as ma
from flask import Response, jsonify, redirect, render_template, request, url_for
from flask_smorest import Api, abort
from werkzeug.exceptions import HTTPException, InternalServerError

__all__ = ["API_PREFIX", "DOMAIN_ERRORS", "ErrorSchema", "GanxunApi", "MESSAGES", "RequestGuard", "error_body", "fail",
           "wants_json"]

API_PREFIX = "/api/"
log = logging.getLogger(__name__)

MESSAGES: dict[int, str] = {
    400: "请求格式有误",
    401: "请先登录（或在 Authorization 头中提供令牌）",
    403: "无权访问该资源",
    404: "未找到",
    405: "不支持该请求方法",
    406: "无法提供所要求的内容格式",
    409: "与现有数据冲突",
    413: "上传内容过大",
    415: "不支持的内容类型",
    422: "请求参数未通过校验",
    429: "请求过于频繁",
    500: "服务器内部错误",
    503: "服务暂时不可用，请稍后再试",
    504: "请求处理超时，请稍后再试",
}

#: The domain's exceptions (``module:Class``) → HTTP status.  Flask picks the entry of the most specific class
#: in an exception's MRO, so a subclass listed here wins over its base.  4xx answers carry the exception's
#: message (Chinese, naming the field); 5xx answers carry an error id and the message is logged.
DOMAIN_ERRORS: dict[str, int] = {
    "recommender.errors:UnknownCadre": 404,
    "recommender.errors:InvalidRequest": 422,
    "recommender.errors:VocabularyMismatch": 500,
    "recommender.analytics.errors:AnalyticsError": 422,  # InputError, RuleError: what was given cannot be used
    "recommender.analytics.errors:SolverError": 503,  # the solver stopped without an answer (time limit)
    "recommender.search.errors:SearchError": 422,  # an empty query, an unknown mode or filter value
    "recommender.search.errors:IndexNotReady": 503,  # no usable index on disk yet: an update job must run
    "kg.build:BuildFailed": 422,
    "kg.store.base:StoreError": 503,
}


class ErrorSchema(ma.Schema):
    """The error body (documentation only; the handler builds it)."""

    状态 = ma.fields.Integer(metadata={"description": "HTTP 状态码"})
    错误 = ma.fields.String(metadata={"description": "错误说明（中文）"})
    字段 = ma.fields.Dict(metadata={"description": "出错的字段及其问题（字段名 → 说明列表）"})
    问题 = ma.fields.List(ma.fields.Dict(), metadata={"description": "导入校验的逐行问题：file、line、field、message"})
    错误编号 = ma.fields.String(metadata={"description": "服务器端错误（5xx）的编号，与日志中的记录对应"})


def wants_json() -> bool:
    """JSON for the API (and for clients that ask for it); HTML for the pages."""
    if request.path.startswith(API_PREFIX) or request.path in ("/openapi.json",):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _field_errors(data: dict[str, Any]) -> dict[str, Any] | None:
    """Fields at fault: given by :func:`fail` as is, or by webargs per location (folded away here)."""
    if data.get("errors"):
        return dict(data["errors"])
    messages = data.get("messages")
    if not isinstance(messages, dict):
        return None
    folded: dict[str, Any] = {}
    for location, value in messages.items():
        if isinstance(value, dict):
            folded.update(value)
        else:
            folded[location] = value
    return folded


def _json_body_unreadable(fields: dict[str, Any] | None) -> bool:
    return bool(fields) and set(fields) == {"json"} and not isinstance(fields.get("json"), dict)


class GanxunApi(Api):
    """flask-smorest's Api with the error shape above, for API paths and page paths alike."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self) -> None:
        self._app.register_error_handler(HTTPException, self.handle_http_exception)
        self._app.register_error_handler(Exception, self.handle_unexpected)
        for path, code in DOMAIN_ERRORS.items():
            module, name = path.split(":")
            self._app.register_error_handler(getattr(importlib.import_module(module), name), self._domain_handler(code))

    def _domain_handler(self, code: int) -> Callable[[Exception], Any]:
        def handle(error: Exception) -> Any:
            if code >= 500:
                return self._server_fault(code, error)
            issues = [{"file": i.file, "line": i.line, "field": i.field, "message": i.message}
                      for i in getattr(error, "issues", ())]
            return self._answer(code, str(error) or MESSAGES.get(code, ""), None, {}, issues)

        return handle

    def handle_http_exception(self, error: HTTPException) -> Any:
        if isinstance(error, InternalServerError) and error.original_exception is not None:
            return self.handle_unexpected(error.original_exception)
        code = error.code or 500
        data = getattr(error, "data", None) or {}
        fields = _field_errors(data)
        if _json_body_unreadable(fields):
            message, fields = "请求体不是有效的 JSON", None
        else:
            message = data.get("message") or MESSAGES.get(code) or HTTPStatus(code).phrase
        headers = {k: v for k, v in error.get_headers() if k in ("Allow", "WWW-Authenticate", "Retry-After")}
        headers.update(data.get("headers") or {})
        return self._answer(code, message, fields, headers, data.get("issues"))

    def _answer(self, code: int, message: str, fields: dict[str, Any] | None, headers: dict[str, str],
                issues: list[dict[str, Any]] | None = None, error_id: str | None = None) -> Any:
        if not wants_json():
            return self._html_error(code, message, headers)
        response = jsonify(error_body(code, message, fields, issues, error_id))
        response.status_code = code
        response.headers.update(headers)
        return response

    def _server_fault(self, code: int, error: Exception) -> Any:
        """A 5xx: the traceback and an error id go to the log, the id (never the traceback) to the client."""
        error_id = uuid.uuid4().hex
        log.error("服务器错误 %s（错误编号 %s）：%s %s", code, error_id, request.method, request.path, exc_info=error)
        message = MESSAGES[code] if code == 500 else f"{MESSAGES[code]}：{error}"
        return self._answer(code, message, None, {"Retry-After": "5"} if code == 503 else {}, error_id=error_id)

    def handle_unexpected(self, error: Exception) -> Any:
        if isinstance(error, HTTPException):
            return self.handle_http_exception(error)
        return self._server_fault(500, error)

    @staticmethod
    def _html_error(code: int, message: str, headers: dict[str, str]) -> Response | tuple:
        if code == 401:
            return redirect(url_for("account.login", next=request.full_path.rstrip("?")))
        return render_template("error.html", code=code, message=message), code, headers


def error_body(code: int, message: str, fields: dict[str, Any] | None = None,
               issues: list[dict[str, Any]] | None = None, error_id: str | None = None) -> dict[str, Any]:
    """The shared JSON error shape — built here only, for the app's answers and for :class:`RequestGuard`'s,
    which has no app to answer through."""
    body: dict[str, Any] = {"状态": code, "错误": message}
    if fields:
        body["字段"] = fields
    if issues:
        body["问题"] = issues
    if error_id:
        body["错误编号"] = error_id
    return body


def fail(code: int, message: str, fields: dict[str, Any] | None = None) -> None:
    """Abort with the shared error shape: a Chinese message and, optionally, the fields at fault."""
    abort(code, message=message, errors=fields or {})


class RequestGuard:
    """WSGI middleware that answers every request within ``seconds``: the app runs in a thread of its own, and
    if it has not returned its response in time the client gets a 503 in the shared error shape (JSON on
    ``/api/``) with an error id that is also logged, while the late work finishes in the background and is
    discarded.

    Why: under the ``gthread`` workers we serve with (``gunicorn.conf.py``) gunicorn's timeout bounds only the
    worker's heartbeat, not a request, so a request that hangs (a locked store, work that belongs in a job)
    would keep its client waiting with no answer and hold one of the worker's few threads until it ends.  The
    guard answers the client in bounded time and frees that thread, the late work going on in its own; heavy
    work belongs in jobs and in worker warm-up, and this makes sure nothing that slipped through hangs a client.
    (Under sync workers it would also pre-empt gunicorn's timeout, which kills the worker and sends an HTML 500.)
    ``seconds <= 0`` turns it off.  The response body is passed on as the app returned it (a file download is
    not read into memory); the legacy WSGI ``write()`` callable, which Flask never uses, is refused.  Static
    files are served unguarded."""

    def __init__(self, app: Callable[..., Iterable[bytes]], seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.seconds <= 0 or environ.get("PATH_INFO", "").startswith("/static/"):
            return self.app(environ, start_response)
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
            outcome["start"] = (status, headers)

            def write(data: bytes) -> None:
                raise RuntimeError("RequestGuard 不支持 WSGI 的 write()")

            return write

        lock = threading.Lock()

        def run() -> None:
            try:
                body = self.app(environ, capture)
            except BaseException as exc:  # re-raised in the server's thread, which reports it
                body, outcome["error"] = None, exc
            with lock:
                late = outcome.get("late", False)
                outcome["body"] = body
            done.set()
            if late and body is not None:  # nobody will send it: release what it holds (an open file)
                getattr(body, "close", lambda: None)()

        threading.Thread(target=run, name="ganxun-request", daemon=True).start()
        if not done.wait(self.seconds):
            with lock:
                outcome["late"] = "body" not in outcome
            if outcome["late"]:
                return self._late(environ, start_response)
        if "error" in outcome:
            raise outcome["error"]
        start_response(*outcome["start"])
        return outcome["body"]

    def _late(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The 503 for a request past its time, answered without the app (whose context is busy in the late
        thread): the shared JSON body from :func:`error_body`, or a minimal page outside the API."""
        error_id = uuid.uuid4().hex
        path = environ.get("PATH_INFO", "")
        log.error("请求超过 %s 秒未完成，已答复 503（错误编号 %s）：%s %s", self.seconds, error_id,
                  environ.get("REQUEST_METHOD"), path)
        message = f"请求处理超过 {self.seconds:g} 秒，已中止等待；请稍后再试"
        headers = [("Retry-After", "5"), ("X-Ganxun-Worker", str(os.getpid()))]
        if path.startswith(API_PREFIX):
            body = json.dumps(error_body(503, message, error_id=error_id), ensure_ascii=False).encode("utf-8")
            headers.append(("Content-Type", "application/json"))
        else:
            body = f"<!doctype html><meta charset=utf-8><title>503</title><p>{message}（错误编号 {error_id}）</p>".encode()
            headers.append(("Content-Type", "text/html; charset=utf-8"))
        start_response("503 SERVICE UNAVAILABLE", [*headers, ("Content-Length", str(len(body)))])
        return [body]
