"""好课程 / 好教材: the indicator system's scores, the optimiser's exact choice, its infeasible story, the
check mode's fewest swaps — on hand-built cases — and a compliant list on the sample catalogue.

The optimiser cases use pre-scored candidates on a two-branch topic tree (theory, political):

    course  score  institution  branch     case   note
    c1      90     a            theory     no
    c2      85     a            theory     no
    c3      80     a            theory     yes
    c4      70     b            political  no
    c5      60     b            political  yes
    c6      95     c            theory     no     nominated last year
    c7      99     c            theory     yes    failed political review
    b1      88     —            theory     no     textbook
    b2      70     —            political  yes    textbook

Rules: 3 courses and 1 textbook, case ≥ 1/3, ≥ 1 course per branch, ≤ 2 items per institution.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest

from kg.build import build_graph
from kg.config import REPO_ROOT
from recommender.analytics.audit import check_nomination_list
from recommender.analytics.errors import InputError, RuleError
from recommender.analytics.nominations import NominationConfig, optimise_nominations
from recommender.analytics.scoring import Candidate, score_candidates
from recommender.catalogue.rows import Course, Textbook, Topic, topics_from_ontology
from recommender.catalogue.snapshot import CatalogueSnapshot, load_snapshot

THEORY, POLITICAL = "topic:theory", "topic:political"


@pytest.fixture(scope="module")
def tree() -> CatalogueSnapshot:
    return CatalogueSnapshot.from_rows(topics=[
        Topic(THEORY, "党的创新理论", plan_order=1), Topic(POLITICAL, "政治训练与党性教育", plan_order=2),
        Topic("topic:marxism", "马克思主义基本原理", broader=(THEORY,)),
    ])


def cand(cid: str, score: float, inst: str | None, branch: str, case: bool, kind: str = "course", gates: tuple = ()) -> Candidate:
    return Candidate(cid, kind, f"名称{cid}", inst, (branch,), (branch,), case, score, (), gate_failures=gates)


@pytest.fixture(scope="module")
def candidates() -> list[Candidate]:
    return [
        cand("c1", 90, "inst:a", THEORY, False), cand("c2", 85, "inst:a", THEORY, False),
        cand("c3", 80, "inst:a", THEORY, True), cand("c4", 70, "inst:b", POLITICAL, False),
        cand("c5", 60, "inst:b", POLITICAL, True), cand("c6", 95, "inst:c", THEORY, False),
        cand("c7", 99, "inst:c", THEORY, True, gates=("通过政治审核",)),
        cand("b1", 88, None, THEORY, False, "textbook"), cand("b2", 70, None, POLITICAL, True, "textbook"),
    ]


def config(**kw) -> NominationConfig:
    base = dict(year=2026, courses=3, textbooks=1, max_per_institution=2, min_per_branch=1, previous={"c6"})
    base.update(kw)
    return NominationConfig.from_rules(**base)


def ids(items) -> list[str]:
    return sorted(c.id for c in items)


class TestScores:
    AS_OF = dt.date(2026, 5, 1)

    def catalogue(self) -> CatalogueSnapshot:
        course = Course("course:x", "某课程", 3, ("topic:marxism",), expert_score=80, rating=4, completion_rate=0.9,
                        is_case=True, date_modified=self.AS_OF, political_review=True, quality_review=True, status="已发布")
        book = Textbook("textbook:y", "某教材", ("topic:history",), expert_score=90, rating=5, date_published=self.AS_OF,
                        quality_review=True, status="已发布")
        return CatalogueSnapshot.from_rows(topics=topics_from_ontology(), courses=[course], textbooks=[book])

    def test_breakdown_by_hand(self):
        scored = {c.id: c for c in score_candidates(self.catalogue(), demand={"topic:marxism": 50, "topic:dummy": 100},
                                                   as_of=self.AS_OF)}
        course = scored["course:x"]
        parts = {p.key: p for p in course.components}
        # expert 80/100, rating 4/5, completion 0.9, freshness 1/(1+0), priority (3−2+1)/3, demand 50/100, case 1
        assert {k: p.value for k, p in parts.items()} == pytest.approx(
            {"expert": 0.8, "rating": 0.8, "completion": 0.9, "freshness": 1.0, "priority": 2 / 3, "demand": 0.5,
             "case_value": 1.0})
        # case value has weight 0 by default (the quota guarantees the case share): the score is quality only
        assert parts["case_value"].weight == 0 and parts["case_value"].points == 0
        assert parts["expert"].points == pytest.approx(24.0 / 0.9)
        assert course.score == pytest.approx(100 * (0.24 + 0.16 + 0.09 + 0.1 + 0.1 * 2 / 3 + 0.05) / 0.9)
        assert course.eligible and course.rated and course.coverage == pytest.approx(1.0)
        assert course.branches == (THEORY,)
        assert "case_value" not in {p["key"] for p in course.to_dict()["得分明细"]}  # a weight-0 part is not shown

    def test_missing_components_drop_out_and_gates_are_reported(self):
        book = next(c for c in score_candidates(self.catalogue(), demand={"topic:marxism": 50}, as_of=self.AS_OF)
                    if c.kind == "textbook")
        parts = {p.key: p for p in book.components}
        assert parts["completion"].value is None and parts["completion"].points == 0
        assert parts["demand"].value == 0.0
        # available weights 0.8 of 0.9: (0.3·0.9 + 0.2·1 + 0.1·1 + 0.1·2/3 + 0.1·0) / 0.8
        assert book.score == pytest.approx(100 * (0.27 + 0.2 + 0.1 + 0.1 * 2 / 3) / 0.8)
        assert book.coverage == pytest.approx(0.8 / 0.9) and book.rated
        assert book.gate_failures == ("通过政治审核",) and not book.eligible
        assert book.to_dict()["待通过"] == "待通过：政治审核"

    def test_a_candidate_without_evidence_is_not_scored_and_ranks_last(self):
        """No expert review, rating or completion: freshness and priority alone (0.2 of 0.9 < 0.5) do not make a
        score — it shows 无数据, comes after every scored candidate however fresh it is, and cannot be nominated."""
        bare = Course("course:bare", "无评价课程", 2, ("topic:marxism",), date_modified=self.AS_OF,
                      political_review=True, quality_review=True, status="已发布")
        catalogue = self.catalogue()
        catalogue = CatalogueSnapshot.from_rows(topics=topics_from_ontology(),
                                                courses=[*catalogue.courses.values(), bare],
                                                textbooks=list(catalogue.textbooks.values()))
        scored = score_candidates(catalogue, as_of=self.AS_OF)
        assert scored[-1].id == "course:bare"
        last = scored[-1]
        assert not last.rated and not last.eligible and last.score == 0
        assert last.coverage == pytest.approx(0.2 / 0.9)
        assert last.to_dict()["总分"] is None and last.to_dict()["已计分"] is False

    def test_a_case_bonus_is_a_weight_and_is_stated(self):
        from recommender.analytics.scoring import scoring_rules

        weights = {"expert": 0.3, "rating": 0.2, "case_value": 0.5}
        course = next(c for c in score_candidates(self.catalogue(), weights=weights, as_of=self.AS_OF)
                      if c.kind == "course")
        assert {p.key: p.points for p in course.components}["case_value"] == pytest.approx(50.0)
        rules = dict(scoring_rules(weights, 0.5))
        assert rules["案例加分"].startswith("已启用") and "50.0 %" in rules["案例加分"]
        assert dict(scoring_rules({"expert": 1.0, "case_value": 0}, 0.5))["案例加分"].startswith("未启用")
        assert "低于 50.0 %" in rules["计分规则"]

    def test_custom_weights(self):
        scored = score_candidates(self.catalogue(), weights={"expert": 1.0}, as_of=self.AS_OF)
        assert [round(c.score, 6) for c in scored] == [90.0, 80.0]

    @pytest.mark.parametrize("weights, word", [({"beauty": 1.0}, "beauty"), ({"expert": -1}, "expert"), ({"expert": 0}, "全为 0")])
    def test_bad_weights(self, weights, word):
        with pytest.raises(RuleError, match=word):
            score_candidates(self.catalogue(), weights=weights)


class TestOptimiser:
    def test_per_list_choice_by_hand(self, tree, candidates):
        result = optimise_nominations(tree, config(), candidates=candidates)
        # c6 (earlier year) and c7 (gate) are out; {c1,c3,c4} = 240 beats {c1,c2,c5} = 235 and {c2,c3,c4} = 235;
        # one textbook must be a case textbook: b2
        assert result.feasible and result.proven_optimal
        assert ids(result.courses) == ["c1", "c3", "c4"] and ids(result.textbooks) == ["b2"]
        assert result.total_score == pytest.approx(310)
        assert all(check.passed for check in result.checks)
        assert "两张名单各自满足案例占比" in dict(result.rules_used())["案例占比"]

    def test_combined_quota_choice_by_hand(self, tree, candidates):
        result = optimise_nominations(tree, config(quota_mode="combined"), candidates=candidates)
        # 2 case items over 4: {c1,c3,c5}+b1 = 318 beats {c1,c3,c4}+b2 = 310
        assert ids(result.courses) == ["c1", "c3", "c5"] and ids(result.textbooks) == ["b1"]
        assert "两张名单合计满足案例占比" in dict(result.rules_used())["案例占比"]
        assert [c.rule for c in result.checks if c.rule.startswith("案例")] == ["案例占比（两张名单合计）"]

    def test_without_caps_the_best_scores_win(self, tree, candidates):
        result = optimise_nominations(tree, config(max_per_institution=None, min_per_branch=0, case_share_min=0),
                                      candidates=candidates)
        assert ids(result.courses) == ["c1", "c2", "c3"] and ids(result.textbooks) == ["b1"]

    def test_infeasible_case_quota_explained(self, tree, candidates):
        result = optimise_nominations(tree, config(case_share_min=1.0), candidates=candidates)
        assert not result.feasible
        assert result.conflict == ["案例占比"]
        assert result.reasons == [
            "无法生成符合全部规则的名单：『案例占比』本身无法满足。",
            "案例课程不足：需要至少 3 项，最多只能选出 2 项（差 1 项；通过门槛且未曾入选的案例课程共 2 项；"
            "口径：两张名单各自满足案例占比）",
        ]

    def test_no_eligible_candidate_is_explained_not_an_error(self, tree, candidates):
        failing = [cand(c.id, c.score, c.institution, c.branches[0], c.is_case, c.kind, gates=("通过政治审核",)) for c in candidates]
        result = optimise_nominations(tree, config(), candidates=failing)
        assert not result.feasible
        assert result.reasons and any("候选 0" in reason for reason in result.reasons)

    def test_infeasible_cap_against_count(self, tree, candidates):
        result = optimise_nominations(tree, config(max_per_institution=1, courses=4, case_share_min=0, min_per_branch=0),
                                      candidates=candidates)
        # eligible courses come from inst:a and inst:b only: one each makes 2 of the 4 needed
        assert result.conflict == ["好课程数量", "机构上限"]
        assert "好课程数量不足：需要 4 门，最多只能选出 2 门（差 2 门；通过门槛且未曾入选的候选共 5 门）" in result.reasons

    def test_thinning_keeps_the_optimum(self, tree):
        rng = random.Random(3)
        pool = [cand(f"r{i:04d}", round(rng.uniform(40, 99), 3), f"inst:{rng.randrange(12)}",
                     rng.choice([THEORY, POLITICAL]), rng.random() < 0.3, "course" if i < 1800 else "textbook")
                for i in range(2000)]
        cfg = config(courses=40, textbooks=8, max_per_institution=5, min_per_branch=10, previous=set())
        thin = optimise_nominations(tree, cfg, candidates=pool)
        full = optimise_nominations(tree, cfg, candidates=pool, thin=False)
        assert thin.feasible and thin.variables < full.variables
        assert thin.total_score == pytest.approx(full.total_score)

    @pytest.mark.parametrize("kw, word", [(dict(quota_mode="both"), "quota_mode"), (dict(courses=-1), "courses"),
                                          (dict(case_share_min=1.5), "case_share_min")])
    def test_bad_config(self, kw, word):
        with pytest.raises(InputError, match=word):
            config(**kw)

    def test_defaults_come_from_rules_yaml(self, ontology):
        block = ontology.rules["nomination"]
        cfg = NominationConfig.from_rules()
        assert (cfg.courses, cfg.textbooks) == (block["per_year"]["courses"], block["per_year"]["textbooks"])
        assert cfg.quota_mode == block["quota_mode"] and cfg.gates == tuple(block["gates"])
        assert cfg.case_minimums() == {"course": 20, "textbook": 4}


class TestCheckMode:
    def test_compliant_list_needs_no_change(self, tree, candidates):
        audit = check_nomination_list(tree, ["c1", "c3", "c4", "b2"], config(), candidates=candidates)
        assert audit.compliant and audit.swaps == []

    def test_fewest_swaps_by_hand(self, tree, candidates):
        audit = check_nomination_list(tree, ["c1", "c2", "c4", "b1"], config(), candidates=candidates)
        assert not audit.compliant
        failed = [c.rule for c in audit.checks if not c.passed]
        assert failed == ["案例占比（好课程名单）", "案例占比（好教材名单）"]
        # two swaps are needed (a case course, a case textbook); c2 → c3 keeps the highest score (240)
        assert audit.changes == 4
        assert [(s.out.id, s.into.id) for s in audit.swaps] == [("c2", "c3"), ("b1", "b2")]
        assert audit.swaps[0].text == "用『名称c3』替换『名称c2』（移出：腾出名额以提高案例占比；加入：案例项目，补足案例占比）"
        assert ids(audit.proposed) == ["b2", "c1", "c3", "c4"]

    def test_ineligible_and_unknown_items(self, tree, candidates):
        audit = check_nomination_list(tree, ["c6", "c7", "c4", "b2", "course:zzz", "c4"], config(), candidates=candidates)
        assert audit.unknown == ["course:zzz"] and audit.duplicates == ["c4"]
        failed = {c.rule for c in audit.checks if not c.passed}
        assert {"编号有效", "无重复", "推荐门槛", "往年已入选"} <= failed
        swaps = [(s.out.id, s.out.reason, s.into.id, s.into.reason) for s in audit.swaps]
        assert swaps == [("c7", "未通过政治审核", "c1", "补足一级主题『党的创新理论』"),
                         ("c6", "往年已入选", "c3", "案例项目，补足案例占比")]

    def test_unfixable_list_says_why(self, tree, candidates):
        audit = check_nomination_list(tree, ["c1"], config(courses=6), candidates=candidates)
        assert not audit.fixable and audit.swaps == []
        assert audit.reasons[0].startswith("无法生成符合全部规则的名单")


@pytest.fixture(scope="module")
def sample_catalogue(tmp_path_factory, ontology) -> CatalogueSnapshot:
    from kg.store.embedded import EmbeddedStore

    with EmbeddedStore(tmp_path_factory.mktemp("sample") / "graph.db") as store:
        build_graph(store, [REPO_ROOT / "corpora" / "sample"], ontology)
        return load_snapshot(store, ontology)


class TestSampleCatalogue:
    def test_default_rules_give_a_compliant_list(self, sample_catalogue):
        result = optimise_nominations(sample_catalogue, NominationConfig.from_rules(year=2026), as_of=dt.date(2026, 11, 15))
        assert result.feasible
        assert len(result.courses) == 60 and len(result.textbooks) == 10
        assert all(c.passed for c in result.checks), [c for c in result.checks if not c.passed]
        assert all(c.eligible for c in result.courses + result.textbooks)

    def test_combined_mode_and_previous_years(self, sample_catalogue):
        first = optimise_nominations(sample_catalogue, NominationConfig.from_rules(year=2026), as_of=dt.date(2026, 11, 15))
        earlier = {c.id for c in first.courses + first.textbooks}
        second = optimise_nominations(
            sample_catalogue, NominationConfig.from_rules(year=2027, quota_mode="combined", previous=earlier),
            as_of=dt.date(2026, 11, 15))
        assert second.feasible and all(c.passed for c in second.checks)
        assert not earlier & {c.id for c in second.courses + second.textbooks}
