"""Ordering rules of the ranker and the learning path on the hand-built world (``tests/rec_world.py``).

The rules under test: published items only; nothing completed (nor its newer version); a course on a
topic with an uncovered prerequisite only after a course on that prerequisite; reasons that name the
gap, the requirement, the side of the list it serves and its plan section; the blend of job and core in
the configured proportions; the audience rule; an intent that moves the list; and a path that puts
prerequisites first and meets the hours, or says why not and what to do instead.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from recommender.errors import InvalidRequest, UnknownCadre
from recommender.ranking.recommend import RankConfig
from recommender.ranking.semantic import SearchVectors, intent_scores
from recommender.search.service import SearchService
from recommender.service import Recommender
from tests.rec_world import add_cadre, build, concentrated, course, online

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
        assert first.reason == "岗位所需：你所在的岗位领域（金融监管）要求学习『乙主题』，有效学时 0 / 6 学时（0%）（规划 四（一））"
        assert (first.gap_topic, first.section, first.side) == ("topic:b", "四（一）", "job")

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
        # (one ranking over every gap: with the blend, 丙 is the job side's last course and takes its slots)
        add_cadre(world[1], records=[concentrated("2025-12-31", 3.0, course="course:a-basic")])
        unblended = RankConfig.from_rules(world[0].ontology.rules, blend_job=None)
        order = ids(recommender(world, ranking=unblended).recommend("cadre:1", k=6))
        first_c = min(order.index("course:c-case"), order.index("course:c-plain"))
        second_c = max(order.index("course:c-case"), order.index("course:c-plain"))
        assert second_c - first_c > 1


class FixedVectors:
    """Course vectors by hand: ``close`` courses point where the intent points (a collaborator stub for the seam)."""

    def __init__(self, snap, close: tuple[str, ...] = ("course:c-plain",)) -> None:
        self.matrix = np.zeros((snap.n_courses, 2), dtype=np.float32)
        self.matrix[:, 1] = 1.0
        for item in close:
            self.matrix[snap.course_pos[item]] = (1.0, 0.0)

    def course_vectors(self) -> np.ndarray:
        return self.matrix

    def encode_query(self, text: str) -> np.ndarray:
        return np.array([1.0, 0.0], dtype=np.float32)

    def nearest(self, text: str, allowed_mask: np.ndarray, k: int) -> list[tuple[int, float]]:
        cosine = self.matrix @ self.encode_query(text)
        allowed = np.flatnonzero(allowed_mask)
        best = allowed[np.argsort(-cosine[allowed], kind="stable")[:k]]
        return [(int(i), float(cosine[i])) for i in best]


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
        assert "学习意向「想学丙讲授」" in item.reason and item.intent_match

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


def sides(recommendations) -> list[str | None]:
    return [s.side for s in recommendations.items]


class TestBlend:
    """A list blends the job side (乙 from the domain, 丙 from the category) with the core (甲, all cadres)."""

    def test_the_configured_proportions_hold_and_the_job_leads(self, world):
        add_cadre(world[1])
        result = recommender(world).recommend("cadre:1", k=5)
        assert sides(result) == ["job", "core", "job", "core", "job"]  # 0.6 / 0.4, each slot to the side most behind
        for item in result.items:
            assert item.reason.startswith("岗位所需：" if item.side == "job" else "全体干部必学：")

    def test_other_proportions_are_data(self, world):
        add_cadre(world[1])
        core_first = RankConfig.from_rules(world[0].ontology.rules, blend_job=0.2)
        result = recommender(world, ranking=core_first).recommend("cadre:1", k=5)
        assert sides(result).count("job") == 1 and result.items[0].side == "core"

    def test_a_missing_blend_share_is_named(self, world):
        rules = {**world[0].ontology.rules, "ranking": {**world[0].ontology.rules["ranking"], "blend": {"job": 1.0}}}
        with pytest.raises(InvalidRequest, match=r"ranking\.blend\.core"):
            RankConfig.from_rules(rules)

    def test_the_blend_must_add_up_to_one(self, world):
        rules = {**world[0].ontology.rules, "ranking": {**world[0].ontology.rules["ranking"], "blend": {"job": 0.7, "core": 0.4}}}
        with pytest.raises(InvalidRequest, match="blend"):
            RankConfig.from_rules(rules)

    def test_a_side_with_nothing_left_yields_its_slots(self, world):
        # 乙 and 丙 covered: only the core has gaps, and it fills the list
        add_cadre(world[1], records=[concentrated("2025-12-31", 8.0, course="course:b-adv"),
                                     online("2025-12-31", "course:c-case", 45, "platform:tiered"),
                                     online("2025-12-31", "course:c-plain", 45, "platform:tiered")])
        result = recommender(world).recommend("cadre:1", k=3)
        assert sides(result) == ["core", "core", "core"]
        assert all(item.reason.startswith("全体干部必学：") for item in result.items)


AUDIENCE_COURSES = [
    course("course:a-other", ["topic:a"], 2, rating=5.0, enrolments=90_000, name="甲（丙类干部专题）", audience=("category:y",)),
    course("course:a-own", ["topic:a"], 2, rating=3.0, enrolments=100, name="甲（领导班子专题）", audience=("group:g",)),
]


class TestAudience:
    @pytest.fixture
    def audience_world(self, store, ontology):
        return build(store, ontology, AUDIENCE_COURSES), store

    def test_an_item_for_another_audience_never_appears_while_others_can_fill_the_list(self, audience_world):
        add_cadre(audience_world[1])
        result = recommender(audience_world).recommend("cadre:1", k=8)  # the eight courses for them or for anyone
        assert "course:a-other" not in ids(result)  # the best-rated course of all, but declared for 丙类干部 only
        own = result.items[ids(result).index("course:a-own")]
        assert "课程面向领导班子成员，与你的身份相符" in own.details
        assert not any("课程面向" in d for s in result.items if s.item_id != "course:a-own" for d in s.details)

    def test_when_the_list_cannot_be_filled_it_comes_last_and_says_so(self, audience_world):
        add_cadre(audience_world[1])
        result = recommender(audience_world).recommend("cadre:1", k=20)
        order = ids(result)
        assert order[-1] == "course:a-other"
        assert any("面向你的课程不足" in d and "丙类干部" in d for d in result.items[-1].details)

    def test_without_the_fallback_it_never_appears(self, audience_world):
        add_cadre(audience_world[1])
        strict = RankConfig.from_rules(audience_world[0].ontology.rules, fallback_when_short=False)
        assert "course:a-other" not in ids(recommender(audience_world, ranking=strict).recommend("cadre:1", k=20))

    def test_a_cadre_it_is_for_gets_it(self, audience_world):
        add_cadre(audience_world[1], category="category:y", groups=(), domain=None)
        assert "course:a-other" in ids(recommender(audience_world).recommend("cadre:1", k=3))


class TestIntentMovesTheList:
    @pytest.fixture
    def intent_world(self, store, ontology):
        # 根 is no cadre's requirement: a course on it alone is close to nothing required
        return build(store, ontology, [course("course:root-only", ["topic:root"], 1, name="根概论")]), store

    def test_an_intent_on_a_required_topic_leads_the_list(self, intent_world):
        snap, store = intent_world
        add_cadre(store)
        plain = recommender(intent_world).recommend("cadre:1", k=5)
        assert ids(plain)[0] != "course:c-case"
        moved = recommender(intent_world, search=FixedVectors(snap, ("course:c-case", "course:root-only"))).recommend(
            "cadre:1", k=5, intent="想学丙的案例")
        assert ids(moved)[0] == "course:c-case" and moved.items[0].intent_match
        assert moved.items[0].reason.startswith("符合你的学习意向「想学丙的案例」") and "岗位所需：" in moved.items[0].reason
        assert "course:root-only" not in ids(moved)[:2] and moved.note == ""

    def test_an_intent_matching_nothing_required_says_so_and_offers_the_closest(self, intent_world):
        snap, store = intent_world
        add_cadre(store)
        result = recommender(intent_world, search=FixedVectors(snap, ("course:root-only",))).recommend(
            "cadre:1", k=5, intent="想学根概论")
        assert ids(result)[0] == "course:root-only" and not result.items[0].intent_match
        assert "不在你要求学习的主题之内" in result.items[0].reason
        assert "都不接近" in result.note and result.to_dict()["说明"] == result.note
        assert result.items[1].gap_topic is not None  # the rest still fills gaps


class TestPathReachesTheTarget:
    def test_a_reachable_target_is_met(self, world):
        # 集中培训 met for the plan window; 48 certified online hours this year leave 2 h, which two online courses supply
        add_cadre(world[1], records=[{"date": "2026-09-28", "mode": "网络自学", "hours": 48.0, "platform": "platform:tiered"},
                                     concentrated("2025-06-01", 600.0, situation="脱产培训")])
        path = recommender(world).learning_path("cadre:1", today=dt.date(2026, 11, 15))
        assert path.targets == {"网络自学": 2.0}
        assert path.reaches_targets and path.planned["网络自学"] >= 2.0 and "可补齐" in path.note
        assert all(step.mode == "网络自学" for step in path.steps)

    def test_an_unreachable_target_says_why_and_names_an_open_class(self, world):
        add_cadre(world[1])
        path = recommender(world).learning_path("cadre:1", today=dt.date(2026, 11, 15))
        assert set(path.shortfalls) == {"网络自学", "集中培训"}
        assert "网络自学：你尚未学过、可向你推荐的已发布课程全部列入" in path.note
        assert [k.class_id for k in path.classes] == ["class:intro"] and path.classes[0].for_cadre
        assert "可报名参加组织安排的班次：『初任培训班』（初任培训，2026-12-07" in path.note
        assert path.shortfalls["集中培训"] == round(path.targets["集中培训"] - path.planned.get("集中培训", 0.0), 2)

    def test_no_open_class_is_said_too(self, world):
        add_cadre(world[1])
        path = recommender(world).learning_path("cadre:1", today=dt.date(2026, 12, 8))  # the class has started
        assert not path.classes and "目前没有尚未开班" in path.note
        assert f"（{'、'.join(world[0].vocab.concentrated_situations)}均计入" in path.note

    def test_only_classes_starting_this_year_or_next_are_named(self, world):
        add_cadre(world[1])
        next_year = recommender(world).learning_path("cadre:1", today=dt.date(2025, 11, 15))
        assert [k.class_id for k in next_year.classes] == ["class:intro"]  # starts 2026-12-07
        later = recommender(world).learning_path("cadre:1", today=dt.date(2024, 11, 15))
        assert "集中培训" in later.shortfalls and not later.classes and "目前没有尚未开班" in later.note


class RoleVectors:
    """Vectors where raw closeness to the cadre's job ties two 乙 courses and only specificity tells them apart.

    The cadre's role query (it names their group 领导班子成员) points at (1, 0); the one reference role — domain 金融监管
    alone — at (0, −1), so "beyond jobs in general" is (1, 1).  乙·金融 (0.6, 0.8) and 乙进阶 (0.6, −0.8) have the same
    cosine 0.6 with the cadre's query, but 乙·金融 is the one specific to this cadre's job.
    """

    def __init__(self, snap) -> None:
        self.matrix = np.zeros((snap.n_courses, 2), dtype=np.float32)
        self.matrix[snap.course_pos["course:b-fin"]] = (0.6, 0.8)
        self.matrix[snap.course_pos["course:b-adv"]] = (0.6, -0.8)

    def course_vectors(self) -> np.ndarray:
        return self.matrix

    def encode_query(self, text: str) -> np.ndarray:
        return np.array([1.0, 0.0] if "领导班子成员" in text else [0.0, -1.0], dtype=np.float32)

    def nearest(self, text: str, allowed_mask: np.ndarray, k: int) -> list[tuple[int, float]]:
        cosine = self.matrix @ self.encode_query(text)
        allowed = np.flatnonzero(allowed_mask)
        return [(int(i), float(cosine[i])) for i in allowed[np.argsort(-cosine[allowed], kind="stable")[:k]]]


class TestFitToTheJob:
    """Among near-equal candidates (within ``fit_band``), the course most specific to the cadre's job is taken."""

    @pytest.fixture
    def fit_world(self, store, ontology):
        snap = build(store, ontology, [course("course:b-fin", ["topic:b"], 3, rating=4.0, enrolments=1000, name="乙·金融")])
        add_cadre(store, records=[concentrated("2025-12-31", 8.0, course="course:a-basic")])  # 甲 covered: 乙 may lead
        return snap, store

    def first(self, world, band: float) -> str:
        config = RankConfig.from_rules(world[0].ontology.rules, role=0.3, fit_band=band)
        return recommender(world, search=RoleVectors(world[0]), ranking=config).recommend("cadre:1", k=3).items[0].item_id

    def test_the_score_decides_without_a_band(self, fit_world):
        assert self.first(fit_world, 0.0) == "course:b-adv"  # better rated and far more popular

    def test_within_the_band_the_course_specific_to_the_job_is_taken(self, fit_world):
        assert self.first(fit_world, 1.0) == "course:b-fin"

    def test_a_course_outside_the_band_is_not_taken_for_its_fit(self, fit_world):
        assert self.first(fit_world, 0.01) == "course:b-adv"

    def test_the_role_query_names_the_job_and_the_fit_is_beyond_jobs_in_general(self, fit_world):
        rec = recommender(fit_world, search=RoleVectors(fit_world[0]),
                          ranking=RankConfig.from_rules(fit_world[0].ontology.rules, role=0.3))
        role = rec.role(rec.profile("cadre:1"))
        assert role.text == "金融监管、领导班子成员、乙主题"  # 甲 is core and 丙 is the category's: neither names the job
        assert np.allclose(rec.mean_role(), [0.0, -1.0])
        pos = [fit_world[0].course_pos[c] for c in ("course:b-fin", "course:b-adv")]
        assert np.allclose(role.fit(np.array(pos)), [1.4, -0.2])

    def test_a_negative_band_is_refused(self, fit_world):
        with pytest.raises(InvalidRequest, match="fit_band"):
            RankConfig.from_rules(fit_world[0].ontology.rules, fit_band=-0.1)
