"""Result dataclasses that turn into plain dicts with Chinese keys for the people who read them.

The web layer and the batch file show these dicts to cadres and designers, so the keys are the Chinese
labels; attribute names stay English for code.  Ids keep an explicit key (``主题编号`` …) so a client can
still link an item.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

__all__ = ["Labelled", "plain"]


def plain(value: Any) -> Any:
    """JSON-ready form of a value: labelled dataclasses by their labels, dates as ISO text, floats rounded."""
    if isinstance(value, Labelled):
        return value.to_dict()
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    return value


class Labelled:
    """Mixin for dataclasses: ``LABELS`` maps attribute → Chinese key; unlisted attributes are left out."""

    LABELS: ClassVar[dict[str, str]] = {}

    def to_dict(self) -> dict[str, Any]:
        return {label: plain(getattr(self, name)) for name, label in self.LABELS.items()}
