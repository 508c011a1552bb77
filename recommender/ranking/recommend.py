"""The ranker: courses (and textbooks, cases, sites) that fit the person — their job's gaps and the core.

A course's score adds weighted, [0, 1]-scaled parts (every weight is data: ``ontology/rules.yaml`` ``ranking``):

* **gap** — the largest gap weight among the topics its hours count for (its topics and everything above
  them), plus a share of the others, so a course touching two gaps beats one touching one; gap weights
  follow where a requirement comes from (:mod:`recommender.learner.gaps`), so the cadre's job leads;
* **graph** — weaker links through the topic graph: a broader or ``related`` topic of a gap, a
  prerequisite of a gap topic not yet covered, or any required topic (to keep learning on the role);
* **semantic** — closeness to the cadre's free-text intent, when one is given;
* **role** — closeness to the cadre's job (their position domain and job-side topics, as a query over the
  search index's vectors: :class:`Intent` again), so that among courses filling the same gap the one framed
  for the cadre's work comes first — and cadres of different jobs do not all get the same course;
* **quality** (rating shrunk to the mean, completion, expert score), **popularity** (kept small, so one
  famous course cannot lead every list) and **freshness**;
* **format** — a case or interactive course when the cadre has none recently; **audience** — the
  course names the cadre's category or one of their target groups.

A list is a deliberate **blend** of two sides: the cadre's job (requirements of their position domain,
target groups and category) and the core every cadre must study (the plan's 主题主线, ``all_cadres``), in the
proportions of ``ranking.blend``; each step serves the side furthest behind its share (the job side first),
and a side with nothing left to offer yields its slot to the other.  Each reason says which side it serves.

**Audience** is a rule, not a weight: a course declared for categories and groups that exclude the cadre
is not suggested while courses for them or for everyone remain (``audience.exclude_mismatched``); when
those cannot fill the list they come last, and say so (``audience.fallback_when_short``).

An **intent** moves the list: among the search index's ``intent.pool`` nearest courses to it (:class:`Intent`),
those within ``intent.margin`` of the closest one's cosine are close to it; the close ones that count for a
required topic or gap take the first ``intent.lead`` places; when no close one does, the list says so
(``note``) and still leads with the closest ones.

Selection is greedy with MMR (Carbonell & Goldstein, 1998): each step takes the candidate with the best
``λ·score − (1 − λ)·similarity to what is already chosen``, where the gap part is recomputed against the
gaps the chosen courses leave (their hours subtracted), and similarity is the overlap of covered topics.
**Fit to the job decides among near-equals**: the candidates of a step within ``ranking.fit_band`` of its best
value are equally good for the gaps, and of those the one most specific to the cadre's job is taken
(:attr:`Intent.fit`: closeness to this job beyond closeness to jobs in general), so the core requirement
is met by 习近平经济思想 for a financial regulator and by 习近平法治思想 for a judge, and quality and popularity
only break ties — the ranking-threshold idea of Adomavicius & Kwon (2012) for aggregate diversity.
Rules that are never traded off: published courses only; nothing the cadre completed (or its newer
version); and a course whose topic has an uncovered prerequisite topic only after a course on that
prerequisite in the same list.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from recommender.errors import InvalidRequest
from recommender.learner.choices import ChoiceEffect, FeedbackRules, choice_effect
from recommender.learner.gaps import Gap, GapReport, decay
from recommender.labelled import Labelled
from recommender.learner.profile import SIDES, CadreProfile
from recommender.catalogue.snapshot import CatalogueSnapshot, Material
from recommender.dates import DAYS_PER_YEAR

__all__ = ["Intent", "RankConfig", "Ranker", "Recommendations", "Suggestion", "completed_courses"]

#: RankConfig field → its path in the rules' ``ranking`` / ``audience`` / ``intent`` sections.
_RULE_PATHS: dict[str, tuple[str, ...]] = {
    **{name: ("ranking", "weights", name)
       for name in ("gap", "graph", "semantic", "role", "quality", "popularity", "freshness", "format", "audience")},
    **{f"{name}_link": ("ranking", "links", name) for name in ("broader", "related", "prerequisite", "required")},
    **{name: ("ranking", name) for name in ("multi_gap", "mmr_lambda", "candidates", "freshness_half_life_years",
                                            "format_window_years", "prerequisite_hours", "material_gaps")},
    "path_max_steps": ("ranking", "path_max_steps_per_mode"),
    "blend_job": ("ranking", "blend", "job"),
    "exclude_mismatched": ("audience", "exclude_mismatched"),
    "fallback_when_short": ("audience", "fallback_when_short"),
    "intent_pool": ("intent", "pool"),
    "intent_lead": ("intent", "lead"),
    "intent_margin": ("intent", "margin"),
    "role_pool": ("ranking", "role_pool"),
    "fit_band": ("ranking", "fit_band"),
}


@dataclass(frozen=True)
class RankConfig:
    """Weights and limits of the ranker: ``ontology/rules.yaml`` through :meth:`from_rules` (see the comments there).

    ``blend_job`` is the job side's share of a list (None: no blend, one ranking over every gap).
    """

    gap: float
    graph: float
    semantic: float
    role: float
    quality: float
    popularity: float
    freshness: float
    format: float
    audience: float
    multi_gap: float
    broader_link: float
    related_link: float
    prerequisite_link: float
    required_link: float
    mmr_lambda: float
    candidates: int
    freshness_half_life_years: float
    format_window_years: float
    prerequisite_hours: float
    material_gaps: int
    path_max_steps: int
    blend_job: float | None
    exclude_mismatched: bool
    fallback_when_short: bool
    intent_pool: int
    intent_lead: int
    intent_margin: float
    role_pool: int
    fit_band: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise InvalidRequest(f"mmr_lambda（多样性权衡系数）应在 0 到 1 之间，实际为 {self.mmr_lambda}")
        if self.candidates < 1:
            raise InvalidRequest(f"candidates（候选课程数）应为正整数，实际为 {self.candidates}")
        if self.blend_job is not None and not 0.0 <= self.blend_job <= 1.0:
            raise InvalidRequest(f"blend.job（岗位所需课程占比）应在 0 到 1 之间，实际为 {self.blend_job}")
        if not 1 <= self.path_max_steps <= 200:
            raise InvalidRequest(f"path_max_steps_per_mode（学习路径每种方式最多课程数）应在 1 到 200 之间，实际为 {self.path_max_steps}")
        if self.fit_band < 0:
            raise InvalidRequest(f"fit_band（按岗位贴近程度挑选的得分差）应为非负数，实际为 {self.fit_band}")
        if self.intent_pool < 1 or self.intent_lead < 0:
            raise InvalidRequest(f"intent.pool 应为正整数、intent.lead 应为非负整数，实际为 {self.intent_pool}、{self.intent_lead}")

    @classmethod
    def from_rules(cls, rules: Mapping[str, Any], **overrides: Any) -> RankConfig:
        """The configuration in ``rules`` (``ranking``, ``audience``, ``intent``), with ``overrides`` on top.

        The blend's two shares must add up to 1; a missing key is named.
        """
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise InvalidRequest(f"RankConfig 没有参数 {'、'.join(sorted(unknown))}")
        if "blend_job" not in overrides:
            job, core = (float(_rule(rules, ("ranking", "blend", side))) for side in ("job", "core"))
            if abs(job + core - 1.0) > 1e-6:
                raise InvalidRequest(f"rules.yaml 的 ranking.blend 中 job 与 core 之和应为 1，实际为 {job:g} 与 {core:g}")
        values = {name: overrides[name] if name in overrides else _rule(rules, path) for name, path in _RULE_PATHS.items()}
        return cls(**values)


def _rule(rules: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path`` in the rules; a missing key is an error naming it, never a silent default."""
    node: Any = rules
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            raise InvalidRequest(f"rules.yaml 缺少 {'.'.join(path)}")
        node = node[key]
    return node


