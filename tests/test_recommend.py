"""Ordering rules of the ranker and the learning path on the hand-built world (``tests/rec_world.py``).

The rules under test: published items only; nothing completed (nor its newer version); a course on a
topic with an uncovered prerequisite only after a course on that prerequisite; reasons that name the
gap, the requirement and its plan section; and a path that puts prerequisites first and meets the hours.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from recommender.errors import InvalidRequest, UnknownCadre
from recommender.ranking.semantic import SearchVectors, intent_scores
from recommender.search.service import SearchService
from recommender.service import Recommender
from tests.rec_world import add_cadre, build, concentrated, online

TODAY = dt.date(2026, 1, 1)


@pytest.fixture
def world(store, ontology):
    snap = build(store, ontology)
    return snap, store


def recommender(world, **kwargs) -> Recommender:
    snap, store = world
    return Recommender(snap, store, today=TODAY, **kwargs)


def ids(recommendations) -> list[str]:
    return [s.item_id for s in recommendations.items]


def covers(snap, item_id: str, topic: str) -> bool:
    """Whether the item's hours count for ``topic`` (it covers it or a narrower topic)."""
    return bool(snap.course_flow(snap.course_pos[item_id])[snap.topic_pos[topic]])


class TestWhatMayBeSuggested:
    def test_published_courses_only(self, world):
        add_cadre(world[1])
        result = recommender(world).recommend("cadre:1", k=20)
        assert "course:a-draft" not in ids(result) and "course:a-old" not in ids(result)
        assert set(ids(result)) <= {"course:a-basic", "course:a1-online", "course:b-adv", "course:c-case",
                                    "course:c-plain", "course:a-new", "course:ab-combo"}

    def test_never_repeats_a_completed_course_or_its_newer_version(self, world):
        add_cadre(world[1], records=[concentrated("2025-06-01", 2.0, course="course:a-basic"),
                                     concentrated("2025-06-02", 2.0, course="course:a-old"),
                                     online("2025-06-03", "course:c-plain", 40, "platform:tiered", completed=False)])
        got = ids(recommender(world).recommend("cadre:1", k=20))
        assert "course:a-basic" not in got and "course:a-new" not in got
        assert "course:c-plain" in got  # started but not completed: may be suggested again

    def test_courses_of_a_class_attended_count_as_completed(self, world):
        add_cadre(world[1], records=[concentrated("2024-05-10", 37.5, situation=None, days=5.0, klass="class:k")])
        got = ids(recommender(world).recommend("cadre:1", k=20))
        assert "course:a-basic" not in got and "course:b-adv" not in got

    def test_materials_are_published_and_on_the_gaps(self, world):
        add_cadre(world[1])
        materials = {m.item_id: m for m in recommender(world).recommend("cadre:1").materials}
        assert set(materials) == {"textbook:a", "case:b"}
        assert materials["case:b"].gap_topic == "topic:b" and materials["case:b"].kind_label == "案例"


class TestPrerequisites:
    def test_a_course_comes_after_a_course_on_its_uncovered_prerequisite(self, world):
        snap, store = world
        add_cadre(store)  # no records: 甲 is uncovered, so 乙 must wait for a course on 甲
        items = recommender(world).recommend("cadre:1", k=20).items
        position = {s.item_id: i for i, s in enumerate(items)}
        assert "course:b-adv" in position
        before = [s.item_id for s in items[: position["course:b-adv"]]]
        assert any(covers(snap, c, "topic:a") for c in before)
        b_adv = items[position["course:b-adv"]]
        assert b_adv.after and all(covers(snap, c, "topic:a") for c in b_adv.after)
        assert all(position[c] < position["course:b-adv"] for c in b_adv.after)

    def test_a_covered_prerequisite_lets_the_advanced_course_lead(self, world):
        add_cadre(world[1], records=[concentrated("2025-12-31", 8.0, course="course:a-basic")])
        first = recommender(world).recommend("cadre:1").items[0]
        assert first.item_id == "course:b-adv" and first.after == ()

    def test_never_suggested_while_no_course_can_teach_the_prerequisite(self, world):
        # every course on 甲 was completed twelve years ago: 甲 has decayed to 7/64 h, and none can be suggested
        old = [concentrated("2014-01-01", h, course=c) for c, h in
               (("course:a-basic", 2.0), ("course:a-new", 2.0), ("course:a1-online", 1.0), ("course:ab-combo", 2.0))]
        add_cadre(world[1], records=old)
        result = recommender(world).recommend("cadre:1", k=20)
        assert "topic:b" in {g.topic_id for g in result.gaps}  # 乙 is a gap …
        assert "course:b-adv" not in ids(result)  # … yet its course waits for 甲


class TestReasons:
    def test_the_reason_names_the_gap_the_requirement_and_its_section(self, world):
        add_cadre(world[1], records=[concentrated("2025-12-31", 8.0, course="course:a-basic")])
        first = recommender(world).recommend("cadre:1").items[0]
        assert first.reason == "你所在的岗位领域（金融监管）要求学习『乙主题』，近三年相关学时为 0（规划 四（一））"
        assert (first.gap_topic, first.section) == ("topic:b", "四（一）")

    def test_each_course_is_explained_by_a_gap_it_fills(self, world):
        snap, store = world
        add_cadre(store)
        for item in recommender(world).recommend("cadre:1", k=5).items:
            assert item.gap_topic is not None and covers(snap, item.item_id, item.gap_topic)
            assert snap.topic_name(item.gap_topic) in item.reason and f"（规划 {item.section}）" in item.reason

    def test_a_missing_format_is_preferred_and_said(self, world):
        add_cadre(world[1], records=[concentrated("2025-12-31", 8.0, course="course:ab-combo")])  # only 丙 is a gap
        items = recommender(world).recommend("cadre:1").items
        order = [s.item_id for s in items]
        assert order.index("course:c-case") < order.index("course:c-plain")
        assert any("案例式教学" in d for d in items[order.index("course:c-case")].details)


