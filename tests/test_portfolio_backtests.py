"""Daily long-short and benchmark backtests, monthly deciles: hand-computed cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kgfin.data import load_market
from kgfin.market import monthly_returns, to_long
from kgfin.portfolio import (
    PortfolioInputError,
    allocate,
    allocator_backtest,
    decile_portfolios,
    long_short_backtest,
    mape,
)

DAYS = pd.bdate_range("2021-03-01", periods=6)
TICKERS = [f"S{i}" for i in range(10)]


def _returns(seed: int = 0, days: pd.DatetimeIndex = DAYS, tickers: list[str] = TICKERS) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    wide = pd.DataFrame(rng.normal(0, 0.02, (len(days), len(tickers))).round(4),
                        index=pd.DatetimeIndex(days, name="date"), columns=pd.Index(tickers, name="ticker"))
    return to_long(wide)


def _ret(returns: pd.DataFrame, day: pd.Timestamp, ticker: str) -> float:
    return float(returns.loc[(returns["date"] == day) & (returns["ticker"] == ticker), "ret"].iloc[0])


# ---------------------------------------------------------------- long-short


def test_long_short_by_hand() -> None:
    r = _returns()
    sig = pd.DataFrame({"date": DAYS[1], "ticker": TICKERS, "score": np.arange(10.0)})  # S9 best, S0 worst
    out = long_short_backtest(sig, r, quantile=0.2, lag=1)
    assert out["date"].tolist() == [DAYS[2]]
    held = DAYS[2]
    want = (_ret(r, held, "S9") + _ret(r, held, "S8")) / 2 - (_ret(r, held, "S0") + _ret(r, held, "S1")) / 2
    row = out.iloc[0]
    assert row["ret"] == pytest.approx(want) and row["gross"] == pytest.approx(want)
    assert (row["n_long"], row["n_short"], row["turnover"]) == (2, 2, pytest.approx(2.0))
    same_day = long_short_backtest(sig, r, quantile=0.2, lag=0).iloc[0]
    assert same_day["ret"] == pytest.approx(
        (_ret(r, DAYS[1], "S9") + _ret(r, DAYS[1], "S8") - _ret(r, DAYS[1], "S0") - _ret(r, DAYS[1], "S1")) / 2)


def test_long_short_days_turnover_cost_and_ties() -> None:
    r = _returns(1)
    sig = pd.concat([
        pd.DataFrame({"date": DAYS[0], "ticker": TICKERS[:4], "score": [0.3, 0.1, -0.2, 0.0]}),
        pd.DataFrame({"date": DAYS[3], "ticker": ["S5", "S6", "S7"], "score": [1.0, 1.0, -1.0]}),  # tie on top
        pd.DataFrame({"date": DAYS[4], "ticker": ["S1"], "score": [0.5]}),  # too few names
    ])
    out = long_short_backtest(sig, r, quantile=0.1, lag=0, cost=0.001)
    assert out["date"].tolist() == list(DAYS[:5])  # every day from the first to the last held day
    assert out["n_long"].tolist() == [1, 0, 0, 1, 0]
    # day 0: long S0 (0.3), short S2 (-0.2); day 3: tie -> S5 by ticker order, short S7
    d0 = _ret(r, DAYS[0], "S0") - _ret(r, DAYS[0], "S2")
    d3 = _ret(r, DAYS[3], "S5") - _ret(r, DAYS[3], "S7")
    np.testing.assert_allclose(out["gross"], [d0, 0, 0, d3, 0], atol=1e-15)
    np.testing.assert_allclose(out["turnover"], [2, 2, 0, 2, 2])  # in, out, flat, in, out
    np.testing.assert_allclose(out["ret"], out["gross"] - 0.001 * out["turnover"])


def test_long_short_all_tied_holds_nothing() -> None:
    """20 equal scores: neither leg can be told from the other, so no position (was 0 long, 2 short)."""
    tickers = [f"T{i:02d}" for i in range(20)]
    r = _returns(3, tickers=tickers)
    sig = pd.DataFrame({"date": DAYS[1], "ticker": tickers, "score": 10.0})
    row = long_short_backtest(sig, r, quantile=0.1, lag=0).iloc[0]
    assert (row["n_long"], row["n_short"], row["n_tied"]) == (0, 0, 20)
    assert row["gross"] == 0 and row["turnover"] == 0


def test_long_short_ties_across_legs_drop_only_the_tied_names() -> None:
    """Rank once; the score shared by both legs' edges is held by neither, each leg stays 1 long / 1 short."""
    r = _returns(4)
    # n = 10, k = 3: long S0 (5), S1 (4), S2 (0); short S9 (-5), S8 (-1), S7 (0): score 0 is in both legs
    scores = [5.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, -5.0]
    sig = pd.DataFrame({"date": DAYS[2], "ticker": TICKERS, "score": scores})
    row = long_short_backtest(sig, r, quantile=0.3, lag=0).iloc[0]
    assert (row["n_long"], row["n_short"], row["n_tied"]) == (2, 2, 6)
    want = (_ret(r, DAYS[2], "S0") + _ret(r, DAYS[2], "S1")) / 2 - (_ret(r, DAYS[2], "S8") + _ret(r, DAYS[2], "S9")) / 2
    assert row["gross"] == pytest.approx(want)
    assert row["turnover"] == pytest.approx(2.0)  # dollar neutral: 1 long, 1 short