@dataclass(frozen=True)
class Intent:
    """A free-text intent (or the cadre's job as a query) and how to find the courses nearest to it in the
    search index's own vectors.

    ``nearest(allowed, k)`` answers up to ``k`` (course position, cosine) pairs among the courses where
    ``allowed`` is true, closest first — :meth:`recommender.ranking.semantic.SearchVectors.nearest`.
    ``fit(positions)``, for a job, answers how specific each course is to it (any real scale, larger is closer;
    see :meth:`Recommender.role <recommender.service.Recommender.role>`); the ranker uses it to choose among
    near-equal candidates.
    """

    text: str
    nearest: Callable[[np.ndarray, int], list[tuple[int, float]]]
    fit: Callable[[np.ndarray], np.ndarray] | None = None


@dataclass(frozen=True)
class Suggestion(Labelled):
    """One suggested item with the reason a cadre reads and the score parts an auditor reads."""

    rank: int
    item_id: str
    kind: str
    kind_label: str
    name: str
    score: float
    topics: tuple[str, ...]
    reason: str
    details: tuple[str, ...] = ()
    hours: float | None = None
    delivery_mode: str | None = None
    course_type: str | None = None
    gap_topic: str | None = None
    section: str | None = None
    after: tuple[str, ...] = ()  # items earlier in the list that cover this one's prerequisite topics
    side: str | None = None  # job | core: which side of the list it serves
    intent_match: bool = False
    parts: dict[str, float] = field(default_factory=dict)

    LABELS: ClassVar[dict[str, str]] = {
        "rank": "序号", "item_id": "编号", "kind_label": "类型", "name": "名称", "topics": "主题", "hours": "学时",
        "delivery_mode": "授课方式", "course_type": "课程类型", "side_label": "类别", "reason": "推荐理由",
        "details": "补充说明", "section": "规划条目", "after": "先修安排", "intent_match": "符合学习意向",
        "score": "得分", "parts": "得分构成",
    }

    @property
    def side_label(self) -> str:
        return SIDES.get(self.side or "", "")


@dataclass(frozen=True)
class Recommendations(Labelled):
    cadre_id: str
    today: dt.date
    intent: str | None
    cold_start: bool
    items: tuple[Suggestion, ...]
    materials: tuple[Suggestion, ...]
    gaps: tuple[Gap, ...]
    note: str = ""

    LABELS: ClassVar[dict[str, str]] = {
        "cadre_id": "干部编号", "today": "统计日期", "intent": "学习意向", "cold_start": "尚无学习记录",
        "note": "说明", "items": "推荐课程", "materials": "配套资源", "gaps": "主要缺口",
    }


def completed_courses(profile: CadreProfile, snapshot: CatalogueSnapshot, today: dt.date) -> set[int]:
    """Courses the cadre completed (alone or in a class) by ``today``, and the newer versions replacing them."""
    done: set[int] = set()
    for record in profile.records:
        if record.date > today or not record.completed:
            continue
        if record.course in snapshot.course_pos:
            done.add(snapshot.course_pos[record.course])
        if record.klass in snapshot.classes:
            done.update(snapshot.course_pos[c] for c in snapshot.classes[record.klass].courses if c in snapshot.course_pos)
    for course in list(done):
        seen = set()
        while course in snapshot.replaced_by and course not in seen:
            seen.add(course)
            course = snapshot.replaced_by[course]
            done.add(course)
    return done


