"""CSV and XLSX exports of every analytics report: Chinese headers, the rules used and the date.

A report offers ``title``, ``generated`` (date), ``rules_used()`` (label, value pairs) and ``tables()``.
The CSV carries the title, date and rules as a short preamble and then each table under its own title
(UTF-8 with BOM so Excel opens it correctly); the workbook has one sheet per table and a 『规则与说明』 sheet.
Reading back a list (the nomination check mode) looks for the header row, so an exported list can be
edited by hand and audited again.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kg.spreadsheet import csv_row, from_csv_cell
from recommender.analytics.errors import InputError

__all__ = ["ID_HEADERS", "Report", "Table", "export", "export_csv", "export_xlsx", "read_id_column"]

ID_HEADERS = ("编号", "id", "ID")
"""Column headers under which an exported list carries item ids (the first is what exports write)."""


@dataclass
class Table:
    """One rectangular table of a report."""

    title: str
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)


class Report(Protocol):
    title: str
    generated: dt.date

    def rules_used(self) -> list[tuple[str, str]]: ...

    def tables(self) -> list[Table]: ...


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, (list, tuple, set, frozenset)):
        return "；".join(str(_cell(v)) for v in value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return "" if value is None else value


def _preamble(report: Report) -> list[list[Any]]:
    rows: list[list[Any]] = [["报告", report.title], ["生成日期", report.generated.isoformat()]]
    rows.extend(["规则：" + label, _cell(value)] for label, value in report.rules_used())
    return rows


def export_csv(report: Report, path: str | Path) -> Path:
    """Write the report as one CSV file (preamble, then each table under its title)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerows(csv_row(r) for r in _preamble(report))
        for table in report.tables():
            writer.writerow([])
            writer.writerow(csv_row([table.title]))
            writer.writerow(csv_row(table.headers))
            writer.writerows(csv_row(_cell(v) for v in row) for row in table.rows)
    return path


_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def _sheet_name(title: str, taken: set[str]) -> str:
    base = _SHEET_FORBIDDEN.sub("_", title)[:28] or "表"
    name, number = base, 2
    while name in taken:
        name, number = f"{base}_{number}", number + 1
    taken.add(name)
    return name


def export_xlsx(report: Report, path: str | Path) -> Path:
    """Write the report as a workbook: one sheet per table (header row frozen), plus the rules sheet."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    from kg.spreadsheet import xlsx_row

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    book = Workbook()
    book.remove(book.active)
    taken: set[str] = set()
    for table in report.tables():
        sheet = book.create_sheet(_sheet_name(table.title, taken))
        sheet.append(xlsx_row(table.headers))
        for row in table.rows:
            sheet.append(xlsx_row(_cell(v) for v in row))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
        for index, header in enumerate(table.headers, start=1):
            longest = max([len(str(header))] + [len(str(_cell(r[index - 1]))) for r in table.rows[:200]])
            sheet.column_dimensions[get_column_letter(index)].width = min(60, 4 + 1.6 * longest)
    info = book.create_sheet(_sheet_name("规则与说明", taken))
    for row in _preamble(report):
        info.append(xlsx_row(row))
    info.column_dimensions["A"].width = 32
    info.column_dimensions["B"].width = 90
    book.save(path)
    return path


def export(report: Report, path: str | Path) -> Path:
    """Export by file suffix (.csv or .xlsx)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return export_csv(report, path)
    if suffix == ".xlsx":
        return export_xlsx(report, path)
    raise InputError(f"导出文件应以 .csv 或 .xlsx 结尾，实际为『{Path(path).name}』")


def _sheets(path: Path) -> list[list[list[Any]]]:
    """The file's rows, one list per sheet (a CSV is one sheet)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return [[[from_csv_cell(v) for v in row] for row in csv.reader(handle)]]
    if suffix == ".xlsx":
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True, data_only=True)
        try:
            return [[["" if v is None else v for v in row] for row in sheet.iter_rows(values_only=True)]
                    for sheet in book.worksheets]
        finally:
            book.close()
    raise InputError(f"名单文件应为 .csv 或 .xlsx，实际为『{path.name}』")


def read_id_column(path: str | Path) -> list[str]:
    """Item ids from a list file: every table whose header row has a column headed 编号 (or id), read from
    the header to the table's end (a blank row), over all sheets, in order."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"名单文件不存在：{path}")
    ids: list[str] = []
    found = False
    for rows in _sheets(path):
        column: int | None = None
        for row in rows:
            cells = [str(c).strip() for c in row]
            if column is None:
                column = next((cells.index(h) for h in ID_HEADERS if h in cells), None)
                found = found or column is not None
            elif not any(cells):
                column = None
            elif column < len(cells) and cells[column]:
                ids.append(cells[column])
    if not found:
        raise InputError(f"名单文件『{path.name}』中找不到编号列（表头应为 {'、'.join(ID_HEADERS)} 之一）")
    return ids
