"""Readers that turn corpus files into rows that remember where they came from.

JSON Lines is the primary format (one object per line, ``type`` and ``id`` first).  CSV and XLSX are read as
users have them: any encoding of :mod:`kg.encodings`, title rows above the header, merged header cells, several
sheets (one class per sheet, or a type column), and column names of any profile in
``ontology/import_profiles.yaml`` (the project's own field names and Chinese labels, the national standards'
style, a provincial platform's export), chosen by name or found from the header (:mod:`kg.profiles`).  A ``.json``
file holds xAPI statements, read as training records (:mod:`kg.xapi`).
A file that cannot be read at all (a zero-byte or broken XLSX, bytes no candidate encoding reads, no header,
a header without data, columns no field takes) gives one located problem instead of rows, never an exception.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kg.encodings import UndecodableFile, decode_text
from kg.ontology import Ontology
from kg.profiles import ClassMapping, HeaderMatch, ImportProfiles, Profile, ProfileError, find_header, load_profiles
from kg.spreadsheet import from_csv_cell

__all__ = ["SUPPORTED_SUFFIXES", "NamesOf", "ReadFile", "SourceRow", "read_file", "read_rows"]

SUPPORTED_SUFFIXES = (".jsonl", ".csv", ".xlsx", ".json")
_ID_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y%m%d")

NamesOf = Callable[[str], Mapping[str, str]]
"""Class name → {node name: id} of the nodes already stored, for cells that name a teacher or an institution."""


@dataclass(frozen=True)
class SourceRow:
    """One record and its place in a file; ``data`` is None when the line itself could not be parsed.

    ``problems`` are (field, message) pairs the reader found in a row it could still read (a name that names no
    stored node); the validator's own report on those fields is then left out as a repeat."""

    file: str
    line: int
    data: dict[str, Any] | None
    parse_error: str | None = None
    problems: tuple[tuple[str | None, str], ...] = ()


