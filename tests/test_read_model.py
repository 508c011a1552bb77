"""The one catalogue read model: the topic tree every reader uses, the vocabulary check, the quality weights
as data, and the snapshot's immutability and version stamp.

The small topic scheme below has a topic with two parents (``BROADER`` points up)::

    甲 (order 1, priority 1) ── 甲下 (order 5, no priority) ─┐
                                                              ├── 交叉 (no priority) ── 交叉下 (no priority)
    乙 (order 2, priority 2) ────────────────────────────────┘

交叉 lies under both branches; its nearest stated priority is 乙's 2 (distance 1), not 甲's 1 (distance 2).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import threading

import numpy as np
import pytest

from kg.model import Edge, Node
from recommender.analytics.coverage import coverage_report
from recommender.analytics.rules import Numerator
from recommender.analytics.scoring import score_candidates
from recommender.catalogue.rows import Course, Topic
from recommender.catalogue.snapshot import CatalogueSnapshot, load_snapshot
from recommender.catalogue.vocabulary import Vocabulary
from recommender.errors import VocabularyMismatch
from recommender.learner.profile import ROLE_CACHE_SIZE, core_topics, role_requirements

A, B, M, X, Y = "topic:jia", "topic:yi", "topic:jia-sub", "topic:cross", "topic:cross-sub"
TOPICS = [
    Topic(A, "甲", plan_order=1, plan_priority=1),
    Topic(B, "乙", plan_order=2, plan_priority=2),
    Topic(M, "甲下", broader=(A,), plan_order=5),
    Topic(X, "交叉", broader=(M, B)),
    Topic(Y, "交叉下", broader=(X,)),
]
AS_OF = dt.date(2026, 1, 1)


def course(cid: str, topics: tuple[str, ...], **kw) -> Course:
    base = dict(status="已发布", course_type="专题课", delivery_mode="面授", teaching_method=("讲授",),
                date_modified=AS_OF, expert_score=80.0, rating=4.0, rating_count=10, completion_rate=0.5)
    base.update(kw)
    return Course(cid, f"课程{cid}", 2.0, topics, **base)


COURSES = [course("course:y", (Y,)), course("course:x", (X,)), course("course:a", (A,))]


@pytest.fixture(scope="module")
def snap(ontology) -> CatalogueSnapshot:
    return CatalogueSnapshot.from_rows(topics=TOPICS, courses=COURSES, ontology=ontology)


def graph_of(topics: list[Topic], courses: list[Course]) -> tuple[list[Node], list[Edge]]:
    """The same catalogue as store nodes and edges."""
    nodes = [Node(t.id, "Topic", {k: v for k, v in (("name", t.name), ("planOrder", t.plan_order),
                                                     ("planPriority", t.plan_priority)) if v is not None})
             for t in topics]
    edges = [Edge(t.id, "BROADER", b) for t in topics for b in t.broader]
    edges += [Edge(t.id, "HAS_PREREQUISITE", p) for t in topics for p in t.prerequisites]
    for c in courses:
        nodes.append(Node(c.id, "Course", {"name": c.name, "hours": c.hours, "status": c.status, "courseType": c.course_type,
                                           "deliveryMode": c.delivery_mode, "teachingMethod": list(c.teaching_method),
                                           "dateModified": c.date_modified.isoformat(), "expertScore": c.expert_score,
                                           "rating": c.rating, "ratingCount": c.rating_count,
                                           "completionRate": c.completion_rate}))
        edges += [Edge(c.id, "COVERS", t) for t in c.topics]
    return nodes, edges


class TestTopicWithTwoParents:
    def test_ancestors_nearest_first(self, snap):
        assert snap.tree.ancestors(X) == (X, B, M, A)  # 乙 and 甲下 at distance 1 (乙 first in plan order)
        assert snap.tree.ancestors(Y) == (Y, X, B, M, A)
        assert snap.broader_closure(Y) == {Y, X, B, M, A}

    def test_topics_under_either_parent(self, snap):
        assert snap.tree.topics_under(B) == {B, X, Y}
        assert snap.tree.topics_under(A) == {A, M, X, Y}
        assert snap.narrower_closure(B) == set(snap.tree.topics_under(B))
        assert snap.tree.is_under(Y, A) and snap.tree.is_under(Y, B) and not snap.tree.is_under(A, B)

    def test_branches_and_priority(self, snap):
        assert snap.tree.branches == [A, B]
        assert snap.tree.branches_of([X]) == (A, B)
        assert snap.tree.branch_of(X) == A and snap.topic_ids[snap.branch[snap.topic_pos[X]]] == A
        assert (snap.tree.priority_of(X), snap.tree.priority_of(Y), snap.tree.priority_of(M)) == (2, 2, 1)

    def test_ranking_arrays_count_each_parent_once(self, snap):
        flow = snap.course_flow(snap.course_pos["course:y"])
        assert {snap.topic_ids[t] for t in np.flatnonzero(flow)} == {Y, X, M, A, B}
        under_b = {snap.course_ids[c] for c in snap.courses_under[snap.topic_pos[B]]}
        assert under_b == {"course:x", "course:y"}

    def test_analytics_read_the_same_tree(self, snap):
        rows = {r.topic_id: r for r in coverage_report(snap, None, as_of=AS_OF).rows}
        assert (rows[A].courses_with_narrower, rows[B].courses_with_narrower) == (3, 2)
        assert (rows[X].branch, rows[X].priority) == ("甲", 2)
        scored = {c.id: c for c in score_candidates(snap, as_of=AS_OF, kinds=("course",), gates=())}
        assert scored["course:x"].branches == (A, B)
        assert {p.key: p.raw for p in scored["course:y"].components}["priority"] == 2.0
        assert Numerator(topics_under=(B,)).weight(snap.courses["course:y"], snap) == 1.0

    def test_the_store_loader_reads_it_the_same_way(self, store, ontology, snap):
        store.write(*graph_of(TOPICS, COURSES))
        loaded = load_snapshot(store, ontology)
        for topic in (A, B, M, X, Y):
            assert loaded.tree.ancestors(topic) == snap.tree.ancestors(topic)
            assert loaded.tree.topics_under(topic) == snap.tree.topics_under(topic)
            assert loaded.tree.branch_of(topic) == snap.tree.branch_of(topic)
            assert loaded.tree.priority_of(topic) == snap.tree.priority_of(topic)
        assert np.array_equal(loaded.course_quality[[loaded.course_pos[c.id] for c in COURSES]], snap.course_quality)


class TestCycles:
    def test_a_prerequisite_cycle_is_refused_in_chinese(self, ontology):
        looped = [Topic(A, "甲", prerequisites=(B,)), Topic(B, "乙", prerequisites=(M,)), Topic(M, "丙", prerequisites=(A,))]
        with pytest.raises(VocabularyMismatch, match=r"先修关系.*环路.*topic:") as caught:
            CatalogueSnapshot.from_rows(topics=looped, ontology=ontology)
        assert {A, B, M} <= set(str(caught.value).replace("，", " ").split())

    def test_a_hierarchy_cycle_is_refused(self, ontology):
        looped = [Topic(A, "甲", broader=(B,)), Topic(B, "乙", broader=(A,))]
        with pytest.raises(VocabularyMismatch, match="上下位关系.*环路"):
            CatalogueSnapshot.from_rows(topics=looped, ontology=ontology)

    def test_prerequisites_come_first_in_the_order(self, ontology):
        chain = [Topic(A, "甲", plan_priority=1, prerequisites=(B,)), Topic(B, "乙", plan_priority=3)]
        snap = CatalogueSnapshot.from_rows(topics=chain, ontology=ontology)
        assert snap.topo_rank[snap.topic_pos[B]] < snap.topo_rank[snap.topic_pos[A]]


def with_rules(ontology, edit) -> object:
    rules = copy.deepcopy(ontology.rules)
    edit(rules)
    return dataclasses.replace(ontology, rules=rules)


class TestVocabulary:
    def test_roles_come_from_rules_yaml(self, ontology):
        vocab = Vocabulary.from_ontology(ontology)
        block = ontology.rules["vocabulary"]
        assert vocab.published == block["lifecycle"]["roles"]["published"]
        assert vocab.online_mode == block["record_modes"]["roles"]["online"]
        assert vocab.quota_modes == block["quota_modes"]
        case_rule = next(r for r in ontology.rules["teaching_indicators"] if r["id"] == block["method_indicators"]["case"])
        assert vocab.case_methods == tuple(case_rule["numerator"]["teaching_methods"])

    def test_a_value_shapes_ttl_does_not_allow_names_the_field(self, ontology):
        bad = with_rules(ontology, lambda r: r["vocabulary"]["lifecycle"]["roles"].update(published="已上线"))
        with pytest.raises(VocabularyMismatch, match=r"vocabulary\.lifecycle\.roles\.published.*『已上线』.*Course\.status"):
            Vocabulary.from_ontology(bad)

    def test_a_delivery_mode_the_shapes_lack(self, ontology):
        bad = with_rules(ontology, lambda r: r["vocabulary"]["delivery_modes"]["roles"].update(online="线上"))
        with pytest.raises(VocabularyMismatch, match=r"Course\.deliveryMode"):
            CatalogueSnapshot.from_rows(topics=TOPICS, ontology=bad)

    def test_a_missing_role_or_section_is_named(self, ontology):
        bad = with_rules(ontology, lambda r: r["vocabulary"]["record_modes"]["roles"].pop("online"))
        with pytest.raises(VocabularyMismatch, match=r"record_modes\.roles.*online"):
            Vocabulary.from_ontology(bad)
        with pytest.raises(VocabularyMismatch, match="vocabulary"):
            Vocabulary.from_ontology(with_rules(ontology, lambda r: r.pop("vocabulary")))

    def test_an_unknown_method_indicator(self, ontology):
        bad = with_rules(ontology, lambda r: r["vocabulary"]["method_indicators"].update(case="no-such-rule"))
        with pytest.raises(VocabularyMismatch, match="method_indicators.case.*no-such-rule"):
            Vocabulary.from_ontology(bad)

    def test_the_configured_quota_mode_must_be_a_known_reading(self, ontology):
        bad = with_rules(ontology, lambda r: r["nomination"].update(quota_mode="both"))
        with pytest.raises(VocabularyMismatch, match="nomination.quota_mode.*both"):
            Vocabulary.from_ontology(bad)


class TestQualityIsData:
    def test_weights_come_from_rules_yaml(self, ontology):
        only_completion = with_rules(ontology, lambda r: r["quality"].update(weights={"rating": 0, "completion": 1, "expert": 0}))
        rows = [course("course:p", (A,), completion_rate=0.25), course("course:q", (A,), completion_rate=0.75)]
        snap = CatalogueSnapshot.from_rows(topics=TOPICS, courses=rows, ontology=only_completion)
        assert snap.course_quality.tolist() == [0.25, 0.75]

    def test_the_rating_shrinks_towards_the_mean_by_the_prior(self, ontology):
        rows = [course("course:p", (A,), rating=5.0, rating_count=50, completion_rate=None, expert_score=None),
                course("course:q", (A,), rating=3.0, rating_count=50, completion_rate=None, expert_score=None)]
        votes = ontology.rules["quality"]["rating_prior_votes"]
        floor = ontology.rules["quality"]["rating_floor"]
        snap = CatalogueSnapshot.from_rows(topics=TOPICS, courses=rows, ontology=ontology)
        shrunk = (5.0 * 50 + 4.0 * votes) / (50 + votes)  # catalogue mean 4.0
        assert snap.course_quality[0] == pytest.approx((shrunk - floor) / (5 - floor), rel=1e-6)

    def test_a_malformed_quality_section_is_named(self, ontology):
        bad = with_rules(ontology, lambda r: r["quality"].pop("rating_prior_votes"))
        with pytest.raises(VocabularyMismatch, match="quality"):
            CatalogueSnapshot.from_rows(topics=TOPICS, courses=COURSES, ontology=bad)


class TestImmutable:
    def test_fields_and_arrays_cannot_be_changed(self, snap):
        with pytest.raises(dataclasses.FrozenInstanceError):
            snap.course_ids = []  # type: ignore[misc]
        with pytest.raises(ValueError):
            snap.course_hours[0] = 99
        with pytest.raises(ValueError):
            snap.up[0, 1] = True

    def test_the_version_stamp_is_the_stores(self, store, ontology):
        store.write(*graph_of(TOPICS, COURSES))
        first = load_snapshot(store, ontology)
        assert first.version == store.version()
        store.write(*graph_of(TOPICS, [course("course:new", (B,))]))
        assert load_snapshot(store, ontology).version > first.version


class TestRoleCache:
    """Merged requirements per role are cached on the snapshot, which every request thread shares."""

    def test_a_full_cache_shared_by_threads_keeps_its_size_and_answers_each_role(self, ontology):
        snap = CatalogueSnapshot.from_rows(topics=TOPICS, courses=COURSES, ontology=ontology)
        domains = sorted(ontology.requirements["domains"])
        expected = {d: role_requirements(snap, None, (), d) for d in domains}
        snap.requirement_cache.clear()
        snap.requirement_cache.update({("filler", i): () for i in range(ROLE_CACHE_SIZE)})
        errors: list[BaseException] = []
        results: dict[tuple[int, str], tuple] = {}

        def work(worker: int) -> None:
            try:
                for _ in range(20):
                    for d in domains:
                        results[worker, d] = role_requirements(snap, None, (), d)
            except BaseException as exc:  # noqa: BLE001 - the test reports whatever a thread raised
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert all(results[w, d] == expected[d] for w in range(8) for d in domains)
        assert len(snap.requirement_cache) == ROLE_CACHE_SIZE

    def test_missing_core_branches_is_named_not_an_empty_core(self, ontology):
        bad = with_rules(ontology, lambda r: r["ranking"].pop("core_branches"))
        snap = CatalogueSnapshot.from_rows(topics=TOPICS, courses=COURSES, ontology=bad)
        with pytest.raises(ValueError, match=r"ranking.*core_branches"):
            core_topics(snap)
