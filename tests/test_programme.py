"""Class programme builder on hand-built cases: the exact choice, flags, filters and the infeasible story.

A city party school (党校, 市级) plans a 专题班 that is neither main nor party-spirit, so two indicators
apply: theory + party spirit ≥ 70 % and party spirit ≥ 20 % of hours.  Courses differ only in hours,
topic branch and expert score, so the quality objective ranks programmes by Σ hours × expert score.
"""

from __future__ import annotations

import datetime as dt

import pytest

from kg.ontology import load_ontology
from recommender.analytics.errors import InputError
from recommender.analytics.programme import Locality, ProgrammeRequest, build_programme
from recommender.catalogue.rows import Course, DemonstrationSite, Institution, TrainingClass, topics_from_ontology
from recommender.catalogue.snapshot import CatalogueSnapshot

THEORY, POLITICAL, COMPETENCE = "topic:marxism", "topic:history", "topic:financial-risk"
SAME_DAY = dt.date(2025, 1, 1)


def course(cid: str, hours: float, topic: str, expert: float, **kw) -> Course:
    base = dict(course_type="专题课", delivery_mode="面授", teaching_method=("讲授",), lecturer_type="专职教师",
                institution="inst:city", date_created=SAME_DAY, date_modified=SAME_DAY, expert_score=expert,
                status="已发布")
    base.update(kw)
    return Course(cid, f"课程{cid}", hours, (topic,), **base)


@pytest.fixture(scope="module")
def catalogue() -> CatalogueSnapshot:
    courses = [
        course("t1", 4, THEORY, 90), course("t2", 3, THEORY, 80),
        course("p1", 2, POLITICAL, 70), course("p2", 3, POLITICAL, 60),
        course("x1", 3, COMPETENCE, 99), course("x2", 1, COMPETENCE, 95),
        course("x3", 1, COMPETENCE, 100, audience_category=("category:county-leader",)),
        course("d1", 1, POLITICAL, 100, status="草稿"),
    ]
    classes = [TrainingClass(f"k{i}", "进修班", "inst:city", "2025春", ("t1",), class_type="进修班", is_main_class=True)
               for i in range(3)]
    classes.append(TrainingClass("k9", "进修班", "inst:city", "2025春", ("t1",), class_type="进修班"))
    return CatalogueSnapshot.from_rows(
        topics=topics_from_ontology(),
        institutions=[Institution("inst:city", "某市委党校", "党校（行政学院）", "市")],
        courses=courses,
        classes=classes,
    )


def request(**kw) -> ProgrammeRequest:
    base = dict(institution_id="inst:city", class_type="专题班", total_hours=10, is_main_class=False,
                is_party_spirit_class=False, audience_categories=("category:township-leader",))
    base.update(kw)
    return ProgrammeRequest(**base)


AS_OF = dt.date(2026, 1, 1)


