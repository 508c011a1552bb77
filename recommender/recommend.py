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
from recommender.gaps import Gap, GapReport, decay
from recommender.labelled import Labelled
from recommender.profile import CadreProfile
from recommender.snapshot import CatalogueSnapshot, Material

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


class Ranker:
    """Scores and selects items for one cadre at a time over one snapshot; holds only per-snapshot arrays."""

    def __init__(self, snapshot: CatalogueSnapshot, config: RankConfig | None = None) -> None:
        self.snapshot = snapshot
        self.config = config or RankConfig()
        s, c = snapshot, self.config
        t = s.n_topics
        self._topics = np.where(s.course_topics >= 0, s.course_topics, t)  # -1 → a padding slot scoring 0
        self._topic_columns = np.ascontiguousarray(self._topics.T)  # (K, n): whole-catalogue passes run along rows
        self._up_strict = s.up & ~np.eye(t, dtype=bool)
        self._prereq_padded = np.vstack([s.prereq_of, np.zeros((1, t), dtype=bool)])
        self._static = (c.quality * s.course_quality + c.popularity * s.course_popularity).astype(np.float32)
        self._case = s.course_case.astype(np.float32)
        self._interactive = s.course_interactive.astype(np.float32)
        self._fresh_cache: dict[int, np.ndarray] = {}
        self._labels = {name: spec.label for name, spec in s.ontology.classes.items()}

    # ── scoring ──
    def _freshness(self, today: dt.date) -> np.ndarray:
        key = today.toordinal()
        if key not in self._fresh_cache:
            modified = self.snapshot.course_modified
            age = np.where(modified > 0, key - modified, 10 * _DAYS_PER_YEAR)
            self._fresh_cache = {key: decay(age, self.config.freshness_half_life_years).astype(np.float32)}
        return self._fresh_cache[key]

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

    def score(self, profile: CadreProfile, gaps: GapReport, today: dt.date,
              intent: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, np.ndarray], set[int]]:
        """Scores of every course (−inf where it may not be suggested), the parts, and the completed set."""
        s, c = self.snapshot, self.config
        fill_t, graph_t, _ = self._topic_parts(gaps)
        fill = np.append(fill_t, 0.0).astype(np.float32)[self._topic_columns]  # (K, n)
        best = fill.max(axis=0)
        gap = best + np.float32(c.multi_gap) * (fill.sum(axis=0) - best)
        graph = np.append(graph_t, 0.0).astype(np.float32)[self._topic_columns].max(axis=0)
        done = completed_courses(profile, s, today)
        lacks_case, lacks_interactive = self._lacks(profile, today, done)
        if lacks_case and lacks_interactive:
            fmt = np.maximum(self._case, self._interactive)
        else:
            fmt = self._case if lacks_case else self._interactive if lacks_interactive else np.zeros_like(self._case)
        audience_vec = np.zeros(s.course_audience.shape[1], dtype=np.float32)
        for role in (profile.category_id, *profile.group_ids):
            if role in s.audience_pos:
                audience_vec[s.audience_pos[role]] = 1.0
        audience = (s.course_audience @ audience_vec > 0).astype(np.float32)
        freshness = self._freshness(today)
        parts = {"gap": gap, "graph": graph, "format": fmt, "audience": audience, "freshness": freshness}
        total = c.gap * gap + c.graph * graph + self._static + c.freshness * freshness + c.format * fmt + c.audience * audience
        if intent is not None:
            parts["semantic"] = intent
            total = total + c.semantic * intent
        allowed = s.course_published.copy()
        if done:
            allowed[np.fromiter(done, dtype=np.int64)] = False
        return np.where(allowed, total, -np.inf), parts, done

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
        total, parts, _ = self.score(profile, gaps, today, intent)
        if allowed is not None:
            total = np.where(allowed, total, -np.inf)
        prereq_threshold = self._topic_parts(gaps)[2]
        finite = np.flatnonzero(np.isfinite(total))
        pool = finite if len(finite) <= c.candidates else finite[np.argpartition(-total[finite], c.candidates)[: c.candidates]]
        uncovered = gaps.coverage < prereq_threshold
        pool = self._with_prerequisite_courses(pool, self._needs(pool, uncovered), total)
        chosen = self._select(pool, self._needs(pool, uncovered), total, parts["gap"], gaps, k)
        items = tuple(self._suggestion(i + 1, course, total, parts, gaps, intent_text, after)
                      for i, (course, after) in enumerate(chosen))
        materials = self._materials(gaps, len(items)) if with_materials else ()
        return Recommendations(profile.cadre_id, today, intent_text, profile.cold_start, items, materials,
                               gaps.gaps[: max(3, c.material_gaps)])

    def _flows(self, pool: np.ndarray) -> np.ndarray:
        """(P, T) bool: the topics each pooled course's hours count for."""
        return self.snapshot.course_flows(pool)

    def _needs(self, pool: np.ndarray, uncovered: np.ndarray) -> np.ndarray:
        """(P, T) bool: prerequisite topics of each pooled course that are uncovered and not taught by it."""
        direct = self._prereq_padded[self._topics[pool]].any(axis=1)
        return direct & uncovered[None, :] & ~self._flows(pool)

    def _with_prerequisite_courses(self, pool: np.ndarray, needs: np.ndarray, total: np.ndarray) -> np.ndarray:
        """Add the best three courses for every prerequisite topic a pooled course waits on."""
        extra: set[int] = set()
        for topic in np.flatnonzero(needs.any(axis=0)):
            under = self.snapshot.courses_under[topic]
            under = under[np.isfinite(total[under])]
            if len(under) > 3:
                under = under[np.argpartition(-total[under], 3)[:3]]
            extra.update(under.tolist())
        return np.union1d(pool, np.fromiter(extra, dtype=np.int64)) if extra else pool

    def _select(self, pool: np.ndarray, needs: np.ndarray, total: np.ndarray, gap_part: np.ndarray,
                gaps: GapReport, k: int) -> list[tuple[int, tuple[int, ...]]]:
        """Greedy MMR over the pool with residual gaps; returns (course, earlier courses it must follow)."""
        s, c = self.snapshot, self.config
        pool = np.asarray(pool, dtype=np.int64)
        if not len(pool):
            return []
        flows = self._flows(pool)
        members = np.zeros((len(pool), s.n_topics + 1), dtype=bool)  # covered topics, for Jaccard similarity
        np.put_along_axis(members, self._topics[pool], True, axis=1)
        members = members[:, :-1].astype(np.float32)
        sizes = np.maximum(members.sum(axis=1), 1.0)
        base = total[pool] - c.gap * gap_part[pool]
        hours = s.course_hours[pool].astype(np.float64)
        shortfall = np.where(gaps.gap_weights > 0, np.maximum(gaps.thresholds - gaps.coverage, 0.0), 0.0)
        thresholds = np.where(gaps.thresholds > 0, gaps.thresholds, 1.0)
        taught = np.zeros(s.n_topics, dtype=bool)
        max_sim = np.zeros(len(pool))
        available = np.ones(len(pool), dtype=bool)
        chosen: list[tuple[int, tuple[int, ...]]] = []
        teacher_of = np.full(s.n_topics, -1, dtype=np.int64)
        while len(chosen) < k:
            eligible = available & ~(needs & ~taught[None, :]).any(axis=1)
            if not eligible.any():
                break
            fill = flows * (gaps.requirement_weights * shortfall / thresholds)[None, :]
            best = fill.max(axis=1)
            gap_now = best + c.multi_gap * (fill.sum(axis=1) - best)
            mmr = c.mmr_lambda * (base + c.gap * gap_now) - (1.0 - c.mmr_lambda) * max_sim
            i = int(np.flatnonzero(eligible)[np.argmax(mmr[eligible])])
            after = tuple(sorted({int(teacher_of[p]) for p in np.flatnonzero(needs[i])}))
            chosen.append((int(pool[i]), after))
            available[i] = False
            teacher_of = np.where(flows[i] & ~taught, pool[i], teacher_of)
            taught |= flows[i]
            shortfall = np.where(flows[i], np.maximum(shortfall - hours[i], 0.0), shortfall)
            shared = members @ members[i]
            jaccard = shared / (sizes + sizes[i] - shared)
            max_sim = np.maximum(max_sim, jaccard)
        return chosen

    # ── reasons ──
    def _best_gap(self, course: int, gaps: GapReport) -> Gap | None:
        flow = self.snapshot.course_flow(course)
        candidates = [g for g in gaps.gaps if flow[self.snapshot.topic_pos[g.topic_id]]]
        return max(candidates, key=lambda g: (g.weight, g.topic_id)) if candidates else None

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

    def _required_reason(self, course: int, gaps: GapReport) -> str:
        flow = self.snapshot.course_flow(course)
        for item in gaps.topics:
            if flow[self.snapshot.topic_pos[item.topic_id]]:
                req = item.requirement
                return f"{req.demand_phrase()}，目前有效学时 {item.coverage:.3g}，可继续巩固（规划 {req.section}）"
        return ""

    def _suggestion(self, rank: int, course: int, total: np.ndarray, parts: dict[str, np.ndarray], gaps: GapReport,
                    intent_text: str | None, after: tuple[int, ...]) -> Suggestion:
        s, c = self.snapshot, self.config
        gap = self._best_gap(course, gaps)
        if gap is not None:
            reason = gap.reason
        else:
            reason, gap = self._graph_reason(course, gaps)
            reason = reason or self._required_reason(course, gaps)
        details: list[str] = []
        if intent_text and "semantic" in parts and parts["semantic"][course] >= 0.5:
            details.append(f"与你的学习意向「{intent_text}」相近")
        if not reason:
            reason = details.pop(0) if details else "评分较高、内容较新的已发布课程，可拓宽知识面"
        if parts["format"][course] > 0:
            kinds = [label for flag, label in ((s.course_case[course], "案例式教学"), (s.course_interactive[course], "互动式教学"))
                     if flag]
            details.append(f"{'、'.join(kinds)}：你近 {c.format_window_years:g} 年尚未参加此类形式的学习")
        if after:
            names = "、".join(f"『{s.course_name[a]}』" for a in after)
            details.append(f"请先学习本清单中的 {names}（先修主题）")
        if parts["audience"][course] > 0:
            details.append("课程面向你所属的干部类别或培训对象")
        topic_names = tuple(s.topic_props[t].get("name", "") for t in s.topics_of(course))
        part_values = {name: round(float(values[course]), 3) for name, values in parts.items()}
        part_values["quality"] = round(float(s.course_quality[course]), 3)
        part_values["popularity"] = round(float(s.course_popularity[course]), 3)
        return Suggestion(
            rank=rank,
            item_id=s.course_ids[course],
            kind="Course",
            kind_label=self._labels.get("Course", "课程"),
            name=s.course_name[course],
            score=round(float(total[course]), 4),
            topics=topic_names,
            reason=reason,
            details=tuple(details),
            hours=float(s.course_hours[course]),
            delivery_mode=s.course_delivery[course],
            course_type=s.course_type[course],
            gap_topic=gap.topic_id if gap else None,
            section=gap.section if gap else None,
            after=tuple(s.course_ids[a] for a in after),
            parts=part_values,
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
