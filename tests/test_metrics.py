"""Offline metrics: each one for a perfect prediction, for no hits, and against a value worked out by hand."""

from __future__ import annotations

import doctest
import math

import pytest

from recommender.evaluation import metrics
from recommender.evaluation.metrics import (
    METRICS,
    MetricError,
    gap_coverage_at_k,
    hit_ratio_at_k,
    intra_list_diversity,
    ndcg_at_k,
    novelty,
    precision_at_k,
    recall_at_k,
)

TRUTH = {"u1": {"a", "b"}, "u2": {"c"}}
PREDICTED = {"u1": ["a", "x", "b"], "u2": ["y", "z", "c"]}
PERFECT = {"u1": ["a", "b", "x"], "u2": ["c", "y", "z"]}
MISSES = {"u1": ["x", "y", "z"], "u2": ["a", "b", "x"]}


class TestHitRatio:
    def test_perfect(self):
        assert hit_ratio_at_k(TRUTH, PERFECT, 3) == 1.0

    def test_no_hits(self):
        assert hit_ratio_at_k(TRUTH, MISSES, 3) == 0.0

    def test_golden(self):
        assert hit_ratio_at_k(TRUTH, PREDICTED, 2) == 0.5  # u1 hits "a"; u2's "c" is third

    def test_missing_prediction_counts_as_a_miss(self):
        assert hit_ratio_at_k(TRUTH, {"u1": ["a"]}, 3) == 0.5

    def test_users_without_truth_are_left_out(self):
        assert hit_ratio_at_k({**TRUTH, "u3": set()}, PREDICTED, 3) == 1.0


class TestNdcg:
    def test_perfect(self):
        assert ndcg_at_k(TRUTH, PERFECT, 3) == pytest.approx(1.0)

    def test_no_hits(self):
        assert ndcg_at_k(TRUTH, MISSES, 3) == 0.0

    def test_golden(self):
        # u1: (1 + 1/log2 4) / (1 + 1/log2 3) = 1.5 / 1.63093 = 0.919721; u2: (1/log2 4) / 1 = 0.5
        assert ndcg_at_k(TRUTH, PREDICTED, 3) == pytest.approx((1.5 / (1 + 1 / math.log2(3)) + 0.5) / 2)
        assert ndcg_at_k(TRUTH, PREDICTED, 3) == pytest.approx(0.709861, abs=1e-6)

    def test_cut_at_k(self):
        assert ndcg_at_k(TRUTH, PREDICTED, 2) == pytest.approx(1 / (1 + 1 / math.log2(3)) / 2)


class TestPrecisionRecall:
    def test_perfect_recall(self):
        assert recall_at_k(TRUTH, PERFECT, 3) == 1.0

    def test_no_hits(self):
        assert precision_at_k(TRUTH, MISSES, 3) == 0.0 and recall_at_k(TRUTH, MISSES, 3) == 0.0

    def test_golden(self):
        assert precision_at_k(TRUTH, PREDICTED, 3) == pytest.approx((2 / 3 + 1 / 3) / 2)
        assert recall_at_k(TRUTH, PREDICTED, 2) == pytest.approx((1 / 2 + 0) / 2)


ITEM_TOPICS = {"a": {"t1"}, "x": {"t1", "t9"}, "b": set(), "y": {"t3"}, "c": {"t2"}}
GAPS = {"u1": {"t1", "t2"}, "u2": {"t3"}, "u3": set()}


class TestGapCoverage:
    def test_perfect(self):
        assert gap_coverage_at_k(GAPS, {"u1": ["a", "c"], "u2": ["y"]}, 2, ITEM_TOPICS) == 1.0

    def test_no_gap_touched(self):
        assert gap_coverage_at_k(GAPS, {"u1": ["b"], "u2": ["b"]}, 3, ITEM_TOPICS) == 0.0

    def test_golden(self):
        # u1 touches t1 of {t1, t2} → ½; u2 touches t3 → 1; u3 has no gaps and is left out
        assert gap_coverage_at_k(GAPS, PREDICTED, 3, ITEM_TOPICS) == pytest.approx(0.75)


class TestDiversity:
    FEATURES = {"a": {1, 2}, "x": {2, 3}, "b": {4}, "d": {1, 2}}

    def test_identical_items_have_no_diversity(self):
        assert intra_list_diversity({"u": ["a", "d"]}, 2, self.FEATURES) == 0.0

    def test_disjoint_items_are_fully_diverse(self):
        assert intra_list_diversity({"u": ["a", "b"]}, 2, self.FEATURES) == 1.0

    def test_golden(self):
        # pairs: (a, x) 1 − 1/3; (a, b) 1; (x, b) 1 → 8/9
        assert intra_list_diversity({"u": ["a", "x", "b"]}, 3, self.FEATURES) == pytest.approx(8 / 9)


class TestNovelty:
    def test_items_everyone_took_carry_no_information(self):
        assert novelty({"u": ["a"]}, 1, {"a": 3}, 3) == 0.0

    def test_golden(self):
        # p(a) = (3 + 1) / 4 = 1 → 0 bits; p(x) = (0 + 1) / 4 → 2 bits; mean 1
        assert novelty({"u": ["a", "x"]}, 2, {"a": 3}, 3) == pytest.approx(1.0)


class TestInputChecks:
    @pytest.mark.parametrize("k", [0, -1, 1.5, True])
    def test_k_must_be_a_positive_integer(self, k):
        with pytest.raises(MetricError, match="k"):
            hit_ratio_at_k(TRUTH, PREDICTED, k)

    def test_duplicates_in_the_top_k_are_refused(self):
        with pytest.raises(MetricError, match="重复"):
            ndcg_at_k(TRUTH, {"u1": ["a", "a"]}, 2)

    def test_a_list_not_a_string(self):
        with pytest.raises(MetricError, match="有序列表"):
            hit_ratio_at_k(TRUTH, {"u1": "abc"}, 2)

    def test_registry_names_every_metric(self):
        assert set(METRICS) == {"HR@k", "NDCG@k", "Precision@k", "Recall@k", "GapCoverage@k", "ILD@k", "Novelty@k"}


def test_docstring_examples():
    assert doctest.testmod(metrics).failed == 0
