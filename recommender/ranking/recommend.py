"""The ranker: courses (and textbooks, cases, sites) that fill a cadre's largest gaps first.

A course's score adds weighted, [0, 1]-scaled parts:

* **gap** — the largest gap weight among the topics its hours count for (its topics and everything above
  them), plus a share of the others, so a course touching two gaps beats one touching one;
* **graph** — weaker links through the topic graph: a broader or ``related`` topic of a gap, a
  prerequisite of a gap topic not yet covered, or any required topic (to keep learning on the role);
* **semantic** — closeness to the cadre's free-text intent, when one is given;
* **quality** (rating shrunk to the mean, completion, expert score), **popularity** and **freshness**;
* **format** — a case or interactive course when the cadre has none recently; **audience** — the
  course names the cadre's category or one of their target groups.

Selection is greedy with MMR (Carbonell & Goldstein, 1998): each step takes the candidate with the best
``λ·score − (1 − λ)·similarity to what is already chosen``, where the gap part is recomputed against the
gaps the chosen courses leave (their hours subtracted), and similarity is the overlap of covered topics.
Rules that are never traded off: published courses only; nothing the cadre completed (or its newer
version); and a course whose topic has an uncovered prerequisite topic only after a course on that
prerequisite in the same list.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from recommender.errors import InvalidRequest
from recommender.learner.gaps import Gap, GapReport, decay
from recommender.labelled import Labelled
from recommender.learner.profile import CadreProfile
from recommender.catalogue.snapshot import CatalogueSnapshot, Material

__all__ = ["RankConfig", "Ranker", "Recommendations", "Suggestion", "completed_courses"]

_DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class RankConfig:
    """Weights and limits of the ranker (defaults chosen on a validation split, see ``evaluate``)."""

    gap: float = 1.0
    graph: float = 0.35
    semantic: float = 0.6
    quality: float = 0.15
    popularity: float = 0.6
    freshness: float = 0.1
    format: float = 0.1
    audience: float = 0.1
    multi_gap: float = 0.3  # share of the second and further gaps a course touches
    broader_link: float = 0.5
    related_link: float = 0.4
    prerequisite_link: float = 0.6
    required_link: float = 0.3
    mmr_lambda: float = 0.75
    candidates: int = 200
    freshness_half_life_years: float = 3.0
    format_window_years: float = 3.0
    prerequisite_hours: float = 2.0  # coverage at which a non-required prerequisite topic counts as studied
    material_gaps: int = 3  # gaps that get a textbook and a case or site alongside the courses

    def __post_init__(self) -> None:
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise InvalidRequest(f"mmr_lambda（多样性权衡系数）应在 0 到 1 之间，实际为 {self.mmr_lambda}")
        if self.candidates < 1:
            raise InvalidRequest(f"candidates（候选课程数）应为正整数，实际为 {self.candidates}")


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
    parts: dict[str, float] = field(default_factory=dict)

    LABELS: ClassVar[dict[str, str]] = {
        "rank": "序号", "item_id": "编号", "kind_label": "类型", "name": "名称", "topics": "主题", "hours": "学时",
        "delivery_mode": "授课方式", "course_type": "课程类型", "reason": "推荐理由", "details": "补充说明",
        "section": "规划条目", "after": "先修安排", "score": "得分", "parts": "得分构成",
    }


@dataclass(frozen=True)
class Recommendations(Labelled):
    cadre_id: str
    today: dt.date
    intent: str | None
    cold_start: bool
    items: tuple[Suggestion, ...]
    materials: tuple[Suggestion, ...]
    gaps: tuple[Gap, ...]

    LABELS: ClassVar[dict[str, str]] = {
        "cadre_id": "干部编号", "today": "统计日期", "intent": "学习意向", "cold_start": "尚无学习记录",
        "items": "推荐课程", "materials": "配套资源", "gaps": "主要缺口",
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
    lacks_case: bool
    lacks_interactive: bool
    prereq_threshold: np.ndarray
    intent: np.ndarray | None


class Ranker:
    """Scores and selects items for one cadre at a time over one snapshot; holds only per-snapshot arrays.

    Courses that cover the same set of topics share their topic parts, so those are computed once per
    *signature* (distinct topic set: a few thousand even for 100k courses) and gathered to courses in one
    pass.  The candidate pool is found exactly without sorting the catalogue: the ``candidates``-th best
    total among each signature's best-based course bounds the pool's threshold from below.  Everything per
    item — MMR, prerequisites, reasons — runs on the pool.
    """

    #: Courses per topic scanned, best static score first, when looking for prerequisite courses.
    _PREREQ_SCAN = 64

    def __init__(self, snapshot: CatalogueSnapshot, config: RankConfig | None = None) -> None:
        self.snapshot = snapshot
        self.config = config or RankConfig()
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
        self._under_sorted = [under[np.argsort(-self._static[under], kind="stable")] for under in s.courses_under]
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
        if key not in self._base_cache:
            modified = self.snapshot.course_modified
            age = np.where(modified > 0, key - modified, 10 * _DAYS_PER_YEAR)
            fresh = decay(age, self.config.freshness_half_life_years).astype(np.float32)
            base = self._static + np.float32(self.config.freshness) * fresh
            ranked = np.where(self.snapshot.course_published, base, -np.inf)
            order = np.lexsort((-ranked, self._signature_of))
            grouped = self._signature_of[order]
            first = np.ones(len(order), dtype=bool)
            first[1:] = grouped[1:] != grouped[:-1]
            self._base_cache = {key: (fresh, base, order[first])}
        return self._base_cache[key]

    def _lacks(self, profile: CadreProfile, today: dt.date, done: set[int]) -> tuple[bool, bool]:
        """Whether the cadre has no case / no interactive course in the last ``format_window_years``."""
        since = today - dt.timedelta(days=round(self.config.format_window_years * _DAYS_PER_YEAR))
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
        prereq_threshold = np.where(gaps.thresholds > 0, gaps.thresholds, c.prerequisite_hours)
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

    def _is_for(self, course: int, mask: int) -> bool:
        """Whether one course names one of the cadre's roles (``mask`` from :meth:`_audience_mask`)."""
        if not mask:
            return False
        if self._audience_bits is not None:
            return bool(int(self._audience_bits[course]) & mask)
        row = self.snapshot.course_audience.getrow(course).indices
        return any((mask >> int(i)) & 1 for i in row)

    def _score(self, profile: CadreProfile, gaps: GapReport, today: dt.date, intent: np.ndarray | None) -> tuple[_Scored, set[int]]:
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
        if mask:
            np.add(total, np.float32(c.audience), out=total, where=self._audience(mask))
        if intent is not None:
            total += np.float32(c.semantic) * intent
        total[self._unpublished] = -np.inf
        if done:
            total[np.fromiter(done, dtype=np.int64)] = -np.inf
        scored = _Scored(total, gap, graph, self._signature_of, fresh, mask, lacks_case, lacks_interactive,
                         prereq_threshold, intent)
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

    def score(self, profile: CadreProfile, gaps: GapReport, today: dt.date,
              intent: np.ndarray | None = None) -> np.ndarray:
        """Score of every course for this cadre; −inf where it may not be suggested (unpublished, completed)."""
        return self._score(profile, gaps, today, intent)[0].total

    # ── selection ──
    def rank(self, profile: CadreProfile, gaps: GapReport, today: dt.date, k: int = 10,
             intent: np.ndarray | None = None, intent_text: str | None = None, with_materials: bool = True,
             allowed: np.ndarray | None = None) -> Recommendations:
        """The top ``k`` courses by MMR under the prerequisite rule, each with its reason; and materials.

        ``allowed`` (bool per course) narrows the choice further, e.g. to online courses for a path.
        """
        if not 1 <= k <= 200:
            raise InvalidRequest(f"k（推荐条数）应在 1 到 200 之间，实际为 {k}")
        c = self.config
        scored, _ = self._score(profile, gaps, today, intent)
        total = scored.total
        if allowed is not None:
            total[~allowed] = -np.inf
        pool = self._pool(total, today)
        uncovered = gaps.coverage < scored.prereq_threshold
        flows = self.snapshot.course_flows(pool)
        needs = self._needs(pool, flows, uncovered)
        extra = self._prerequisite_courses(pool, needs, total)
        if len(extra):
            extra_flows = self.snapshot.course_flows(extra)
            pool = np.concatenate([pool, extra])
            flows = np.vstack([flows, extra_flows])
            needs = np.vstack([needs, self._needs(extra, extra_flows, uncovered)])
        chosen = self._select(pool, flows, needs, total, scored.gap[scored.signature[pool]], gaps, k)
        items = self._suggestions(chosen, scored, gaps, intent_text)
        materials = self._materials(gaps, len(items)) if with_materials else ()
        return Recommendations(profile.cadre_id, today, intent_text, profile.cold_start, items, materials,
                               gaps.gaps[: max(3, c.material_gaps)])

    def _needs(self, pool: np.ndarray, flows: np.ndarray, uncovered: np.ndarray) -> np.ndarray:
        """(P, T) bool: prerequisite topics of each pooled course that are uncovered and not taught by it
        (``flows``: the pooled courses' :meth:`~CatalogueSnapshot.course_flows`)."""
        direct = self._prereq_padded[self._topics[pool]].any(axis=1)
        return direct & uncovered[None, :] & ~flows

    def _prerequisite_courses(self, pool: np.ndarray, needs: np.ndarray, total: np.ndarray) -> np.ndarray:
        """The three best-scored available courses for every prerequisite topic a pooled course waits on,
        found among the topic's courses with the best static scores."""
        extra: set[int] = set()
        for topic in np.flatnonzero(needs.any(axis=0)):
            ranked = self._under_sorted[topic]
            head = ranked[: self._PREREQ_SCAN]
            head = head[np.isfinite(total[head])]
            if len(head) < 3 and len(ranked) > self._PREREQ_SCAN:
                head = ranked[np.isfinite(total[ranked])]
            if len(head) > 3:
                head = head[np.argpartition(-total[head], 3)[:3]]
            extra.update(head.tolist())
        extra.difference_update(pool.tolist())
        return np.fromiter(sorted(extra), dtype=np.int64, count=len(extra))

    def _select(self, pool: np.ndarray, flows: np.ndarray, needs: np.ndarray, total: np.ndarray, pool_gap: np.ndarray,
                gaps: GapReport, k: int) -> list[tuple[int, tuple[int, ...]]]:
        """Greedy MMR over the pool with residual gaps; returns (course, earlier courses it must follow).

        Only the gap topics enter the residual arithmetic, and a course's unmet prerequisites are counted
        down as chosen courses teach them, so a step is a few array operations over the pool.
        """
        s, c = self.snapshot, self.config
        pool = np.asarray(pool, dtype=np.int64)
        if not len(pool):
            return []
        gap_topics = np.flatnonzero(gaps.gap_weights > 0)
        gap_flows = flows[:, gap_topics].astype(np.float64)  # (P, G)
        shortfall = np.maximum(gaps.thresholds[gap_topics] - gaps.coverage[gap_topics], 0.0)
        scale = gaps.requirement_weights[gap_topics] / gaps.thresholds[gap_topics]
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
        chosen: list[tuple[int, tuple[int, ...]]] = []
        teacher_of = np.full(s.n_topics, -1, dtype=np.int64)
        while len(chosen) < k:
            eligible = available & (unmet == 0)
            if not eligible.any():
                break
            mmr = static - (1.0 - c.mmr_lambda) * max_sim
            if len(gap_topics):
                fill = gap_flows * (scale * shortfall)
                best = fill.max(axis=1)
                mmr += gain * (best + c.multi_gap * (fill.sum(axis=1) - best))
            mmr[~eligible] = -np.inf
            i = int(np.argmax(mmr))
            after = tuple(sorted({int(teacher_of[p]) for p in np.flatnonzero(needs[i])}))
            chosen.append((int(pool[i]), after))
            available[i] = False
            newly = flows[i] & ~taught
            teacher_of[newly] = pool[i]
            taught |= newly
            unmet -= needs[:, newly].sum(axis=1)
            shortfall = np.maximum(shortfall - hours[i] * gap_flows[i], 0.0)
            shared = members @ members[i]  # one row at a time: a full P × P product is slower here
            np.maximum(max_sim, shared / np.maximum(sizes + sizes[i] - shared, 1.0), out=max_sim)
        return chosen

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

    def _required_reason(self, flow: np.ndarray, gaps: GapReport) -> str:
        for item in gaps.topics:
            if flow[self.snapshot.topic_pos[item.topic_id]]:
                req = item.requirement
                return f"{req.demand_phrase()}，目前有效学时 {item.coverage:.3g}，可继续巩固（规划 {req.section}）"
        return ""

    def _suggestions(self, chosen: list[tuple[int, tuple[int, ...]]], scored: _Scored, gaps: GapReport,
                     intent_text: str | None) -> tuple[Suggestion, ...]:
        """Each chosen course with its reason: the largest gap it fills, else how it relates to one."""
        if not chosen:
            return ()
        s = self.snapshot
        courses = np.array([course for course, _ in chosen], dtype=np.int64)
        flows = s.course_flows(courses)
        order = np.full(s.n_topics, len(gaps.gaps), dtype=np.int64)  # gaps are sorted largest first
        for rank, gap in enumerate(gaps.gaps):
            order[s.topic_pos[gap.topic_id]] = rank
        filled = np.where(flows, order[None, :], len(gaps.gaps)).min(axis=1)
        return tuple(
            self._suggestion(rank, course, after, gaps.gaps[filled[rank - 1]] if filled[rank - 1] < len(gaps.gaps) else None,
                             flows[rank - 1], scored, gaps, intent_text)
            for rank, (course, after) in enumerate(chosen, start=1)
        )

    def _suggestion(self, rank: int, course: int, after: tuple[int, ...], gap: Gap | None, flow: np.ndarray,
                    scored: _Scored, gaps: GapReport, intent_text: str | None) -> Suggestion:
        s, c = self.snapshot, self.config
        if gap is not None:
            reason = gap.reason
        else:
            reason, gap = self._graph_reason(course, gaps)
            reason = reason or self._required_reason(flow, gaps)
        details: list[str] = []
        semantic = float(scored.intent[course]) if scored.intent is not None else None
        if intent_text and semantic is not None and semantic >= 0.5:
            details.append(f"与你的学习意向「{intent_text}」相近")
        if not reason:
            reason = details.pop(0) if details else "评分较高、内容较新的已发布课程，可拓宽知识面"
        formats = [label for lacking, flag, label in ((scored.lacks_case, s.course_case[course], "案例式教学"),
                                                       (scored.lacks_interactive, s.course_interactive[course], "互动式教学"))
                   if lacking and flag]
        if formats:
            details.append(f"{'、'.join(formats)}：你近 {c.format_window_years:g} 年尚未参加此类形式的学习")
        if after:
            names = "、".join(f"『{s.course_name[a]}』" for a in after)
            details.append(f"请先学习本清单中的 {names}（先修主题）")
        audience = self._is_for(course, scored.audience_mask)
        if audience:
            details.append("课程面向你所属的干部类别或培训对象")
        signature = scored.signature[course]
        parts = {"gap": float(scored.gap[signature]), "graph": float(scored.graph[signature]), "format": float(bool(formats)),
                 "audience": float(audience), "freshness": float(scored.freshness[course]),
                 "quality": float(s.course_quality[course]), "popularity": float(s.course_popularity[course])}
        if semantic is not None:
            parts["semantic"] = semantic
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
            parts=parts,
        )

    def _materials(self, gaps: GapReport, offset: int) -> tuple[Suggestion, ...]:
        """For the largest gaps: the best textbook, and the best case or on-site teaching site, on the topic."""
        s = self.snapshot
        out: list[Suggestion] = []
        for gap in gaps.gaps[: self.config.material_gaps]:
            under = s.narrower_closure(gap.topic_id)
            found: list[Material] = []
            for topic in sorted(under, key=lambda t: (t != gap.topic_id, t)):
                found.extend(s.materials_by_topic.get(s.topic_pos[topic], []))
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
                    reason=f"{gap.reason}；推荐配套{label}",
                    details=(material.detail,) if material.detail else (),
                    gap_topic=gap.topic_id, section=gap.section,
                ))
        return tuple(out)
