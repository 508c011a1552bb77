"""The catalogue snapshot: everything the recommender needs that is not personal, loaded once into memory.

Why a snapshot: the catalogue (courses, materials, the topic scheme) is small and read on every request,
while cadres and their records grow with the population.  So the catalogue is read from the store once
into compact arrays and a networkx topic graph, and only a cadre's own records are fetched per request
(:mod:`recommender.learner.profile`).  Reload it after an import (:func:`load_snapshot` again) — it is immutable.

The topic graph holds two relations: ``BROADER`` (narrower → broader) for the hierarchy through which
studied hours flow upwards, and ``HAS_PREREQUISITE`` (topic → topic to study first) for ordering.  Their
closures are precomputed as boolean matrices, so scoring a cadre is array arithmetic, not traversal.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
from scipy import sparse

from kg.ontology import Ontology, load_ontology
from kg.store.base import Store
from recommender.errors import VocabularyMismatch

__all__ = [
    "CatalogueSnapshot",
    "Material",
    "PlatformInfo",
    "TrainingClassInfo",
    "Vocabulary",
    "load_snapshot",
    "parse_date",
]

def parse_date(text: Any) -> dt.date | None:
    """An ISO date from a stored property, or None when absent or malformed."""
    if isinstance(text, dt.date):
        return text
    try:
        return dt.date.fromisoformat(str(text)[:10]) if text else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Vocabulary:
    """The few controlled values the recommender's logic turns on, each checked against the ontology.

    They are identifiers of meaning (which mode is 网络自学, which status is 已发布), so they are named once
    here; :meth:`from_ontology` fails loudly if ``ontology/`` stops allowing one of them.
    """

    published: str
    online_mode: str
    concentrated_mode: str
    full_time_situation: str
    online_delivery: str
    concentrated_situations: tuple[str, ...]
    case_methods: tuple[str, ...]
    interactive_methods: tuple[str, ...]
    hours_per_day: float

    @classmethod
    def from_ontology(cls, ontology: Ontology) -> Vocabulary:
        fields = ontology.classes
        rules = ontology.rules

        def allowed(class_name: str, field_name: str, value: str) -> str:
            spec = fields[class_name].fields.get(field_name)
            if spec is None or value not in (spec.allowed or ()):
                raise VocabularyMismatch(
                    f"本体中 {class_name}.{field_name} 的取值不再包含『{value}』，推荐模块需要它；请检查 ontology/shapes.ttl"
                )
            return value

        indicators = {i["id"]: i for i in rules.get("teaching_indicators", [])}

        def methods(indicator_id: str) -> tuple[str, ...]:
            return tuple(indicators.get(indicator_id, {}).get("numerator", {}).get("teaching_methods", ()))

        return cls(
            published=allowed("Course", "status", "已发布"),
            online_mode=allowed("TrainingRecord", "mode", "网络自学"),
            concentrated_mode=allowed("TrainingRecord", "mode", "集中培训"),
            full_time_situation=allowed("TrainingRecord", "situation", "脱产培训"),
            online_delivery=allowed("Course", "deliveryMode", "网络"),
            concentrated_situations=tuple(rules["concentrated_situations"]["values"]),
            case_methods=methods("case-teaching-share"),
            interactive_methods=methods("interactive-share"),
            hours_per_day=float(rules["hours_per_day"]),
        )


@dataclass(frozen=True)
class Material:
    """A textbook, case or on-site teaching site that can accompany courses on a topic."""

    id: str
    kind: str
    name: str
    topics: tuple[str, ...]
    quality: float
    detail: str = ""


@dataclass(frozen=True)
class PlatformInfo:
    id: str
    name: str
    recognised: bool
    credit_rule: str | None


@dataclass(frozen=True)
class TrainingClassInfo:
    id: str
    name: str
    start: dt.date | None
    end: dt.date | None
    courses: tuple[str, ...]
    institution: str | None


@dataclass
class CatalogueSnapshot:
    """Immutable in-memory catalogue.  Course arrays are indexed by course position (``course_pos``).

    Courses of every status are held (records may name a retired course); ``course_published`` marks the
    ones that may be suggested.  Topic arrays are indexed by topic position (``topic_pos``).
    """

    ontology: Ontology
    vocab: Vocabulary
    # ── topics ──
    topic_ids: list[str]
    topic_pos: dict[str, int]
    topic_props: list[dict[str, Any]]
    hierarchy: nx.DiGraph  # narrower → broader
    prerequisites: nx.DiGraph  # topic → its prerequisite topic
    up: np.ndarray  # (T, T) bool: up[t, a] — a is t or one of its broader topics
    up_padded: np.ndarray  # (T + 1, T): ``up`` and a zero row for the padding slot of ``course_topics``
    related: np.ndarray  # (T, T) bool, skos:related both ways
    prereq_of: np.ndarray  # (T, T) bool: prereq_of[t, p] — p is a direct prerequisite of t
    topo_rank: np.ndarray  # (T,) int: position in a prerequisites-first order
    branch: np.ndarray  # (T,) int: topic position of the top concept above t
    # ── courses ──
    course_ids: list[str]
    course_pos: dict[str, int]
    course_name: list[str]
    course_text: list[str]
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
    # ── the rest of the catalogue ──
    audience_pos: dict[str, int]
    categories: dict[str, dict[str, Any]]
    groups: dict[str, dict[str, Any]]
    domains: dict[str, dict[str, Any]]
    platforms: dict[str, PlatformInfo]
    institutions: dict[str, dict[str, Any]]
    classes: dict[str, TrainingClassInfo]
    materials_by_topic: dict[int, list[Material]] = field(default_factory=dict)
    #: id → Chinese name of every topic, category, target group and position domain
    names: dict[str, str] = field(default_factory=dict, repr=False)
    #: merged requirements per (category, groups, domain): cadres share roles, so merge each role once
    requirement_cache: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False)

    # ── topic helpers ──
    @property
    def n_topics(self) -> int:
        return len(self.topic_ids)

    @property
    def n_courses(self) -> int:
        return len(self.course_ids)

    def topic_name(self, topic_id: str) -> str:
        pos = self.topic_pos.get(topic_id)
        return self.topic_props[pos].get("name", topic_id) if pos is not None else topic_id

    def broader_closure(self, topic_id: str) -> set[str]:
        """The topic and every broader topic above it."""
        return {self.topic_ids[a] for a in np.flatnonzero(self.up[self.topic_pos[topic_id]])}

    def narrower_closure(self, topic_id: str) -> set[str]:
        """The topic and every narrower topic below it."""
        return {self.topic_ids[d] for d in np.flatnonzero(self.up[:, self.topic_pos[topic_id]])}

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


def _shrunk_rating(rating: np.ndarray, count: np.ndarray, prior_weight: float = 50.0) -> np.ndarray:
    """Bayesian average of ratings towards the catalogue mean: few votes say little (IMDb's formula)."""
    known = ~np.isnan(rating)
    mean = float(np.nanmean(rating)) if known.any() else 4.0
    r = np.where(known, rating, mean)
    c = np.where(np.isnan(count), 0.0, count)
    return (r * c + mean * prior_weight) / (c + prior_weight)


def _quality(props: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Course quality and popularity in [0, 1] from rating (1–5), completion rate and expert score (0–100)."""

    def column(name: str) -> np.ndarray:
        return np.array([float(p[name]) if p.get(name) is not None else np.nan for p in props], dtype=np.float64)

    if not props:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32)
    rating = np.clip((_shrunk_rating(column("rating"), column("ratingCount")) - 1.0) / 4.0, 0.0, 1.0)
    parts = [rating, column("completionRate"), column("expertScore") / 100.0]
    stacked = np.vstack(parts)
    weights = np.array([0.6, 0.2, 0.2])[:, None] * ~np.isnan(stacked)
    quality = np.nansum(stacked * weights, axis=0) / np.maximum(weights.sum(axis=0), 1e-9)
    enrol = np.log1p(np.nan_to_num(column("enrolments"), nan=0.0))
    popularity = enrol / max(float(enrol.max()), 1e-9)
    return quality.astype(np.float32), popularity.astype(np.float32)


def _topic_graphs(ontology: Ontology, store: Store, topic_ids: list[str]) -> tuple[nx.DiGraph, nx.DiGraph, nx.Graph]:
    rel = ontology.relationship_types
    hierarchy, prerequisites, related = nx.DiGraph(), nx.DiGraph(), nx.Graph()
    for graph in (hierarchy, prerequisites, related):
        graph.add_nodes_from(topic_ids)
    known = set(topic_ids)
    for graph, rel_type in ((hierarchy, rel["broader"]), (prerequisites, rel["hasPrerequisite"]), (related, rel["related"])):
        graph.add_edges_from((e.src, e.dst) for e in store.edges(type=rel_type) if e.src in known and e.dst in known)
    return hierarchy, prerequisites, related


def _topic_matrices(topic_ids: list[str], topic_props: list[dict[str, Any]], hierarchy: nx.DiGraph,
                    prerequisites: nx.DiGraph, related: nx.Graph) -> dict[str, np.ndarray]:
    pos = {t: i for i, t in enumerate(topic_ids)}
    n = len(topic_ids)
    up = np.eye(n, dtype=bool)
    branch = np.arange(n)
    for topic in topic_ids:
        above = nx.descendants(hierarchy, topic)  # edges point narrower → broader
        for a in above:
            up[pos[topic], pos[a]] = True
        roots = [a for a in above if hierarchy.out_degree(a) == 0]
        if roots:
            branch[pos[topic]] = pos[sorted(roots)[0]]
    rel = np.zeros((n, n), dtype=bool)
    for a, b in related.edges():
        rel[pos[a], pos[b]] = rel[pos[b], pos[a]] = True
    prereq = np.zeros((n, n), dtype=bool)
    for t, p in prerequisites.edges():
        prereq[pos[t], pos[p]] = True
    # prerequisites first: reverse the edges so a prerequisite precedes the topics that need it; ties by
    # the plan's priority, then the topic's position among its siblings
    first = prerequisites.reverse(copy=True)
    order_key = {t: (int(topic_props[pos[t]].get("planPriority", 9) or 9), int(topic_props[pos[t]].get("planOrder", 0) or 0), t)
                 for t in topic_ids}
    try:
        order = list(nx.lexicographical_topological_sort(first, key=order_key.__getitem__))
    except nx.NetworkXUnfeasible as exc:  # the scheme promises a DAG; say so if it stops being one
        raise VocabularyMismatch("主题先修关系（gx:hasPrerequisite）出现环路，无法排出学习顺序") from exc
    topo = np.empty(n, dtype=np.int32)
    for rank, topic in enumerate(order):
        topo[pos[topic]] = rank
    return {"up": up, "related": rel, "prereq_of": prereq, "topo_rank": topo, "branch": branch}


def _by_src(store: Store, rel_type: str) -> dict[str, list[str]]:
    """src → [dst] for one relationship type, keeping an ordered relation's ``ord`` order."""
    grouped: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for edge in store.edges(type=rel_type):
        grouped[edge.src].append((int(edge.props.get("ord", 0)), edge.dst))
    return {src: [d for _, d in sorted(pairs, key=lambda p: p[0])] for src, pairs in grouped.items()}


def load_snapshot(store: Store, ontology: Ontology | None = None) -> CatalogueSnapshot:
    """Read the catalogue from ``store`` into a :class:`CatalogueSnapshot` (seconds for 100k courses)."""
    ontology = ontology or load_ontology()
    vocab = Vocabulary.from_ontology(ontology)
    rel = ontology.relationship_types

    topic_nodes = list(store.nodes("Topic"))
    topic_ids = [n.id for n in topic_nodes]
    topic_props = [dict(n.props) for n in topic_nodes]
    hierarchy, prerequisites, related = _topic_graphs(ontology, store, topic_ids)
    matrices = _topic_matrices(topic_ids, topic_props, hierarchy, prerequisites, related)
    topic_pos = {t: i for i, t in enumerate(topic_ids)}
    up_padded = np.vstack([matrices["up"], np.zeros((1, len(topic_ids)), dtype=bool)])

    categories = {n.id: dict(n.props) for n in store.nodes("CadreCategory")}
    groups = {n.id: dict(n.props) for n in store.nodes("TargetGroup")}
    domains = {n.id: dict(n.props) for n in store.nodes("PositionDomain")}
    audience_pos = {a: i for i, a in enumerate(list(categories) + list(groups))}

    courses = list(store.nodes("Course"))
    props = [n.props for n in courses]
    covers = _by_src(store, rel["covers"])
    width = max([len(v) for v in covers.values()] + [1])
    n = len(courses)
    course_topics = np.full((n, width), -1, dtype=np.int32)
    for i, course in enumerate(courses):
        for j, topic in enumerate(t for t in covers.get(course.id, []) if t in topic_pos):
            course_topics[i, j] = topic_pos[topic]
    audience_rows, audience_cols = [], []
    course_pos = {c.id: i for i, c in enumerate(courses)}
    for rel_name in ("audienceCategory", "audienceGroup"):
        for edge in store.edges(type=rel[rel_name]):
            if edge.src in course_pos and edge.dst in audience_pos:
                audience_rows.append(course_pos[edge.src])
                audience_cols.append(audience_pos[edge.dst])
    audience = sparse.csr_matrix(
        (np.ones(len(audience_rows), dtype=np.float32), (audience_rows, audience_cols)), shape=(n, max(len(audience_pos), 1))
    )
    platform_of = {e.src: e.dst for e in store.edges(type=rel["onPlatform"])}
    offered_by = {e.src: e.dst for e in store.edges(type=rel["offeredBy"])}
    replaced = {e.src: e.dst for e in store.edges(type=rel["replacedBy"])}
    case_methods, interactive_methods = set(vocab.case_methods), set(vocab.interactive_methods)
    quality, popularity = _quality(props)
    modified = [parse_date(p.get("dateModified") or p.get("dateCreated")) for p in props]

    snapshot = CatalogueSnapshot(
        ontology=ontology,
        vocab=vocab,
        topic_ids=topic_ids,
        topic_pos=topic_pos,
        topic_props=topic_props,
        hierarchy=hierarchy,
        prerequisites=prerequisites,
        up=matrices["up"],
        up_padded=up_padded,
        related=matrices["related"],
        prereq_of=matrices["prereq_of"],
        topo_rank=matrices["topo_rank"],
        branch=matrices["branch"],
        course_ids=[c.id for c in courses],
        course_pos=course_pos,
        course_name=[str(p.get("name", "")) for p in props],
        course_text=[f"{p.get('name', '')}。{p.get('description', '')}" for p in props],
        course_hours=np.array([float(p.get("hours") or 0.0) for p in props], dtype=np.float32),
        course_online=np.array([p.get("deliveryMode") == vocab.online_delivery for p in props], dtype=bool),
        course_case=np.array([bool(p.get("isCase")) or bool(case_methods & set(p.get("teachingMethod") or ())) for p in props], dtype=bool),
        course_interactive=np.array([bool(interactive_methods & set(p.get("teachingMethod") or ())) for p in props], dtype=bool),
        course_published=np.array([p.get("status") == vocab.published for p in props], dtype=bool),
        course_modified=np.array([d.toordinal() if d else 0 for d in modified], dtype=np.int32),
        course_quality=quality,
        course_popularity=popularity,
        course_topics=course_topics,
        course_audience=audience,
        course_platform=[platform_of.get(c.id) for c in courses],
        course_institution=[offered_by.get(c.id) for c in courses],
        course_delivery=[str(p.get("deliveryMode", "")) for p in props],
        course_type=[str(p.get("courseType", "")) for p in props],
        replaced_by={course_pos[a]: course_pos[b] for a, b in replaced.items() if a in course_pos and b in course_pos},
        courses_under=_courses_under(course_topics, up_padded),
        audience_pos=audience_pos,
        categories=categories,
        groups=groups,
        domains=domains,
        platforms={
            n.id: PlatformInfo(n.id, str(n.get("name", n.id)), bool(n.get("recognised")), n.get("creditRule"))
            for n in store.nodes("Platform")
        },
        institutions={n.id: dict(n.props) for n in store.nodes("Institution")},
        classes=_classes(store, ontology),
    )
    snapshot.materials_by_topic = _materials(store, ontology, vocab, topic_pos)
    snapshot.names = {t: str(p.get("name", t)) for t, p in zip(topic_ids, topic_props)}
    for table in (categories, groups, domains):
        snapshot.names.update({i: str(p.get("name", i)) for i, p in table.items()})
    return snapshot


def _courses_under(course_topics: np.ndarray, up_padded: np.ndarray) -> list[np.ndarray]:
    """Per topic, the positions of courses whose hours count for it (sorted), via each topic's closure."""
    n_topics = up_padded.shape[1]
    padded = np.where(course_topics >= 0, course_topics, n_topics)
    reached = np.zeros((len(course_topics), n_topics), dtype=bool)
    for column in padded.T:
        reached |= up_padded[column]
    _, courses = np.nonzero(reached.T)  # grouped by topic, courses ascending within each
    return [part.astype(np.int32) for part in np.split(courses, np.cumsum(reached.sum(axis=0))[:-1])]


def _classes(store: Store, ontology: Ontology) -> dict[str, TrainingClassInfo]:
    rel = ontology.relationship_types
    includes = _by_src(store, rel["includesCourse"])
    held_by = {e.src: e.dst for e in store.edges(type=rel["heldBy"])}
    return {
        n.id: TrainingClassInfo(
            n.id, str(n.get("name", n.id)), parse_date(n.get("startDate")), parse_date(n.get("endDate")),
            tuple(includes.get(n.id, [])), held_by.get(n.id),
        )
        for n in store.nodes("TrainingClass")
    }


def _materials(store: Store, ontology: Ontology, vocab: Vocabulary, topic_pos: dict[str, int]) -> dict[int, list[Material]]:
    """Published textbooks and cases, and demonstration sites, by topic, best first."""
    rel = ontology.relationship_types
    by_topic: dict[int, list[Material]] = defaultdict(list)
    sources: Iterable[tuple[str, str]] = (("Textbook", rel["covers"]), ("CaseStudy", rel["illustrates"]),
                                          ("DemonstrationSite", rel["illustrates"]))
    for class_name, rel_type in sources:
        nodes = [n for n in store.nodes(class_name) if n.get("status", vocab.published) == vocab.published]
        if not nodes:
            continue
        topics = _by_src(store, rel_type)
        quality, _ = _quality([n.props for n in nodes])
        for node, q in zip(nodes, quality):
            topic_list = tuple(t for t in topics.get(node.id, []) if t in topic_pos)
            detail = str(node.get("region") or node.get("publisher") or "")
            material = Material(node.id, class_name, str(node.get("name", node.id)), topic_list, float(q), detail)
            for topic in topic_list:
                by_topic[topic_pos[topic]].append(material)
    return {t: sorted(items, key=lambda m: (-m.quality, m.id)) for t, items in by_topic.items()}