@dataclass
class ReadFile:
    """The rows of one file and how it was read (encoding, profile, header row per sheet), for the report."""

    rows: list[SourceRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_rows(path: Path, ontology: Ontology, default_type: str | None = None) -> Iterator[SourceRow]:
    """Rows of one file, in order.  ``default_type`` names the class of rows that carry no ``type`` column."""
    yield from read_file(path, ontology, default_type).rows


def read_file(
    path: Path,
    ontology: Ontology,
    default_type: str | None = None,
    profile: str | None = None,
    names_of: NamesOf | None = None,
) -> ReadFile:
    """One file's rows and notes.  ``profile`` names the column mapping (else it is found from the header);
    ``names_of`` resolves cells that name stored nodes (without it only concept labels are resolved)."""
    suffix = path.suffix.lower()
    out = ReadFile()
    if suffix == ".jsonl":
        out.rows.extend(_jsonl_rows(path))
        return out
    if suffix == ".json":
        return _xapi_rows(path, ontology, names_of)
    if suffix not in (".csv", ".xlsx"):
        out.rows.append(SourceRow(str(path), 0, None, f"不支持的文件格式 {suffix}，应为 {'、'.join(SUPPORTED_SUFFIXES)}"))
        return out
    profiles = load_profiles(ontology)
    try:
        if profile is not None:
            profiles.get(profile)
        sheets = _csv_sheets(path, profiles, out) if suffix == ".csv" else _xlsx_sheets(path)
    except (UndecodableFile, ProfileError, _Unreadable) as exc:
        out.rows.append(SourceRow(str(path), getattr(exc, "line", 0), None, str(exc)))
        return out
    if not any(any(_text(v) for v in row) for _name, rows in sheets for row in rows):
        out.rows.append(SourceRow(str(path), 0, None, "文件中没有任何内容（空表）"))
        return out
    table = _Table(ontology, profiles, profile, default_type, names_of)
    for sheet, rows in sheets:
        if not any(any(_text(v) for v in row) for row in rows):
            continue
        where = str(path) if len(sheets) == 1 else f"{path}〔工作表 {sheet}〕"
        out.rows.extend(table.rows(where, sheet if suffix == ".xlsx" else None, rows, out.notes))
    return out


class _Unreadable(ValueError):
    """The file is not the spreadsheet its name says; ``line`` is where reading stopped (0: the file as a whole)."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _csv_sheets(path: Path, profiles: ImportProfiles, out: ReadFile) -> list[tuple[str, list[list[Any]]]]:
    """The one sheet of a CSV file; a row the csv module refuses (a cell over its field size limit) makes the
    file unreadable at that line, rather than an uncaught csv.Error."""
    decoded = decode_text(path.read_bytes(), profiles.encodings)
    out.notes.append(f"{path.name}：按 {decoded.encoding_name} 读取")
    reader = csv.reader(io.StringIO(decoded.text, newline=""))
    try:
        return [(path.stem, [[from_csv_cell(v) for v in r] for r in reader])]
    except csv.Error as exc:
        raise _Unreadable(f"第 {reader.line_num} 行无法按 CSV 读取（{exc}）；单元格不应超过 "
                          f"{csv.field_size_limit():,} 个字符", reader.line_num) from None


def _xlsx_sheets(path: Path) -> list[tuple[str, list[list[Any]]]]:
    """Every sheet's cell values, merged ranges filled with their top-left value (a merged header cell names
    every column below it).  Not read-only: openpyxl's read-only sheets do not know their merged ranges."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, data_only=True)
    except Exception as exc:  # noqa: BLE001 — openpyxl raises whatever its parsers meet in a broken file
        # (BadZipFile, KeyError, ParseError of malformed XML, TypeError …): every one means "not a workbook"
        size = path.stat().st_size
        what = "文件为空（0 字节）" if size == 0 else f"无法打开（{type(exc).__name__}）"
        raise _Unreadable(f"不是有效的 XLSX 工作簿：{what}；请在 Excel 中另存为 .xlsx 后重试") from None
    try:
        sheets = []
        for sheet in book.worksheets:
            grid = [list(row) for row in sheet.iter_rows(values_only=True)]
            for merged in sheet.merged_cells.ranges:
                top = grid[merged.min_row - 1][merged.min_col - 1] if merged.min_row <= len(grid) else None
                for r in range(merged.min_row - 1, min(merged.max_row, len(grid))):
                    for c in range(merged.min_col - 1, merged.max_col):
                        if c < len(grid[r]):
                            grid[r][c] = top
            sheets.append((sheet.title, grid))
        return sheets
    finally:
        book.close()


def _xapi_rows(path: Path, ontology: Ontology, names_of: NamesOf | None) -> ReadFile:
    """xAPI statements (:mod:`kg.xapi`) as record rows; the platform a statement names is resolved by name."""
    from kg.xapi import read_statements

    read = read_statements(path, ontology)
    platforms = dict(names_of("Platform")) if names_of else {}
    out = ReadFile(notes=[read.note] if read.note else [])
    for ordinal, data, problem in read.rows:
        if data is None:
            out.rows.append(SourceRow(str(path), ordinal, None, f"第 {ordinal} 条陈述：{problem}" if ordinal else problem))
            continue
        problems: list[tuple[str | None, str]] = []
        platform = data.get("viaPlatform")
        if platform and not str(platform).startswith("platform:"):
            if platform in platforms:
                data["viaPlatform"] = platforms[platform]
            else:
                del data["viaPlatform"]
                problems.append(("viaPlatform", f"context.platform『{platform}』不是已入库的网络培训平台（按名称查找）"))
        if data.get("id") is None:
            data["id"] = _made_id("record", [data.get("ofCadre"), data.get("forCourse"), data.get("date")])
        out.rows.append(SourceRow(str(path), ordinal, data, problems=tuple(problems)))
    return out


def _jsonl_rows(path: Path) -> Iterator[SourceRow]:
    try:
        text = decode_text(path.read_bytes(), ("utf_8",)).text
    except UndecodableFile as exc:
        yield SourceRow(str(path), 0, None, f"JSON Lines 应为 UTF-8：{exc}")
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            yield SourceRow(str(path), number, None, f"不是合法的 JSON（{exc.msg}，第 {exc.colno} 列）")
            continue
        if not isinstance(data, dict):
            yield SourceRow(str(path), number, None, "应为一个 JSON 对象")
            continue
        yield SourceRow(str(path), number, data)


