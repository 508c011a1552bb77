"""Readers that turn corpus files into rows that remember where they came from.

JSON Lines is the primary format (one object per line, ``type`` and ``id`` first).  CSV and XLSX are
accepted for catalogue imports made in a spreadsheet: the header may use the field names or their Chinese
labels from the ontology, and list fields separate values with ``；`` ``;`` or ``|``.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kg.ontology import Ontology
from kg.spreadsheet import from_csv_cell

__all__ = ["SUPPORTED_SUFFIXES", "SourceRow", "read_rows"]

SUPPORTED_SUFFIXES = (".jsonl", ".csv", ".xlsx")
_LIST_SEPARATORS = re.compile(r"[；;|]")
_TRUE = {"true", "是", "1", "yes", "y", "√"}
_FALSE = {"false", "否", "0", "no", "n", ""}


@dataclass(frozen=True)
class SourceRow:
    """One record and its place in a file; ``data`` is None when the line itself could not be parsed."""

    file: str
    line: int
    data: dict[str, Any] | None
    parse_error: str | None = None


def read_rows(path: Path, ontology: Ontology, default_type: str | None = None) -> Iterator[SourceRow]:
    """Rows of one file, in order.  ``default_type`` names the class of rows that carry no ``type`` column."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from _jsonl_rows(path)
    elif suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = ([from_csv_cell(v) for v in row] for row in csv.reader(handle))
            yield from _table_rows(path, reader, ontology, default_type)
    elif suffix == ".xlsx":
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True, data_only=True)
        try:
            values = ([("" if v is None else v) for v in row] for row in book.active.iter_rows(values_only=True))
            yield from _table_rows(path, values, ontology, default_type)
        finally:
            book.close()
    else:
        yield SourceRow(str(path), 0, None, f"不支持的文件格式 {suffix}，应为 {'、'.join(SUPPORTED_SUFFIXES)}")


def _jsonl_rows(path: Path) -> Iterator[SourceRow]:
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                yield SourceRow(str(path), number, None, f"不是合法的 JSON（{exc.msg}，第 {exc.colno} 列）")
                continue
            if not isinstance(data, dict):
                yield SourceRow(str(path), number, None, "应为一个 JSON 对象")
                continue
            yield SourceRow(str(path), number, data)


def _header_map(header: list[str], ontology: Ontology, class_name: str | None) -> dict[int, str]:
    """Column index → field name, accepting English field names or the ontology's Chinese labels."""
    by_label = {label: name for name, label in ontology.property_labels.items()}
    if class_name and class_name in ontology.classes:
        by_label.update({f.label: f.name for f in ontology.classes[class_name].fields.values()})
    by_label.update({"类型": "type", "编号": "id"})
    mapping: dict[int, str] = {}
    for index, raw in enumerate(header):
        title = str(raw).strip()
        if title:
            mapping[index] = by_label.get(title, title)
    return mapping


def _table_rows(path: Path, rows: Any, ontology: Ontology, default_type: str | None) -> Iterator[SourceRow]:
    iterator = iter(rows)
    try:
        header = [str(v) for v in next(iterator)]
    except StopIteration:
        return
    columns = _header_map(header, ontology, default_type)
    for number, values in enumerate(iterator, start=2):
        if all(str(v).strip() == "" for v in values):
            continue
        raw = {columns[i]: v for i, v in enumerate(values) if i in columns}
        class_name = str(raw.get("type") or default_type or "")
        raw["type"] = class_name
        yield SourceRow(str(path), number, _coerce_table_row(raw, ontology, class_name))


def _coerce_table_row(raw: dict[str, Any], ontology: Ontology, class_name: str) -> dict[str, Any]:
    """Spreadsheet cells are text: split lists and read numbers and booleans as the shape's datatype says."""
    spec = ontology.classes.get(class_name)
    row: dict[str, Any] = {}
    for key, value in raw.items():
        field = spec.fields.get(key) if spec else None
        text = value.strip() if isinstance(value, str) else value
        if field is None:
            if text not in ("", None):
                row[key] = text
            continue
        if text in ("", None):
            continue
        if field.is_list:
            row[key] = [_coerce_cell(part.strip(), field.datatype) for part in _LIST_SEPARATORS.split(str(text)) if part.strip()]
        else:
            row[key] = _coerce_cell(text, field.datatype)
    return row


def _coerce_cell(value: Any, datatype: str | None) -> Any:
    if not isinstance(value, str):
        if datatype == "date" and hasattr(value, "date"):
            return value.date().isoformat()
        return value
    try:
        if datatype == "integer":
            return int(value)
        if datatype == "decimal":
            return float(value)
    except ValueError:
        return value
    if datatype == "boolean" and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    return value
