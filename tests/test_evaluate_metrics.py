"""Ripple-only metrics and their uncertainty, on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from kgfin.evaluate.metrics import (
    planted_corr,
    rank_ic,
    realised_relevance,
    sign_accuracy,
    top_k,
)
from kgfin.evaluate.uncertainty import events_needed, mean_ci, paired_test
from kgfin.market.residuals import window_moves


def test_window_moves_sum_days_0_to_h_and_stop_at_the_data_end() -> None:
    dates = pd.to_datetime(["2015-01-02", "2015-01-05", "2015-01-06", "2015-01-07"])
    r = pd.DataFrame({"date": list(dates) * 2, "ticker": ["A"] * 4 + ["B"] * 4,
                      "resid": [0.01, 0.02, -0.01, 0.03, np.nan, 0.01, 0.01, 0.01]})
    w0, w2 = window_moves(r, 0), window_moves(r, 2)
    assert w0.loc[dates[1], "A"] == pytest.approx(0.02)
    assert w2.loc[dates[0], "A"] == pytest.approx(0.02) and w2.loc[dates[1], "A"] == pytest.approx(0.04)
    assert np.isnan(w2.loc[dates[2], "A"])  # runs past the last day
    assert np.isnan(w2.loc[dates[0], "B"]) and w2.loc[dates[1], "B"] == pytest.approx(0.03)  # a missing day


def test_rank_ic_by_hand_with_ties_and_constant_scores() -> None:
    # ranks of s: 1, 2.5, 2.5, 4; of m: 1, 2, 3, 4 -> Pearson of the ranks
    s, m = np.array([0.0, 1.0, 1.0, 2.0]), np.array([-0.2, 0.0, 0.1, 0.3])
    rs, rm = np.array([1, 2.5, 2.5, 4]), np.array([1, 2, 3, 4])
    assert rank_ic(s, m) == pytest.approx(np.corrcoef(rs, rm)[0, 1]) == pytest.approx(0.9486833)
    assert rank_ic(-s, m) == pytest.approx(-0.9486833)
    assert rank_ic(np.zeros(4), m) == 0.0
    assert math.isnan(rank_ic(s, np.ones(4))) and math.isnan(rank_ic(s[:2], m[:2]))


def test_top_k_by_hand_and_ties_count_by_expected_share() -> None:
    gains = np.array([1.0, 0.0, 1.0, 0.0])
    # ranking 0 (rel), 1: one hit in 2 -> precision 0.5, recall 0.5; DCG 1, ideal 1 + 1/log2(3)
    p, r, n = top_k(np.array([0.9, 0.5, 0.0, 0.0]), gains, 2)
    assert (p, r) == (0.5, 0.5) and n == pytest.approx(1 / (1 + 1 / np.log2(3)))
    # signs do not matter (ranked by |score|)
    assert top_k(np.array([-0.9, 0.5, 0.0, 0.0]), gains, 2) == (p, r, n)
    # perfect ranking
    assert top_k(np.array([2.0, 0.0, 1.0, 0.0]), gains, 2) == (1.0, 1.0, 1.0)
    # all tied: 2 of 4 slots, 2 relevant of 4 -> expected hits 1; DCG = (1 + 1/log2 3) / 4 per unit gain, 2 units
    p, r, n = top_k(np.zeros(4), gains, 2)
    assert (p, r) == (0.5, 0.5) and n == pytest.approx(0.5)
    # graded gains: ranking [2, 0] with gains 3 and 1 (ideal order) -> NDCG 1; reversed -> (1 + 3/log2 3) / (3 + 1/log2 3)
    g = np.array([1.0, 0.0, 3.0, 0.0])
    assert top_k(np.array([0.5, 0.0, 0.9, 0.0]), g, 2)[2] == pytest.approx(1.0)
    assert top_k(np.array([0.9, 0.0, 0.5, 0.0]), g, 2)[2] == pytest.approx((1 + 3 / np.log2(3)) / (3 + 1 / np.log2(3)))
    # k above the number of candidates is capped; no relevant firm -> recall and NDCG undefined
    assert top_k(np.array([1.0, 0.0]), np.array([1.0, 0.0]), 10)[0] == 0.5
    p, r, n = top_k(np.array([1.0, 0.0]), np.zeros(2), 1)
    assert p == 0.0 and math.isnan(r) and math.isnan(n)


def test_relevance_sign_accuracy_and_planted_corr_by_hand() -> None:
    assert realised_relevance(np.array([0.03, -0.01, -0.04, 0.0]), 2).tolist() == [0.03, 0.0, 0.04, 0.0]
    assert sign_accuracy(np.array([1.0, -1.0, 2.0, 0.0]), np.array([0.1, 0.2, 0.3, -0.1])) == pytest.approx(2 / 3)
    assert math.isnan(sign_accuracy(np.zeros(3), np.ones(3)))
    assert planted_corr(np.array([2.0, 0.0, 0.0, 1.0]), np.array([0.02, 0.0, 0.0, 0.01])) == pytest.approx(1.0)
    assert planted_corr(np.zeros(3), np.array([0.0, 1.0, 0.0])) == 0.0
    assert math.isnan(planted_corr(np.ones(3), np.zeros(3)))


def test_mean_ci_is_seeded_covers_the_mean_and_counts_dropped_values() -> None:
    x = np.random.default_rng(3).normal(0.05, 0.2, 400)
    a, b = mean_ci(x, seed=1), mean_ci(x, seed=1)
    assert a == b and a.n == 400 and a.dropped == 0
    se = x.std(ddof=1) / np.sqrt(x.size)  # the percentile CI is close to mean +- 1.96 se for a mean of 400
    assert a.low == pytest.approx(x.mean() - 1.96 * se, abs=0.2 * se)
    assert a.high == pytest.approx(x.mean() + 1.96 * se, abs=0.2 * se)
    assert mean_ci([0.1, np.nan, np.nan]).dropped == 2
    c = mean_ci([0.0, 0.0, 0.0])
    assert (c.mean, c.low, c.high) == (0.0, 0.0, 0.0)


def test_paired_test_sees_a_shift_and_not_a_null() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0, 0.2, 300)  # shared per-event difficulty: the pairing removes it
    better = base + 0.05 + rng.normal(0, 0.05, 300)
    t = paired_test(better, base, seed=2)
    assert t.diff == pytest.approx(np.mean(better - base)) and t.n == 300
    assert t.low > 0 and t.p_bootstrap < 0.01 and t.p_wilcoxon < 1e-10
    same = paired_test(base + rng.normal(0, 0.05, 300), base, seed=2)
    assert same.low < 0 < same.high and same.p_wilcoxon > 0.01
    # identical methods: difference 0, p 1; NaN rows dropped and counted
    z = paired_test(base, base)
    assert (z.diff, z.p_bootstrap, z.p_wilcoxon) == (0.0, 1.0, 1.0)
    d = paired_test([0.1, np.nan, 0.3, 0.2], [0.0, 0.1, np.nan, 0.1])
    assert d.n == 2 and d.dropped == 2 and d.diff == pytest.approx(0.1)
    # Wilcoxon p by hand: differences 1, 2, 3, 4, 5 all positive -> exact two-sided p = 2 / 2**5
    assert paired_test(np.arange(1.0, 6.0), np.zeros(5)).p_wilcoxon == pytest.approx(2 / 32)


def test_events_needed_matches_the_normal_approximation() -> None:
    # n ~ ((z_.975 + z_.8) * sd / d)^2 plus the t correction of a couple of events
    for d, sd in [(0.02, 0.2), (0.05, 0.2), (0.1, 0.17)]:
        approx = ((1.959964 + 0.841621) * sd / d) ** 2
        assert approx < events_needed(d, sd) <= approx + 3
    assert math.isnan(events_needed(0.05, 0.0))
