"""Offline evaluation metrics: pure functions over plain mappings, checked by one decorator.

Ranking metrics share one signature, ``metric(truth, predictions, k)``: ``truth`` maps a user to the set of
items they went on to take, ``predictions`` a user to their ranked list.  They average over users with a
non-empty truth set; a user with no prediction list counts as a miss.  Beyond-accuracy metrics take what
they need besides (``gap_coverage_at_k`` the users' gaps and which topics each item touches, diversity the
items' features, novelty the training counts).  :data:`METRICS` names them for reports.

References: Järvelin & Kekäläinen, "Cumulated gain-based evaluation of IR techniques" (TOIS 2002) for
NDCG; Ziegler et al., "Improving recommendation lists through topic diversification" (WWW 2005) for
intra-list diversity; Zhou et al., "Solving the apparent diversity–accuracy dilemma" (PNAS 2010) for
novelty as mean self-information.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from typing import Any, TypeVar

__all__ = [
    "METRICS",
    "MetricError",
    "gap_coverage_at_k",
    "hit_ratio_at_k",
    "intra_list_diversity",
    "ndcg_at_k",
    "novelty",
    "precision_at_k",
    "recall_at_k",
]

Item = Hashable
User = Hashable
F = TypeVar("F", bound=Callable[..., float])


class MetricError(ValueError):
    """Malformed metric input; the message names the argument and what was expected."""


def _checked(func: F) -> F:
    """Validate ``predictions`` and ``k`` (and ``truth`` when the metric has one) before computing."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> float:
        bound = dict(zip(func.__code__.co_varnames, args)) | kwargs
        k = bound.get("k")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise MetricError(f"k 应为正整数，实际为 {k!r}")
        for name in ("truth", "predictions", "gaps"):
            if name in bound and not isinstance(bound[name], Mapping):
                raise MetricError(f"{name} 应为 用户 → 物品集合/列表 的映射，实际为 {type(bound[name]).__name__}")
        for user, items in bound["predictions"].items():
            if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
                raise MetricError(f"predictions[{user!r}] 应为有序列表，实际为 {type(items).__name__}")
            if len(set(items[:k])) != len(items[:k]):
                raise MetricError(f"predictions[{user!r}] 的前 {k} 项含重复物品，命中会被重复计算")
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _users(truth: Mapping[User, Collection[Item]]) -> list[User]:
    return [u for u, items in truth.items() if items]


# ── ranking ──


@_checked
def hit_ratio_at_k(truth: Mapping[User, Collection[Item]], predictions: Mapping[User, Sequence[Item]], k: int) -> float:
    """Share of users with at least one true item in their top ``k``; in [0, 1]."""
    users = _users(truth)
    if not users:
        return 0.0
    return sum(bool(set(predictions.get(u, [])[:k]) & set(truth[u])) for u in users) / len(users)


@_checked
def precision_at_k(truth: Mapping[User, Collection[Item]], predictions: Mapping[User, Sequence[Item]], k: int) -> float:
    """Mean share of the top ``k`` slots holding a true item (divided by ``k``, not by the list's length)."""
    users = _users(truth)
    if not users:
        return 0.0
    return sum(len(set(predictions.get(u, [])[:k]) & set(truth[u])) / k for u in users) / len(users)


@_checked
def recall_at_k(truth: Mapping[User, Collection[Item]], predictions: Mapping[User, Sequence[Item]], k: int) -> float:
    """Mean share of a user's true items found in their top ``k``; in [0, 1]."""
    users = _users(truth)
    if not users:
        return 0.0
    return sum(len(set(predictions.get(u, [])[:k]) & set(truth[u])) / len(set(truth[u])) for u in users) / len(users)


@_checked
def ndcg_at_k(truth: Mapping[User, Collection[Item]], predictions: Mapping[User, Sequence[Item]], k: int) -> float:
    """Binary-relevance NDCG: DCG = Σ rel_i / log2(i + 1) over ranks i = 1..k, over the ideal DCG of
    min(|truth|, k) hits at the top; averaged over users; in [0, 1].

    Examples
    --------
    >>> round(ndcg_at_k({"u": {"a"}}, {"u": ["x", "a"]}, 2), 4)  # one hit at rank 2: 1 / log2(3)
    0.6309
    """
    users = _users(truth)
    if not users:
        return 0.0
    total = 0.0
    for user in users:
        relevant = set(truth[user])
        dcg = sum(1.0 / math.log2(i + 2) for i, item in enumerate(predictions.get(user, [])[:k]) if item in relevant)
        ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
        total += dcg / ideal
    return total / len(users)


# ── beyond accuracy ──


@_checked
def gap_coverage_at_k(gaps: Mapping[User, Collection[Hashable]], predictions: Mapping[User, Sequence[Item]], k: int,
                      item_topics: Mapping[Item, Collection[Hashable]]) -> float:
    """Mean share of a user's gap topics touched by their top ``k`` (an item touches the topics in
    ``item_topics[item]``); users without gaps are left out; in [0, 1]."""
    users = [u for u, g in gaps.items() if g]
    if not users:
        return 0.0
    total = 0.0
    for user in users:
        touched = set().union(*(set(item_topics.get(i, ())) for i in predictions.get(user, [])[:k]))
        total += len(touched & set(gaps[user])) / len(set(gaps[user]))
    return total / len(users)


def _jaccard(a: Collection[Hashable], b: Collection[Hashable]) -> float:
    a, b = set(a), set(b)
    return len(a & b) / len(a | b) if a | b else 1.0


@_checked
def intra_list_diversity(predictions: Mapping[User, Sequence[Item]], k: int,
                         item_features: Mapping[Item, Collection[Hashable]]) -> float:
    """Mean pairwise dissimilarity (1 − Jaccard of features) within each top-``k`` list, averaged over
    lists of two or more items; in [0, 1], 0 when every item has the same features."""
    scores = []
    for items in predictions.values():
        top = list(items[:k])
        pairs = [(a, b) for i, a in enumerate(top) for b in top[i + 1:]]
        if pairs:
            scores.append(sum(1.0 - _jaccard(item_features.get(a, ()), item_features.get(b, ())) for a, b in pairs) / len(pairs))
    return sum(scores) / len(scores) if scores else 0.0


@_checked
def novelty(predictions: Mapping[User, Sequence[Item]], k: int, item_counts: Mapping[Item, int], n_users: int) -> float:
    """Mean self-information −log2 p(i) of recommended items, p(i) = (users who took i + 1) / (n_users + 1)
    in the training data (add-one so unseen items are finite); averaged over lists; ≥ 0, higher = less
    mainstream."""
    if n_users < 0:
        raise MetricError(f"n_users 应为非负整数，实际为 {n_users}")
    scores = []
    for items in predictions.values():
        top = list(items[:k])
        if top:
            scores.append(sum(-math.log2((item_counts.get(i, 0) + 1) / (n_users + 1)) for i in top) / len(top))
    return sum(scores) / len(scores) if scores else 0.0


#: Report name → metric.  Names carry "@k"; the report fills in k.
METRICS: dict[str, Callable[..., float]] = {
    "HR@k": hit_ratio_at_k,
    "NDCG@k": ndcg_at_k,
    "Precision@k": precision_at_k,
    "Recall@k": recall_at_k,
    "GapCoverage@k": gap_coverage_at_k,
    "ILD@k": intra_list_diversity,
    "Novelty@k": novelty,
}