@dataclass
class _Scored:
    """One cadre's scores over the catalogue and what the reasons need to explain a chosen course."""

    total: np.ndarray  # −inf where a course may not be suggested
    gap: np.ndarray  # per topic signature (see Ranker)
    graph: np.ndarray  # per topic signature
    signature: np.ndarray  # course → signature
    freshness: np.ndarray
    audience_mask: int
    mismatched: np.ndarray  # bool per course: declared for an audience that excludes the cadre
    lacks_case: bool
    lacks_interactive: bool
    prereq_threshold: np.ndarray
    semantic: np.ndarray | None = None
    role: np.ndarray | None = None
    choices: ChoiceEffect | None = None  # the cadre's plan and feedback, applied to ``total``


@dataclass(frozen=True)
class _IntentChoice:
    """What an intent found: courses to lead with (closest first), their cosines, and whether they are required."""

    lead: tuple[int, ...]
    cosine: dict[int, float]
    matched: bool


def _closeness(query: Intent, total: np.ndarray, fallback: np.ndarray, pool: int, weight: float,
               min_hits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The ``pool`` eligible courses nearest ``query`` as (positions, cosines, part); adds ``weight × part`` to
    ``total`` in place.  The part is the cosine min–max rescaled over those courses (1 for a lone one, 0 for
    every other course), so intent and role weigh alike whatever the spread of the model's cosines; None, and
    nothing added, when fewer than ``min_hits`` are found."""
    hits = query.nearest(np.isfinite(total) & ~fallback, pool)
    if len(hits) < max(min_hits, 1):
        return None
    positions = np.array([p for p, _ in hits], dtype=np.int64)
    cosines = np.array([cos for _, cos in hits], dtype=np.float64)
    low, high = float(cosines.min()), float(cosines.max())
    part = np.zeros(len(total), dtype=np.float32)
    part[positions] = (cosines - low) / max(high - low, 1e-6) if len(hits) > 1 else 1.0
    total += np.float32(weight) * part
    return positions, cosines, part


class Ranker:
    """Scores and selects items for one cadre at a time over one snapshot; holds only per-snapshot arrays.

    Courses that cover the same set of topics share their topic parts, so those are computed once per
    *signature* (distinct topic set: a few thousand even for 100k courses) and gathered to courses in one
    pass.  The candidate pool is found exactly without sorting the catalogue: the ``candidates``-th best
    total among each signature's best-based course bounds the pool's threshold from below.  The best few
    courses of every gap topic join the pool, so each side of the blend has candidates even in a large
    catalogue.  Everything per item — MMR, sides, prerequisites, reasons — runs on the pool.
    """

    #: Courses per topic scanned, best static score first, when looking for a topic's best courses.
    _TOPIC_SCAN = 64
    #: Best courses per gap or prerequisite topic added to the pool.
    _PER_TOPIC = 3

    def __init__(self, snapshot: CatalogueSnapshot, config: RankConfig | None = None) -> None:
        self.snapshot = snapshot
        self.config = config or RankConfig.from_rules(snapshot.ontology.rules)
        s, c = snapshot, self.config
        t = s.n_topics
        self._topics = np.where(s.course_topics >= 0, s.course_topics, t)  # -1 → a padding slot scoring 0
        signatures, of = np.unique(np.sort(self._topics, axis=1), axis=0, return_inverse=True)
        self._signature_slots = np.ascontiguousarray(signatures.T)  # (K, S)
        self._signature_of = of.ravel().astype(np.int64)  # course → signature
        self._up_strict = s.up & ~np.eye(t, dtype=bool)
        self._prereq_padded = np.vstack([s.prereq_of, np.zeros((1, t), dtype=bool)])
        self._static = (c.quality * s.course_quality + c.popularity * s.course_popularity).astype(np.float32)
        self._unpublished = np.flatnonzero(~s.course_published)
        self._case = s.course_case.astype(np.float32)
        self._interactive = s.course_interactive.astype(np.float32)
        self._either = np.maximum(self._case, self._interactive)
        self._audience_bits = self._bits(s)
        self._declared = np.diff(s.course_audience.indptr) > 0  # courses naming any audience at all
        self._audience_ids = {i: a for a, i in s.audience_pos.items()}
        self._under_sorted = [under[np.argsort(-self._static[under], kind="stable")] for under in s.courses_under]
        self._under_head = np.full((t, self._TOPIC_SCAN), s.n_courses, dtype=np.int64)  # n_courses: no course
        for topic, ranked in enumerate(self._under_sorted):
            self._under_head[topic, : min(len(ranked), self._TOPIC_SCAN)] = ranked[: self._TOPIC_SCAN]
        self._under_count = np.array([len(ranked) for ranked in self._under_sorted], dtype=np.int64)
        self._base_cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._labels = {name: spec.label for name, spec in s.ontology.classes.items()}

    @staticmethod
    def _bits(s: CatalogueSnapshot) -> np.ndarray | None:
        """Per course, a bit per category/group it is meant for (None if they do not fit in 64 bits)."""
        if s.course_audience.shape[1] > 64:
            return None
        coo = s.course_audience.tocoo()
        bits = np.zeros(s.n_courses, dtype=np.uint64)
        np.bitwise_or.at(bits, coo.row, np.left_shift(np.uint64(1), coo.col.astype(np.uint64)))
        return bits

    # ── scoring ──
    def _base(self, today: dt.date) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(freshness, static + weighted freshness, each signature's published course with the best base)
        for ``today``; one day cached."""
        key = today.toordinal()
        entry = self._base_cache.get(key)
        if entry is None:
            modified = self.snapshot.course_modified
            age = np.where(modified > 0, key - modified, 10 * DAYS_PER_YEAR)
            fresh = decay(age, self.config.freshness_half_life_years).astype(np.float32)
            base = self._static + np.float32(self.config.freshness) * fresh
            ranked = np.where(self.snapshot.course_published, base, -np.inf)
            order = np.lexsort((-ranked, self._signature_of))
            grouped = self._signature_of[order]
            first = np.ones(len(order), dtype=bool)
            first[1:] = grouped[1:] != grouped[:-1]
            entry = (fresh, base, order[first])
            self._base_cache = {key: entry}  # read once above and kept: a thread scoring another day may replace it
        return entry

    def _lacks(self, profile: CadreProfile, today: dt.date, done: set[int]) -> tuple[bool, bool]:
        """Whether the cadre has no case / no interactive course in the last ``format_window_years``."""
        since = today - dt.timedelta(days=round(self.config.format_window_years * DAYS_PER_YEAR))
        recent = {self.snapshot.course_pos[r.course] for r in profile.records
                  if r.course in self.snapshot.course_pos and since < r.date <= today and r.completed}
        recent &= done
        idx = np.fromiter(recent, dtype=np.int64) if recent else np.zeros(0, dtype=np.int64)
        return (not self.snapshot.course_case[idx].any(), not self.snapshot.course_interactive[idx].any())

    def _topic_parts(self, gaps: GapReport) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per topic: gap fill (its own and broader gaps), graph link strength, prerequisite threshold."""
        s, c = self.snapshot, self.config
        g, r = gaps.gap_weights, gaps.requirement_weights
        fill = (s.up * g[None, :]).max(axis=1)
        prereq_threshold = np.full(s.n_topics, c.prerequisite_hours)  # a prerequisite is met once studied at a basic level
        uncovered = gaps.coverage < prereq_threshold
        graph = np.max(np.vstack([
            c.broader_link * (self._up_strict * g[:, None]).max(axis=0),
            c.related_link * (s.related * g[None, :]).max(axis=1),
            c.prerequisite_link * (s.prereq_of * g[:, None]).max(axis=0) * uncovered,
            c.required_link * (s.up * r[None, :]).max(axis=1),
        ]), axis=0)
        return fill, graph, prereq_threshold

    def _audience_mask(self, profile: CadreProfile) -> int:
        positions = self.snapshot.audience_pos
        return sum(1 << positions[role] for role in (profile.category_id, *profile.group_ids) if role in positions)

    def _audience(self, mask: int) -> np.ndarray:
        if self._audience_bits is not None:
            return (self._audience_bits & np.uint64(mask)) != 0
        vector = np.array([(mask >> i) & 1 for i in range(self.snapshot.course_audience.shape[1])], dtype=np.float32)
        return self.snapshot.course_audience @ vector > 0

    def _audience_names(self, course: int, mask: int | None = None) -> list[str]:
        """Names of the audiences a course declares (only the cadre's own, given their ``mask``)."""
        audience = self.snapshot.course_audience  # CSR: the row's columns by slicing, not a new matrix per call
        row = audience.indices[audience.indptr[course]:audience.indptr[course + 1]]
        ids = [self._audience_ids[int(i)] for i in sorted(row) if mask is None or (mask >> int(i)) & 1]
        return [self.snapshot.names.get(a, a) for a in ids]

    def _score(self, profile: CadreProfile, gaps: GapReport, today: dt.date) -> tuple[_Scored, set[int]]:
        s, c = self.snapshot, self.config
        fill_t, graph_t, prereq_threshold = self._topic_parts(gaps)
        fill = np.append(fill_t, 0.0).astype(np.float32)[self._signature_slots]  # (K, S)
        best = fill.max(axis=0)
        gap = best + np.float32(c.multi_gap) * (fill.sum(axis=0) - best)
        graph = np.append(graph_t, 0.0).astype(np.float32)[self._signature_slots].max(axis=0)
        fresh, base, _ = self._base(today)
        total = (np.float32(c.gap) * gap + np.float32(c.graph) * graph)[self._signature_of]
        total += base
        done = completed_courses(profile, s, today)
        lacks_case, lacks_interactive = self._lacks(profile, today, done)
        if lacks_case or lacks_interactive:
            fmt = self._either if lacks_case and lacks_interactive else self._case if lacks_case else self._interactive
            total += np.float32(c.format) * fmt
        mask = self._audience_mask(profile)
        matching = self._audience(mask) if mask else np.zeros(s.n_courses, dtype=bool)
        if mask:
            np.add(total, np.float32(c.audience), out=total, where=matching)
        total[self._unpublished] = -np.inf
        if done:
            total[np.fromiter(done, dtype=np.int64)] = -np.inf
        choices = (choice_effect(profile.choices, s.course_pos, FeedbackRules.from_rules(s.ontology.rules), today)
                   if profile.choices else None)
        if choices is not None:  # kept, learnt, irrelevant: left out; 以后再说: pushed down for a while
            total[choices.hidden] = -np.inf
            total[choices.later] -= np.float32(choices.penalty)
        scored = _Scored(total, gap, graph, self._signature_of, fresh, mask, self._declared & ~matching,
                         lacks_case, lacks_interactive, prereq_threshold, choices=choices)
        return scored, done

    def _pool(self, total: np.ndarray, today: dt.date) -> np.ndarray:
        """The ``candidates`` best courses by total (exact; see the class docstring)."""
        size = self.config.candidates
        heads = total[self._base(today)[2]]
        heads = heads[np.isfinite(heads)]
        if len(heads) >= size:
            threshold = np.partition(heads, len(heads) - size)[len(heads) - size]
            found = np.flatnonzero(total >= threshold)
        else:
            found = np.flatnonzero(np.isfinite(total))
        return found if len(found) <= size else found[np.argpartition(-total[found], size - 1)[:size]]

    def score(self, profile: CadreProfile, gaps: GapReport, today: dt.date) -> np.ndarray:
        """Score of every course for this cadre; −inf where it may not be suggested (unpublished, completed)."""
        return self._score(profile, gaps, today)[0].total

    def _audience_rule(self, scored: _Scored, total: np.ndarray, k: int) -> np.ndarray:
        """Apply the audience rule to ``total`` in place; returns the courses let in only as a fallback."""
        fallback = np.zeros(len(total), dtype=bool)
        if not self.config.exclude_mismatched or not scored.mismatched.any():
            return fallback
        mismatched = scored.mismatched & np.isfinite(total)
        if self.config.fallback_when_short and int(np.isfinite(total).sum() - mismatched.sum()) < k:
            return mismatched
        total[mismatched] = -np.inf
        return fallback

    def _intent(self, intent: Intent, total: np.ndarray, fallback: np.ndarray, gaps: GapReport,
                scored: _Scored) -> _IntentChoice:
        """The nearest courses to the intent; those counting for a required topic lead, else the closest do.
        Adds the semantic part (cosine rescaled over the nearest ones) to ``total`` in place."""
        c = self.config
        found = _closeness(intent, total, fallback, c.intent_pool, c.semantic, min_hits=1)
        if found is None:
            return _IntentChoice((), {}, False)
        positions, cosines, scored.semantic = found
        required = (self.snapshot.course_flows(positions) & (gaps.requirement_weights > 0)[None, :]).any(axis=1)
        close = cosines >= float(cosines.max()) - c.intent_margin
        matched = bool((required & close).any())
        lead = positions[required & close] if matched else positions[close]
        return _IntentChoice(tuple(int(p) for p in lead), dict(zip(positions[close].tolist(), cosines[close].tolist())),
                             matched)

    # ── selection ──
    def _role(self, role: Intent, total: np.ndarray, fallback: np.ndarray, scored: _Scored) -> None:
        """Add the role part to ``total`` in place: the cosine of the ``role_pool`` courses nearest the cadre's job,
        rescaled to [0, 1] over them (0 for every other course)."""
        found = _closeness(role, total, fallback, self.config.role_pool, self.config.role, min_hits=2)
        if found is not None:
            scored.role = found[2]

    def rank(self, profile: CadreProfile, gaps: GapReport, today: dt.date, k: int = 10,
             intent: Intent | None = None, with_materials: bool = True,
             allowed: np.ndarray | None = None, role: Intent | None = None) -> Recommendations:
        """The top ``k`` courses by blended MMR under the audience and prerequisite rules, each with its reason;
        and materials.  ``allowed`` (bool per course) narrows the choice further, e.g. to online courses for a path;
        ``role`` is the cadre's job as a query (see :meth:`Recommender.role <recommender.service.Recommender.role>`).
        """
        if not 1 <= k <= 200:
            raise InvalidRequest(f"k（推荐条数）应在 1 到 200 之间，实际为 {k}")
        c = self.config
        scored, _ = self._score(profile, gaps, today)
        total = scored.total
        if allowed is not None:
            total[~allowed] = -np.inf
        fallback = self._audience_rule(scored, total, k)
        if role is not None and self.config.role:
            self._role(role, total, fallback, scored)
        choice = self._intent(intent, total, fallback, gaps, scored) if intent is not None else None
        pool = self._pool(total, today)
        uncovered = gaps.coverage < scored.prereq_threshold
        wanted = [np.array(choice.lead, dtype=np.int64)] if choice else []
        wanted.append(self._best_under(np.flatnonzero(gaps.gap_weights > 0), total))
        pool = self._extend(pool, np.concatenate(wanted))
        flows = self.snapshot.course_flows(pool)
        needs = self._needs(pool, flows, uncovered)
        extra = np.setdiff1d(self._best_under(np.flatnonzero(needs.any(axis=0)), total), pool)
        if len(extra):
            extra_flows = self.snapshot.course_flows(extra)
            pool = np.concatenate([pool, extra])
            flows = np.vstack([flows, extra_flows])
            needs = np.vstack([needs, self._needs(extra, extra_flows, uncovered)])
        position = {int(course): i for i, course in enumerate(pool)} if choice else {}
        lead = [position[course] for course in choice.lead] if choice else []
        fit = role.fit(pool) if role is not None and role.fit is not None else None
        chosen = self._select(pool, flows, needs, total, scored.gap[scored.signature[pool]], gaps, k, lead, fallback[pool],
                              fit)
        items = self._suggestions(chosen, scored, gaps, intent.text if intent else None, choice, fallback)
        hidden = scored.choices.hidden_ids if scored.choices is not None else frozenset()
        materials = self._materials(gaps, len(items), hidden) if with_materials else ()
        note = ""
        if choice is not None and not choice.matched:
            note = (f"你的学习意向「{intent.text}」与本人岗位和培训对象要求学习的主题都不接近；"
                    "清单前几门是与意向最接近的课程，其余仍按你的知识缺口推荐。")
        if scored.choices is not None:
            note = f"{note}{scored.choices.note()}"
        return Recommendations(profile.cadre_id, today, intent.text if intent else None, profile.cold_start, items,
                               materials, gaps.gaps[: max(3, c.material_gaps)], note)

    @staticmethod
    def _extend(pool: np.ndarray, more: np.ndarray) -> np.ndarray:
        """``pool`` followed by the courses of ``more`` not yet in it (order kept)."""
        more = more[~np.isin(more, pool)]
        return np.concatenate([pool, np.unique(more)]).astype(np.int64)

    def _needs(self, pool: np.ndarray, flows: np.ndarray, uncovered: np.ndarray) -> np.ndarray:
        """(P, T) bool: prerequisite topics of each pooled course that are uncovered and not taught by it
        (``flows``: the pooled courses' :meth:`~CatalogueSnapshot.course_flows`)."""
        direct = self._prereq_padded[self._topics[pool]].any(axis=1)
        return direct & uncovered[None, :] & ~flows

    def _best_under(self, topics: np.ndarray, total: np.ndarray) -> np.ndarray:
        """The best-scored available courses (``_PER_TOPIC`` each) for every topic in ``topics``, found among
        each topic's ``_TOPIC_SCAN`` courses with the best static scores — all topics in one array step; only a
        topic whose scanned head has fewer than ``_PER_TOPIC`` available courses is searched through in full."""
        per = self._PER_TOPIC
        heads = self._under_head[topics]  # (G, SCAN)
        values = np.append(total, np.float32(-np.inf))[heads]
        finite = np.isfinite(values)
        short = (finite.sum(axis=1) < per) & (self._under_count[topics] > self._TOPIC_SCAN)
        top = np.argpartition(-values[~short], per - 1, axis=1)[:, :per]
        found = [np.take_along_axis(heads[~short], top, axis=1)[np.take_along_axis(finite[~short], top, axis=1)]]
        for topic in topics[short]:
            ranked = self._under_sorted[topic]
            head = ranked[np.isfinite(total[ranked])]
            found.append(head[np.argpartition(-total[head], per)[:per]] if len(head) > per else head)
        return np.unique(np.concatenate(found))

    def _side_order(self, counts: dict[str, int]) -> tuple[str, ...]:
        """Sides by how far each is behind its share of the next slot (job first on a tie)."""
        share = self.config.blend_job
        n = counts["job"] + counts["core"] + 1
        job, core = share * n - counts["job"], (1.0 - share) * n - counts["core"]
        return ("job", "core") if job >= core else ("core", "job")

    def _select(self, pool: np.ndarray, flows: np.ndarray, needs: np.ndarray, total: np.ndarray, pool_gap: np.ndarray,
                gaps: GapReport, k: int, lead: list[int], fallback: np.ndarray,
                fit: np.ndarray | None = None) -> list[tuple[int, tuple[int, ...], str | None]]:
        """Greedy MMR over the pool with residual gaps, serving the blend's sides in turn; returns (course,
        earlier courses it must follow, side served).  ``fit`` (per pooled course) picks among each step's
        near-equals (:meth:`_pick`).

        ``lead`` (pool indices, best first) take the first ``intent_lead`` places when free to; ``fallback``
        courses are chosen only when nothing else is eligible.  Only the gap topics enter the residual
        arithmetic, and a course's unmet prerequisites are counted down as chosen courses teach them, so a
        step is a few array operations over the pool.
        """
        s, c = self.snapshot, self.config
        pool = np.asarray(pool, dtype=np.int64)
        if not len(pool):
            return []
        gap_topics = np.flatnonzero(gaps.gap_weights > 0)
        job_columns = gaps.job_topics[gap_topics]
        gap_flows = flows[:, gap_topics].astype(np.float64)  # (P, G)
        shortfall = np.maximum(gaps.thresholds[gap_topics] - gaps.coverage[gap_topics], 0.0)
        scale = gaps.requirement_weights[gap_topics] / gaps.thresholds[gap_topics]
        required = gaps.requirement_weights > 0
        on_side = {"job": (flows & (required & gaps.job_topics)[None, :]).any(axis=1),
                   "core": (flows & (required & ~gaps.job_topics)[None, :]).any(axis=1)}
        members = np.zeros((len(pool), s.n_topics + 1), dtype=np.float32)  # covered topics → Jaccard similarity
        np.put_along_axis(members, self._topics[pool], 1.0, axis=1)
        members = np.ascontiguousarray(members[:, :-1])
        sizes = members.sum(axis=1)
        static = c.mmr_lambda * (total[pool] - c.gap * pool_gap)
        gain = c.mmr_lambda * c.gap
        hours = s.course_hours[pool].astype(np.float64)
        unmet = needs.sum(axis=1)
        taught = np.zeros(s.n_topics, dtype=bool)
        max_sim = np.zeros(len(pool))
        available = np.ones(len(pool), dtype=bool)
        chosen: list[tuple[int, tuple[int, ...], str | None]] = []
        counts = {"job": 0, "core": 0}
        teacher_of = np.full(s.n_topics, -1, dtype=np.int64)
        while len(chosen) < k:
            eligible = available & (unmet == 0)
            if (eligible & ~fallback).any():
                eligible &= ~fallback
            if not eligible.any():
                break
            fill = gap_flows * (scale * shortfall)
            base = static - (1.0 - c.mmr_lambda) * max_sim
            spread = c.multi_gap * fill.sum(axis=1)

            def mmr(columns: np.ndarray | None) -> np.ndarray:
                part = fill if columns is None else fill[:, columns]
                best = part.max(axis=1) if part.shape[1] else np.zeros(len(pool))
                return base + gain * (best * (1.0 - c.multi_gap) + spread)

            i, side = -1, None
            for j in (j for j in lead if available[j]) if len(chosen) < c.intent_lead else ():
                if eligible[j]:
                    i = j
                    break
                teaches = eligible & (flows & needs[j][None, :]).any(axis=1)  # it waits on a prerequisite: teach it first
                if teaches.any():
                    i = int(np.argmax(np.where(teaches, mmr(None), -np.inf)))
                    break
            if i >= 0:
                side = self._side_of(fill[i], job_columns, on_side, i)
            if i < 0 and c.blend_job is not None:
                for side in self._side_order(counts):
                    columns = job_columns if side == "job" else ~job_columns
                    serves = eligible & (fill[:, columns] > 0).any(axis=1) if columns.any() else np.zeros(len(pool), bool)
                    if not serves.any():
                        serves = eligible & on_side[side]
                    if serves.any():
                        i = self._pick(np.where(serves, mmr(columns), -np.inf), fit)
                        break
            if i < 0:
                i, side = self._pick(np.where(eligible, mmr(None), -np.inf), fit), None
                side = self._side_of(fill[i], job_columns, on_side, i)
            if side is not None:
                counts[side] += 1
            after = tuple(sorted({int(teacher_of[p]) for p in np.flatnonzero(needs[i])}))
            chosen.append((int(pool[i]), after, side))
            available[i] = False
            newly = flows[i] & ~taught
            teacher_of[newly] = pool[i]
            taught |= newly
            unmet -= needs[:, newly].sum(axis=1)
            shortfall = np.maximum(shortfall - hours[i] * gap_flows[i], 0.0)
            shared = members @ members[i]  # one row at a time: a full P × P product is slower here
            np.maximum(max_sim, shared / np.maximum(sizes + sizes[i] - shared, 1.0), out=max_sim)
        return chosen

    def _pick(self, values: np.ndarray, fit: np.ndarray | None) -> int:
        """The candidate to take: of those within ``fit_band`` of the best value, the one that fits the job best
        (ties, and no fit at all, go to the best value).  ``values`` is −inf where a course is not a candidate."""
        best = int(np.argmax(values))
        if fit is None or not np.isfinite(values[best]):
            return best
        near = values >= values[best] - self.config.fit_band
        closest = near & (fit >= fit[near].max())
        return int(np.argmax(np.where(closest, values, -np.inf)))

    @staticmethod
    def _side_of(fill: np.ndarray, job_columns: np.ndarray, on_side: dict[str, np.ndarray], i: int) -> str | None:
        """The side a pooled course serves most: the side of the largest gap it fills, else of a required topic."""
        if fill.size and fill.max() > 0:
            return "job" if job_columns[int(np.argmax(fill))] else "core"
        return "job" if on_side["job"][i] else "core" if on_side["core"][i] else None

    # ── reasons ──
    def _graph_reason(self, course: int, gaps: GapReport) -> tuple[str, Gap | None]:
        """Why a course that fills no gap is still on topic: which gap it prepares for or borders."""
        s = self.snapshot
        topics = s.topics_of(course)
        for gap in gaps.gaps:
            target = s.topic_pos[gap.topic_id]
            for t in topics:
                name = s.topic_props[t].get("name", "")
                if s.prereq_of[target, t]:
                    return f"『{name}』是缺口主题『{gap.topic_name}』的先修主题，宜先学：{gap.reason}", gap
                if self._up_strict[target, t]:
                    return f"『{name}』是缺口主题『{gap.topic_name}』的上位主题，可为其打基础：{gap.reason}", gap
                if s.related[target, t]:
                    return f"『{name}』与缺口主题『{gap.topic_name}』相关：{gap.reason}", gap
        return "", None

    def _required_reason(self, flow: np.ndarray, gaps: GapReport, side: str | None) -> str:
        items = [i for i in gaps.topics if side is None or i.requirement.side == side] or list(gaps.topics)
        for item in items:
            if flow[self.snapshot.topic_pos[item.topic_id]]:
                req = item.requirement
                return f"{req.side_label}：{req.demand_phrase()}，{item.standing}，可继续巩固（规划 {req.section}）"
        return ""

    def _suggestions(self, chosen: list[tuple[int, tuple[int, ...], str | None]], scored: _Scored, gaps: GapReport,
                     intent_text: str | None, choice: _IntentChoice | None, fallback: np.ndarray) -> tuple[Suggestion, ...]:
        """Each chosen course with its reason: the largest gap it fills on the side it serves (else on the other),
        else how it relates to one."""
        if not chosen:
            return ()
        s = self.snapshot
        courses = np.array([course for course, _, _ in chosen], dtype=np.int64)
        flows = s.course_flows(courses)
        none = len(gaps.gaps)
        order = np.full(s.n_topics, none, dtype=np.int64)  # gaps are sorted largest first
        for rank, gap in enumerate(gaps.gaps):
            order[s.topic_pos[gap.topic_id]] = rank
        out = []
        for rank, ((course, after, side), flow) in enumerate(zip(chosen, flows), start=1):
            ranks = order[flow]
            ranks = ranks[ranks < none]
            own = [r for r in ranks if gaps.gaps[r].requirement.side == side]
            best = min(own) if own else min(ranks) if len(ranks) else None
            gap = gaps.gaps[best] if best is not None else None
            out.append(self._suggestion(rank, course, after, side, gap, flow, scored, gaps, intent_text, choice,
                                        bool(fallback[course])))
        return tuple(out)

    def _suggestion(self, rank: int, course: int, after: tuple[int, ...], side: str | None, gap: Gap | None,
                    flow: np.ndarray, scored: _Scored, gaps: GapReport, intent_text: str | None,
                    choice: _IntentChoice | None, fallback: bool) -> Suggestion:
        s, c = self.snapshot, self.config
        if gap is not None:
            reason = f"{gap.requirement.side_label}：{gap.reason}"
            side = gap.requirement.side
        else:
            reason, gap = self._graph_reason(course, gaps)
            if gap is not None:
                reason = f"{gap.requirement.side_label}：{reason}"
            reason = reason or self._required_reason(flow, gaps, side)
        details: list[str] = []
        matches = choice is not None and course in choice.cosine and course in choice.lead
        if matches and choice.matched:
            reason = f"符合你的学习意向「{intent_text}」，且属于你要求学习的主题；{reason}"
        elif matches:
            reason = f"与你的学习意向「{intent_text}」最接近（不在你要求学习的主题之内）" + (f"；{reason}" if reason else "")
        elif choice is not None and course in choice.cosine:
            details.append(f"与你的学习意向「{intent_text}」相近")
        if not reason:
            reason = "评分较高、内容较新的已发布课程，可拓宽知识面"
        formats = [label for lacking, flag, label in ((scored.lacks_case, s.course_case[course], "案例式教学"),
                                                       (scored.lacks_interactive, s.course_interactive[course], "互动式教学"))
                   if lacking and flag]
        if formats:
            details.append(f"{'、'.join(formats)}：你近 {c.format_window_years:g} 年尚未参加此类形式的学习")
        if after:
            names = "、".join(f"『{s.course_name[a]}』" for a in after)
            details.append(f"请先学习本清单中的 {names}（先修主题）")
        own = self._audience_names(course, scored.audience_mask) if scored.audience_mask else []
        if own:
            details.append(f"课程面向{'、'.join(own)}，与你的身份相符")
        if fallback:
            details.append(f"课程主要面向{'、'.join(self._audience_names(course))}；面向你的课程不足，暂列于此")
        if scored.choices is not None and (marked := scored.choices.detail(s.course_ids[course])):
            details.append(marked)
        if suggested := s.courses[s.course_ids[course]].suggested_topics:
            details.append(f"主题『{'、'.join(s.topic_name(t) for t in suggested)}』为导入时系统建议，尚待课程设计者确认")
        signature = scored.signature[course]
        parts = {"gap": float(scored.gap[signature]), "graph": float(scored.graph[signature]), "format": float(bool(formats)),
                 "audience": float(bool(own)), "freshness": float(scored.freshness[course]),
                 "quality": float(s.course_quality[course]), "popularity": float(s.course_popularity[course])}
        if scored.semantic is not None:
            parts["semantic"] = float(scored.semantic[course])
        if scored.role is not None:
            parts["role"] = float(scored.role[course])
        return Suggestion(
            rank=rank,
            item_id=s.course_ids[course],
            kind="Course",
            kind_label=self._labels.get("Course", "课程"),
            name=s.course_name[course],
            score=round(float(scored.total[course]), 4),
            topics=tuple(s.topic_props[t].get("name", "") for t in s.topics_of(course)),
            reason=reason,
            details=tuple(details),
            hours=float(s.course_hours[course]),
            delivery_mode=s.course_delivery[course],
            course_type=s.course_type[course],
            gap_topic=gap.topic_id if gap else None,
            section=gap.section if gap else None,
            after=tuple(s.course_ids[a] for a in after),
            side=side,
            intent_match=bool(matches and choice.matched),
            parts=parts,
        )

    def _materials(self, gaps: GapReport, offset: int, hidden: frozenset[str] = frozenset()) -> tuple[Suggestion, ...]:
        """For the largest gaps: the best textbook, and the best case or on-site teaching site, on the topic
        (none the cadre kept or dismissed: ``hidden``)."""
        s = self.snapshot
        out: list[Suggestion] = []
        for gap in gaps.gaps[: self.config.material_gaps]:
            under = s.narrower_closure(gap.topic_id)
            found: list[Material] = []
            for topic in sorted(under, key=lambda t: (t != gap.topic_id, t)):
                found.extend(m for m in s.materials_by_topic.get(s.topic_pos[topic], []) if m.id not in hidden)
            picked: list[Material] = []
            textbook = next((m for m in found if m.kind == "Textbook"), None)
            example = next((m for m in found if m.kind in ("CaseStudy", "DemonstrationSite")), None)
            picked.extend(m for m in (textbook, example) if m is not None)
            for material in picked:
                if any(o.item_id == material.id for o in out):
                    continue
                label = self._labels.get(material.kind, material.kind)
                out.append(Suggestion(
                    rank=offset + len(out) + 1, item_id=material.id, kind=material.kind, kind_label=label,
                    name=material.name, score=round(gap.weight, 4),
                    topics=tuple(s.topic_name(t) for t in material.topics),
                    reason=f"{gap.requirement.side_label}：{gap.reason}；推荐配套{label}",
                    details=(material.detail,) if material.detail else (),
                    gap_topic=gap.topic_id, section=gap.section, side=gap.requirement.side,
                ))
        return tuple(out)