@dataclass
class _Table:
    """Reads the sheets of one import with one set of profiles and one name cache."""

    ontology: Ontology
    profiles: ImportProfiles
    profile: str | None
    default_type: str | None
    names_of: NamesOf | None
    _names: dict[str, dict[str, str]] = field(default_factory=dict)

    def rows(self, where: str, sheet: str | None, rows: list[list[Any]], notes: list[str]) -> Iterator[SourceRow]:
        header = find_header(rows, self.profiles, self.profile, self.default_type, sheet)
        if header is None:
            yield SourceRow(where, 1, None, self._no_header())
            return
        line = header.row + 1
        what = "（类型列区分各行的类）" if header.class_name is None else f"（{self.ontology.classes[header.class_name].label}）"
        notes.append(f"{Path(where).name}：配置『{header.profile.display}』，第 {line} 行为表头{what}")
        if header.ambiguous:
            labels = "、".join(f"{c}（{self.ontology.classes[c].label}）" for c in header.ambiguous)
            yield SourceRow(where, line, None, f"无法判断这张表是哪一类：表头同样符合 {labels}；"
                                               "请加『类型』列，或用 --type / 表单字段 type 指定")
            return
        if header.unmapped:
            yield SourceRow(where, line, None, self._unmapped(header))
            return
        data_rows = [(n, values) for n, values in enumerate(rows[header.row + 1:], start=line + 1)
                     if any(_text(v) for v in values)]
        if not data_rows:
            yield SourceRow(where, line, None, "只有表头，没有数据行")
            return
        for number, values in data_rows:
            yield self._row(where, number, values, header)

    def _no_header(self) -> str:
        tried = [self.profiles.get(self.profile)] if self.profile else list(self.profiles.profiles.values())
        limit = self.profiles.header_search_rows
        names = "、".join(p.display for p in tried)
        return (f"前 {limit} 行中找不到表头：没有一行含有至少 {self.profiles.min_matched} 个配置 {names} 的列名"
                + ("" if self.profile is None else "；可能选错了导入配置，不指定配置时系统按表头自动识别"))

    def _unmapped(self, header: HeaderMatch) -> str:
        mapping = self._mapping(header)
        known = sorted({t for m in ([mapping] if mapping else header.profile.classes.values()) for t in m.columns})
        return (f"按配置『{header.profile.display}』，以下 {len(header.unmapped)} 列无法对应到字段："
                f"{'、'.join(header.unmapped)}；可用的列名：{'、'.join(known)}。不需要的列请删去，"
                f"或在 ontology/import_profiles.yaml 的 ignore 中列出")

    def _mapping(self, header: HeaderMatch, class_name: str | None = None) -> ClassMapping | None:
        return header.profile.classes.get(class_name or header.class_name or "")

    def _row(self, where: str, number: int, values: list[Any], header: HeaderMatch) -> SourceRow:
        raw: dict[str, Any] = {}
        for i, target in header.columns.items():
            value = values[i] if i < len(values) else None
            if _text(value) and target not in raw:
                raw[target] = value.strip() if isinstance(value, str) else value
        class_name = header.class_name or self._class_of(_text(raw.get("type")) or self.default_type or "")
        raw["type"] = class_name
        mapping = self._mapping(header, class_name)
        problems: list[tuple[str | None, str]] = []
        row = self._coerce(raw, class_name, mapping, header.profile, problems)
        return SourceRow(where, number, row, problems=tuple(problems))

    def _class_of(self, value: str) -> str:
        """A type cell: the class name, or its Chinese label."""
        for spec in self.ontology.data_classes:
            if value in (spec.name, spec.label):
                return spec.name
        return value

    def _coerce(self, raw: dict[str, Any], class_name: str, mapping: ClassMapping | None, profile: Profile,
                problems: list[tuple[str | None, str]]) -> dict[str, Any]:
        """Cells to field values: value maps, lists, names to ids, datatypes, defaults, ids made from fields."""
        spec = self.ontology.classes.get(class_name)
        row: dict[str, Any] = {}
        for key, value in raw.items():
            f = spec.fields.get(key) if spec else None
            if f is None:
                row[key] = value
                continue
            parts = [p.strip() for p in profile.separators.split(str(value)) if p.strip()] if f.is_list and isinstance(value, str) else [value]
            if mapping and key in mapping.values:
                parts = [mapping.values[key].get(p, p) for p in parts]
            if f.is_relation:
                parts = [self._reference(p, f.target_class or "", key, mapping, profile, problems) for p in parts]
                parts = [p for p in parts if p is not None]
            parts = [self._cell(p, f.datatype) for p in parts]
            if parts:
                row[key] = parts if f.is_list else parts[0]
        if mapping:
            for key, value in mapping.defaults.items():
                row.setdefault(key, value)
        if spec and "id" in row:
            row["id"] = self._id(str(row["id"]), spec.id_prefix, profile)
        elif spec and mapping and mapping.id_from:
            row["id"] = _made_id(spec.id_prefix, [row.get(k) for k in mapping.id_from])
        return row

    def _id(self, value: str, prefix: str, profile: Profile) -> str:
        return f"{prefix}:{value}" if profile.id_prefix and ":" not in value else value

    def _reference(self, value: Any, target: str, key: str, mapping: ClassMapping | None, profile: Profile,
                   problems: list[tuple[str | None, str]]) -> str | None:
        text = _text(value)
        spec = self.ontology.classes[target]
        if text.startswith(f"{spec.id_prefix}:") or not (mapping and key in mapping.lookup):
            return self._id(text, spec.id_prefix, profile)
        names = self._names_of(target)
        if text in names:
            return names[text]
        if _ID_SLUG.match(text) and profile.id_prefix:
            return self._id(text, spec.id_prefix, profile)
        problems.append((key, f"找不到名为『{text}』的{spec.label}"
                              + ("（按主题的名称与同义词查找）" if spec.concept_scheme else "（按已入库的名称查找）")))
        return None

    def _names_of(self, target: str) -> dict[str, str]:
        if target not in self._names:
            spec = self.ontology.classes[target]
            names: dict[str, str] = {}
            if spec.concept_scheme is not None:
                nodes, _ = self.ontology.concept_graph()
                for node in nodes:
                    if node.label == target:
                        for label in [node.props.get("name", ""), *node.props.get("altLabels", ())]:
                            names.setdefault(label, node.id)
            elif self.names_of is not None:
                names.update(self.names_of(target))
            self._names[target] = names
        return self._names[target]

    def _cell(self, value: Any, datatype: str | None) -> Any:
        if not isinstance(value, str):
            if datatype == "date" and isinstance(value, dt.datetime | dt.date):
                return (value.date() if isinstance(value, dt.datetime) else value).isoformat()
            if datatype == "integer" and isinstance(value, float) and value.is_integer():
                return int(value)
            return value
        try:
            if datatype == "integer":
                return int(value)
            if datatype == "decimal":
                return float(value)
        except ValueError:
            return value
        if datatype == "boolean":
            lowered = value.lower()
            if lowered in self.profiles.true_values:
                return True
            if lowered in self.profiles.false_values:
                return False
        if datatype == "date":
            return _date(value)
        return value


def _date(text: str) -> str:
    """A date cell as ISO: ``2025/4/25``, ``2025年4月25日``, ``2025-04-25 10:00`` …; anything else as given."""
    head = text.split()[0] if text.split() else text
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(head, fmt).date().isoformat()
        except ValueError:
            continue
    return text


def _made_id(prefix: str, values: list[Any]) -> str:
    """An id from a record's identifying fields (cadre, course, date); a hash when they are not slug-safe."""
    parts = [str(v).split(":", 1)[-1] for v in values if v not in (None, "")]
    slug = "-".join(parts)
    if not _ID_SLUG.match(slug or "-"):
        slug = hashlib.sha1("|".join(parts).encode("utf-8")).hexdigest()[:16]
    return f"{prefix}:{slug}"