class TestChoice:
    def test_exact_optimum_by_hand(self, catalogue):
        # 10 h with theory+political ≥ 7 h and political ≥ 2 h.  Σ h·expert: {x1,t1,p2} = 837 beats
        # {x2,t1,t2,p1} = 835, {t1,t2,p2} = 780, {x2,t1,p1,p2} = 775; x3 is for another audience, d1 a draft.
        result = build_programme(catalogue, request(), as_of=AS_OF)
        assert result.feasible and result.proven_optimal
        assert sorted(c.id for c in result.courses) == ["p2", "t1", "x1"]
        assert result.total_hours == 10
        shares = {i.id: i.value for i in result.indicators}
        assert shares == {"theory-party-share": pytest.approx(0.7), "party-spirit-share": pytest.approx(0.3)}
        assert all(i.passed for i in result.indicators)

    def test_programme_is_in_plan_order(self, catalogue):
        result = build_programme(catalogue, request(), as_of=AS_OF)
        assert [c.id for c in result.courses] == ["t1", "p2", "x1"]  # theory, political, competence

    def test_required_topic_and_course(self, catalogue):
        # p1 forced in: best completion is x2 t1 t2 p1 (835); {x1 t1 p1 x2} breaks the 70 % share
        result = build_programme(catalogue, request(required_courses=("p1",)), as_of=AS_OF)
        assert sorted(c.id for c in result.courses) == ["p1", "t1", "t2", "x2"]
        # 5 h covering theory: t2 + p1 is the only mix that also keeps party spirit ≥ 20 %
        result = build_programme(catalogue, request(topics=("topic:theory",), total_hours=5), as_of=AS_OF)
        assert [c.id for c in result.courses] == ["t2", "p1"]

    def test_tolerance_allows_fewer_hours(self, catalogue):
        result = build_programme(catalogue, request(total_hours=10.5, hour_tolerance=0.5), as_of=AS_OF)
        assert result.feasible and result.total_hours == 10

    def test_main_class_flag_is_read_from_existing_classes_of_the_type(self, catalogue):
        # three of four 进修班 are main classes, none is a party-spirit class
        result = build_programme(catalogue, request(class_type="进修班", is_main_class=None, is_party_spirit_class=None),
                                 as_of=AS_OF)
        assert (result.is_main_class, result.is_party_spirit_class) == (True, False)
        assert "leader-lecturer-share" in {i.id for i in result.indicators}
        assert "classroom-share" not in {i.id for i in result.indicators}


class TestInfeasible:
    def test_hours_against_party_spirit_share(self, catalogue):
        # without p1/p2 only {t1,t2,x1} makes 10 h, and it has no party-spirit hours
        result = build_programme(catalogue, request(excluded_courses=("p1", "p2")), as_of=AS_OF)
        assert not result.feasible
        assert result.conflict == ["总学时", "党性教育课程比重"]
        assert result.reasons == [
            "无法生成满足全部要求的课程方案：『总学时』、『党性教育课程比重』不能同时满足（去掉其中任何一项，其余各项都能满足）。",
            "总学时：要求 10 学时，候选课程最多只能凑出 0 学时（差 10 学时）",
            "党性教育课程比重：要求不低于 20.0%，在其他约束下最高只能达到 0.0%，还差 2.0 学时的计入课程"
            "（候选中计入该指标的课程共 0 门、0 学时）",
        ]

    def test_topic_nobody_teaches(self, catalogue):
        result = build_programme(catalogue, request(topics=("topic:newtech",)), as_of=AS_OF)
        assert not result.feasible
        assert result.reasons[0] == "无法生成满足全部要求的课程方案：『专题覆盖：新知识新技能』本身无法满足。"
        assert "没有覆盖该专题的课程" in result.reasons[1]

    def test_hours_no_subset_can_fill(self, catalogue):
        result = build_programme(catalogue, request(total_hours=40), as_of=AS_OF)
        assert result.conflict == ["总学时"]
        assert result.reasons[1] == "总学时：要求 40 学时，候选课程最多只能凑出 16 学时（差 24 学时）"


class TestInput:
    @pytest.mark.parametrize("kw, field", [
        (dict(class_type="夜校"), "班次类型"),
        (dict(topics=("topic:nothing",)), "topic:nothing"),
        (dict(total_hours=0), "总学时"),
        (dict(required_courses=("x3",)), "必选课程"),
        (dict(institution_id="inst:none"), "inst:none"),
    ])
    def test_bad_requests_say_what_is_wrong(self, catalogue, kw, field):
        with pytest.raises(InputError, match=field):
            build_programme(catalogue, request(**kw), as_of=AS_OF)


# ─── on-site teaching stays near (rules.yaml programme.locality) ───
ZJ, FJ = "浙江省湖州市安吉县", "福建省龙岩市上杭县"


