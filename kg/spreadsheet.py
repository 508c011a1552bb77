"""What every XLSX this project writes does to a cell value first: one place, for every export."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

__all__ = ["xlsx_row"]


def xlsx_row(values: Iterable[Any]) -> list[Any]:
    """The values with the control characters XLSX cannot hold removed from text (openpyxl refuses them with
    ``IllegalCharacterError``): an id typed with a stray control character must not turn an export into a 500."""
    return [ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in values]
