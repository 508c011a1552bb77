"""The recommender as the web layer and the batch job call it: one object over a snapshot and a store.

``Recommender(snapshot, store, search=None)`` answers, for one cadre at a time, with plain dataclasses
whose ``to_dict()`` has Chinese keys: :meth:`profile`, :meth:`hours`, :meth:`gaps`, :meth:`learning_map`,
:meth:`recommend` and :meth:`learning_path`.  Every method takes ``today`` (default: the clock, or the
date given to the constructor), so reports "as of" a past date — and the offline evaluation — are exact.
The snapshot is shared and read-only; the cadre's records are fetched from the store on each call.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from kg.choices import CadreChoices
from kg.config import Settings
from kg.store import open_store
from kg.store.base import Store
from recommender.errors import InvalidRequest
from recommender.learner.gaps import CoverageConfig, GapReport, TopicCoverage, analyse_gaps
from recommender.learner.hours import HourReport, credit_mode_mask, hour_report
from recommender.labelled import Labelled
from recommender.ranking.path import MIN_STEPS, LearningPath, build_path, hour_targets
from recommender.learner.profile import CadreProfile, Requirement, fetch_profile, role_requirements
from recommender.ranking.recommend import Intent, RankConfig, Ranker, Recommendations
from recommender.ranking.semantic import CourseVectors, SearchVectors
from recommender.catalogue.snapshot import CatalogueSnapshot, load_snapshot

__all__ = ["LearningMap", "MAX_INTENT_CHARS", "Recommender"]

#: Longest free-text intent accepted (the encoder reads ~512 tokens; intents are a sentence or two).
MAX_INTENT_CHARS = 200


@dataclass(frozen=True)
class LearningMap(Labelled):
    """Required topics with their coverage, grouped by the scheme's top branches — for a chart."""

    cadre_id: str
    today: dt.date
    branches: dict[str, tuple[TopicCoverage, ...]]
    explanation: str = ""

    LABELS: ClassVar[dict[str, str]] = {"cadre_id": "干部编号", "today": "统计日期", "explanation": "覆盖说明",
                                        "branches": "板块"}


