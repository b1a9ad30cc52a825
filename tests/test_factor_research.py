"""Factor-research conventions: hand-computed values (Newey-West t, IC decay, turnover, rank autocorrelation), every
lost row counted, and equality with alphalens-reloaded / empyrical-reloaded on the same data."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from kgfin.portfolio.factor_research import (
    align_signal,
    drawdown,
    ic_by_horizon,
    monthly_ic,
    newey_west_t,
    quantile_returns,
    quantile_turnover,
    rank_autocorrelation,
)


def test_newey_west_t_by_hand() -> None:
    """x = 1, 2, 3, 4: mean 2.5, errors -1.5 -0.5 0.5 1.5; gamma0 = 5/4, gamma1 = (0.75 - 0.25 + 0.75)/4 = 0.3125;
    one lag (Bartlett weight 1/2): S = 1.25 + 2 * 0.5 * 0.3125 = 1.5625, se = sqrt(S / 4) = 0.625, t = 4."""
    r = newey_west_t([1.0, 2.0, 3.0, 4.0], lags=1)
    assert (r.mean, r.n, r.lags) == (2.5, 4, 1)
    assert r.se == pytest.approx(0.625)
    assert r.t == pytest.approx(4.0)
    iid = newey_west_t([1.0, 2.0, 3.0, 4.0], lags=0)
    assert iid.se == pytest.approx(np.sqrt(1.25 / 4))
    assert newey_west_t(np.arange(100.0)).lags == 4  # floor(4 (100/100)^(2/9))
    nan = newey_west_t([1.0, np.nan, 3.0], lags=0)
    assert nan.n == 2 and nan.mean == 2.0


def _returns() -> pd.DataFrame:
    # four stocks, four months: a, b, c, d
    ret = {"2020-02": [0.01, 0.02, 0.03, 0.04], "2020-03": [0.04, 0.03, 0.02, 0.01],
           "2020-04": [0.02, 0.01, 0.04, 0.03], "2020-05": [0.0, 0.0, 0.0, 0.0]}
    return pd.DataFrame([{"month": m, "ticker": t, "ret": r[i]} for m, r in ret.items()
                         for i, t in enumerate("abcd")])


def test_ic_decay_by_hand_and_every_lost_row_counted() -> None:
    """The 2020-01 signal ranks a < b < c < d: month 1 ahead (2020-02) has the same order (IC 1), month 2 ahead the
    reverse (IC -1), month 3 ahead the order b a d c (rank correlation 0.6); 2020-05 is flat (IC undefined)."""
    signal = pd.DataFrame({"month": "2020-01", "ticker": list("abcd"), "pred": [1.0, 2.0, 3.0, 4.0]})
    decay = ic_by_horizon(signal, _returns(), [1, 2, 3, 4, 5], lags=0).set_index("horizon")
    assert decay.loc[1, "mean IC"] == pytest.approx(1.0)
    assert decay.loc[2, "mean IC"] == pytest.approx(-1.0)
    assert decay.loc[3, "mean IC"] == pytest.approx(0.6)
    assert decay.loc[4, "months"] == 0  # a constant return column has no rank correlation
    assert decay.loc[5, "rows kept"] == 0 and decay.loc[5, "rows lost"] == 4  # 2020-06 is not in the data
    # a missing signal value and a missing return are counted, never dropped silently
    gappy = pd.concat([signal.assign(pred=[1.0, np.nan, 3.0, 4.0]),
                       pd.DataFrame({"month": ["2020-01"], "ticker": ["e"], "pred": [5.0]})], ignore_index=True)
    rets = pd.concat([_returns(), pd.DataFrame({"month": ["2020-02"], "ticker": ["f"], "ret": [0.1]})])
    joined, loss = align_signal(gappy, rets, 1)
    assert loss.as_dict() == {"signal rows": 5, "kept": 3, "signal missing": 1, "return missing": 1,
                              "returns without a signal": 1}
    assert len(joined) == loss.kept
    # compounded forward returns (alphalens' convention): 2020-02..2020-03 for h = 2
    comp, _ = align_signal(signal, _returns(), 2, cumulative=True)
    assert comp.set_index("ticker").loc["a", "ret"] == pytest.approx(1.01 * 1.04 - 1)


def test_turnover_and_rank_autocorrelation_by_hand() -> None:
    """Top half: {c, d} then {b, d}: half of it is new."""
    signal = pd.DataFrame({"month": ["2020-01"] * 4 + ["2020-02"] * 4, "ticker": list("abcd") * 2,
                           "pred": [1.0, 2.0, 3.0, 4.0, 2.0, 3.0, 1.0, 4.0]})  # 2020-02 ranks: a 2, b 3, c 1, d 4
    turn = quantile_turnover(signal, quantiles=2).set_index("month")
    assert np.isnan(turn.loc["2020-01", "turnover"])
    assert turn.loc["2020-02", "turnover"] == pytest.approx(0.5)
    auto = rank_autocorrelation(signal).set_index("month")
    # ranks (1, 2, 3, 4) vs (2, 3, 1, 4): d = (1, 1, -2, 0), sum d^2 = 6, 1 - 6 * 6 / (4 * 15) = 0.4
    assert auto.loc["2020-02", "autocorrelation"] == pytest.approx(0.4)
    assert auto.loc["2020-02", "n"] == 4


def test_quantile_returns_error_bars_and_drawdown_by_hand() -> None:
    joined = pd.DataFrame({"month": ["2020-01"] * 4 + ["2020-02"] * 4, "ticker": list("abcd") * 2,
                           "pred": [1.0, 2.0, 3.0, 4.0] * 2, "ret": [0.0, 0.0, 0.02, 0.04, 0.0, 0.02, 0.04, 0.04]})
    by_month, summary = quantile_returns(joined, 2)
    s = summary.set_index("quantile")
    assert s.loc[2, "mean return"] == pytest.approx((0.03 + 0.04) / 2)
    assert s.loc[2, "std error"] == pytest.approx(np.std([0.03, 0.04], ddof=1) / np.sqrt(2))
    assert by_month.loc["2020-02", 1] == pytest.approx(0.01)
    dd = drawdown(pd.Series([0.1, -0.5, 0.2]))
    assert dd["cumulative"].tolist() == pytest.approx([0.1, -0.45, -0.34])
    assert dd["drawdown"].tolist() == pytest.approx([0.0, -0.5, 0.66 / 1.1 - 1])


@pytest.fixture()
def panel() -> tuple[pd.Series, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)
    dates = pd.date_range("2020-01-31", periods=10, freq="ME")
    assets = [f"T{i:02d}" for i in range(25)]
    idx = pd.MultiIndex.from_product([dates, assets], names=["date", "asset"])
    factor = pd.Series(rng.normal(size=len(idx)), index=idx)
    prices = pd.DataFrame(np.exp(np.cumsum(rng.normal(0, 0.05, size=(11, 25)), axis=0)),
                          index=pd.date_range("2020-01-31", periods=11, freq="ME"), columns=assets)
    month = lambda d: pd.DatetimeIndex(d).strftime("%Y-%m")  # noqa: E731
    signal = pd.DataFrame({"month": month(idx.get_level_values(0)), "ticker": idx.get_level_values(1),
                           "pred": factor.to_numpy()})
    ret = prices.pct_change().iloc[1:]
    returns = ret.stack().rename("ret").reset_index()
    returns.columns = ["date", "ticker", "ret"]
    returns = returns.assign(month=month(returns["date"]))[["month", "ticker", "ret"]]
    return factor, prices, signal, returns


def test_kgfin_equals_alphalens_and_empyrical_on_the_same_data(panel) -> None:
    al = pytest.importorskip("alphalens")
    empyrical = pytest.importorskip("empyrical")
    factor, prices, signal, returns = panel
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = al.utils.get_clean_factor_and_forward_returns(factor, prices, periods=(1,), quantiles=5,
                                                             max_loss=0)
        theirs_ic = al.performance.factor_information_coefficient(data)["1D"].to_numpy()
        theirs_turn = al.performance.quantile_turnover(data["factor_quantile"], 5, period=1).to_numpy()
        theirs_auto = al.performance.factor_rank_autocorrelation(data, period=1).to_numpy()
        theirs_q, _ = al.performance.mean_return_by_quantile(data, by_date=True, demeaned=False)
    joined, loss = align_signal(signal, returns, 1)
    assert loss.kept == len(data)  # nothing lost on either side
    np.testing.assert_allclose(monthly_ic(joined)["ic"].to_numpy(), theirs_ic, rtol=1e-10)
    np.testing.assert_allclose(quantile_turnover(signal, 5)["turnover"].to_numpy(), theirs_turn, rtol=1e-10)
    np.testing.assert_allclose(rank_autocorrelation(signal)["autocorrelation"].to_numpy(), theirs_auto, rtol=1e-10)
    by_month, _ = quantile_returns(joined, 5)
    np.testing.assert_allclose(by_month.to_numpy().ravel(),
                               theirs_q["1D"].unstack("factor_quantile").to_numpy().ravel(), rtol=1e-10)
    ls = by_month[5] - by_month[1]
    assert drawdown(ls)["drawdown"].min() == pytest.approx(empyrical.max_drawdown(ls.to_numpy()))
