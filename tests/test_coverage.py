"""Coverage and demand on a hand-built catalogue.

Base date 2026-01-01.  Published courses: a1 (马克思主义基本原理, 4 h, case, 讲授+案例式, revised that day,
rating 4.0 × 100, provincial school), a2 (same topic, 2 h, 研讨式, revised 2022-01-01 — exactly 4 years
before, rating 3.0 × 300, provincial school), b1 (党史, 3 h, revised that day, city school); a3 is a draft.
Demand: 马克思主义基本原理 10 cadres, 党史 6.
"""

from __future__ import annotations

import datetime as dt

import pytest

from recommender.analytics.coverage import coverage_report, underserved_by
from recommender.analytics.errors import InputError
from recommender.catalogue.rows import Course, Institution, topics_from_ontology
from recommender.catalogue.snapshot import CatalogueSnapshot

AS_OF = dt.date(2026, 1, 1)
MARXISM, HISTORY = "topic:marxism", "topic:history"
DEMAND = {MARXISM: 10, HISTORY: 6, "topic:xi-thought": 0}


@pytest.fixture(scope="module")
def catalogue() -> CatalogueSnapshot:
    courses = [
        Course("a1", "原理一", 4, (MARXISM,), teaching_method=("讲授", "案例式"), is_case=True, date_modified=AS_OF,
               rating=4.0, rating_count=100, institution="inst:prov", status="已发布"),
        Course("a2", "原理二", 2, (MARXISM,), teaching_method=("研讨式",), date_modified=dt.date(2022, 1, 1),
               rating=3.0, rating_count=300, institution="inst:prov", status="已发布"),
        Course("a3", "原理草稿", 9, (MARXISM,), status="草稿", institution="inst:prov"),
        Course("b1", "党史", 3, (HISTORY,), teaching_method=("讲授",), date_modified=AS_OF, institution="inst:city",
               status="已发布"),
    ]
    return CatalogueSnapshot.from_rows(
        topics=topics_from_ontology(),
        institutions=[Institution("inst:prov", "某省委党校", "党校（行政学院）", "省"),
                      Institution("inst:city", "某市委党校", "党校（行政学院）", "市")],
        courses=courses,
    )


def rows(report) -> dict:
    return {r.topic_id: r for r in report.rows}


class TestCoverage:
    def test_topic_row_by_hand(self, catalogue):
        row = rows(coverage_report(catalogue, DEMAND, as_of=AS_OF))[MARXISM]
        assert (row.courses, row.hours, row.case_share) == (2, 6, 0.5)
        # a1's 4 h split over its two methods: 讲授 2, 案例式 2; a2 研讨式 2 — of 6 h
        assert row.methods == pytest.approx({"讲授": 1 / 3, "案例式": 1 / 3, "研讨式": 1 / 3}, abs=1e-4)
        assert row.years_since_update == 2.0
        assert row.rating == pytest.approx((4.0 * 100 + 3.0 * 300) / 400)
        assert row.rating_count == 400
        assert row.demand == 10
        # fresh supply: a1 counts 1/(1+0), a2 1/(1+4)
        assert row.gap_index == pytest.approx(10 / (1 + 1 + 1 / 5))
        assert (row.branch, row.priority) == ("党的创新理论", 2)

    def test_broad_topics_count_their_narrower_courses(self, catalogue):
        theory = rows(coverage_report(catalogue, DEMAND, as_of=AS_OF))["topic:theory"]
        assert (theory.courses, theory.courses_with_narrower) == (0, 2)
        assert theory.case_share is None and theory.years_since_update is None

    def test_underserved_ranking_skips_topics_without_demand(self, catalogue):
        report = coverage_report(catalogue, DEMAND, as_of=AS_OF)
        assert [r.topic_id for r in report.underserved] == [MARXISM, HISTORY]  # 10/2.2 ≈ 4.55 > 6/2 = 3

    def test_per_level_supply(self, catalogue):
        groups = underserved_by(catalogue, DEMAND, by="level", as_of=AS_OF)
        assert list(groups) == ["省级机构", "市级机构"]
        # provincial supply has no 党史 course: 6/1 = 6 beats 10/2.2
        assert [(r.topic_id, round(r.gap_index, 4)) for r in groups["省级机构"]] == [(HISTORY, 6.0), (MARXISM, 4.5455)]
        assert [r.topic_id for r in groups["市级机构"]] == [MARXISM, HISTORY]  # 10/1 > 6/2

    def test_per_institution(self, catalogue):
        report = coverage_report(catalogue, DEMAND, institution="inst:city", as_of=AS_OF)
        assert report.scope == "某市委党校"
        assert rows(report)[MARXISM].courses == 0

    def test_without_demand_the_ranking_is_by_supply(self, catalogue):
        report = coverage_report(catalogue, None, as_of=AS_OF, top=200)
        assert "未提供需求数据" in report.demand_note
        ranked = [r.topic_id for r in report.underserved]
        assert ranked.index(MARXISM) > ranked.index("topic:xi-thought")  # nothing at all beats something
        assert rows(report)[MARXISM].demand is None

    def test_near_duplicates_are_listed_with_names(self, catalogue):
        report = coverage_report(catalogue, DEMAND, as_of=AS_OF, near_duplicates=[("a1", "a2", 0.97)])
        table = report.tables()[-1]
        assert table.title == "疑似重复课程"
        assert table.rows == [["a1", "原理一", "a2", "原理二", 0.97]]

    def test_bad_filters(self, catalogue):
        with pytest.raises(InputError, match="inst:nowhere"):
            coverage_report(catalogue, DEMAND, institution="inst:nowhere")
        with pytest.raises(InputError, match="乡"):
            coverage_report(catalogue, DEMAND, level="乡")
        with pytest.raises(InputError, match="分组方式"):
            underserved_by(catalogue, DEMAND, by="region")
