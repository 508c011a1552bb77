"""The exceptions of the analytics package; every message is Chinese and names the field at fault."""

from __future__ import annotations

__all__ = ["AnalyticsError", "InputError", "RuleError", "SolverError"]


class AnalyticsError(ValueError):
    """Base class: analytics could not do what was asked."""


class InputError(AnalyticsError):
    """A caller's argument or file is malformed (which field, what was expected)."""


class RuleError(AnalyticsError):
    """``ontology/rules.yaml`` holds a value the analytics cannot interpret."""


class SolverError(AnalyticsError):
    """HiGHS stopped without an answer (time limit, numerical trouble)."""
