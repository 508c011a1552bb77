"""marshmallow fields and validators whose error messages are Chinese.

Every request schema in ``api`` is built from these, so a bad request is answered in Chinese and names the
field, without translating marshmallow's English messages after the fact.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import marshmallow as ma
from marshmallow import validate

__all__ = [
    "Boolean",
    "Date",
    "Dict",
    "Float",
    "Integer",
    "List",
    "Nested",
    "Raw",
    "Schema",
    "String",
    "length",
    "one_of",
    "page_size",
    "positive",
    "range_",
]


class _Chinese:
    """Messages every field shares (marshmallow merges ``default_error_messages`` along the MRO)."""

    default_error_messages = {
        "required": "必填字段缺失",
        "null": "不能为 null",
        "validator_failed": "取值无效",
    }


class String(_Chinese, ma.fields.String):
    default_error_messages = {"invalid": "应为字符串", "invalid_utf8": "不是有效的 UTF-8 文本"}


class Integer(_Chinese, ma.fields.Integer):
    default_error_messages = {"invalid": "应为整数", "too_large": "数值过大"}


class Float(_Chinese, ma.fields.Float):
    default_error_messages = {"invalid": "应为数字", "too_large": "数值过大", "special": "不能为 NaN 或无穷大"}


class Boolean(_Chinese, ma.fields.Boolean):
    default_error_messages = {"invalid": "应为 true 或 false"}


class Date(_Chinese, ma.fields.Date):
    default_error_messages = {"invalid": "应为日期（YYYY-MM-DD）", "format": "日期格式应为 YYYY-MM-DD"}


class List(_Chinese, ma.fields.List):
    default_error_messages = {"invalid": "应为数组"}


class Dict(_Chinese, ma.fields.Dict):
    default_error_messages = {"invalid": "应为 JSON 对象"}


class Nested(_Chinese, ma.fields.Nested):
    default_error_messages = {"type": "应为 JSON 对象"}


class Raw(_Chinese, ma.fields.Raw):
    pass


class Schema(ma.Schema):
    """Base schema: unknown fields are refused with a Chinese message."""

    error_messages = {"unknown": "不认识的字段", "type": "请求体应为 JSON 对象"}

    class Meta:
        unknown = ma.RAISE


def one_of(choices: Iterable[Any]) -> validate.OneOf:
    choices = list(choices)
    return validate.OneOf(choices, error="应为以下之一：" + "、".join(str(c) for c in choices))


def range_(minimum: float | None = None, maximum: float | None = None) -> validate.Range:
    if minimum is not None and maximum is not None:
        error = f"应在 {minimum} 到 {maximum} 之间"
    elif minimum is not None:
        error = f"应不小于 {minimum}"
    else:
        error = f"应不大于 {maximum}"
    return validate.Range(min=minimum, max=maximum, error=error)


def positive() -> validate.Range:
    return validate.Range(min=0, min_inclusive=False, error="应大于 0")


def length(minimum: int | None = None, maximum: int | None = None) -> validate.Length:
    if minimum is not None and maximum is not None:
        error = f"长度应在 {minimum} 到 {maximum} 之间"
    elif minimum is not None:
        error = f"长度应不少于 {minimum}"
    else:
        error = f"长度应不超过 {maximum}"
    return validate.Length(min=minimum, max=maximum, error=error)


def page_size(default: int = 20, maximum: int = 100) -> Integer:
    return Integer(load_default=default, validate=range_(1, maximum), metadata={"description": f"每页条数（1—{maximum}）"})