@pytest.fixture(scope="module")
def far_and_near() -> CatalogueSnapshot:
    """A county school and a city school in 浙江, a provincial school in 福建, and four 2-hour courses on one topic:
    on-site at a 浙江 site (though its institution is in 福建), on-site at a 福建 site, on-site with no site at the
    福建 school, and a classroom course at the 福建 school."""
    def onsite(cid: str, **kw) -> Course:
        return course(cid, 2, COMPETENCE, 80, course_type="现场教学", teaching_method=("现场教学",), **kw)

    return CatalogueSnapshot.from_rows(
        topics=topics_from_ontology(),
        institutions=[Institution("inst:county", "某县委党校", "党校（行政学院）", "县", ZJ),
                      Institution("inst:city", "某市委党校", "党校（行政学院）", "市", "浙江省湖州市"),
                      Institution("inst:fj", "某省委党校", "党校（行政学院）", "省", "福建省福州市"),
                      Institution("inst:noregion", "某县委党校（未注明地区）", "党校（行政学院）", "县")],
        sites=[DemonstrationSite("site:zj", "余村", region=ZJ), DemonstrationSite("site:fj", "古田会议旧址", region=FJ)],
        courses=[onsite("near-site", site="site:zj", institution="inst:fj"),
                 onsite("far-site", site="site:fj", institution="inst:county"),
                 onsite("far-school", institution="inst:fj"),
                 course("classroom", 2, COMPETENCE, 80, institution="inst:fj")],
    )


def one_course(host: str, cid: str, **kw) -> ProgrammeRequest:
    return request(institution_id=host, total_hours=2, required_courses=(cid,), audience_categories=(), **kw)


class TestLocality:
    @pytest.mark.parametrize("host", ["inst:county", "inst:city"])
    @pytest.mark.parametrize("cid", ["far-site", "far-school"])
    def test_a_city_or_county_class_leaves_out_onsite_teaching_in_another_province(self, far_and_near, host, cid):
        # the site's region counts (far-site's own institution is the county school itself); with no site, the institution's
        with pytest.raises(InputError, match=f"必选课程不在候选范围内.*{cid}"):
            build_programme(far_and_near, one_course(host, cid), as_of=AS_OF)

    @pytest.mark.parametrize("cid", ["near-site", "classroom"])
    def test_onsite_teaching_in_the_province_and_classroom_courses_from_anywhere_stay(self, far_and_near, cid):
        result = build_programme(far_and_near, one_course("inst:county", cid), as_of=AS_OF)
        assert result.feasible and [c.id for c in result.courses] == [cid]
        assert result.candidates == 2  # near-site and classroom: the two far on-site courses are left out

    def test_the_note_names_the_province_and_the_place_of_each_course(self, far_and_near):
        result = build_programme(far_and_near, one_course("inst:county", "near-site"), as_of=AS_OF)
        assert "浙江省" in result.locality_note and "现场教学" in result.locality_note
        assert result.courses[0].place == ZJ  # where the site is, not where its institution is

    @pytest.mark.parametrize("cid", ["far-site", "far-school"])
    def test_the_allow_box_brings_other_provinces_back(self, far_and_near, cid):
        result = build_programme(far_and_near, one_course("inst:county", cid, remote_on_site=True), as_of=AS_OF)
        assert result.feasible and [c.id for c in result.courses] == [cid]
        assert result.candidates == 4 and result.locality_note == "已允许外省现场教学"

    @pytest.mark.parametrize("host", ["inst:fj", "inst:noregion"])
    def test_a_provincial_host_or_one_without_a_region_is_not_limited(self, far_and_near, host):
        # a 省 school is not a level the rule names; a county school with no region has no province to keep to.
        # (The far course is accepted as required; whether the 省 school's indicators then hold is another matter.)
        result = build_programme(far_and_near, one_course(host, "far-site"), as_of=AS_OF)
        assert result.candidates == 4 and result.locality_note == ""

    @pytest.mark.parametrize("region, province", [
        (ZJ, "浙江省"), ("北京市海淀区", "北京市"), ("广西壮族自治区南宁市", "广西壮族自治区"),
        ("香港特别行政区", "香港特别行政区"), ("", None), (None, None),
    ])
    def test_the_province_is_read_from_the_region(self, region, province):
        assert Locality.from_rules(load_ontology().rules).province(region) == province
