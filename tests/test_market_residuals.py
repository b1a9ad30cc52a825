"""Residual returns: table interface, point in time, monthly compounding, synthetic truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.regression.rolling import RollingOLS

from kgfin.config import ConfigError
from kgfin.data import load_market
from kgfin.market import (
    FACTOR_MODELS,
    MarketInputError,
    ResidualConfig,
    compound,
    excess_returns,
    monthly_residuals,
    monthly_returns,
    residual_vector,
    residuals,
    to_long,
    to_wide,
)


def _market(seed: int = 0, days: int = 260, tickers: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", periods=days)
    f = pd.DataFrame(rng.normal(0, 0.01, (days, 5)), columns=list(FACTOR_MODELS["ff5"]))
    f.insert(0, "date", dates)
    f["rf"] = 0.0001
    b = rng.normal(1, 0.3, (tickers, 5))
    ret = f["rf"].to_numpy()[:, None] + f[list(FACTOR_MODELS["ff5"])].to_numpy() @ b.T + rng.normal(0, 0.015, (days, tickers))
    wide = pd.DataFrame(ret, index=pd.DatetimeIndex(dates, name="date"),
                        columns=pd.Index([f"T{i}" for i in range(tickers)], name="ticker"))
    long = to_long(wide)
    long = long.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # order must not matter
    return long, f


@pytest.mark.parametrize("model", ["capm", "ff3", "ff5"])
def test_residuals_match_statsmodels(model: str) -> None:
    returns, factors = _market()
    returns = returns[~((returns["ticker"] == "T1") & (returns["date"] < "2020-03-01"))]  # late listing
    out = residuals(returns, factors, model=model, window=100, min_obs=60, keep_betas=True)
    assert len(out) == len(returns)
    assert list(out.columns[:9]) == ["date", "ticker", "ret", "rf", "excess", "expected", "resid", "sigma", "sresid"]
    cols = list(FACTOR_MODELS[model])
    for ticker, g in out.groupby("ticker"):
        mine = factors.merge(g, on="date", how="left")  # the full factor calendar
        y = (mine["ret"] - mine["rf_x"]).to_numpy()
        res = RollingOLS(y, sm.add_constant(mine[cols].to_numpy()), window=100, min_nobs=60, expanding=True).fit()
        ref = np.vstack([np.full((1, len(cols)), np.nan), res.params[:-1, 1:]])
        have = mine["ret"].notna().to_numpy()
        est = mine[[f"beta_{c}" for c in cols]].to_numpy()
        np.testing.assert_allclose(est[have], ref[have], atol=1e-8, equal_nan=True, err_msg=str(ticker))
    ok = out["resid"].notna()
    assert ok.sum() > 0.5 * len(out)
    x = out.loc[ok, [f"beta_{c}" for c in cols]].to_numpy()
    fx = factors.set_index("date").loc[out.loc[ok, "date"], cols].to_numpy()
    np.testing.assert_allclose(out.loc[ok, "expected"], (x * fx).sum(axis=1), atol=1e-14)
    np.testing.assert_allclose(out.loc[ok, "resid"], out.loc[ok, "ret"] - out.loc[ok, "rf"] - out.loc[ok, "expected"], atol=1e-14)
    np.testing.assert_allclose(out.loc[ok, "sresid"], out.loc[ok, "resid"] / out.loc[ok, "sigma"])


def test_alpha_in_expected() -> None:
    returns, factors = _market(1)
    a = residuals(returns, factors, window=100, min_obs=60, keep_betas=True)
    b = residuals(returns, factors, window=100, min_obs=60, alpha_in_expected=True)
    np.testing.assert_allclose(b["expected"], a["expected"] + a["alpha"])


def test_residuals_point_in_time() -> None:
    """Changing or removing returns after day d leaves every residual on or before d unchanged."""
    returns, factors = _market(2)
    base = residuals(returns, factors, window=80, min_obs=40).sort_values(["date", "ticker"], ignore_index=True)
    cut = pd.Timestamp(sorted(returns["date"].unique())[150])
    changed = returns.copy()
    later = changed["date"] > cut
    changed.loc[later, "ret"] = np.random.default_rng(0).normal(0, 0.2, later.sum())
    changed = changed[~(later & (changed["ticker"] == "T0"))]  # T0 delists after d
    new = residuals(changed, factors, window=80, min_obs=40)
    before = base[base["date"] <= cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(before, new[new["date"] <= cut].reset_index(drop=True), check_exact=True)
    # and a month's compounded residual uses nothing after that month
    month = cut.strftime("%Y-%m")
    m_base, m_new = monthly_residuals(base), monthly_residuals(new)
    pd.testing.assert_frame_equal(m_base[m_base["month"] < month].reset_index(drop=True),
                                  m_new[m_new["month"] < month].reset_index(drop=True), check_exact=True)
    assert (m_base["month"] < month).sum() > 0


def test_residual_vector() -> None:
    returns, factors = _market(6)
    out = residuals(returns, factors, window=60, min_obs=30)
    day = out["date"].iloc[-1]
    eps = residual_vector(out, day, ["T2", "NOPE", "T0"])
    last = out[out["date"] == day].set_index("ticker")["resid"]
    np.testing.assert_allclose(eps, [last["T2"], 0.0, last["T0"]])
    assert np.isnan(residual_vector(out, day, ["NOPE"], fill=np.nan)).all()
    assert (residual_vector(out, out["date"].iloc[0], ["T0", "T1"]) == 0).all()  # no loadings yet


def test_residuals_config_object_and_errors() -> None:
    returns, factors = _market(3)
    cfg = ResidualConfig(model="ff3", window=90, min_obs=45)
    pd.testing.assert_frame_equal(residuals(returns, factors, config=cfg),
                                  residuals(returns, factors, model="ff3", window=90, min_obs=45))
    with pytest.raises(ConfigError, match="min_obs"):
        residuals(returns, factors, window=50, min_obs=60)
    with pytest.raises(ConfigError, match="model"):
        residuals(returns, factors, model="ff4")
    with pytest.raises(MarketInputError, match="no row for 1 return date"):
        residuals(returns, factors[factors["date"] != factors["date"].iloc[10]])
    with pytest.raises(MarketInputError, match="rmw"):
        residuals(returns, factors.drop(columns="rmw"), model="ff5")
    with pytest.raises(MarketInputError, match="share a"):
        residuals(pd.concat([returns, returns.iloc[:1]]), factors)


def test_monthly_residuals_compound_by_hand() -> None:
    daily = pd.DataFrame({
        "date": pd.to_datetime(["2021-01-04", "2021-01-05", "2021-02-01", "2021-01-04", "2021-01-05", "2021-02-01"]),
        "ticker": ["A", "A", "A", "B", "B", "B"],
        "ret": [0.02, -0.01, 0.03, 0.01, 0.0, 0.05],
        "rf": [0.001, 0.001, 0.002, 0.001, 0.001, 0.002],
        "expected": [0.01, 0.005, 0.0, np.nan, 0.0, 0.01],
    })
    out = monthly_residuals(daily)
    assert out[["month", "ticker"]].values.tolist() == [["2021-01", "A"], ["2021-02", "A"], ["2021-02", "B"]]
    jan = out.iloc[0]
    ret = 1.02 * 0.99 - 1
    total = 1.011 * 1.006 - 1
    rf = 1.001**2 - 1
    assert jan["ret"] == pytest.approx(ret)
    assert jan["excess"] == pytest.approx(ret - rf)
    assert jan["expected"] == pytest.approx(total - rf)
    assert jan["resid"] == pytest.approx(ret - total)
    assert jan["n_days"] == 2
    assert out.iloc[2]["resid"] == pytest.approx(0.05 - 0.012)


def test_returns_helpers() -> None:
    returns, factors = _market(4, days=30)
    wide = to_wide(returns)
    assert wide.index.is_monotonic_increasing and list(wide.columns) == sorted(wide.columns)
    back = to_long(wide).sort_values(["date", "ticker"], ignore_index=True)
    pd.testing.assert_frame_equal(back, returns.sort_values(["date", "ticker"], ignore_index=True), check_dtype=False)
    ex = excess_returns(returns, factors)
    np.testing.assert_allclose(ex["excess"], ex["ret"] - 0.0001)
    m = monthly_returns(returns)
    jan = wide[wide.index.month == 1]
    np.testing.assert_allclose(m[m["month"] == "2020-01"].set_index("ticker")["ret"].loc[wide.columns],
                               compound(jan), rtol=1e-12)
    assert (m["n_days"] == m["month"].map({"2020-01": 23, "2020-02": 7})).all()
    holes = returns[~((returns["ticker"] == "T2") & (returns["date"] == "2020-01-15"))]
    assert not ((monthly_returns(holes)["ticker"] == "T2") & (monthly_returns(holes)["month"] == "2020-01")).any()


@pytest.mark.integration
def test_synthetic_market_betas_and_planted_shocks(default_synth_dir: Path) -> None:
    """On the default synthetic market the loadings recover the true betas and the planted
    event shocks show up in the residuals."""
    market = load_market(default_synth_dir, tables=["returns", "factors_daily"])
    firms = pd.read_parquet(default_synth_dir / "truth" / "firms.parquet").set_index("ticker")
    out = residuals(market.returns, market.factors_daily, model="ff5", keep_betas=True)
    est = out.groupby("ticker")[[f"beta_{f}" for f in FACTOR_MODELS["ff5"]]].mean()
    truth = firms.loc[est.index]
    for col, min_corr, max_mae in (("beta_mkt_rf", 0.85, 0.15), ("beta_smb", 0.85, 0.2), ("beta_hml", 0.85, 0.2),
                                   ("beta_rmw", 0.2, 0.6), ("beta_cma", 0.2, 0.6)):
        corr = np.corrcoef(est[col], truth[col])[0, 1]
        mae = (est[col] - truth[col]).abs().mean()
        assert corr > min_corr and mae < max_mae, (col, corr, mae)

    impacts = pd.read_parquet(default_synth_dir / "truth" / "impacts.parquet")
    shock = impacts.groupby(["event_date", "ticker"], as_index=False)["shock"].sum()
    shock["date"] = pd.to_datetime(shock["event_date"])
    data = out.merge(shock[["date", "ticker", "shock"]], on=["date", "ticker"], how="left").fillna({"shock": 0.0})
    data = data.dropna(subset=["resid"])
    fit = sm.OLS(data["resid"], sm.add_constant(data["shock"])).fit(cov_type="HC1")
    assert fit.pvalues["shock"] < 1e-10 and 0.8 < fit.params["shock"] < 1.2
