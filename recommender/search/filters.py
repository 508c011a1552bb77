"""What a search may return (:class:`SearchFilters`), what it returns (:class:`Hit`), and the rules that check one.

The allowed values come from the ontology (searchable classes, the ``sh:in`` lists of ``deliveryMode`` and
``status``) and the topic tree and published status from the catalogue read model
(:class:`recommender.catalogue.snapshot.CatalogueSnapshot`), so nothing here restates them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from kg.ontology import Ontology
from recommender.search.documents import searchable_classes
from recommender.search.errors import InvalidFilter
from recommender.search.table import DocumentTable

__all__ = ["FilterRules", "Hit", "SearchFilters"]


@dataclass(frozen=True)
class SearchFilters:
    """What may be returned.  Empty tuples mean "any"; ``statuses=None`` means published items only.

    ``topics`` match an item tagged with the topic or with any narrower topic (``BROADER`` edges, any
    depth).  An hours range excludes items that have no hours (textbooks, cases).
    """

    kinds: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    institutions: tuple[str, ...] = ()
    delivery_modes: tuple[str, ...] = ()
    case_only: bool = False
    min_hours: float | None = None
    max_hours: float | None = None
    statuses: tuple[str, ...] | None = None

    @property
    def any_status(self) -> bool:
        return self.statuses is not None and not self.statuses


@dataclass(frozen=True)
class Hit:
    """One result: ``score`` is the fused (or single-method) score; ranks are 1-based, None when absent."""

    id: str
    kind: str
    score: float
    dense_rank: int | None = None
    bm25_rank: int | None = None


def _field_allowed(ontology: Ontology, kinds: Iterable[str], field_name: str) -> tuple[str, ...]:
    values: list[str] = []
    for kind in kinds:
        spec = ontology.classes[kind].fields.get(field_name)
        values.extend(v for v in (spec.allowed if spec is not None and spec.allowed else ()) if v not in values)
    return tuple(values)


@dataclass(frozen=True)
class FilterRules:
    """The values each filter field accepts, and the topic tree that widens a topic to its narrower ones."""

    kinds: tuple[str, ...]
    delivery_modes: tuple[str, ...]
    statuses: tuple[str, ...]
    published: str
    topics: frozenset[str]
    narrower: Callable[[str], set[str]]

    @classmethod
    def of(cls, ontology: Ontology, published: str, topics: Iterable[str],
           narrower: Callable[[str], set[str]]) -> FilterRules:
        kinds = tuple(searchable_classes(ontology))
        return cls(kinds, _field_allowed(ontology, kinds, "deliveryMode"), _field_allowed(ontology, kinds, "status"),
                   published, frozenset(topics), narrower)

    @staticmethod
    def _check_choice(field_name: str, label: str, values: Iterable[str], allowed: tuple[str, ...]) -> None:
        for value in values:
            if value not in allowed:
                shown = "、".join(allowed[:12]) + ("…" if len(allowed) > 12 else "")
                raise InvalidFilter(f"筛选条件 {field_name}（{label}）的值『{value}』无效，应为：{shown}")

    def check(self, f: SearchFilters) -> tuple[str, ...]:
        """Raise :class:`InvalidFilter` naming the first bad field; return the statuses to keep."""
        self._check_choice("kinds", "资源类型", f.kinds, self.kinds)
        self._check_choice("delivery_modes", "授课方式", f.delivery_modes, self.delivery_modes)
        statuses = (self.published,) if f.statuses is None else f.statuses
        self._check_choice("statuses", "状态", statuses, self.statuses)
        for topic in f.topics:
            if topic not in self.topics:
                raise InvalidFilter(f"筛选条件 topics（主题）的值『{topic}』不是已知主题编号，应形如 topic:rural-revitalization")
        for bound_name, bound in (("min_hours", f.min_hours), ("max_hours", f.max_hours)):
            if bound is not None and bound < 0:
                raise InvalidFilter(f"筛选条件 {bound_name}（学时）应为不小于 0 的数，实际为 {bound}")
        if f.min_hours is not None and f.max_hours is not None and f.min_hours > f.max_hours:
            raise InvalidFilter(f"筛选条件学时范围无效：min_hours={f.min_hours} 大于 max_hours={f.max_hours}")
        return statuses

    def mask(self, table: DocumentTable, filters: SearchFilters | None) -> np.ndarray:
        """Boolean mask over ``table``'s rows: True where the item is present and passes ``filters``."""
        f = filters or SearchFilters()
        statuses = self.check(f)
        mask = table.present.copy()
        if f.kinds:
            mask &= table.having("kind", f.kinds)
        if not f.any_status:
            mask &= table.having("status", statuses)
        if f.topics:
            mask &= table.having("topic", set().union(*(self.narrower(t) for t in f.topics)))
        if f.institutions:
            mask &= table.having("institution", f.institutions)
        if f.delivery_modes:
            mask &= table.having("delivery", f.delivery_modes)
        if f.case_only:
            mask &= table.is_case
        if f.min_hours is not None:
            mask &= table.hours >= f.min_hours  # NaN (no hours) compares False
        if f.max_hours is not None:
            mask &= table.hours <= f.max_hours
        return mask
