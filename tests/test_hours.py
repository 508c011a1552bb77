"""Hour crediting (学时互认, 注 1–2), compliance with projection, the 领导班子 rule and plausibility flags.

Every expected figure is worked out by hand from the rules in ``tests/rec_world.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import doctest

import pytest

from recommender import dates as dates_module
from recommender.learner import hours as hours_module

from recommender.learner.hours import (
    Credit,
    credit_record,
    estimate_credit,
    hour_report,
    leadership_compliance,
    plausibility_flags,
    project,
    rule_compliance,
)
from recommender.learner.profile import Record, fetch_profile
from tests.rec_world import add_cadre, build, concentrated, online

D = dt.date.fromisoformat


@pytest.fixture
def snap(store, ontology):
    return build(store, ontology)


def rec(mode: str = "网络自学", date: str = "2026-03-01", **kwargs) -> Record:
    return Record(id=kwargs.pop("id", "record:t"), date=D(date), mode=mode, **kwargs)


class TestOnlineCredit:
    @pytest.mark.parametrize(("minutes", "hours"), [(38, 1.0), (30, 1.0), (29, 0.5), (15, 0.5), (14, 0.25), (0, 0.25)])
    def test_tiers_by_minutes(self, snap, minutes, hours):
        credit = credit_record(rec(minutes=minutes, course="course:c-plain", platform="platform:tiered"), snap)
        assert credit.counted and credit.hours == hours

    def test_passed_test_adds_the_bonus(self, snap):
        credit = credit_record(rec(minutes=38, course="course:c-plain", platform="platform:tiered", test_passed=True), snap)
        assert credit.hours == 1.5
        assert "测试合格加 0.5 学时" in credit.reason

    @pytest.mark.parametrize(("minutes", "hours"), [(90, 2.0), (60, 1.33), (45, 1.0)])
    def test_minutes_per_class_hour(self, snap, minutes, hours):
        assert credit_record(rec(minutes=minutes, course="course:c-plain", platform="platform:per45"), snap).hours == hours

    def test_course_hours_rule_ignores_minutes(self, snap):
        credit = credit_record(rec(minutes=10, course="course:a1-online", platform="platform:course"), snap)
        assert credit.hours == 1.0

    def test_platform_taken_from_the_course_when_the_record_has_none(self, snap):
        assert credit_record(rec(minutes=38, course="course:c-plain"), snap).hours == 1.0

    def test_incomplete_study_earns_nothing(self, snap):
        credit = credit_record(rec(minutes=60, course="course:c-plain", platform="platform:tiered", completed=False), snap)
        assert (credit.hours, credit.counted) == (0.0, False)
        assert "未完成" in credit.reason

    def test_unrecognised_platform_earns_nothing_and_says_why(self, snap):
        credit = credit_record(rec(minutes=90, course="course:c-plain", platform="platform:app"), snap)
        assert (credit.hours, credit.counted) == (0.0, False)
        assert "商业App" in credit.reason and "未被组织人事部门认可" in credit.reason and "注 2" in credit.reason

    def test_no_platform_anywhere_earns_nothing(self, snap):
        credit = credit_record(rec(minutes=90, course="course:a-basic"), snap)
        assert not credit.counted and "平台" in credit.reason

    def test_platform_certified_totals_are_credited_by_the_platforms_rule(self, snap):
        # a quarterly total the platform has already credited: hours, no course, on a recognised platform
        tiered = credit_record(rec(hours=12.5, platform="platform:tiered"), snap)
        assert (tiered.hours, tiered.counted) == (12.5, True)
        assert "平台核定" in tiered.reason and "分档平台" in tiered.reason
        assert credit_record(rec(hours=7.0, platform="platform:per45"), snap).hours == 7.0

    def test_a_rule_that_does_not_accept_certified_totals_credits_nothing_and_says_so(self, snap):
        credit = credit_record(rec(hours=12.5, platform="platform:course"), snap)
        assert (credit.hours, credit.counted) == (0.0, False) and "certified_totals" in credit.reason

    def test_certified_totals_on_an_unrecognised_platform_or_unfinished_earn_nothing(self, snap):
        assert not credit_record(rec(hours=12.5, platform="platform:app"), snap).counted
        assert not credit_record(rec(hours=12.5, platform="platform:tiered", completed=False), snap).counted

    def test_unknown_mode_is_named(self, snap):
        credit = credit_record(rec(mode="自学"), snap)
        assert not credit.counted and "自学" in credit.reason


class TestConcentratedCredit:
    def test_a_situation_of_note_one_counts_its_hours_and_days(self, snap):
        credit = credit_record(rec("集中培训", hours=3.0, situation="中心组学习"), snap)
        assert (credit.hours, credit.days, credit.counted) == (3.0, 0.4, True)

    def test_days_only_convert_at_hours_per_day(self, snap):
        credit = credit_record(rec("集中培训", days=2.0, situation="脱产培训"), snap)
        assert (credit.hours, credit.days) == (15.0, 2.0)

    def test_a_class_without_situation_counts(self, snap):
        assert credit_record(rec("集中培训", hours=30.0, days=5.0, klass="class:k"), snap).counted

    def test_situation_outside_the_configured_list_does_not_count(self, snap):
        narrow = dataclasses.replace(snap, vocab=dataclasses.replace(snap.vocab, concentrated_situations=("脱产培训",)))
        credit = credit_record(rec("集中培训", hours=3.0, situation="集中宣讲"), narrow)
        assert not credit.counted and "注 1" in credit.reason

    def test_neither_situation_nor_class_does_not_count(self, snap):
        assert not credit_record(rec("集中培训", hours=3.0), snap).counted


def credited(*items: tuple[str, str, float, float]) -> list[tuple[Record, Credit]]:
    """(mode, date, hours, days) → records already credited."""
    return [(rec(mode, date, id=f"record:{i}"), Credit(hours, days, True, "")) for i, (mode, date, hours, days) in enumerate(items)]


def rule(snap, rule_id: str) -> dict:
    return next(r for r in snap.ontology.rules["hour_rules"] if r["id"] == rule_id)


class TestRuleCompliance:
    def test_year_rule_progress_shortfall_and_projection(self, snap):
        # 10 h by 1 July: 182 of 365 days elapsed → 10 × 365 / 182 = 20.05 at year end
        result = rule_compliance(rule(snap, "online-a"), credited(("网络自学", "2026-03-01", 10, 0)), snap.ontology.rules, D("2026-07-01"))
        assert result.earned_hours == 10.0
        assert result.progress == pytest.approx(0.2)
        assert result.shortfall == 40.0
        assert result.projected_hours == 20.05
        assert result.projected_shortfall == 29.95
        assert result.remaining_this_year == 40.0
        assert result.status == "未达标"

    def test_other_modes_other_years_and_the_future_are_ignored(self, snap):
        items = credited(("网络自学", "2025-12-31", 9, 0), ("集中培训", "2026-02-01", 9, 1), ("网络自学", "2026-08-01", 9, 0),
                         ("网络自学", "2026-06-30", 4, 0))
        result = rule_compliance(rule(snap, "online-a"), items, snap.ontology.rules, D("2026-07-01"))
        assert result.earned_hours == 4.0

    def test_plan_window_rule_projects_to_the_window_end(self, snap):
        # 220 h over 2023-01-01..2025-12-31 (1096 days of 1826) → 220 × 1826 / 1096 = 366.53; 330 h left over 3 years
        items = credited(("集中培训", "2023-06-01", 100, 10), ("集中培训", "2025-06-01", 120, 12))
        result = rule_compliance(rule(snap, "conc-a"), items, snap.ontology.rules, D("2025-12-31"))
        assert result.projected_hours == 366.53
        assert result.projected_shortfall == 183.47
        assert result.remaining_this_year == 110.0
        assert result.period_label == "规划期（2023—2027年）"

    def test_enough_days_meet_a_rule_given_in_hours_or_days(self, snap):
        items = credited(("集中培训", "2024-06-01", 100, 95))
        result = rule_compliance(rule(snap, "conc-a"), items, snap.ontology.rules, D("2025-01-01"))
        assert result.status == "已达标" and result.shortfall == 0.0 and result.progress == 1.0

    def test_not_met_yet_but_on_pace_reads_on_track(self, snap):
        # 30 h by 1 July: 30 × 365 / 182 = 60.16 projected ≥ 50 → 进度正常; 20 h projects to 40.11 → 未达标
        on_pace = rule_compliance(rule(snap, "online-a"), credited(("网络自学", "2026-03-01", 30, 0)), snap.ontology.rules, D("2026-07-01"))
        assert (on_pace.status, on_pace.met, on_pace.on_track, on_pace.shortfall) == ("进度正常", False, True, 20.0)
        behind = rule_compliance(rule(snap, "online-a"), credited(("网络自学", "2026-03-01", 20, 0)), snap.ontology.rules, D("2026-07-01"))
        assert (behind.status, behind.on_track) == ("未达标", False)
        year_end = rule_compliance(rule(snap, "online-a"), credited(("网络自学", "2026-03-01", 30, 0)), snap.ontology.rules, D("2026-12-31"))
        assert year_end.status == "未达标"  # at the period's end the pace is what was earned

    def test_unset_rule_is_reported_unset_never_guessed(self, snap):
        result = rule_compliance(rule(snap, "conc-c"), credited(("集中培训", "2026-02-01", 9, 1)), snap.ontology.rules, D("2026-07-01"))
        assert result.status == "未设置"
        assert (result.progress, result.shortfall, result.projected_shortfall, result.remaining_this_year) == (None, None, None, None)
        assert result.to_dict()["要求学时"] == "未设置"
        assert result.earned_hours == 9.0

    def test_docstring_example(self):
        assert doctest.testmod(hours_module).failed == 0

    def test_the_years_helpers_examples(self):
        result = doctest.testmod(dates_module)
        assert result.attempted == 2 and result.failed == 0

    def test_projection_is_the_pace_so_far(self):
        assert project(10, D("2026-01-01"), D("2026-12-31"), D("2026-01-10")) == pytest.approx(10 * 365 / 10)
        assert project(10, D("2026-01-01"), D("2026-12-31"), D("2027-03-01")) == 10
        assert project(10, D("2026-01-01"), D("2026-12-31"), D("2025-12-01")) == 10


def lead_rule(snap) -> dict:
    return snap.ontology.rules["leadership_rules"][0]


def credit_all(records, snap):
    return [(r, credit_record(r, snap)) for r in records]


class TestLeadership:
    def test_a_class_at_a_party_school_is_systematic_training(self, snap):
        records = credit_all([rec("集中培训", "2024-05-10", hours=37.5, days=5.0, klass="class:k")], snap)
        result = leadership_compliance(lead_rule(snap), records, snap, D("2026-11-15"))
        assert result.last_date == D("2024-05-10") and result.last_what == "党校进修班"
        assert result.due_by == D("2027-05-10") and not result.overdue
        assert result.days_in_window == 5.0
        assert "少于 60 天" in result.status

    def test_more_than_three_years_ago_is_overdue(self, snap):
        records = credit_all([rec("集中培训", "2022-06-01", hours=450.0, days=60.0, klass="class:k")], snap)
        result = leadership_compliance(lead_rule(snap), records, snap, D("2026-11-15"))
        assert result.overdue and "超过 3 年" in result.status
        assert result.days_in_window == 60.0

    def test_a_study_session_or_another_institution_is_not_systematic(self, snap):
        records = credit_all([rec("集中培训", "2025-01-01", hours=3.0, situation="中心组学习", course="course:a-basic"),
                              rec("集中培训", "2025-02-01", hours=30.0, situation="脱产培训", course="course:b-adv")], snap)
        result = leadership_compliance(lead_rule(snap), records, snap, D("2026-11-15"))
        assert result.last_date is None and "尚无系统培训记录" in result.status

    def test_full_time_course_at_a_party_school_counts(self, snap):
        records = credit_all([rec("集中培训", "2025-01-01", hours=450.0, situation="脱产培训", course="course:a-basic")], snap)
        result = leadership_compliance(lead_rule(snap), records, snap, D("2026-11-15"))
        assert result.last_date == D("2025-01-01") and result.days_in_window == 60.0 and result.status == "已达标"

    def test_the_window_in_the_labels_is_the_rules(self, snap):
        records = credit_all([rec("集中培训", "2022-06-01", hours=450.0, days=60.0, klass="class:k")], snap)
        result = leadership_compliance({**lead_rule(snap), "window_years": 3}, records, snap, D("2026-11-15"))
        assert result.days_in_window == 0.0 and "近 3 年累计 0 天，少于 60 天" in result.status
        assert result.to_dict()["近 3 年累计天数"] == 0.0
        assert "近 5 年累计天数" in leadership_compliance(lead_rule(snap), records, snap, D("2026-11-15")).to_dict()


class TestPlausibility:
    def test_too_many_online_hours_in_one_day(self, snap):
        records = [rec(minutes=m, course="course:c-plain", id=f"record:{i}") for i, m in enumerate((200, 200, 170))]
        flags = plausibility_flags(records, snap)
        daily = [f for f in flags if f.kind == "daily_online_hours"]
        assert len(daily) == 1 and daily[0].value == 9.5 and len(daily[0].record_ids) == 3

    def test_minutes_far_above_the_course_length(self, snap):
        flags = plausibility_flags([rec(minutes=90, course="course:c-plain"), rec(minutes=60, course="course:c-case", id="record:2")], snap)
        assert [(f.kind, f.record_ids, f.value) for f in flags] == [("minutes_ratio", ("record:t",), 2.0)]


class TestReport:
    def test_report_applies_the_cadres_rules_only(self, store, ontology):
        snap = build(store, ontology)
        add_cadre(store, records=[
            online("2026-02-01", "course:c-plain", 40, "platform:tiered", testPassed=True),
            online("2026-02-02", "course:c-case", 40, "platform:app"),
            concentrated("2026-03-01", 3.0),
            concentrated("2024-05-10", 37.5, situation=None, days=5.0, klass="class:k"),
        ])
        report = hour_report(fetch_profile(store, snap, "cadre:1"), snap, D("2026-07-01"))
        assert [r.rule_id for r in report.rules] == ["online-a", "conc-a"]
        assert report.rule("网络自学").earned_hours == 1.5
        assert report.rule("集中培训").earned_hours == 40.5
        assert [u.record_id for u in report.uncredited] == ["record:1-002"]
        assert report.leadership[0].last_date == D("2024-05-10")
        data = report.to_dict()
        assert set(data) >= {"学时要求", "领导班子培训要求", "可疑学习行为", "未认定学时的记录"}

    def test_certified_totals_count_towards_the_yearly_rule(self, store, ontology):
        snap = build(store, ontology)
        add_cadre(store, records=[{"date": f"2026-{m:02d}-28", "mode": "网络自学", "hours": 12.5, "platform": "platform:tiered"}
                                  for m in (3, 6, 9)] + [online("2026-10-01", "course:c-plain", 40, "platform:tiered")])
        report = hour_report(fetch_profile(store, snap, "cadre:1"), snap, D("2026-11-15"))
        online_rule = report.rule("网络自学")
        assert online_rule.earned_hours == 38.5  # 3 × 12.5 certified + 1 for the 40-minute course
        assert online_rule.status == "未达标"  # 38.5 × 365 / 319 = 44.05 projected, below 50
        assert not report.uncredited

    def test_path_estimate_uses_the_courses_platform(self, snap):
        assert estimate_credit(snap, snap.course_pos["course:c-plain"]) == ("网络自学", 1.0)
        assert estimate_credit(snap, snap.course_pos["course:b-adv"]) == ("集中培训", 3.0)


class TestSamplePersonas:
    """The generated sample cadres read as their hidden personas meant (issue 12: none read 未达标 when on track)."""

    def test_on_track_cadres_read_on_track_and_behind_ones_behind(self, store, ontology, tmp_path):
        import random

        from kg.build import build_graph
        from kg.config import REPO_ROOT
        from corpora.cadres import AS_OF, CadreGenerator, read_catalogue, write_cadres
        from recommender.catalogue.snapshot import load_snapshot

        sample = REPO_ROOT / "corpora" / "sample"
        generator = CadreGenerator(ontology, read_catalogue([sample]))
        (tmp_path / "gen").mkdir()
        with (tmp_path / "gen" / "cadres.jsonl").open("w", encoding="utf-8") as cadres, \
                (tmp_path / "gen" / "records.jsonl").open("w", encoding="utf-8") as records:
            write_cadres(generator, 60, cadres, records)
        build_graph(store, [sample, tmp_path / "gen"], ontology)
        snap = load_snapshot(store, ontology)
        seen: dict[str, set[str]] = {"on_track": set(), "behind": set()}
        for index in range(60):
            persona = generator._cadre(index, random.Random(f"{generator.seed}:{index}")).persona
            if persona in seen:
                report = hour_report(fetch_profile(store, snap, f"cadre:{index + 1:07d}"), snap, AS_OF)
                seen[persona].add(report.rule("网络自学").status)
        assert seen["on_track"] and seen["on_track"] <= {"已达标", "进度正常"}
        assert seen["behind"] == {"未达标"}
