"""Requirements merging, decayed topic coverage and weighted gaps, pinned on the hand-built world.

Dates are chosen so the decay is exact: 2022-01-01 → 2026-01-01 is 1461 days, four years of 365.25 days,
i.e. two half-lives at the world's half-life of two years (weight ¼) and one at four years (weight ½).
Coverage is one figure (decayed, rounded): the gap test, the reason, the bar and the map all read it.
"""

from __future__ import annotations

import datetime as dt
import doctest

import pytest

from recommender.learner import gaps as gaps_module

from recommender.errors import InvalidRequest
from recommender.learner.gaps import CoverageConfig, analyse_gaps, decay, topic_coverage
from recommender.learner.profile import Record, fetch_profile, merge_requirements
from recommender.service import Recommender
from tests.rec_world import REQUIREMENTS, add_cadre, build, concentrated, online

D = dt.date.fromisoformat
TODAY = D("2026-01-01")


@pytest.fixture
def snap(store, ontology):
    return build(store, ontology)


def config(snap, **overrides) -> CoverageConfig:
    return CoverageConfig.from_rules(snap.ontology.rules, **overrides)


def cov(snap, records, cfg=None, today=TODAY):
    coverage = topic_coverage(records, snap, today, cfg or config(snap))
    return {t: round(float(coverage[i]), 6) for i, t in enumerate(snap.topic_ids)}


def conc(date: str, course: str, hours: float, **kw) -> Record:
    return Record(id=kw.pop("id", f"record:{course}:{date}"), date=D(date), mode="集中培训", situation="中心组学习",
                  hours=hours, course=course, **kw)


class TestDecay:
    def test_weights(self):
        assert decay(0, 2.0) == 1.0
        assert decay(1461, 2.0) == pytest.approx(0.25)
        assert decay(1461, 4.0) == pytest.approx(0.5)
        assert decay(-30, 2.0) == 1.0

    def test_docstring_example(self):
        assert doctest.testmod(gaps_module).failed == 0

    def test_half_life_must_be_positive(self, snap):
        with pytest.raises(InvalidRequest, match="half_life_years"):
            config(snap, half_life_years=0)

    def test_every_weight_comes_from_the_rules_and_a_missing_one_is_named(self, snap):
        assert config(snap).source_weights == snap.ontology.rules["coverage"]["source_weights"]
        rules = {**snap.ontology.rules, "coverage": {k: v for k, v in snap.ontology.rules["coverage"].items()
                                                     if k != "source_weights"}}
        with pytest.raises(InvalidRequest, match="source_weights"):
            CoverageConfig.from_rules(rules)


class TestCoverage:
    def test_hours_decay_and_flow_to_broader_topics_only(self, snap):
        coverage = cov(snap, [conc("2022-01-01", "course:a-basic", 2.0)])
        assert coverage["topic:a"] == 0.5 and coverage["topic:root"] == 0.5
        assert coverage["topic:a1"] == 0.0 and coverage["topic:b"] == 0.0

    def test_half_life_is_configurable(self, snap):
        coverage = cov(snap, [conc("2022-01-01", "course:a-basic", 2.0)], config(snap, half_life_years=4.0))
        assert coverage["topic:a"] == 1.0

    def test_a_course_counts_once_for_a_broader_topic_it_reaches_twice(self, snap):
        coverage = cov(snap, [conc("2026-01-01", "course:ab-combo", 2.0)])
        assert (coverage["topic:a"], coverage["topic:b"], coverage["topic:root"]) == (2.0, 2.0, 2.0)

    def test_online_records_count_the_course_length_not_the_minutes(self, snap):
        record = Record(id="record:o", date=TODAY, mode="网络自学", minutes=200, course="course:a1-online")
        coverage = cov(snap, [record])
        assert (coverage["topic:a1"], coverage["topic:a"]) == (1.0, 1.0)

    def test_a_class_spreads_its_hours_over_its_courses_by_length(self, snap):
        record = Record(id="record:k", date=TODAY, mode="集中培训", hours=10.0, days=2.0, klass="class:k")
        coverage = cov(snap, [record])
        assert (coverage["topic:a"], coverage["topic:b"], coverage["topic:root"]) == (4.0, 6.0, 10.0)

    def test_incomplete_and_future_records_count_nothing(self, snap):
        coverage = cov(snap, [conc("2025-06-01", "course:a-basic", 2.0, completed=False),
                                 conc("2026-02-01", "course:a-basic", 2.0)])
        assert coverage["topic:a"] == 0.0

    def test_coverage_is_rounded_to_the_configured_places(self, snap):
        # 3 h on 2025-12-01 (31 days ago): 3 × 0.5 ** (31 / 730.5) = 2.9127… → 2.91 at two places, 2.9 at one
        records = [conc("2025-12-01", "course:a-basic", 3.0)]
        assert cov(snap, records)["topic:a"] == 2.91
        assert cov(snap, records, config(snap, decimals=1))["topic:a"] == 2.9