def test_long_short_saturated_scores_stay_neutral() -> None:
    """Scores saturated at +-10: a day is either flat or holds both legs (was 1 long, 3 short)."""
    tickers = [f"T{i:02d}" for i in range(30)]
    r = _returns(5, tickers=tickers)
    days = [[10.0] * 29 + [-10.0], [-10.0] + [10.0] * 29, [10.0] * 15 + [-10.0] * 15]
    sig = pd.concat([pd.DataFrame({"date": DAYS[i], "ticker": tickers, "score": s}) for i, s in enumerate(days)])
    out = long_short_backtest(sig, r, quantile=0.1, lag=0)
    assert out[["n_long", "n_short", "n_tied"]].to_numpy().tolist() == [[0, 0, 29], [0, 0, 29], [3, 3, 0]]


def test_long_short_skips_stocks_without_a_return() -> None:
    r = _returns(2)
    r = r[~((r["date"] == DAYS[2]) & (r["ticker"] == "S9"))]
    sig = pd.DataFrame({"date": DAYS[2], "ticker": TICKERS, "score": np.arange(10.0)})
    row = long_short_backtest(sig, r, quantile=0.1, lag=0).iloc[0]
    assert row["gross"] == pytest.approx(_ret(r, DAYS[2], "S8") - _ret(r, DAYS[2], "S0"))


def test_long_short_bad_input() -> None:
    r = _returns()
    sig = pd.DataFrame({"date": [DAYS[0], DAYS[0]], "ticker": ["S1", "S1"], "score": [1.0, 2.0]})
    with pytest.raises(PortfolioInputError, match="aggregate"):
        long_short_backtest(sig, r)
    with pytest.raises(PortfolioInputError, match="missing column"):
        long_short_backtest(sig.drop(columns="score"), r)
    late = pd.DataFrame({"date": [DAYS[-1]], "ticker": ["S1"], "score": [1.0]})
    with pytest.raises(PortfolioInputError, match="last trading day"):
        long_short_backtest(late, r, lag=1)


# ---------------------------------------------------------------- benchmarks


def test_allocator_backtest_equal_weight_by_hand() -> None:
    days = pd.bdate_range("2021-01-04", periods=40)
    r = _returns(3, days, TICKERS[:4])
    r = r[~((r["ticker"] == "S3") & (r["date"] == days[12]))]  # S3 missing inside the first windows
    out = allocator_backtest(r, "equal", lookback=10, cost=0.0)
    assert out["date"].iloc[0] == days[10] and len(out) == 30
    wide = r.pivot(index="date", columns="ticker", values="ret")
    np.testing.assert_allclose(out.loc[out["date"] == days[15], "ret"], wide.loc[days[15], ["S0", "S1", "S2"]].mean())
    np.testing.assert_allclose(out.loc[out["date"] == days[30], "ret"], wide.loc[days[30]].mean())
    assert out.set_index("date").loc[days[12:23], "n_assets"].eq(3).all()
    assert out.set_index("date").loc[days[23]:, "n_assets"].eq(4).all()


@pytest.mark.parametrize("method", ["inverse_vol", "markowitz", "min_variance"])
def test_allocator_backtest_matches_allocator_and_is_point_in_time(method: str) -> None:
    days = pd.bdate_range("2021-01-04", periods=45)
    r = _returns(4, days, TICKERS[:6])
    out = allocator_backtest(r, method, lookback=30, cost=0.002)
    wide = r.pivot(index="date", columns="ticker", values="ret").to_numpy()
    d = 37
    w = allocate(method, wide[d - 30:d])
    assert out.loc[out["date"] == days[d], "gross"].iloc[0] == pytest.approx(w @ wide[d], abs=1e-9)
    np.testing.assert_allclose(out["ret"], out["gross"] - 0.002 * out["turnover"])
    changed = r.copy()
    changed.loc[changed["date"] > days[d], "ret"] = 0.5
    again = allocator_backtest(changed, method, lookback=30, cost=0.002)
    pd.testing.assert_frame_equal(out[out["date"] <= days[d]], again[again["date"] <= days[d]])


def test_allocator_backtest_period_and_errors() -> None:
    days = pd.bdate_range("2021-01-04", periods=40)
    r = _returns(5, days, TICKERS[:3])
    out = allocator_backtest(r, "equal", lookback=5, start=days[20], end=days[25])
    assert out["date"].tolist() == list(days[20:26])
    with pytest.raises(PortfolioInputError, match="unknown allocator"):
        allocator_backtest(r, "best")  # type: ignore[arg-type]
    with pytest.raises(PortfolioInputError, match="lookback"):
        allocator_backtest(r, "equal", lookback=30, end=days[20])


# ---------------------------------------------------------------- deciles


