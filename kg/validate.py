"""Validation of corpus rows against the checks generated from ``ontology/shapes.ttl``.

Every problem of every file is collected before anything is written, each naming the file, the line, the
field and what was expected, in Chinese.  The same rows that pass are turned into nodes and edges here, so
there is one reading of the shapes, not one for checking and another for loading.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kg.model import Edge, Node
from kg.ontology import ClassSpec, FieldSpec, Ontology
from kg.readers import SourceRow

__all__ = ["Issue", "ValidationResult", "validate_rows"]

_ID_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_EXPECTED = {
    "string": "文本",
    "integer": "整数",
    "decimal": "数字",
    "boolean": "true 或 false",
    "date": "日期（YYYY-MM-DD）",
}


@dataclass(frozen=True)
class Issue:
    """One validation problem, located as precisely as the input allows."""

    file: str
    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file} 第 {self.line} 行"
        return f"{where}，字段『{self.field}』：{self.message}" if self.field else f"{where}：{self.message}"


@dataclass
class ValidationResult:
    nodes: list[Node]
    edges: list[Edge]
    issues: list[Issue]

    @property
    def ok(self) -> bool:
        return not self.issues


LabelsOf = Callable[[Iterable[str]], Mapping[str, str]]
"""Bulk resolution of ids to their class, like :meth:`kg.store.base.Store.labels_of`: ids it does not know are absent."""


def validate_rows(
    rows: Iterable[SourceRow],
    ontology: Ontology,
    existing_label: Callable[[str], str | None] = lambda _id: None,
    *,
    existing_labels: LabelsOf | None = None,
) -> ValidationResult:
    """Check rows and build the graph they describe.

    References to ids these rows do not declare are resolved before any row is checked, all in one call of
    ``existing_labels`` (a store's ``labels_of``: one round trip per large chunk of ids, not one per row or per
    reference, which on Neo4j was the cost of an import).  ``existing_label``, one id at a time, is for an
    in-memory answer such as the concept nodes' ``dict.get``; it is used only when ``existing_labels`` is not
    given.
    """
    rows = list(rows)
    issues: list[Issue] = []
    declared: dict[str, tuple[str, SourceRow]] = {}
    typed: list[tuple[SourceRow, ClassSpec, str]] = []
    data_classes = {c.name: c for c in ontology.data_classes}
    for row in rows:
        checked = _check_identity(row, data_classes, declared, issues)
        if checked is not None:
            typed.append((row, *checked))

    wanted = sorted(_references(typed) - declared.keys())
    if existing_labels is None:
        known = {i: label for i in wanted if (label := existing_label(i)) is not None}
    else:
        known = dict(existing_labels(wanted)) if wanted else {}

    def label_of(node_id: str) -> str | None:
        if node_id in declared:
            return declared[node_id][0]
        return known.get(node_id)

    nodes: list[Node] = []
    edges: list[Edge] = []
    for row, spec, node_id in typed:
        row_issues: list[Issue] = []
        props, row_edges = _check_fields(row, spec, node_id, ontology, label_of, row_issues)
        issues.extend(row_issues)
        if not row_issues:
            nodes.append(Node(node_id, spec.name, props))
            edges.extend(row_edges)
    return ValidationResult(nodes, edges, issues)


def _references(typed: Iterable[tuple[SourceRow, ClassSpec, str]]) -> set[str]:
    """Every id the rows' relation fields name (well-formed or not: checking them is :func:`_check_fields`'s job)."""
    ids: set[str] = set()
    for row, spec, _node_id in typed:
        data = row.data or {}
        for field in spec.fields.values():
            if field.is_relation:
                raw = data.get(field.name)
                ids.update(v for v in (raw if isinstance(raw, list) else [raw]) if isinstance(v, str))
    return ids


def _check_identity(
    row: SourceRow,
    data_classes: dict[str, ClassSpec],
    declared: dict[str, tuple[str, SourceRow]],
    issues: list[Issue],
) -> tuple[ClassSpec, str] | None:
    """Type and id of a row; duplicates are reported against the first occurrence."""
    if row.data is None:
        issues.append(Issue(row.file, row.line, None, row.parse_error or "无法读取"))
        return None
    class_name = row.data.get("type")
    spec = data_classes.get(class_name) if isinstance(class_name, str) else None
    if spec is None:
        names = "、".join(f"{c.name}（{c.label}）" for c in data_classes.values())
        issues.append(Issue(row.file, row.line, "type", f"取值『{class_name}』不是可导入的类，应为以下之一：{names}"))
        return None
    node_id = row.data.get("id")
    prefix, sep, slug = node_id.partition(":") if isinstance(node_id, str) else ("", "", "")
    if not sep or prefix != spec.id_prefix or not _ID_SLUG.match(slug):
        issues.append(
            Issue(row.file, row.line, "id", f"编号『{node_id}』格式不对，应为 {spec.id_prefix}:字母数字与连字符，如 {spec.id_prefix}:a-001")
        )
        return None
    if node_id in declared:
        first = declared[node_id][1]
        issues.append(Issue(row.file, row.line, "id", f"编号『{node_id}』重复，已在 {first.file} 第 {first.line} 行出现"))
        return None
    declared[node_id] = (spec.name, row)
    return spec, node_id


def _check_fields(
    row: SourceRow,
    spec: ClassSpec,
    node_id: str,
    ontology: Ontology,
    label_of: Callable[[str], str | None],
    issues: list[Issue],
) -> tuple[dict[str, Any], list[Edge]]:
    data = row.data or {}

    def report(field: str, message: str) -> None:
        issues.append(Issue(row.file, row.line, field, message))

    if spec.closed:
        for key in data:
            if key not in spec.fields and key not in ("type", "id"):
                report(key, f"未知字段：本体中『{spec.label}』没有此属性，允许的字段为 {'、'.join(spec.fields)}")
    props: dict[str, Any] = {}
    edges: list[Edge] = []
    for field in spec.fields.values():
        raw = data.get(field.name)
        if raw is None and not field.min_count:
            continue
        values = _values(raw, field, report)
        if values is None:
            continue
        if len(values) < field.min_count:
            what = f"缺少必填字段（{field.label}）" if not values else f"至少需要 {field.min_count} 个值，实际 {len(values)} 个"
            report(field.name, what)
            continue
        if field.max_count is not None and len(values) > field.max_count:
            report(field.name, f"最多 {field.max_count} 个值（{field.label}），实际 {len(values)} 个")
            continue
        if field.is_relation:
            edges.extend(_relation_edges(node_id, field, values, ontology, label_of, report))
        else:
            cleaned = [_check_value(v, field, report) for v in values]
            if any(v is _INVALID for v in cleaned):
                continue
            if cleaned:
                props[field.name] = cleaned[0] if not field.is_list else sorted(cleaned, key=str)
    for field in spec.fields.values():
        if field.less_or_equal and field.name in props and field.less_or_equal in props:
            if props[field.name] > props[field.less_or_equal]:
                other = spec.fields[field.less_or_equal].label
                report(field.name, f"『{field.label}』{props[field.name]} 不应晚于『{other}』{props[field.less_or_equal]}")
    return props, edges


_INVALID = object()


def _values(raw: Any, field: FieldSpec, report: Callable[[str, str], None]) -> list[Any] | None:
    """The field's values as a list: scalars for single-valued fields, arrays for the others."""
    if raw is None:
        return []
    if field.is_list:
        if not isinstance(raw, list):
            report(field.name, f"应为数组（{field.label} 可有多个值），实际是 {type(raw).__name__}")
            return None
        return [v for v in raw if v is not None]
    if isinstance(raw, list):
        report(field.name, f"只能有一个值（{field.label}），不应为数组")
        return None
    return [raw]