class Recommender:
    """Per-cadre answers over a shared catalogue snapshot; ``choices``, when given, are the cadres' own study plans
    and feedback (:mod:`kg.choices`), which every profile carries to the ranker.  ``search`` is an open
    :class:`recommender.search.service.SearchService` (or any :class:`~recommender.ranking.semantic.CourseVectors`); without
    one, the persisted search index is opened on first use (:attr:`vectors`).  One recommender serves every
    request thread, so what it builds lazily (the vectors, :meth:`mean_role`) is built once, under a lock."""

    def __init__(
        self,
        snapshot: CatalogueSnapshot,
        store: Store,
        search: Any = None,
        *,
        coverage: CoverageConfig | None = None,
        ranking: RankConfig | None = None,
        today: dt.date | Callable[[], dt.date] | None = None,
        choices: CadreChoices | None = None,
    ) -> None:
        self.snapshot = snapshot
        self.store = store
        self.choices = choices  # the cadres' study plans and feedback, read with each profile
        self.coverage = coverage or CoverageConfig.from_rules(snapshot.ontology.rules)
        self.ranker = Ranker(snapshot, ranking)
        self._today = today
        self._vectors: CourseVectors | None
        if search is None:
            self._vectors = None
        elif hasattr(search, "course_vectors"):
            self._vectors = search
        else:
            self._vectors = SearchVectors(search, snapshot)
        self._mean_role: np.ndarray | None = None
        self._vectors_lock = threading.Lock()
        self._mean_role_lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings | None = None, store: Store | None = None, search: Any = None, **kwargs: Any) -> Recommender:
        """Open the configured store, load its snapshot, and build a recommender over both."""
        settings = settings or Settings.from_env()
        store = store or open_store(settings=settings)
        return cls(load_snapshot(store), store, search, **kwargs)

    # ── inputs ──
    def today(self, today: dt.date | None = None) -> dt.date:
        if today is not None:
            if not isinstance(today, dt.date):
                raise InvalidRequest(f"today（统计日期）应为日期，实际为 {today!r}")
            return today
        if callable(self._today):
            return self._today()
        return self._today or dt.date.today()

    @property
    def vectors(self) -> CourseVectors:
        """Course and query vectors: the search engine's when given, else those of the persisted index (opened once)."""
        if self._vectors is None:
            with self._vectors_lock:
                if self._vectors is None:  # another thread may have opened it while this one waited
                    from recommender.search.service import SearchService

                    search = SearchService.open(self.store, snapshot=self.snapshot, update=False)
                    self._vectors = SearchVectors(search, self.snapshot)
        return self._vectors

    @staticmethod
    def _clean_intent(intent: str | None) -> str | None:
        if intent is None:
            return None
        if not isinstance(intent, str):
            raise InvalidRequest(f"intent（学习意向）应为文本，实际为 {type(intent).__name__}")
        intent = " ".join(intent.split())
        if len(intent) > MAX_INTENT_CHARS:
            raise InvalidRequest(f"intent（学习意向）不能超过 {MAX_INTENT_CHARS} 个字，实际为 {len(intent)} 个字")
        return intent or None

    # ── answers ──
    def profile(self, cadre_id: str, today: dt.date | None = None) -> CadreProfile:
        """Role, merged requirements and the records dated up to ``today``."""
        return fetch_profile(self.store, self.snapshot, cadre_id, until=self.today(today), choices=self.choices)

    def hours(self, cadre_id: str, today: dt.date | None = None) -> HourReport:
        day = self.today(today)
        return self.hours_for(self.profile(cadre_id, day), day)

    def gaps(self, cadre_id: str, today: dt.date | None = None) -> GapReport:
        day = self.today(today)
        return self.gaps_for(self.profile(cadre_id, day), day)

    # The ``*_for`` answers take a profile (and its gap report) already fetched, so a caller showing several
    # answers for one cadre — the web layer's per-request view — reads the cadre once and analyses gaps once.
    def hours_for(self, profile: CadreProfile, day: dt.date) -> HourReport:
        return hour_report(profile, self.snapshot, day)

    def gaps_for(self, profile: CadreProfile, day: dt.date) -> GapReport:
        return analyse_gaps(profile, self.snapshot, day, self.coverage)

    def learning_map(self, cadre_id: str, today: dt.date | None = None) -> LearningMap:
        return self.learning_map_for(self.gaps(cadre_id, today))

    def learning_map_for(self, report: GapReport) -> LearningMap:
        branches: dict[str, list[TopicCoverage]] = {}
        for item in report.topics:
            branches.setdefault(item.branch, []).append(item)
        return LearningMap(report.cadre_id, report.today, {b: tuple(items) for b, items in branches.items()},
                           report.explanation)

    def recommend(self, cadre_id: str, k: int = 10, intent: str | None = None, today: dt.date | None = None) -> Recommendations:
        """Top ``k`` courses with reasons, and textbooks/cases/sites for the largest gaps."""
        if not isinstance(k, int) or isinstance(k, bool):
            raise InvalidRequest(f"k（推荐条数）应为整数，实际为 {k!r}")
        day = self.today(today)
        intent = self._clean_intent(intent)
        profile = self.profile(cadre_id, day)
        return self.recommend_for(profile, self.gaps_for(profile, day), day, k=k, intent=intent)

    def recommend_for(self, profile: CadreProfile, report: GapReport, day: dt.date, k: int = 10,
                      intent: str | None = None) -> Recommendations:
        """:meth:`recommend` for a profile and gap report already at hand."""
        return self.ranker.rank(profile, report, day, k=k, intent=self.intent(intent), role=self.role(profile))

    #: Job-side topics named in a cadre's role query (the job's own first, essential first): enough to say what
    #: the job is about.
    ROLE_TOPICS = 8

    def role(self, profile: CadreProfile) -> Intent | None:
        """The cadre's job as a query over the search index, for the ranker's role part and its choice among
        near-equals; None when the role weight is 0, the job side is empty or no index is ready.

        The query (:meth:`role_text`) names what the cadre's own job asks.  Its ``fit`` is the cosine with that
        query minus the cosine with the mean query of every position domain (:meth:`mean_role`): closeness to
        this job beyond closeness to jobs in general.  A broad course near every job's query (辩证思维, 中国式
        现代化) would otherwise be "closest" for all of them — the hub effect of embedding spaces, which centring
        removes (Suzuki et al., 2013, "Centering similarity measures to reduce hubs").
        """
        if not self.ranker.config.role:
            return None
        text = self.role_text(profile.domain_name, profile.group_names, profile.requirements)
        if text is None:
            return None
        vectors = self.vectors
        service = getattr(vectors, "service", None)  # SearchVectors: its index may not be built yet
        if service is not None and not getattr(service, "ready", True):
            return None

        def fit(positions: np.ndarray) -> np.ndarray:
            specific = vectors.encode_query(text) - self.mean_role()
            return vectors.course_vectors()[positions] @ specific

        return Intent(text, lambda allowed, k: vectors.nearest(text, allowed, k), fit)

    def role_text(self, domain_name: str | None, group_names: Iterable[str], requirements: Iterable[Requirement]) -> str | None:
        """"金融监管、领导班子成员、防范化解金融风险、金融…": the position domain, the target groups, then the job-side
        topics they ask (the category's only when they ask none) — what sets a cadre apart from colleagues of the
        same rank, who share the category's topics.  None when the job side asks nothing."""
        job = [r for r in requirements if r.side == "job"]
        own = [r for r in job if {"domains", "groups"} & set(r.sources)] or job
        topics = [r.topic_name for r in sorted(own, key=lambda r: (r.source != "domains", r.level != "essential"))]
        if not topics:
            return None
        return "、".join(([domain_name] if domain_name else []) + list(group_names) + topics[: self.ROLE_TOPICS])

    def mean_role(self) -> np.ndarray:
        """The mean query vector of every position domain that ``requirements.yaml`` lists (its role text with no
        groups), encoded once per recommender: the "job in general" that :meth:`role`'s fit is measured beyond."""
        if self._mean_role is None:
            with self._mean_role_lock:
                if self._mean_role is None:  # another thread may have encoded it while this one waited
                    self._mean_role = self._encode_mean_role()
        return self._mean_role

    def _encode_mean_role(self) -> np.ndarray:
        vectors = self.vectors
        queries = []
        for domain in sorted((self.snapshot.ontology.requirements.get("domains") or {})):
            text = self.role_text(self.snapshot.names.get(domain), (), role_requirements(self.snapshot, None, (), domain))
            if text is not None:
                queries.append(vectors.encode_query(text))
        return np.mean(queries, axis=0) if queries else np.zeros(vectors.course_vectors().shape[1])

    def warm(self) -> None:
        """Load what the first recommendation would otherwise wait for: the course vectors and :meth:`mean_role`."""
        self.vectors.course_vectors()
        if self.ranker.config.role:
            self.mean_role()

    def intent(self, text: str | None) -> Intent | None:
        """The cleaned intent with its nearest-course lookup over the search index's vectors, or None."""
        text = self._clean_intent(text)
        if text is None:
            return None
        vectors = self.vectors
        return Intent(text, lambda allowed, k: vectors.nearest(text, allowed, k))

    def learning_path(self, cadre_id: str, today: dt.date | None = None, intent: str | None = None) -> LearningPath:
        """Courses in order that reach this year's remaining hours (see :mod:`recommender.ranking.path`)."""
        day = self.today(today)
        intent = self._clean_intent(intent)
        profile = self.profile(cadre_id, day)
        return self.learning_path_for(profile, self.gaps_for(profile, day), self.hours_for(profile, day), day, intent)

    def learning_path_for(self, profile: CadreProfile, report: GapReport, hours: HourReport, day: dt.date,
                          intent: str | None = None) -> LearningPath:
        """:meth:`learning_path` for a profile, gap report and hour report already at hand."""
        query = self.intent(intent)
        targets = hour_targets(hours)
        masks = [credit_mode_mask(self.snapshot, mode) for mode in targets] or [None]
        max_steps = self.ranker.config.path_max_steps
        asked = max_steps if targets else MIN_STEPS
        role = self.role(profile)
        ranked = [self.ranker.rank(profile, report, day, k=asked, intent=query, with_materials=False, allowed=mask,
                                   role=role).items
                  for mask in masks]
        return build_path(ranked, hours, self.snapshot, profile, max_steps, asked)
