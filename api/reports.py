"""Documenting and serving the reports that ``recommender`` builds.

The recommender's answers are dataclasses whose ``to_dict()`` already has the Chinese keys people read; the
API passes them through unchanged (a schema that re-declared every key would drift from them) and documents
each as a named object in the OpenAPI document.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import marshmallow as ma
from flask import current_app

__all__ = ["Passthrough", "as_of", "report_schema"]


class Passthrough(ma.Schema):
    """A response schema that dumps the object as it is (an object with the keys its report documents)."""

    class Meta:
        unknown = ma.INCLUDE  # documented as an open object (additionalProperties allowed)

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        return obj


def report_schema(name: str, description: str) -> type[Passthrough]:
    """A named pass-through schema, so each report type has its own entry in the OpenAPI components."""
    return type(name, (Passthrough,), {"__doc__": description})


def as_of(requested: dt.date | None) -> dt.date | None:
    """The report date: the request's ``date``, else ``AS_OF`` from configuration, else None (today)."""
    if requested is not None:
        return requested
    configured = current_app.config.get("AS_OF")
    return dt.date.fromisoformat(configured) if configured else None
