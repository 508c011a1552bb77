"""Offline evaluation with a time split: records before a cut-off → predict the courses taken after it.

For every generated cadre with records on both sides of the cut-off, each method sees only the records
dated before it and ranks published courses the cadre has not completed; the truth is the set of courses
the cadre completed on or after the cut-off (courses met only inside a class are left out of the truth:
the generator picks classes at random, not by interest).  Gaps are those at the cut-off, the same for
every method.

Why the ground truth is independent of the scoring: ``corpora/cadres.py`` draws each record from hidden
per-cadre topic interests (mostly the required topics, some personal ones, some required ones skipped by
the "narrow" persona) times a fixed course popularity (√enrolments × rating).  It never sees coverage,
decay, gaps, the topic graph's prerequisites, quality weights or MMR, and the recommender never sees the
interests — it only sees records before the cut-off.

Methods: ``hybrid`` (this recommender), ``popularity`` (most completed before the cut-off), ``embedding``
(cosine to the mean vector of the cadre's past courses, or of their required topics' names when cold),
``graph`` (personalised PageRank over the topic graph and course–topic links, restarted at the cadre's
required topics and past courses).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import networkx as nx
import numpy as np
from scipy import sparse
from tqdm import tqdm

from recommender.learner.gaps import analyse_gaps
from recommender.evaluation.metrics import (
    gap_coverage_at_k,
    hit_ratio_at_k,
    intra_list_diversity,
    ndcg_at_k,
    novelty,
    recall_at_k,
)
from recommender.learner.profile import CadreProfile, fetch_profile
from recommender.ranking.recommend import completed_courses
from recommender.service import Recommender

__all__ = ["DEFAULT_CUTOFF", "METHODS", "EvaluationResult", "evaluate", "format_table"]

#: Cut-off of the default split: 2023–2025 to learn from, 2026 (to the generator's AS_OF) to predict.
DEFAULT_CUTOFF = dt.date(2026, 1, 1)
METHODS = ("hybrid", "popularity", "embedding", "graph")
_COLUMNS = ("HR", "NDCG", "Recall", "GapCov", "ILD", "Novelty", "HR-all", "NDCG-all")


@dataclass
class _Case:
    profile: CadreProfile  # records before the cut-off only
    truth: set[int]  # courses completed on or after the cut-off, new to the cadre
    gap_truth: set[int]  # those of them that count for a topic that was a gap at the cut-off
    gaps: set[str]
    done: set[int]


@dataclass
class EvaluationResult:
    cutoff: dt.date
    k: int
    n_cadres: int
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _cases(recommender: Recommender, cadre_ids: Sequence[str], cutoff: dt.date, progress: bool) -> list[_Case]:
    snap, store = recommender.snapshot, recommender.store
    today = cutoff - dt.timedelta(days=1)
    cases = []
    for cadre_id in tqdm(cadre_ids, desc="读取干部记录", unit="人", disable=not progress):
        full = fetch_profile(store, snap, cadre_id)
        past = replace(full, records=tuple(r for r in full.records if r.date < cutoff))
        done = completed_courses(past, snap, today)
        truth = {snap.course_pos[r.course] for r in full.records
                 if r.date >= cutoff and r.completed and r.course in snap.course_pos}
        truth = {c for c in truth if snap.course_published[c] and c not in done}
        if not truth or not past.records:
            continue
        report = analyse_gaps(past, snap, today, recommender.coverage)
        gap_topics = report.gap_weights > 0
        gap_truth = {c for c in truth if (snap.course_flow(c) & gap_topics).any()}
        cases.append(_Case(past, truth, gap_truth, {g.topic_id for g in report.gaps}, done))
    return cases


def _top(scores: np.ndarray, allowed: np.ndarray, k: int) -> list[int]:
    masked = np.where(allowed, scores, -np.inf)
    top = np.argsort(-masked, kind="stable")[:k]
    return [int(i) for i in top if np.isfinite(masked[i])]


def _allowed(recommender: Recommender, case: _Case) -> np.ndarray:
    allowed = recommender.snapshot.course_published.copy()
    if case.done:
        allowed[np.fromiter(case.done, dtype=np.int64)] = False
    return allowed


def _hybrid(recommender: Recommender, cases: list[_Case], cutoff: dt.date, k: int) -> Callable[[_Case], list[int]]:
    today = cutoff - dt.timedelta(days=1)
    snap = recommender.snapshot

    def predict(case: _Case) -> list[int]:
        report = analyse_gaps(case.profile, snap, today, recommender.coverage)
        ranked = recommender.ranker.rank(case.profile, report, today, k=k, with_materials=False)
        return [snap.course_pos[s.item_id] for s in ranked.items]

    return predict


def _popularity(recommender: Recommender, cases: list[_Case], cutoff: dt.date, k: int) -> Callable[[_Case], list[int]]:
    counts = np.zeros(recommender.snapshot.n_courses)
    for case in cases:
        for course in case.done:
            counts[course] += 1
    return lambda case: _top(counts, _allowed(recommender, case), k)


def _embedding(recommender: Recommender, cases: list[_Case], cutoff: dt.date, k: int) -> Callable[[_Case], list[int]]:
    vectors = recommender.vectors
    matrix = vectors.course_vectors()

    def predict(case: _Case) -> list[int]:
        if case.done:
            user = matrix[np.fromiter(case.done, dtype=np.int64)].mean(axis=0)
        else:
            user = vectors.encode_query("；".join(r.topic_name for r in case.profile.requirements))
        return _top(matrix @ (user / max(float(np.linalg.norm(user)), 1e-12)), _allowed(recommender, case), k)

    return predict


def _graph(recommender: Recommender, cases: list[_Case], cutoff: dt.date, k: int,
           alpha: float = 0.85, iterations: int = 40) -> Callable[[_Case], list[int]]:
    """Personalised PageRank by power iteration on the undirected topic + course graph (built with networkx)."""
    snap = recommender.snapshot
    graph = nx.Graph()
    topics = [f"t{i}" for i in range(snap.n_topics)]
    courses = [f"c{i}" for i in range(snap.n_courses)]
    graph.add_nodes_from(topics + courses)
    for relation in (snap.hierarchy, snap.prerequisites):
        graph.add_edges_from((f"t{snap.topic_pos[a]}", f"t{snap.topic_pos[b]}") for a, b in relation.edges())
    for course in range(snap.n_courses):
        graph.add_edges_from((f"c{course}", f"t{t}") for t in snap.topics_of(course))
    order = topics + courses
    adjacency = nx.to_scipy_sparse_array(graph, nodelist=order, format="csr", dtype=np.float64)
    degree = np.asarray(adjacency.sum(axis=0)).ravel()
    transition = adjacency @ sparse.diags(1.0 / np.maximum(degree, 1.0))  # column-stochastic
    n_topics = snap.n_topics

    def predict(case: _Case) -> list[int]:
        restart = np.zeros(len(order))
        for req in case.profile.requirements:
            restart[snap.topic_pos[req.topic_id]] += 1.0
        for course in case.done:
            restart[n_topics + course] += 1.0
        restart /= max(restart.sum(), 1e-12)
        rank = restart.copy()
        for _ in range(iterations):
            rank = alpha * (transition @ rank) + (1 - alpha) * restart
        return _top(rank[n_topics:], _allowed(recommender, case), k)

    return predict


_BUILDERS = {"hybrid": _hybrid, "popularity": _popularity, "embedding": _embedding, "graph": _graph}


def evaluate(recommender: Recommender, cadre_ids: Sequence[str], cutoff: dt.date = DEFAULT_CUTOFF, k: int = 10,
             methods: Sequence[str] = METHODS, progress: bool = True) -> EvaluationResult:
    """Score each method on every cadre with records on both sides of ``cutoff``."""
    snap = recommender.snapshot
    cases = _cases(recommender, cadre_ids, cutoff, progress)
    result = EvaluationResult(cutoff, k, len(cases))
    gap_truth = {i: case.gap_truth for i, case in enumerate(cases)}
    all_truth = {i: case.truth for i, case in enumerate(cases)}
    gaps = {i: case.gaps for i, case in enumerate(cases)}
    touches = {c: {snap.topic_ids[t] for t in np.flatnonzero(snap.course_flow(c))} for c in range(snap.n_courses)}
    features = {c: set(snap.topics_of(c)) for c in range(snap.n_courses)}
    counts = Counter(c for case in cases for c in case.done)
    for method in methods:
        started = time.perf_counter()
        predict = _BUILDERS[method](recommender, cases, cutoff, k)
        predictions = {i: predict(case) for i, case in enumerate(tqdm(cases, desc=f"评估 {method}", unit="人", disable=not progress))}
        result.seconds[method] = time.perf_counter() - started
        result.scores[method] = {
            "HR": hit_ratio_at_k(gap_truth, predictions, k),
            "NDCG": ndcg_at_k(gap_truth, predictions, k),
            "Recall": recall_at_k(gap_truth, predictions, k),
            "GapCov": gap_coverage_at_k(gaps, predictions, k, touches),
            "ILD": intra_list_diversity(predictions, k, features),
            "Novelty": novelty(predictions, k, counts, len(cases)),
            "HR-all": hit_ratio_at_k(all_truth, predictions, k),
            "NDCG-all": ndcg_at_k(all_truth, predictions, k),
        }
    return result


def format_table(result: EvaluationResult) -> str:
    """The scores as a fixed-width table, best of each column marked with *, then a verdict line."""
    k = result.k
    head = f"{'方法':<12}" + "".join(f"{name + '@' + str(k):>13}" for name in _COLUMNS) + f"{'用时(秒)':>9}"
    best = {col: max(s[col] for s in result.scores.values()) for col in _COLUMNS}
    lines = [
        f"离线评估：{result.cutoff.isoformat()} 之前的记录 → 预测之后修读的课程；{result.n_cadres} 名干部，k={k}",
        "HR/NDCG/Recall：真值为截止后修读、且补到截止时缺口主题的课程；-all：截止后修读的全部新课程",
        head,
    ]
    for method, scores in result.scores.items():
        cells = "".join(f"{scores[c]:>12.4f}{'*' if scores[c] == best[c] else ' '}" for c in _COLUMNS)
        lines.append(f"{method:<12}{cells}{result.seconds.get(method, 0.0):>9.1f}")
    if "hybrid" in result.scores and len(result.scores) > 1:
        others = {m: s for m, s in result.scores.items() if m != "hybrid"}
        ahead = all(result.scores["hybrid"][c] > max(s[c] for s in others.values()) for c in ("NDCG", "GapCov"))
        lines.append(f"混合推荐在 NDCG@{k} 与 GapCov@{k} 上{'均领先所有基线' if ahead else '未能全部领先基线'}")
    return "\n".join(lines)