def _check_value(value: Any, field: FieldSpec, report: Callable[[str, str], None]) -> Any:
    datatype = field.datatype or "string"
    if not _has_type(value, datatype):
        report(field.name, f"取值『{value}』类型不对，应为{_EXPECTED.get(datatype, '文本')}")
        return _INVALID
    if datatype == "decimal":
        value = float(value)
    if field.allowed is not None and value not in field.allowed:
        report(field.name, f"取值『{value}』不在允许值之内，应为：{'、'.join(map(str, field.allowed))}")
        return _INVALID
    problem = _range_problem(value, field)
    if problem:
        report(field.name, problem)
        return _INVALID
    return value


def _has_type(value: Any, datatype: str) -> bool:
    if datatype == "string":
        return isinstance(value, str)
    if datatype == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if datatype == "integer":
        return isinstance(value, int)
    if datatype == "decimal":
        return isinstance(value, (int, float))
    if datatype == "date":
        return isinstance(value, str) and _is_date(value)
    return True


def _range_problem(value: Any, field: FieldSpec) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if field.min_inclusive is not None and value < field.min_inclusive:
            return f"取值 {value} 应不小于 {field.min_inclusive}"
        if field.max_inclusive is not None and value > field.max_inclusive:
            return f"取值 {value} 应不大于 {field.max_inclusive}"
        if field.min_exclusive is not None and value <= field.min_exclusive:
            return f"取值 {value} 应大于 {field.min_exclusive}"
        if field.max_exclusive is not None and value >= field.max_exclusive:
            return f"取值 {value} 应小于 {field.max_exclusive}"
    if isinstance(value, str):
        if field.min_length is not None and len(value) < field.min_length:
            return f"长度 {len(value)} 字，应不少于 {field.min_length} 字"
        if field.max_length is not None and len(value) > field.max_length:
            return f"长度 {len(value)} 字，应不多于 {field.max_length} 字"
        if field.pattern is not None and not re.search(field.pattern, value):
            return f"取值『{value}』格式不对，应匹配 {field.pattern}"
    return None


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def _relation_edges(
    node_id: str,
    field: FieldSpec,
    values: list[Any],
    ontology: Ontology,
    label_of: Callable[[str], str | None],
    report: Callable[[str, str], None],
) -> list[Edge]:
    target = ontology.classes[field.target_class or ""]
    edges: list[Edge] = []
    seen: set[str] = set()
    for index, value in enumerate(values):
        if not isinstance(value, str):
            report(field.name, f"取值『{value}』应为『{target.label}』的编号（文本，如 {target.id_prefix}:…）")
            continue
        actual = label_of(value)
        if actual is None:
            report(field.name, f"引用的『{value}』不存在，应为已有的『{target.label}』编号")
            continue
        if actual != target.name:
            report(field.name, f"引用的『{value}』是『{ontology.classes[actual].label}』，应为『{target.label}』")
            continue
        if value in seen:
            report(field.name, f"『{value}』重复出现")
            continue
        seen.add(value)
        props = {"ord": index} if field.ordered else {}
        edges.append(Edge(node_id, field.rel_type or "", value, props))
    return edges
