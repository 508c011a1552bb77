"""One error shape for the whole JSON API, and HTML error pages for the web pages.

Every error on ``/api/…`` is answered with ``{"状态": 422, "错误": "…", "字段": {"page": ["应不小于 1"]}}``
(``字段`` only when fields are at fault).  Unexpected exceptions become a 500 with no details: the traceback
goes to the log, never to the client.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import marshmallow as ma
from flask import Response, jsonify, redirect, render_template, request, url_for
from flask_smorest import Api, abort
from werkzeug.exceptions import HTTPException, InternalServerError

__all__ = ["API_PREFIX", "ErrorSchema", "GanxunApi", "MESSAGES", "fail", "wants_json"]

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
}


class ErrorSchema(ma.Schema):
    """The error body (documentation only; the handler builds it)."""

    状态 = ma.fields.Integer(metadata={"description": "HTTP 状态码"})
    错误 = ma.fields.String(metadata={"description": "错误说明（中文）"})
    字段 = ma.fields.Dict(metadata={"description": "出错的字段及其问题（字段名 → 说明列表）"})
    问题 = ma.fields.List(ma.fields.Dict(), metadata={"description": "导入校验的逐行问题：file、line、field、message"})


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
        if not wants_json():
            return self._html_error(code, message, headers)
        body: dict[str, Any] = {"状态": code, "错误": message}
        if fields:
            body["字段"] = fields
        if data.get("issues"):
            body["问题"] = data["issues"]
        response = jsonify(body)
        response.status_code = code
        response.headers.update(headers)
        return response

    def handle_unexpected(self, error: Exception) -> Any:
        if isinstance(error, HTTPException):
            return self.handle_http_exception(error)
        log.exception("未处理的异常：%s %s", request.method, request.path)
        if not wants_json():
            return self._html_error(500, MESSAGES[500], {})
        response = jsonify({"状态": 500, "错误": MESSAGES[500]})
        response.status_code = 500
        return response

    @staticmethod
    def _html_error(code: int, message: str, headers: dict[str, str]) -> Response | tuple:
        if code == 401:
            return redirect(url_for("account.login", next=request.full_path.rstrip("?")))
        return render_template("error.html", code=code, message=message), code, headers


def fail(code: int, message: str, fields: dict[str, Any] | None = None) -> None:
    """Abort with the shared error shape: a Chinese message and, optionally, the fields at fault."""
    abort(code, message=message, errors=fields or {})
