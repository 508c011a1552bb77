"""Teaching and course-update indicators on a hand-built catalogue, each value worked out by hand.

Institution inst:city (党校, 市级) holds in 2025春 a main party-spirit class K1 = c1 c2 c3 c4 (12 h) and an
ordinary class K2 = c1 c5 (7 h); in 2025秋 a main class K3 = c3.  inst:prov (党校, 省级) holds the main
class KP in 2025 and runs a provincial platform.
"""

from __future__ import annotations

import datetime as dt

import pytest

from recommender.analytics.errors import InputError
from recommender.analytics.indicators import parse_period, teaching_indicators
from recommender.analytics.rules import Scope, teaching_rules
from recommender.catalogue.rows import Course, Institution, Platform, TrainingClass, topics_from_ontology
from recommender.catalogue.snapshot import CatalogueSnapshot

THEORY, POLITICAL, COMPETENCE = "topic:marxism", "topic:history", "topic:financial-risk"
D = dt.date


def course(cid: str, hours: float, topics: tuple[str, ...], **kw) -> Course:
    base = dict(course_type="专题课", delivery_mode="面授", teaching_method=("讲授",), lecturer_type="专职教师",
                institution="inst:city", date_created=D(2020, 1, 1), date_modified=D(2020, 1, 1), status="已发布")
    base.update(kw)
    return Course(cid, f"课程{cid}", hours, topics, **base)


@pytest.fixture(scope="module")
def catalogue() -> CatalogueSnapshot:
    courses = [
        course("c1", 4, (THEORY,)),
        course("c2", 2, (POLITICAL,), course_type="案例课", teaching_method=("案例式",), lecturer_type="领导干部", is_case=True),
        course("c3", 4, (COMPETENCE,), course_type="网络课程", delivery_mode="网络", teaching_method=("研讨式",),
               lecturer_type="专家学者"),
        course("c4", 2, (THEORY, COMPETENCE), course_type="现场教学", teaching_method=("现场教学", "体验式"),
               lecturer_type="基层干部"),
        course("c5", 3, (POLITICAL,)),
        course("c6", 3, (COMPETENCE,), lecturer_type="领导干部"),
        course("c7", 9, (COMPETENCE,), lecturer_type="领导干部", status="草稿"),
        course("c8", 2, (THEORY,), institution="inst:prov", date_modified=D(2025, 3, 1)),
        course("c9", 2, (THEORY,), institution="inst:prov", date_modified=D(2022, 6, 1)),
        course("c10", 2, (THEORY,), institution="inst:prov", date_created=D(2025, 5, 1), date_modified=D(2025, 5, 1)),
        course("c11", 2, (THEORY,), institution="inst:prov", date_modified=D(2024, 6, 1)),
        course("c12", 2, (THEORY,), institution="inst:prov", platform="platform:prov", delivery_mode="网络",
               date_created=D(2025, 2, 1), date_modified=D(2025, 2, 1)),
        course("c13", 50, (THEORY,), institution="inst:prov", platform="platform:prov", status="审核中",
               date_created=D(2025, 2, 1), date_modified=D(2025, 2, 1)),
        course("c14", 10, (THEORY,), institution="inst:prov", platform="platform:prov",
               date_created=D(2024, 2, 1), date_modified=D(2024, 2, 1)),
    ]
    classes = [
        TrainingClass("k1", "主体班", "inst:city", "2025春", ("c1", "c2", "c3", "c4"), is_main_class=True,
                      is_party_spirit_class=True),
        TrainingClass("k2", "专题班", "inst:city", "2025春", ("c1", "c5")),
        TrainingClass("k3", "主体班秋", "inst:city", "2025秋", ("c3",), is_main_class=True),
        TrainingClass("kp", "省委党校主体班", "inst:prov", "2025秋", ("c8", "c9", "c10", "c11"), is_main_class=True),
    ]
    return CatalogueSnapshot.from_rows(
        topics=topics_from_ontology(),
        institutions=[
            Institution("inst:city", "某市委党校", "党校（行政学院）", "市"),
            Institution("inst:county", "某县委党校", "党校（行政学院）", "县"),
            Institution("inst:prov", "某省委党校", "党校（行政学院）", "省"),
        ],
        platforms=[Platform("platform:prov", "某省干部网络学院", "省", "inst:prov"),
                   Platform("platform:city", "某市平台", "市", "inst:city")],
        courses=courses,
        classes=classes,
    )


def by_id(report) -> dict:
    return {r.id: r for r in report.results}