class TestRequirements:
    def test_essential_beats_optional_and_the_largest_threshold_wins(self, snap):
        names = {"domain:fin": "金融监管", "group:g": "领导班子成员", "category:x": "甲类干部", "topic:a": "甲主题"}
        merged = {r.topic_id: r for r in merge_requirements(REQUIREMENTS, "category:x", ["group:g"], "domain:fin", names,
                                                             {"PositionDomain": "岗位领域"}, {})}
        a = merged["topic:a"]
        assert (a.level, a.hours, a.section, a.source) == ("essential", 6.0, "二（一）", "all_cadres")
        assert (merged["topic:b"].level, merged["topic:b"].hours, merged["topic:b"].basis) == ("essential", 6.0, "岗位领域：金融监管")
        assert (merged["topic:c"].level, merged["topic:c"].hours) == ("optional", 2.0)
        assert list(merged) == ["topic:a", "topic:b", "topic:c"]

    def test_only_the_roles_that_apply(self, snap):
        merged = merge_requirements(REQUIREMENTS, "category:y", [], None, {}, {}, {})
        assert [r.topic_id for r in merged] == ["topic:a"]
        assert merged[0].hours == 4.0


class TestGaps:
    def test_weights_order_and_reasons(self, store, ontology):
        snap = build(store, ontology)
        add_cadre(store, records=[concentrated("2026-01-01", 2.0, course="course:a-basic")])
        report = analyse_gaps(fetch_profile(store, snap, "cadre:1"), snap, TODAY)
        # b: essential (1.0) × priority 2 (0.85) × (1 − 0/6); a: 1.0 × 1.0 × (1 − 2/6); c: optional 0.5 × priority 3 (0.7)
        assert [(g.topic_id, round(g.weight, 4)) for g in report.gaps] == [
            ("topic:b", 0.85), ("topic:a", 0.6667), ("topic:c", 0.35)]
        assert report.gap("topic:b").reason == "你所在的岗位领域（金融监管）要求学习『乙主题』，有效学时 0 / 6 学时（0%）（规划 四（一））"
        assert report.gap("topic:a").reason == "规划要求全体干部学习『甲主题』，有效学时 2 / 6 学时（33%）（规划 二（一））"
        assert report.gap("topic:c").reason.startswith("你所属的干部类别（甲类干部）要求学习『丙主题』")
        assert "每过 2 年计一半" in report.to_dict()["覆盖说明"]

    def test_covered_topic_is_no_gap(self, store, ontology):
        snap = build(store, ontology)
        add_cadre(store, records=[concentrated("2025-12-01", 7.0, course="course:ab-combo")])
        report = analyse_gaps(fetch_profile(store, snap, "cadre:1"), snap, TODAY)
        assert [g.topic_id for g in report.gaps] == ["topic:c"]
        assert {t.topic_id: t.is_gap for t in report.topics} == {"topic:a": False, "topic:b": False, "topic:c": True}

    def test_learning_map_groups_required_topics_by_branch(self, store, ontology):
        snap = build(store, ontology)
        add_cadre(store, records=[online("2026-01-01", "course:c-plain", 40, "platform:tiered")])
        learning_map = Recommender(snap, store, today=TODAY).learning_map("cadre:1")
        assert {b: [t.topic_id for t in items] for b, items in learning_map.branches.items()} == {
            "根主题": ["topic:a", "topic:b"], "丙主题": ["topic:c"]}
        topic_c = learning_map.branches["丙主题"][0]
        assert topic_c.ratio == pytest.approx(0.5)
        assert learning_map.to_dict()["板块"]["丙主题"][0]["覆盖率"] == 0.5


