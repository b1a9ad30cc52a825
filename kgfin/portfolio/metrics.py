"""Performance metrics of a return series (simple returns per period, 0.01 = 1 %).

* mean return: arithmetic mean per period;
* annualised return: geometric, ``prod(1 + r) ** (P / n) - 1`` with P periods a year;
* annualised volatility: ``std(r, ddof=1) * sqrt(P)``;
* Sharpe ratio: ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(P)`` (``rf`` per period,
  default 0, as for self-financing long-short portfolios);
* maximum drawdown: ``min_t W_t / max_{s<=t} W_s - 1`` with wealth ``W_t = prod(1 + r)``
  and ``W_0 = 1`` (a negative number; 0 if wealth never falls);
* win rate: share of periods with a return above 0.

Every function ignores NaN periods; a metric with too few periods is NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "annualized_return", "annualized_volatility", "max_drawdown", "performance", "sharpe_ratio", "win_rate",
]


def _clean(returns: pd.Series | np.ndarray | list[float]) -> np.ndarray:
    r = np.asarray(returns, dtype=float).ravel()
    return r[~np.isnan(r)]


def annualized_return(returns: pd.Series | np.ndarray | list[float], periods_per_year: float = 252) -> float:
    """Geometric annualised return.

    >>> round(annualized_return([0.01] * 12, periods_per_year=12), 6)
    0.126825
    """
    r = _clean(returns)
    if r.size == 0:
        return np.nan
    growth = np.prod(1.0 + r)
    return float(growth ** (periods_per_year / r.size) - 1.0) if growth > 0 else -1.0


def annualized_volatility(returns: pd.Series | np.ndarray | list[float], periods_per_year: float = 252) -> float:
    """Standard deviation (ddof 1) times the square root of the periods per year."""
    r = _clean(returns)
    return float(r.std(ddof=1) * np.sqrt(periods_per_year)) if r.size > 1 else np.nan


def sharpe_ratio(returns: pd.Series | np.ndarray | list[float], periods_per_year: float = 252, rf: float = 0.0) -> float:
    """Annualised Sharpe ratio of the excess returns ``r - rf``; NaN when they do not vary.

    >>> round(sharpe_ratio([0.01, 0.03, -0.01, 0.01], periods_per_year=4), 6)
    1.224745
    """
    r = _clean(returns) - rf
    if r.size < 2:
        return np.nan
    sd = r.std(ddof=1)
    return float(r.mean() / sd * np.sqrt(periods_per_year)) if sd > 0 else np.nan


def max_drawdown(returns: pd.Series | np.ndarray | list[float]) -> float:
    """Largest peak-to-trough fall of compounded wealth, as a negative fraction.

    >>> round(max_drawdown([0.1, -0.5, 0.2, 0.5]), 6)
    -0.5
    >>> max_drawdown([0.01, 0.02])
    0.0
    """
    r = _clean(returns)
    if r.size == 0:
        return np.nan
    wealth = np.concatenate([[1.0], np.cumprod(1.0 + r)])
    return float(min(0.0, (wealth / np.maximum.accumulate(wealth) - 1.0).min()))


def win_rate(returns: pd.Series | np.ndarray | list[float]) -> float:
    """Share of periods with a positive return.

    >>> win_rate([0.01, 0.0, -0.02, 0.03])
    0.5
    """
    r = _clean(returns)
    return float((r > 0).mean()) if r.size else np.nan


def performance(
    returns: pd.Series | pd.DataFrame, periods_per_year: float = 252, rf: float = 0.0,
) -> pd.DataFrame:
    """One row per strategy (a Series, or each column of a DataFrame): ``strategy, periods,
    mean, annual_return, annual_vol, sharpe, max_drawdown, win_rate``."""
    frame = returns.to_frame() if isinstance(returns, pd.Series) else returns
    rows = []
    for name in frame.columns:
        r = frame[name]
        rows.append({
            "strategy": str(name), "periods": int(r.notna().sum()), "mean": float(np.nanmean(r)) if r.notna().any() else np.nan,
            "annual_return": annualized_return(r, periods_per_year),
            "annual_vol": annualized_volatility(r, periods_per_year),
            "sharpe": sharpe_ratio(r, periods_per_year, rf),
            "max_drawdown": max_drawdown(r), "win_rate": win_rate(r),
        })
    return pd.DataFrame(rows)
