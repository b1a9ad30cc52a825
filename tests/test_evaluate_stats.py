"""Predicted-impact statistics against statsmodels / scipy, planted and null effects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.anova import anova_lm

from kgfin.data import load_market
from kgfin.evaluate import (
    StatsInputError,
    group_summary,
    group_tests,
    impact_groups,
    impact_regression,
    impact_stats,
    markdown_table,
    refusal_rate,
)
from kgfin.market import residuals


def _data(seed: int, n: int = 400, effect: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    size = rng.normal(size=n)
    impact = rng.normal(0, 0.01, n) + 0.002 * size  # correlated with the control
    resid = effect * impact + 0.003 * size + rng.standard_t(4, n) * 0.02 * (1 + np.abs(impact) * 50)
    return pd.DataFrame({"impact": impact, "resid": resid, "size": size})


def test_regression_matches_statsmodels() -> None:
    d = _data(0, effect=1.0)
    d.loc[3, "resid"] = np.nan  # incomplete rows are dropped
    out = impact_regression(d, controls=["size"], standardize="none").iloc[0]
    full = d.dropna()
    ref = sm.OLS(full["resid"], sm.add_constant(full[["impact", "size"]])).fit()
    rob = sm.OLS(full["resid"], sm.add_constant(full[["impact", "size"]])).fit(cov_type="HC3")
    assert out["nobs"] == len(full) == 399
    for mine, theirs in ((out["coef"], ref.params["impact"]), (out["se"], ref.bse["impact"]),
                         (out["t"], ref.tvalues["impact"]), (out["p"], ref.pvalues["impact"]),
                         (out["robust_se"], rob.bse["impact"]), (out["robust_t"], rob.tvalues["impact"]),
                         (out["robust_p"], rob.pvalues["impact"]), (out["r2"], ref.rsquared)):
        assert mine == pytest.approx(theirs, rel=1e-10)
    # R^2_Phi is the partial R^2: the squared partial correlation (Frisch-Waugh-Lovell)
    ey = sm.OLS(full["resid"], sm.add_constant(full["size"])).fit().resid
    ex = sm.OLS(full["impact"], sm.add_constant(full["size"])).fit().resid
    assert out["r2_phi"] == pytest.approx(np.corrcoef(ey, ex)[0, 1] ** 2, rel=1e-9)
    hc1 = impact_regression(d, controls=["size"], standardize="none", cov_type="HC1").iloc[0]
    assert hc1["robust_t"] == pytest.approx(
        sm.OLS(full["resid"], sm.add_constant(full[["impact", "size"]])).fit(cov_type="HC1").tvalues["impact"])


def test_regression_standardisation() -> None:
    d = _data(1, effect=1.0)
    raw = impact_regression(d, standardize="none").iloc[0]
    zy = impact_regression(d, standardize="y").iloc[0]
    both = impact_regression(d, standardize="both").iloc[0]
    assert zy["coef"] == pytest.approx(raw["coef"] / d["resid"].std())
    assert zy["t"] == pytest.approx(raw["t"]) and zy["robust_p"] == pytest.approx(raw["robust_p"])
    assert both["coef"] == pytest.approx(np.corrcoef(d["impact"], d["resid"])[0, 1])
    assert raw["r2_phi"] == pytest.approx(raw["r2"])


def test_absorption_by_hand() -> None:
    y = np.array([0.01, -0.02, 0.03, 0.0])
    d = pd.DataFrame({"resid": y, "impact": y})
    assert impact_regression(d).iloc[0]["absorption"] == pytest.approx(1.0)
    d["impact"] = [0.005, -0.01, 0.015, 0.0]  # half the residual: removes 75 % of the variance about 0
    want = 1 - ((y - d["impact"]) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert impact_regression(d).iloc[0]["absorption"] == pytest.approx(want)
    d["impact"] = -y  # the wrong sign makes it worse than nothing
    assert impact_regression(d).iloc[0]["absorption"] < 0


def test_planted_effect_detected() -> None:
    out = impact_regression(_data(2, effect=1.5), controls=["size"]).iloc[0]
    assert out["robust_p"] < 0.01 and out["coef"] > 0
    groups = impact_groups(_data(2, effect=1.5)["impact"], groups="quantile", n_groups=5)
    tests = group_tests(_data(2, effect=1.5).assign(group=groups)).iloc[0]
    assert tests["anova_p"] < 0.01 and tests["kruskal_p"] < 0.01 and tests["eta2"] > 0


def test_null_effect_rejected_at_nominal_rate() -> None:
    reg, anova, kw = [], [], []
    seeds = range(300)
    for seed in seeds:
        d = _data(1000 + seed, n=150)
        reg.append(impact_regression(d, controls=["size"]).iloc[0]["robust_p"])
        rng = np.random.default_rng(seed)
        g = pd.DataFrame({"resid": rng.normal(size=90), "group": np.repeat(["a", "b", "c"], 30)})
        t = group_tests(g).iloc[0]
        anova.append(t["anova_p"])
        kw.append(t["kruskal_p"])
    for name, ps in (("regression", reg), ("anova", anova), ("kruskal", kw)):
        rate = np.mean(np.array(ps) < 0.05)
        # 300 draws at 5 %: the binomial 99.9 % band is about [1.5 %, 9.5 %]
        assert 0.015 <= rate <= 0.095, (name, rate)


def test_group_tests_match_statsmodels_and_scipy() -> None:
    rng = np.random.default_rng(3)
    d = pd.DataFrame({"group": np.repeat(["negative", "neutral", "positive"], [40, 70, 30])})
    d["resid"] = rng.normal(size=len(d)) + d["group"].map({"negative": -0.3, "neutral": 0.0, "positive": 0.4})
    out = group_tests(d).iloc[0]
    table = anova_lm(smf.ols("resid ~ C(group)", data=d).fit())
    assert out["anova_f"] == pytest.approx(table.loc["C(group)", "F"])
    assert out["anova_p"] == pytest.approx(table.loc["C(group)", "PR(>F)"])
    assert out["eta2"] == pytest.approx(table.loc["C(group)", "sum_sq"] / table["sum_sq"].sum())
    h, p = stats.kruskal(*[g["resid"] for _, g in d.groupby("group")])
    assert out["kruskal_h"] == pytest.approx(h) and out["kruskal_p"] == pytest.approx(p)
    assert (out["n_groups"], out["nobs"]) == (3, 140)
    summary = group_summary(d)
    assert summary["group"].tolist() == ["negative", "neutral", "positive"]
    assert summary["n"].tolist() == [40, 70, 30]
    assert summary.loc[0, "mean"] == pytest.approx(d.loc[d["group"] == "negative", "resid"].mean())


def test_group_tests_degenerate_and_bad() -> None:
    flat = pd.DataFrame({"resid": [1.0] * 6, "group": list("aabbcc")})
    out = group_tests(flat).iloc[0]
    assert np.isnan(out["anova_f"]) and np.isnan(out["kruskal_h"]) and np.isnan(out["eta2"])
    with pytest.raises(StatsInputError, match="2 groups"):
        group_tests(pd.DataFrame({"resid": [1.0, 2.0], "group": ["a", "a"]}))
    with pytest.raises(StatsInputError, match="missing column"):
        group_tests(pd.DataFrame({"resid": [1.0]}))


def test_impact_groups() -> None:
    v = pd.Series([-0.02, -0.001, 0.0, 0.0005, 0.03, np.nan])
    assert impact_groups(v).tolist() == ["negative", "negative", "neutral", "positive", "positive", np.nan]
    assert impact_groups(v, neutral_band=0.001).tolist()[:4] == ["negative", "neutral", "neutral", "neutral"]
    q = impact_groups(pd.Series(np.arange(10.0)[::-1]), groups="quantile", n_groups=5)
    assert q.tolist() == ["Q5", "Q5", "Q4", "Q4", "Q3", "Q3", "Q2", "Q2", "Q1", "Q1"]
    with pytest.raises(StatsInputError, match="quantile"):
        impact_groups(pd.Series([1.0, 2.0]), groups="quantile", n_groups=3)


def test_refusal_rate() -> None:
    assert refusal_rate(pd.DataFrame({"refused": [True, False, False, False]})) == 0.25
    both = pd.DataFrame({"refused": [True, False, False, False], "impact": [np.nan, np.nan, 0.1, 0.2]})
    assert refusal_rate(both) == 0.5
    assert refusal_rate(pd.DataFrame({"impact": [0.1, 0.2]})) == 0.0
    with pytest.raises(StatsInputError, match="no rows"):
        refusal_rate(pd.DataFrame({"impact": []}))
    with pytest.raises(StatsInputError, match="missing values"):
        refusal_rate(pd.DataFrame({"refused": [True, None]}))
    with pytest.raises(StatsInputError, match="'refused' or an 'impact'"):
        refusal_rate(pd.DataFrame({"x": [1]}))


def test_regression_bad_input() -> None:
    with pytest.raises(StatsInputError, match="complete rows"):
        impact_regression(pd.DataFrame({"resid": [1.0, np.nan], "impact": [1.0, 2.0]}))
    with pytest.raises(StatsInputError, match="constant"):
        impact_regression(pd.DataFrame({"resid": [1.0, 2.0, 3.0, 4.0], "impact": [1.0] * 4}), standardize="both")


def test_markdown_table() -> None:
    text = markdown_table(pd.DataFrame({"a": ["x|y", "z"], "b": [1.23456, np.nan], "ok": [True, False]}))
    assert text.splitlines() == ["| a | b | ok |", "|:--|--:|:--|", "| x\\|y | 1.235 | True |", "| z |  | False |"]


@pytest.mark.integration
def test_impact_stats_on_synthetic_truth(default_synth_dir: Path) -> None:
    """Perfect predictions (the planted shocks) are strongly significant; shuffled ones are not."""
    market = load_market(default_synth_dir, tables=["returns", "factors_daily"])
    realised = residuals(market.returns, market.factors_daily, model="capm").dropna(subset=["resid"])
    impacts = pd.read_parquet(default_synth_dir / "truth" / "impacts.parquet")
    pred = impacts.groupby(["event_date", "ticker"], as_index=False)["shock"].sum()
    pred = pred.rename(columns={"event_date": "date", "shock": "impact"})
    pred["date"] = pd.to_datetime(pred["date"])
    pred["refused"] = False
    pred.loc[pred.index[::10], "refused"] = True  # every tenth is a refusal

    res = impact_stats(pred, realised, resid="sresid")
    reg = res.regression.iloc[0]
    assert reg["robust_p"] < 1e-10 and reg["coef"] > 0 and reg["r2_phi"] > 0.05
    assert res.tests.iloc[0]["anova_p"] < 1e-10 and res.tests.iloc[0]["kruskal_p"] < 1e-10
    assert res.refusal.iloc[0]["refusal_rate"] == pytest.approx(np.ceil(len(pred) / 10) / len(pred))
    assert res.refusal.iloc[0]["matched"] <= len(pred) - res.refusal.iloc[0]["refused"]
    assert "**Regression of residuals on predicted impact**" in res.to_markdown()
    assert len(res.summary()) == 1

    shuffled = pred.assign(impact=np.random.default_rng(0).permutation(pred["impact"].to_numpy()))
    assert impact_stats(shuffled, realised, resid="sresid").regression.iloc[0]["robust_p"] > 0.01


def test_regression_without_group_tests_when_every_impact_has_one_sign() -> None:
    data = _data(3, effect=2.0).assign(impact=lambda d: d["impact"].abs() + 1e-4)  # all positive: one sign group
    keys = pd.DataFrame({"date": pd.Timestamp("2015-01-02"), "ticker": [f"T{i}" for i in range(len(data))]})
    pred = pd.concat([keys, data[["impact"]]], axis=1)
    realised = pd.concat([keys, data[["resid"]]], axis=1)
    with pytest.raises(StatsInputError, match="at least 2 groups"):
        impact_stats(pred, realised)
    only = impact_stats(pred, realised, with_group_tests=False)
    expected = impact_regression(data, "resid", "impact")
    assert only.regression.iloc[0]["coef"] == pytest.approx(expected.iloc[0]["coef"])
    assert only.tests.empty and only.groups.empty and "robust_p" in only.summary().columns


def test_events_needed_is_nan_where_the_power_equation_has_no_solution() -> None:
    import math

    from kgfin.evaluate.uncertainty import events_needed

    assert events_needed(0.05, 0.2) == 128
    assert math.isnan(events_needed(0.2, 1e-17)) and math.isnan(events_needed(0.05, 0.0))
