"""The catalogue snapshot: the one read model of everything that is not personal, loaded once per graph version.

Why a snapshot: the catalogue (courses, materials, the topic scheme) is small and read on every request,
while cadres and their records grow with the population.  So the catalogue is read from the store once —
:func:`load_snapshot`, by one loader, :func:`recommender.catalogue.rows.read_rows` — into frozen row views
(for reports that read items by field) and compact arrays built from those rows (for scoring that is array
arithmetic), with one :class:`~recommender.catalogue.topics.TopicTree` and one
:class:`~recommender.catalogue.vocabulary.Vocabulary`.  Ranking, gaps, hours, analytics and search take it as
a parameter and keep no private copy; only a cadre's own records are fetched per request
(:mod:`recommender.learner.profile`).  Its catalogue is immutable (frozen, read-only arrays): after an import,
load a new one — ``version`` is the store's version stamp it was read at, so a process can tell when to.  What
it caches is derived from that catalogue alone, so it never goes stale: ``published_courses`` (computed once)
and ``requirement_cache``, the merged requirements per role, which threads share and fill under
``requirement_lock``.

Tests and benchmarks build small catalogues with :meth:`CatalogueSnapshot.from_rows` (rows by hand) or
:meth:`CatalogueSnapshot.from_graph` (nodes and edges); both go through the same assembly as the store.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import networkx as nx
import numpy as np
from scipy import sparse

from kg.model import Edge, Node
from kg.ontology import Ontology, load_ontology
from kg.store.base import Store
from recommender.catalogue.rows import (
    CaseStudy,
    Course,
    DemonstrationSite,
    Institution,
    Platform,
    Textbook,
    Topic,
    TrainingClass,
    parse_date,
    props_of,
    read_rows,
)
from recommender.catalogue.topics import TopicTree
from recommender.catalogue.vocabulary import Vocabulary
from recommender.errors import VocabularyMismatch

__all__ = ["CatalogueSnapshot", "Material", "Vocabulary", "load_snapshot", "parse_date"]

_CONCEPT_LABELS = ("CadreCategory", "TargetGroup", "PositionDomain")


@dataclass(frozen=True)
class Material:
    """A textbook, case or on-site teaching site that can accompany courses on a topic."""

    id: str
    kind: str
    name: str
    topics: tuple[str, ...]
    quality: float
    detail: str = ""


@dataclass(frozen=True, eq=False)
class CatalogueSnapshot:
    """Immutable in-memory catalogue.  Course arrays are indexed by course position (``course_pos``).

    Courses of every status are held (records may name a retired course); ``course_published`` marks the
    ones that may be suggested.  Topic arrays are indexed by topic position (``topic_pos``) and belong to
    ``tree``.  Row views (``courses``, ``textbooks`` …) are keyed by id, in the store's order.
    """

    ontology: Ontology
    vocab: Vocabulary
    tree: TopicTree
    # ── row views ──
    courses: dict[str, Course]
    textbooks: dict[str, Textbook]
    cases: dict[str, CaseStudy]
    sites: dict[str, DemonstrationSite]
    institutions: dict[str, Institution]
    platforms: dict[str, Platform]
    classes: dict[str, TrainingClass]
    categories: dict[str, dict[str, Any]]
    groups: dict[str, dict[str, Any]]
    domains: dict[str, dict[str, Any]]
    # ── topics ──
    topic_props: list[dict[str, Any]]
    up_padded: np.ndarray  # (T + 1, T): ``up`` and a zero row for the padding slot of ``course_topics``
    # ── courses ──
    course_ids: list[str]
    course_pos: dict[str, int]
    course_name: list[str]
    course_hours: np.ndarray
    course_online: np.ndarray
    course_case: np.ndarray
    course_interactive: np.ndarray
    course_published: np.ndarray
    course_modified: np.ndarray  # date ordinal (0 = unknown)
    course_quality: np.ndarray  # [0, 1], rating (shrunk towards the mean), completion and expert score
    course_popularity: np.ndarray  # [0, 1], log enrolments
    course_topics: np.ndarray  # (n, K) topic positions, -1 padded
    course_audience: sparse.csr_matrix  # (n, A) categories then groups the course is meant for
    course_platform: list[str | None]
    course_institution: list[str | None]
    course_delivery: list[str]
    course_type: list[str]
    replaced_by: dict[int, int]
    courses_under: list[np.ndarray]  # per topic position: courses that count for it (cover it or a narrower topic)
    audience_pos: dict[str, int]
    materials_by_topic: dict[int, list[Material]]
    #: id → Chinese name of every topic, category, target group and position domain
    names: dict[str, str]
    #: the store's version stamp this snapshot was read at (None when built from rows)
    version: int | None = None
    #: merged requirements per (category, groups, domain): cadres share roles, so merge each role once
    requirement_cache: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False)
    #: held while ``requirement_cache`` is read and filled: request threads share one snapshot
    requirement_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ── construction ──
    @classmethod
    def from_rows(
        cls,
        *,
        topics: Sequence[Topic],
        courses: Iterable[Course] = (),
        textbooks: Iterable[Textbook] = (),
        cases: Iterable[CaseStudy] = (),
        sites: Iterable[DemonstrationSite] = (),
        institutions: Iterable[Institution] = (),
        platforms: Iterable[Platform] = (),
        classes: Iterable[TrainingClass] = (),
        concepts: Iterable[Node] = (),
        ontology: Ontology | None = None,
        version: int | None = None,
    ) -> CatalogueSnapshot:
        """A snapshot of the given rows (``concepts``: cadre category, target group and position-domain nodes)."""
        ontology = ontology or load_ontology()
        vocab = Vocabulary.from_ontology(ontology)
        tree = TopicTree(topics)
        concept_props: dict[str, dict[str, dict[str, Any]]] = {label: {} for label in _CONCEPT_LABELS}
        for node in concepts:
            concept_props[node.label][node.id] = dict(node.props)
        categories, groups, domains = (concept_props[label] for label in _CONCEPT_LABELS)
        course_rows = {c.id: c for c in courses}
        course_list = list(course_rows.values())
        course_pos = {c: i for i, c in enumerate(course_rows)}
        width = max([len(c.topics) for c in course_list] + [1])
        course_topics = np.full((len(course_list), width), -1, dtype=np.int32)
        for i, course in enumerate(course_list):
            known = [tree.pos[t] for t in course.topics if t in tree.pos]
            course_topics[i, : len(known)] = known
        up_padded = np.vstack([tree.up, np.zeros((1, len(tree)), dtype=bool)])
        audience_pos = {a: i for i, a in enumerate(list(categories) + list(groups))}
        pairs = [(i, audience_pos[a]) for i, c in enumerate(course_list)
                 for a in c.audience_category + c.audience_group if a in audience_pos]
        audience = sparse.csr_matrix(
            (np.ones(len(pairs), dtype=np.float32), ([p[0] for p in pairs], [p[1] for p in pairs])),
            shape=(len(course_list), max(len(audience_pos), 1)),
        )
        case_methods, interactive_methods = set(vocab.case_methods), set(vocab.interactive_methods)
        quality, popularity = _quality(course_list, ontology)
        modified = [c.date_modified or c.date_created for c in course_list]
        textbook_rows, case_rows, site_rows = ({r.id: r for r in rows} for rows in (textbooks, cases, sites))
        names = {t: tree.name(t) for t in tree.ids}
        for table in (categories, groups, domains):
            names.update({i: str(p.get("name", i)) for i, p in table.items()})
        return cls(
            ontology=ontology,
            vocab=vocab,
            tree=tree,
            courses=course_rows,
            textbooks=textbook_rows,
            cases=case_rows,
            sites=site_rows,
            institutions={i.id: i for i in institutions},
            platforms={p.id: p for p in platforms},
            classes={k.id: k for k in classes},
            categories=categories,
            groups=groups,
            domains=domains,
            topic_props=[dict(props_of(tree.rows[t], ontology, "Topic")) for t in tree.ids],
            up_padded=_read_only(up_padded),
            course_ids=list(course_rows),
            course_pos=course_pos,
            course_name=[c.name for c in course_list],
            course_hours=_read_only(np.array([c.hours for c in course_list], dtype=np.float32)),
            course_online=_read_only(np.array([c.delivery_mode == vocab.online_delivery for c in course_list], dtype=bool)),
            course_case=_read_only(np.array([c.is_case or bool(case_methods & set(c.teaching_method)) for c in course_list],
                                            dtype=bool)),
            course_interactive=_read_only(np.array([bool(interactive_methods & set(c.teaching_method)) for c in course_list],
                                                   dtype=bool)),
            course_published=_read_only(np.array([c.status == vocab.published for c in course_list], dtype=bool)),
            course_modified=_read_only(np.array([d.toordinal() if d else 0 for d in modified], dtype=np.int32)),
            course_quality=_read_only(quality),
            course_popularity=_read_only(popularity),
            course_topics=_read_only(course_topics),
            course_audience=audience,
            course_platform=[c.platform for c in course_list],
            course_institution=[c.institution for c in course_list],
            course_delivery=[c.delivery_mode for c in course_list],
            course_type=[c.course_type for c in course_list],
            replaced_by={course_pos[c.id]: course_pos[c.replaced_by] for c in course_list if c.replaced_by in course_pos},
            courses_under=_courses_under(course_topics, up_padded),
            audience_pos=audience_pos,
            materials_by_topic=_materials(vocab, tree, ontology, textbook_rows, case_rows, site_rows),
            names=names,
            version=version,
        )

    @classmethod
    def from_graph(cls, nodes: Iterable[Node], edges: Iterable[Edge], ontology: Ontology | None = None,
                   version: int | None = None) -> CatalogueSnapshot:
        """A snapshot of plain nodes and edges (validated corpus files, a benchmark's generated catalogue)."""
        by_label: dict[str, list[Node]] = defaultdict(list)
        for node in nodes:
            by_label[node.label].append(node)
        by_type: dict[str, list[Edge]] = defaultdict(list)
        for edge in edges:
            by_type[edge.type].append(edge)
        return cls._assemble(lambda label: by_label.get(label, []), lambda t: by_type.get(t, []),
                             ontology or load_ontology(), version)

    @classmethod
    def _assemble(cls, nodes: Any, edges: Any, ontology: Ontology, version: int | None) -> CatalogueSnapshot:
        rows = read_rows(nodes, edges, ontology)
        return cls.from_rows(
            topics=rows["Topic"], courses=rows["Course"], textbooks=rows["Textbook"], cases=rows["CaseStudy"],
            sites=rows["DemonstrationSite"], institutions=rows["Institution"], platforms=rows["Platform"],
            classes=rows["TrainingClass"], concepts=[n for label in _CONCEPT_LABELS for n in nodes(label)],
            ontology=ontology, version=version,
        )

    # ── topics (the tree's, under the names ranking and learner code use) ──
    @property
    def topic_ids(self) -> list[str]:
        return self.tree.ids

    @property
    def topic_pos(self) -> dict[str, int]:
        return self.tree.pos

    @property
    def hierarchy(self) -> nx.DiGraph:
        return self.tree.hierarchy

    @property
    def prerequisites(self) -> nx.DiGraph:
        return self.tree.prerequisites

    @property
    def up(self) -> np.ndarray:
        return self.tree.up

    @property
    def related(self) -> np.ndarray:
        return self.tree.related

    @property
    def prereq_of(self) -> np.ndarray:
        return self.tree.prereq_of

    @property
    def topo_rank(self) -> np.ndarray:
        return self.tree.topo_rank

    @property
    def branch(self) -> np.ndarray:
        return self.tree.branch

    @property
    def n_topics(self) -> int:
        return len(self.tree)

    @property
    def n_courses(self) -> int:
        return len(self.course_ids)

    def topic_name(self, topic_id: str) -> str:
        return self.tree.name(topic_id)

    def broader_closure(self, topic_id: str) -> set[str]:
        """The topic and every broader topic above it."""
        return set(self.tree.ancestors(topic_id))

    def narrower_closure(self, topic_id: str) -> set[str]:
        """The topic and every narrower topic below it."""
        return set(self.tree.topics_under(topic_id))

    def institution_name(self, institution_id: str | None) -> str:
        inst = self.institutions.get(institution_id or "")
        return inst.name if inst else (institution_id or "")

    @cached_property
    def published_courses(self) -> list[Course]:
        """Courses that may be taught, suggested or nominated, in the store's order."""
        return [c for c in self.courses.values() if c.status == self.vocab.published]

    # ── courses as arrays ──
    def topics_of(self, course: int) -> list[int]:
        """Topic positions a course covers (the store keeps no order among them: none is "main")."""
        return [int(t) for t in self.course_topics[course] if t >= 0]

    def course_flow(self, course: int) -> np.ndarray:
        """(T,) bool: the topics an hour of this course counts for — each covered topic and all above it.

        A course counts fully for every topic it covers (``COVERS`` is unordered in the ontology, so there is
        no main topic to favour), and once — not once per path — for a broader topic two of them share.
        """
        return self.course_flows(np.array([course]))[0]

    def course_flows(self, courses: np.ndarray) -> np.ndarray:
        """(len(courses), T) bool: :meth:`course_flow` of many courses at once."""
        topics = self.course_topics[np.asarray(courses, dtype=np.int64)]
        return self.up_padded[np.where(topics >= 0, topics, self.n_topics)].any(axis=1)


def load_snapshot(store: Store, ontology: Ontology | None = None) -> CatalogueSnapshot:
    """Read the catalogue from ``store`` into a :class:`CatalogueSnapshot` (seconds for 100k courses).

    The version stamp is read first: a write that lands during the read makes the snapshot look older than
    it is, so the next check reloads it — never the other way round."""
    version = store.version()
    return CatalogueSnapshot._assemble(store.nodes, lambda t: store.edges(type=t), ontology or load_ontology(), version)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _quality(rows: Sequence[Any], ontology: Ontology) -> tuple[np.ndarray, np.ndarray]:
    """Quality and popularity in [0, 1] from rating, completion rate and expert score (``rules.yaml`` ``quality``).

    The rating is a Bayesian average towards the catalogue mean — few votes say little (IMDb's formula) —
    mapped from [``rating_floor``, the shapes' maximum] to [0, 1]; the expert score is divided by its maximum
    in the shapes.  The quality is the weighted mean of the parts an item has data for."""
    try:
        rules = ontology.rules_section("quality")
        weights = rules["weights"]
        floor, prior_votes, prior_mean = (float(rules[k]) for k in ("rating_floor", "rating_prior_votes", "rating_prior_mean"))
        parts = ("rating", "completion", "expert")
        weight = np.array([float(weights[k]) for k in parts])[:, None]
    except (KeyError, TypeError, ValueError) as exc:
        raise VocabularyMismatch(f"rules.yaml 的 quality 配置不完整或类型不对（需要 weights.rating/completion/expert、"
                                 f"rating_floor、rating_prior_votes、rating_prior_mean）：{exc}") from exc

    def column(attr: str) -> np.ndarray:
        return np.array([float(v) if (v := getattr(r, attr, None)) is not None else np.nan for r in rows], dtype=np.float64)

    if not rows:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32)
    course_fields = ontology.classes["Course"].fields
    top_rating = float(course_fields["rating"].max_inclusive or 5)
    top_expert = float(course_fields["expertScore"].max_inclusive or 100)
    rating, count = column("rating"), column("rating_count")
    known = ~np.isnan(rating)
    mean = float(np.nanmean(rating)) if known.any() else prior_mean
    votes = np.where(np.isnan(count), 0.0, count)
    shrunk = (np.where(known, rating, mean) * votes + mean * prior_votes) / (votes + prior_votes)
    stacked = np.vstack([np.clip((shrunk - floor) / (top_rating - floor), 0.0, 1.0), column("completion_rate"),
                         column("expert_score") / top_expert])
    present = weight * ~np.isnan(stacked)
    quality = np.nansum(stacked * present, axis=0) / np.maximum(present.sum(axis=0), 1e-9)
    enrol = np.log1p(np.nan_to_num(column("enrolments"), nan=0.0))
    popularity = enrol / max(float(enrol.max()), 1e-9)
    return quality.astype(np.float32), popularity.astype(np.float32)


