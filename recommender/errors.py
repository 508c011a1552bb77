"""Errors the recommender raises; every message is Chinese and says what was expected."""

from __future__ import annotations

__all__ = ["InvalidRequest", "RecommenderError", "UnknownCadre", "VocabularyMismatch"]


class RecommenderError(RuntimeError):
    """Base of the recommender's own errors (the API maps them to 4xx answers)."""


class UnknownCadre(RecommenderError, LookupError):
    """No cadre with this id is stored."""

    def __init__(self, cadre_id: str) -> None:
        self.cadre_id = cadre_id
        super().__init__(f"找不到干部『{cadre_id}』：cadre_id 应为已导入干部的编号，形如 cadre:0000001")


class InvalidRequest(RecommenderError, ValueError):
    """A parameter is out of range or malformed; the message names the field."""


class VocabularyMismatch(RecommenderError):
    """A value the recommender relies on is no longer among the ontology's allowed values."""