class TestTeachingShares:
    def test_each_share_for_a_semester(self, catalogue):
        results = by_id(teaching_indicators(catalogue, "inst:city", "2025春", today=D(2025, 7, 1)))
        # all classes: 19 h; theory/political hours 4+2+1 (c4 half) in K1, 4+3 in K2 = 14
        assert results["theory-party-share"].value == pytest.approx(14 / 19)
        assert results["theory-party-share"].passed is True
        assert results["party-spirit-share"].value == pytest.approx(5 / 19)
        # party-spirit classes (K1): 专题课/案例课 face to face = c1 + c2 = 6 of 12, exactly the 50 % threshold
        assert results["classroom-share"].value == pytest.approx(0.5)
        assert results["classroom-share"].passed is True
        # main classes (K1): leader lecturers c2 = 2 of 12
        assert results["leader-lecturer-share"].value == pytest.approx(2 / 12)
        assert results["leader-lecturer-share"].passed is False
        assert results["case-teaching-share"].value == pytest.approx(2 / 12)
        assert results["case-teaching-share"].passed is True
        assert results["interactive-share"].value == pytest.approx(6 / 12)
        assert results["theory-party-share"].classes == ("k1", "k2")
        assert results["leader-lecturer-share"].classes == ("k1",)

    def test_a_year_takes_both_semesters(self, catalogue):
        results = by_id(teaching_indicators(catalogue, "inst:city", "2025"))
        # main classes K1 + K3: 16 h, leader hours 2
        assert results["leader-lecturer-share"].value == pytest.approx(2 / 16)
        assert results["leader-lecturer-share"].classes == ("k1", "k3")

    def test_movers_are_ranked_by_their_effect(self, catalogue):
        leader = by_id(teaching_indicators(catalogue, "inst:city", "2025春"))["leader-lecturer-share"]
        removals = [m for m in leader.movers if m.action == "移除"]
        # effect = share − share without the course: c2 1/6 − 0/10; c1, c3 1/6 − 2/8; c4 1/6 − 2/10
        assert [m.course_id for m in removals] == ["c2", "c1", "c3", "c4"]
        assert removals[0].effect == pytest.approx(1 / 6)
        assert removals[1].effect == pytest.approx(1 / 6 - 1 / 4)
        additions = [m for m in leader.movers if m.action == "加入"]
        # c6 (leader, 3 h, published) lifts it to 5/15; c7 is a draft and is not offered
        assert [m.course_id for m in additions] == ["c6"]
        assert additions[0].effect == pytest.approx(5 / 15 - 2 / 12)

    def test_passing_indicators_propose_no_additions(self, catalogue):
        share = by_id(teaching_indicators(catalogue, "inst:city", "2025春"))["theory-party-share"]
        assert all(m.action == "移除" for m in share.movers)

    def test_out_of_scope_institution_is_not_judged(self, catalogue):
        results = by_id(teaching_indicators(catalogue, "inst:county", "2025春"))
        share = results["theory-party-share"]
        assert share.applies is False and share.passed is None and share.status == "不适用"
        assert share.scope == "党校（行政学院）；市级以上；全部班次"
        assert results["leader-lecturer-share"].applies is True
        assert results["leader-lecturer-share"].value is None and results["leader-lecturer-share"].status == "无数据"


class TestUpdateIndicators:
    def test_update_rate_counts_courses_new_or_revised_that_year(self, catalogue):
        rate = by_id(teaching_indicators(catalogue, "inst:prov", "2025秋"))["main-class-update-rate"]
        assert rate.applies is True
        assert (rate.numerator, rate.denominator) == (2.0, 4.0)
        assert rate.value == pytest.approx(0.5) and rate.passed is True
        # the stalest courses are the ones to revise first
        assert [m.course_id for m in rate.movers] == ["c9", "c11"]
        assert rate.scope == "党校（行政学院）、干部学院、党性教育干部学院；省级以上；主体班次"

    def test_update_rate_does_not_apply_to_a_city_school(self, catalogue):
        rate = by_id(teaching_indicators(catalogue, "inst:city", "2025"))["main-class-update-rate"]
        assert rate.applies is False and rate.passed is None

    def test_online_additions_sum_published_hours_created_that_year(self, catalogue):
        online = by_id(teaching_indicators(catalogue, "inst:prov", "2025"))["online-additions"]
        assert online.value == pytest.approx(2.0)  # c12 only: c13 is not published, c14 is from 2024
        assert online.passed is False
        assert [m.course_id for m in online.movers] == ["c12"]
        assert online.scope == "省级以上"

    def test_online_additions_need_a_platform_in_scope(self, catalogue):
        online = by_id(teaching_indicators(catalogue, "inst:city", "2025"))["online-additions"]
        assert online.applies is False and online.value is None


class TestInputs:
    @pytest.mark.parametrize("text, year, semester", [("2025春", 2025, "2025春"), ("2024秋", 2024, "2024秋"), ("2026", 2026, None)])
    def test_periods(self, text, year, semester):
        period = parse_period(text)
        assert (period.year, period.semester) == (year, semester)

    @pytest.mark.parametrize("text", ["2025夏", "25春", "春季", ""])
    def test_bad_period_names_the_expected_form(self, text):
        with pytest.raises(InputError, match="2025春"):
            parse_period(text)

    def test_unknown_institution(self, catalogue):
        with pytest.raises(InputError, match="inst:nowhere"):
            teaching_indicators(catalogue, "inst:nowhere", "2025春")

    def test_every_rule_of_rules_yaml_is_reported(self, catalogue, ontology):
        ids = [r.id for r in teaching_indicators(catalogue, "inst:city", "2025春").results]
        expected = [r["id"] for r in ontology.rules["teaching_indicators"] + ontology.rules["update_indicators"]]
        assert ids == expected

    def test_rules_with_unknown_keys_are_rejected(self):
        from recommender.analytics.errors import RuleError

        bad = {"teaching_indicators": [{"id": "x", "name": "某指标", "threshold": 0.5, "scope": {"classes": "all"},
                                        "numerator": {"lecturer_type": ["领导干部"]}}]}
        with pytest.raises(RuleError, match="lecturer_type"):
            teaching_rules(bad)

    def test_scope_labels(self):
        assert Scope(levels=("中央", "省")).label(with_classes=False) == "省级以上"
        assert Scope(levels=("中央", "省", "市", "县"), classes="party_spirit").label() == "各级；党性教育班次"
        assert Scope(levels=("市", "县")).label(with_classes=False) == "市级、县级"