class TestDiversityAndColdStart:
    def test_cold_start_is_flagged_and_still_fills_gaps(self, world):
        add_cadre(world[1])
        result = recommender(world).recommend("cadre:1", k=3)
        assert result.cold_start and len(result.items) == 3
        assert result.to_dict()["尚无学习记录"] is True

    def test_the_gap_a_course_fills_shrinks_for_the_next_pick(self, world):
        # 丙 needs 2 h; after one 1-hour 丙 course the other still helps, but 甲/乙 courses should come between
        add_cadre(world[1], records=[concentrated("2025-12-31", 3.0, course="course:a-basic")])
        order = ids(recommender(world).recommend("cadre:1", k=6))
        first_c = min(order.index("course:c-case"), order.index("course:c-plain"))
        second_c = max(order.index("course:c-case"), order.index("course:c-plain"))
        assert second_c - first_c > 1


class FixedVectors:
    """Course vectors by hand: 丙讲授 points where the intent points (a collaborator stub for the seam)."""

    def __init__(self, snap) -> None:
        self.matrix = np.zeros((snap.n_courses, 2), dtype=np.float32)
        self.matrix[:, 1] = 1.0
        self.matrix[snap.course_pos["course:c-plain"]] = (1.0, 0.0)

    def course_vectors(self) -> np.ndarray:
        return self.matrix

    def encode_query(self, text: str) -> np.ndarray:
        return np.array([1.0, 0.0], dtype=np.float32)


class StubSearch:
    """The two calls the recommender makes on the search engine; it indexes two of the courses."""

    def document_vectors(self, ids):
        known = [i for i in ids if i in ("course:b-adv", "course:c-plain")]
        return known, np.array([[1.0, 0.0] if i == "course:b-adv" else [0.6, 0.8] for i in known], dtype=np.float32)

    def encode_query(self, text):
        return np.array([1.0, 0.0], dtype=np.float32)


class TestIntent:
    def test_search_engine_vectors_line_up_with_the_snapshot(self, world):
        snap, _ = world
        vectors = SearchVectors(StubSearch(), snap)
        scores = intent_scores(vectors, "任意")
        assert scores[snap.course_pos["course:b-adv"]] == 1.0 and scores[snap.course_pos["course:c-plain"]] == 0.0
        assert not vectors.course_vectors()[snap.course_pos["course:a-basic"]].any()

    def test_intent_blends_in_and_is_said(self, world):
        snap, store = world
        add_cadre(store)
        plain = recommender(world, search=FixedVectors(snap))
        without = ids(plain.recommend("cadre:1", k=8))
        with_intent = plain.recommend("cadre:1", k=8, intent="想学丙讲授")
        assert ids(with_intent).index("course:c-plain") < without.index("course:c-plain")
        item = with_intent.items[ids(with_intent).index("course:c-plain")]
        assert any("学习意向「想学丙讲授」" in d for d in item.details)

    def test_real_encoder_finds_the_named_course(self, world, tmp_path):
        snap, store = world
        search = SearchService.open(store, snapshot=snap, index_dir=tmp_path / "index")
        scores = intent_scores(SearchVectors(search, snap), "乙进阶")
        assert snap.course_ids[int(np.argmax(scores))] == "course:b-adv"


class TestLearningPath:
    def test_path_meets_the_hours_with_prerequisites_first(self, world):
        snap, store = world
        add_cadre(store, records=[online("2025-12-20", "course:c-plain", 40, "platform:tiered")])
        path = recommender(world).learning_path("cadre:1", today=dt.date(2026, 12, 20))
        step = {s.item.item_id: s for s in path.steps}
        assert path.targets["网络自学"] == 50.0
        if "course:b-adv" in step:
            follows = step["course:b-adv"].after_steps
            assert follows and all(step[s_id].step in follows for s_id in step["course:b-adv"].item.after)
            assert all(n < step["course:b-adv"].step for n in follows)
        modes = [s.mode for s in path.steps]
        assert "网络自学" in modes and "集中培训" in modes
        assert modes[0] != modes[1]  # 集中 and 网络 alternate while both are available
        assert not path.reaches_targets and "仍差" in path.note  # the tiny catalogue cannot supply 50 h

    def test_cold_start_path_says_so(self, world):
        add_cadre(world[1], category="category:y", groups=(), domain=None)  # hour group C: 集中 rule unset
        path = recommender(world).learning_path("cadre:1", today=dt.date(2026, 12, 1))
        assert path.cold_start and "还没有学习记录" in path.note
        assert set(path.targets) == {"网络自学"} or not path.targets


class TestBadInput:
    def test_unknown_cadre(self, world):
        with pytest.raises(UnknownCadre, match="cadre:404"):
            recommender(world).recommend("cadre:404")

    def test_a_course_id_is_not_a_cadre(self, world):
        with pytest.raises(UnknownCadre):
            recommender(world).hours("course:a-basic")

    @pytest.mark.parametrize(("kwargs", "field"), [({"k": 0}, "k"), ({"k": "10"}, "k"), ({"intent": "学" * 201}, "intent"),
                                                   ({"today": "2026-01-01"}, "today")])
    def test_bad_parameters_name_the_field(self, world, kwargs, field):
        add_cadre(world[1])
        with pytest.raises(InvalidRequest, match=field):
            recommender(world).recommend("cadre:1", **kwargs)
