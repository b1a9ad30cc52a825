"""Factor-research conventions on monthly signals (what alphalens computes), with every lost row counted.

Inputs are long tables keyed by ``(month, ticker)``: a ``signal`` (``month, ticker, pred``: known at the end of
month m, predicting later months) and ``returns`` (``month, ticker, ret``: the return *of* that month).

* :func:`align_signal` joins them for horizon h (the return of month ``m + h``, or compounded over ``m+1..m+h``)
  and returns a :class:`RowLoss` next to the joined rows: signal rows with a missing value, signal rows without
  that return, return rows of the signal's months without a signal. Nothing is dropped silently (alphalens'
  ``get_clean_factor_and_forward_returns`` drops rows unless ``max_loss=0``).
* :func:`newey_west_t`: the mean of a series with a Newey-West (HAC, Bartlett kernel) standard error and t-stat
  (statsmodels), lags ``floor(4 (n / 100)^(2/9))`` unless given.
* :func:`ic_by_horizon` (IC decay): the monthly Spearman IC of the signal with the return h = 1..6 months ahead,
  mean with its Newey-West t and n.
* :func:`rank_autocorrelation` (alphalens ``factor_rank_autocorrelation``) and :func:`quantile_turnover`
  (alphalens ``quantile_turnover``: the share of a quantile's names that were not in it the month before).
* :func:`quantile_returns`: mean return of each quantile over months with its standard error and n (alphalens
  ``mean_return_by_quantile``'s error bars); quantiles are equal-count by rank per month (alphalens' ``quantiles``).
* :func:`drawdown`: cumulative return, running peak and drawdown of a monthly series (empyrical's
  ``max_drawdown`` is its minimum).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kgfin.data.calendar import add_months
from kgfin.portfolio.errors import PortfolioInputError

__all__ = ["NeweyWest", "RowLoss", "align_signal", "drawdown", "ic_by_horizon", "monthly_ic", "newey_west_t",
           "quantile_returns", "quantile_turnover", "rank_autocorrelation"]


@dataclass(frozen=True)
class NeweyWest:
    """A mean with its Newey-West standard error, t-stat, number of observations and lags."""

    mean: float
    se: float
    t: float
    n: int
    lags: int


def newey_west_t(values: pd.Series | np.ndarray | list[float], lags: int | None = None) -> NeweyWest:
    """Mean of ``values`` (NaN left out) with a HAC standard error (Bartlett kernel, ``lags`` lags; default
    ``floor(4 (n/100)^(2/9))``, Newey and West 1994), as statsmodels' OLS on a constant with ``cov_type='HAC'``.

    With zero lags it is the i.i.d. standard error with ddof 0: mean 2, sd_0 = sqrt(2), se = sqrt(2 / 4):

    >>> r = newey_west_t([1.0, 3.0, 1.0, 3.0], lags=0)
    >>> r.mean, round(r.se, 6), round(r.t, 6), r.n
    (2.0, 0.707107, 2.828427, 4)
    """
    import statsmodels.api as sm

    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    n = int(x.size)
    if lags is None:
        lags = int(math.floor(4 * (n / 100) ** (2 / 9))) if n else 0
    if n < 2 or not np.std(x) > 1e-12 * max(1.0, float(np.abs(x).max())):  # constant up to rounding: no error
        return NeweyWest(float(x.mean()) if n else np.nan, np.nan, np.nan, n, lags)
    fit = sm.OLS(x, np.ones((n, 1))).fit(cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": False})
    se = float(fit.bse[0])
    return NeweyWest(float(x.mean()), se, float(x.mean() / se) if se > 0 else np.nan, n, lags)


@dataclass
class RowLoss:
    """Rows lost when a signal is joined to returns (one horizon); ``kept`` rows remain."""

    signal_rows: int
    kept: int
    missing_signal: int  # signal rows whose value is NaN
    missing_return: int  # signal rows without the return of the horizon (not in the table, or NaN)
    returns_without_signal: int  # return rows of the signal's months (shifted by h) that no signal row names
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {"signal rows": self.signal_rows, "kept": self.kept, "signal missing": self.missing_signal,
                "return missing": self.missing_return, "returns without a signal": self.returns_without_signal}


def _forward(returns: pd.DataFrame, horizon: int, cumulative: bool) -> pd.DataFrame:
    """(month m, ticker) -> the return of month m + horizon, or compounded over m+1..m+horizon."""
    r = returns[["month", "ticker", "ret"]].assign(month=returns["month"].astype(str))
    if not cumulative or horizon == 1:
        return r.assign(month=[add_months(m, -horizon) for m in r["month"]])
    wide = r.pivot(index="month", columns="ticker", values="ret").sort_index()
    months = list(wide.index)
    full = pd.Index([add_months(months[0], k) for k in range(len(months))]) if months else pd.Index([])
    wide = wide.reindex(full)  # a gap month makes the compounded return NaN, not a shorter window
    growth = np.log1p(wide).rolling(horizon, min_periods=horizon).sum()
    fwd = np.expm1(growth).shift(-horizon + 1)  # index m+1 holds m+1..m+h
    fwd.index = [add_months(m, -1) for m in fwd.index]
    out = fwd.stack().rename("ret").reset_index()
    out.columns = ["month", "ticker", "ret"]
    return out


def align_signal(signal: pd.DataFrame, returns: pd.DataFrame, horizon: int = 1, pred: str = "pred",
                 cumulative: bool = False) -> tuple[pd.DataFrame, RowLoss]:
    """``month, ticker, pred, ret`` with ``ret`` the return h months ahead (``cumulative``: compounded over
    m+1..m+h, alphalens' forward returns) and the :class:`RowLoss` of the join."""
    if horizon < 1:
        raise PortfolioInputError(f"horizon must be at least 1 month, got {horizon}")
    s = signal[["month", "ticker", pred]].rename(columns={pred: "pred"}).assign(month=signal["month"].astype(str))
    if s.duplicated(["month", "ticker"]).any():
        raise PortfolioInputError("the signal has two rows for one (month, ticker)")
    fwd = _forward(returns, horizon, cumulative)
    joined = s.merge(fwd, on=["month", "ticker"], how="left")
    no_signal = joined["pred"].isna()
    no_return = ~no_signal & joined["ret"].isna()
    in_months = fwd[fwd["month"].isin(set(s["month"]))]
    extra = len(in_months.merge(s[["month", "ticker"]], on=["month", "ticker"], how="left", indicator=True)
                .query("_merge == 'left_only'"))
    kept = joined[~no_signal & ~no_return].sort_values(["month", "ticker"], ignore_index=True)
    return kept, RowLoss(len(s), len(kept), int(no_signal.sum()), int(no_return.sum()), int(extra))


def monthly_ic(joined: pd.DataFrame) -> pd.DataFrame:
    """``month, ic, n``: the Spearman rank correlation of ``pred`` and ``ret`` per month (NaN under 3 stocks or
    with a constant column)."""
    rows = []
    for m, g in joined.groupby("month", sort=True):
        ok = len(g) >= 3 and g["pred"].nunique() > 1 and g["ret"].nunique() > 1
        ic = float(g["pred"].rank().corr(g["ret"].rank())) if ok else np.nan
        rows.append({"month": m, "ic": ic, "n": len(g)})
    return pd.DataFrame(rows, columns=["month", "ic", "n"])


def ic_by_horizon(signal: pd.DataFrame, returns: pd.DataFrame, horizons: list[int] | range = range(1, 7),
                  pred: str = "pred", cumulative: bool = False, lags: int | None = None) -> pd.DataFrame:
    """IC decay: per horizon h, the mean monthly Spearman IC of the signal with the return of month m + h (or
    compounded over m+1..m+h), its Newey-West t, the months and the rows lost."""
    rows = []
    for h in horizons:
        joined, loss = align_signal(signal, returns, h, pred, cumulative)
        ic = monthly_ic(joined)
        nw = newey_west_t(ic["ic"], lags)
        rows.append({"horizon": h, "mean IC": nw.mean, "NW t": nw.t, "months": nw.n, "lags": nw.lags,
                     "rows kept": loss.kept, "rows lost": loss.missing_signal + loss.missing_return})
    return pd.DataFrame(rows)


def rank_autocorrelation(signal: pd.DataFrame, lag: int = 1, pred: str = "pred") -> pd.DataFrame:
    """``month, autocorrelation, n``: the Pearson correlation of this month's cross-sectional ranks with those of
    ``lag`` months before, over the tickers present in both (alphalens ``factor_rank_autocorrelation``)."""
    s = signal[["month", "ticker", pred]].assign(month=signal["month"].astype(str)).dropna(subset=[pred])
    ranks = s.assign(r=s.groupby("month")[pred].rank()).pivot(index="month", columns="ticker", values="r")
    ranks = ranks.sort_index()
    rows = []
    for k in range(len(ranks)):
        m = ranks.index[k]
        before = add_months(m, -lag)
        if before not in ranks.index:
            rows.append({"month": m, "autocorrelation": np.nan, "n": 0})
            continue
        a, b = ranks.loc[m], ranks.loc[before]
        ok = a.notna() & b.notna()
        rows.append({"month": m, "autocorrelation": float(a[ok].corr(b[ok])) if ok.sum() > 2 else np.nan,
                     "n": int(ok.sum())})
    return pd.DataFrame(rows, columns=["month", "autocorrelation", "n"])


def _quantiles(frame: pd.DataFrame, n: int) -> pd.Series:
    """Quantile 1..n per month by rank of ``pred`` (equal counts, ties by order: pandas ``qcut`` of the ranks)."""
    def cut(x: pd.Series) -> pd.Series:
        if len(x) < n:
            raise PortfolioInputError(f"month {frame.loc[x.index[0], 'month']}: {len(x)} stocks cannot form {n} "
                                      "quantiles")
        return pd.qcut(x.rank(method="first"), n, labels=False) + 1

    return frame.groupby("month", group_keys=False)["pred"].apply(cut).astype(int)


def quantile_turnover(signal: pd.DataFrame, quantiles: int = 10, quantile: int | None = None, lag: int = 1,
                      pred: str = "pred") -> pd.DataFrame:
    """``month, turnover, n``: the share of quantile ``quantile``'s names (default: the top) that were not in it
    ``lag`` months before (alphalens ``quantile_turnover``); NaN for a month without the earlier month."""
    s = signal[["month", "ticker", pred]].rename(columns={pred: "pred"}).assign(month=signal["month"].astype(str))
    s = s.dropna(subset=["pred"]).reset_index(drop=True)
    s["q"] = _quantiles(s, quantiles)
    q = quantiles if quantile is None else quantile
    names = {m: set(g.loc[g["q"] == q, "ticker"]) for m, g in s.groupby("month", sort=True)}
    rows = []
    for m in sorted(names):
        before = names.get(add_months(m, -lag))
        now = names[m]
        rows.append({"month": m, "turnover": len(now - before) / len(now) if before is not None and now else np.nan,
                     "n": len(now)})
    return pd.DataFrame(rows, columns=["month", "turnover", "n"])


def quantile_returns(joined: pd.DataFrame, quantiles: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per month and quantile the mean return, and per quantile its mean over months, standard error
    (``std(ddof=1) / sqrt(months)``) and months. ``joined``: :func:`align_signal`'s rows."""
    j = joined.reset_index(drop=True)
    j["quantile"] = _quantiles(j, quantiles)
    by_month = j.groupby(["month", "quantile"], sort=True)["ret"].mean().unstack()
    summary = pd.DataFrame({
        "quantile": by_month.columns.astype(int), "mean return": by_month.mean().to_numpy(),
        "std error": (by_month.std(ddof=1) / np.sqrt(by_month.notna().sum())).to_numpy(),
        "months": by_month.notna().sum().to_numpy()})
    return by_month, summary


def drawdown(returns: pd.Series) -> pd.DataFrame:
    """``cumulative`` (compounded return), ``peak`` (running maximum of wealth) and ``drawdown`` (wealth over its
    running peak, minus 1; the starting wealth 1 counts as a peak) of a monthly return series."""
    r = pd.Series(returns, dtype=float).fillna(0.0)
    wealth = (1 + r).cumprod()
    peak = np.maximum(wealth.cummax(), 1.0)
    return pd.DataFrame({"cumulative": wealth - 1, "peak": peak, "drawdown": wealth / peak - 1}, index=r.index)