class TestOneCoverageFigure:
    """The gap test, the reason's figures, the bar and the learning map agree on one decayed, rounded number."""

    def test_at_the_threshold_is_no_gap_even_after_a_little_decay(self, store, ontology):
        snap = build(store, ontology)
        cfg = CoverageConfig.from_rules(snap.ontology.rules, decimals=1)
        # 2 h of 丙 ten days ago: 2 × 0.5 ** (10 / 730.5) = 1.981 → 2.0 at one place, the threshold of 2 h
        add_cadre(store, records=[online("2025-12-22", "course:c-plain", 90, "platform:per45"),
                                  online("2025-12-22", "course:c-case", 90, "platform:per45")])
        report = analyse_gaps(fetch_profile(store, snap, "cadre:1"), snap, TODAY, cfg)
        topic_c = next(t for t in report.topics if t.topic_id == "topic:c")
        assert (topic_c.coverage, topic_c.threshold, topic_c.is_gap, topic_c.percent) == (2.0, 2.0, False, 100)
        assert report.gap("topic:c") is None and report.gap_weights[snap.topic_pos["topic:c"]] == 0

    def test_a_topic_studied_long_ago_is_a_gap_again(self, store, ontology):
        snap = build(store, ontology)
        add_cadre(store, records=[concentrated("2022-01-01", 8.0, course="course:ab-combo")])  # 8 h four years ago → 2 h
        report = analyse_gaps(fetch_profile(store, snap, "cadre:1"), snap, TODAY)
        b = report.gap("topic:b")
        assert (b.coverage, b.percent) == (2.0, 33)
        assert "有效学时 2 / 6 学时（33%）" in b.reason

    def test_the_reason_quotes_the_bar_and_the_map_shows_it(self, store, ontology):
        snap = build(store, ontology)
        add_cadre(store, records=[concentrated("2025-07-01", 2.5, course="course:a-basic")])
        recommender = Recommender(snap, store, today=TODAY)
        gap = recommender.gaps("cadre:1").gap("topic:a")
        bar = round(100 * gap.to_dict()["覆盖率"])
        assert f"有效学时 {gap.coverage:g} / 6 学时（{gap.percent}%）" in gap.to_dict()["说明"]
        assert abs(bar - gap.percent) <= 1 and gap.to_dict()["覆盖百分比"] == gap.percent
        on_map = next(t for t in recommender.learning_map("cadre:1").branches["根主题"] if t.topic_id == "topic:a")
        assert (on_map.coverage, on_map.percent) == (gap.coverage, gap.percent)


class TestWhereARequirementComesFrom:
    def test_source_weights_put_the_job_first(self, store, ontology):
        snap = build(store, ontology)
        add_cadre(store, groups=(), records=[])  # 甲 from all cadres only, 乙 from the domain, 丙 from the category
        cfg = CoverageConfig.from_rules(snap.ontology.rules,
                                        source_weights={"domains": 1.0, "groups": 0.9, "categories": 0.75, "all_cadres": 0.5})
        report = analyse_gaps(fetch_profile(store, snap, "cadre:1"), snap, TODAY, cfg)
        # b: 1.0 × 1.0 × 0.85 × 1; a: 0.5 × 1.0 × 1.0 × 1; c: 0.75 × 0.5 × 0.7 × 1
        assert [(g.topic_id, round(g.weight, 4)) for g in report.gaps] == [
            ("topic:b", 0.85), ("topic:a", 0.5), ("topic:c", 0.2625)]
        assert [(g.topic_id, g.requirement.side, g.side_label) for g in report.gaps] == [
            ("topic:b", "job", "岗位所需"), ("topic:a", "core", "全体干部必学"), ("topic:c", "job", "岗位所需")]

    def test_a_topic_on_a_core_branch_stays_core_whoever_else_asks_it(self, snap):
        names = {"group:g": "领导班子成员", "topic:a": "甲主题"}
        merged = {r.topic_id: r for r in merge_requirements(REQUIREMENTS, "category:x", ["group:g"], None, names,
                                                             {"TargetGroup": "培训对象"}, {}, {"topic:a", "topic:a1"})}
        assert merged["topic:a"].sources == ("groups", "all_cadres") and merged["topic:a"].side == "core"
        assert merged["topic:a"].side_label == "全体干部必学"
        off_branch = merge_requirements(REQUIREMENTS, "category:x", ["group:g"], None, names, {}, {})
        assert next(r for r in off_branch if r.topic_id == "topic:a").side == "job"  # asked by the group too
        only_all = merge_requirements(REQUIREMENTS, "category:y", [], None, names, {}, {})
        assert [(r.topic_id, r.side) for r in only_all] == [("topic:a", "core")]

    def test_a_cadre_with_no_position_domain_gets_category_and_group_requirements(self, store, ontology):
        snap = build(store, ontology)
        add_cadre(store, domain=None)
        profile = fetch_profile(store, snap, "cadre:1")
        assert profile.domain_id is None and profile.domain_name == ""
        assert [r.topic_id for r in profile.requirements] == ["topic:a", "topic:c"]