def _courses_under(course_topics: np.ndarray, up_padded: np.ndarray) -> list[np.ndarray]:
    """Per topic, the positions of courses whose hours count for it (sorted), via each topic's closure."""
    n_topics = up_padded.shape[1]
    padded = np.where(course_topics >= 0, course_topics, n_topics)
    reached = np.zeros((len(course_topics), n_topics), dtype=bool)
    for column in padded.T:
        reached |= up_padded[column]
    _, courses = np.nonzero(reached.T)  # grouped by topic, courses ascending within each
    return [_read_only(part.astype(np.int32)) for part in np.split(courses, np.cumsum(reached.sum(axis=0))[:-1])]


def _materials(vocab: Vocabulary, tree: TopicTree, ontology: Ontology, *tables: Mapping[str, Any]) -> dict[int, list[Material]]:
    """Published textbooks and cases, and demonstration sites (which have no status), by topic, best first."""
    by_topic: dict[int, list[Material]] = defaultdict(list)
    for table in tables:
        rows = [r for r in table.values() if getattr(r, "status", vocab.published) == vocab.published]
        quality, _ = _quality(rows, ontology)
        for row, q in zip(rows, quality):
            topic_list = tuple(t for t in row.topics if t in tree.pos)
            detail = str(getattr(row, "region", None) or getattr(row, "publisher", None) or "")
            material = Material(row.id, type(row).__name__, row.name, topic_list, float(q), detail)
            for topic in topic_list:
                by_topic[tree.pos[topic]].append(material)
    return {t: sorted(items, key=lambda m: (-m.quality, m.id)) for t, items in by_topic.items()}
