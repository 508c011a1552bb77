"""The search package's errors; every message is for people (Chinese) and names what was expected."""

from __future__ import annotations

__all__ = ["IndexNotReady", "InvalidFilter", "SearchError"]


class SearchError(RuntimeError):
    """A search or index operation could not be done."""


class InvalidFilter(SearchError, ValueError):
    """A search filter names an unknown value; the message names the field and what was expected."""


class IndexNotReady(SearchError):
    """No usable index is on disk yet (never built, or built with another encoder): an update job must run first."""