def _monthly(seed: int, months: int = 4, n: int = 30, signal: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(months):
        pred = rng.normal(0, 0.02, n)
        ret = signal * pred + rng.normal(0, 0.05, n)
        rows += [(f"2020-{m + 1:02d}", f"T{i:02d}", pred[i], ret[i]) for i in range(n)]
    df = pd.DataFrame(rows, columns=["month", "ticker", "pred", "ret"])
    return df[["month", "ticker", "pred"]], df[["month", "ticker", "ret"]]


def test_deciles_by_hand() -> None:
    pred = pd.DataFrame({"month": ["2020-01"] * 4 + ["2020-02"] * 4, "ticker": list("ABCD") * 2,
                         "pred": [0.4, 0.1, 0.3, 0.2, 0.1, 0.2, 0.3, 0.4]})
    real = pd.DataFrame({"month": ["2020-01"] * 4 + ["2020-02"] * 4, "ticker": list("ABCD") * 2,
                         "ret": [0.05, -0.02, 0.01, 0.0, 0.02, -0.01, 0.03, 0.04]})
    res = decile_portfolios(pred, real, n_groups=2, cost=0.01)
    r = res.returns.set_index("month")
    # Jan: D2 = {A, C}, D1 = {B, D}; Feb: D2 = {C, D}, D1 = {A, B}
    assert r.loc["2020-01", "D2"] == pytest.approx(0.03) and r.loc["2020-01", "D1"] == pytest.approx(-0.01)
    assert r.loc["2020-02", "D2"] == pytest.approx(0.035) and r.loc["2020-02", "D1"] == pytest.approx(0.005)
    assert r["turnover_long_only"].tolist() == pytest.approx([1.0, 1.0])  # swap A for D
    assert r["turnover_long_short"].tolist() == pytest.approx([2.0, 2.0])  # A: +0.5 -> -0.5, D: -0.5 -> +0.5
    assert r.loc["2020-01", "long_only"] == pytest.approx(0.03 - 0.01)
    assert r.loc["2020-02", "long_short"] == pytest.approx(0.035 - 0.005 - 0.01 * 2.0)
    ic = res.ic.set_index("month")["ic"]
    assert ic["2020-01"] == pytest.approx(stats.spearmanr([0.4, 0.1, 0.3, 0.2], [0.05, -0.02, 0.01, 0.0])[0])
    assert ic["2020-02"] == pytest.approx(0.8)
    acc = res.accuracy.iloc[0]
    assert acc["ic_mean"] == pytest.approx(ic.mean())
    assert acc["ic_t"] == pytest.approx(ic.mean() / (ic.std(ddof=1) / np.sqrt(2)))
    want_mape, n_mape = mape(pred["pred"], real["ret"])
    assert (acc["mape"], acc["mape_n"]) == (pytest.approx(want_mape), n_mape) and n_mape == 7
    assert res.profile["group"].tolist() == ["D1", "D2"]
    assert res.profile["mean_return"].tolist() == pytest.approx([-0.0025, 0.0325])
    assert res.performance["strategy"].tolist() == ["long_only", "long_short"]
    assert "**Decile profile**" in res.to_markdown()


def test_deciles_planted_signal_and_groups() -> None:
    pred, real = _monthly(0, months=24, n=100, signal=3.0)
    res = decile_portfolios(pred, real)
    profile = res.profile["mean_return"].to_numpy()
    assert profile[-1] > profile[0] and stats.spearmanr(np.arange(10), profile)[0] > 0.8
    assert res.accuracy.iloc[0]["ic_t"] > 3
    assert (res.profile["mean_stocks"] == 10).all()
    assert res.performance.set_index("strategy").loc["long_short", "sharpe"] > 0
    perfect = decile_portfolios(pred, real.assign(ret=pred["pred"]))
    assert perfect.accuracy.iloc[0]["ic_mean"] == pytest.approx(1.0)
    assert perfect.accuracy.iloc[0]["mape"] == pytest.approx(0.0)


def test_deciles_bad_input() -> None:
    pred, real = _monthly(1, n=8)
    with pytest.raises(PortfolioInputError, match="cannot form 10 groups"):
        decile_portfolios(pred, real)
    with pytest.raises(PortfolioInputError, match="several rows"):
        decile_portfolios(pd.concat([pred, pred.iloc[:1]]), real, n_groups=2)
    with pytest.raises(PortfolioInputError, match="missing column"):
        decile_portfolios(pred.rename(columns={"pred": "p"}), real, n_groups=2)


@pytest.mark.integration
def test_deciles_on_synthetic_planted_alpha(default_synth_dir: Path) -> None:
    """The synthetic market's planted monthly alpha, used as the prediction, earns a
    positive long-short spread and a significant IC."""
    market = load_market(default_synth_dir, tables=["returns"])
    monthly = monthly_returns(market.returns)
    alpha = pd.read_parquet(default_synth_dir / "truth" / "monthly_alpha.parquet")
    alpha = alpha[alpha["month"] > alpha["month"].min()]  # month 0 has no planted alpha
    res = decile_portfolios(alpha.rename(columns={"alpha": "pred"}), monthly)
    assert res.accuracy.iloc[0]["ic_t"] > 3
    assert res.performance.set_index("strategy").loc["long_short", "annual_return"] > 0
