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

A Sharpe ratio is reported with its number of periods and a confidence interval
(:func:`sharpe_ci`: the asymptotic standard error of Lo 2002 with Mertens' 2002 correction
for skewness and kurtosis, or a stationary bootstrap, Politis and Romano 1994, via ``arch``),
and :func:`performance_table` does not show it, nor the drawdown, under
``SharpeConfig.min_periods`` (60) periods: a Sharpe of 7 over 12 days carries no information.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from kgfin.config import KgfinConfig

__all__ = [
    "SharpeCI", "SharpeConfig", "annualized_return", "annualized_volatility", "max_drawdown", "performance",
    "performance_table", "sharpe_ci", "sharpe_ratio", "win_rate",
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


class SharpeConfig(KgfinConfig):
    """How a strategy table shows Sharpe ratios: only with their periods and a CI, never on too few periods."""

    min_periods: int = Field(60, ge=2, description="fewest return periods for a Sharpe ratio, its CI, the annualised "
                                                   "return and the drawdown to be shown")
    confidence: float = Field(0.95, gt=0, lt=1, description="level of the Sharpe and mean-return intervals")
    method: Literal["asymptotic", "bootstrap"] = Field(
        "asymptotic", description="Sharpe CI: asymptotic (Lo 2002 standard error, Mertens 2002 skew / kurtosis "
                                  "correction) or a stationary bootstrap (arch)")
    n_resamples: int = Field(2000, ge=100, description="bootstrap: resamples")
    block_length: float | None = Field(
        None, gt=0, description="bootstrap: expected block length in periods (None: Politis-White optimal length)")
    seed: int = Field(0, description="bootstrap seed")


@dataclass(frozen=True)
class SharpeCI:
    """An annualised Sharpe ratio with its confidence interval and the number of periods it is computed on."""

    sharpe: float
    low: float
    high: float
    periods: int


def sharpe_ci(returns: pd.Series | np.ndarray | list[float], periods_per_year: float = 252, rf: float = 0.0,
              confidence: float = 0.95, method: Literal["asymptotic", "bootstrap"] = "asymptotic",
              n_resamples: int = 2000, block_length: float | None = None, seed: int = 0) -> SharpeCI:
    """The annualised Sharpe ratio of ``r - rf`` with a ``confidence`` interval.

    ``asymptotic``: per-period ratio ``S`` with standard error
    ``sqrt((1 + S^2 / 2 - skew * S + (kurt - 3) / 4 * S^2) / n)`` (Lo 2002 for i.i.d. normal returns, where skew
    is 0 and kurt 3; Mertens 2002 for any i.i.d. returns; moments with ddof 0), a normal interval, both scaled by
    ``sqrt(periods_per_year)``. ``bootstrap``: percentile interval of the ratio over stationary-bootstrap resamples
    (``arch.bootstrap.StationaryBootstrap``; serial dependence kept within blocks).

    Two equally likely values (skew 0, kurtosis 1): the variance term is exactly 1, so the standard error is
    ``1 / sqrt(n)``:

    >>> r = sharpe_ci([0.02, 0.0] * 50, periods_per_year=1)
    >>> round(r.sharpe, 4), round((r.high - r.low) / (2 * 1.959964), 4), r.periods
    (0.995, 0.1, 100)
    """
    from scipy import stats

    r = _clean(returns) - rf
    n = int(r.size)
    nan = SharpeCI(np.nan, np.nan, np.nan, n)
    if n < 3 or not r.std(ddof=1) > 0:
        return nan
    scale = math.sqrt(periods_per_year)
    s = float(r.mean() / r.std(ddof=1))
    if method == "asymptotic":
        skew, kurt = float(stats.skew(r)), float(stats.kurtosis(r, fisher=False))
        var = max(1.0 + 0.5 * s * s - skew * s + (kurt - 3.0) / 4.0 * s * s, 0.0) / n
        z = float(stats.norm.ppf(0.5 + confidence / 2))
        return SharpeCI(s * scale, (s - z * math.sqrt(var)) * scale, (s + z * math.sqrt(var)) * scale, n)
    if method != "bootstrap":
        raise ValueError(f"unknown Sharpe CI method {method!r} (asymptotic or bootstrap)")
    from arch.bootstrap import StationaryBootstrap, optimal_block_length

    block = block_length or max(1.0, float(optimal_block_length(r)["stationary"].iloc[0]))
    bs = StationaryBootstrap(block, r, seed=np.random.default_rng(seed))

    def ratio(x: np.ndarray) -> float:
        sd = x.std(ddof=1)
        return float(x.mean() / sd) if sd > 0 else 0.0

    low, high = bs.conf_int(ratio, reps=n_resamples, method="percentile", size=confidence)[:, 0]
    return SharpeCI(s * scale, float(low) * scale, float(high) * scale, n)


def performance_table(returns: pd.Series | pd.DataFrame, periods_per_year: float = 252,
                      config: SharpeConfig | None = None, rf: float = 0.0) -> pd.DataFrame:
    """One row per strategy: ``strategy, periods, mean`` (per period) with its t interval, ``annual_return,
    annual_vol, sharpe`` with its interval, ``max_drawdown, win_rate`` and ``shown``.

    Under ``config.min_periods`` periods the annualised return, the Sharpe ratio, its interval and the drawdown
    are NaN and ``shown`` says why: they carry no information on a few periods and would read as if they did.
    """
    cfg = config or SharpeConfig()
    from scipy import stats

    frame = returns.to_frame() if isinstance(returns, pd.Series) else returns
    base = performance(frame, periods_per_year, rf).set_index("strategy")
    rows = []
    for name in frame.columns:
        r = _clean(frame[name])
        row = base.loc[str(name)].to_dict()
        n = int(r.size)
        half = (float(stats.t.ppf(0.5 + cfg.confidence / 2, n - 1)) * r.std(ddof=1) / math.sqrt(n)
                if n > 1 else np.nan)
        out = {"strategy": str(name), "periods": n, "mean": row["mean"], "mean CI low": row["mean"] - half,
               "mean CI high": row["mean"] + half, "annual_return": row["annual_return"],
               "annual_vol": row["annual_vol"]}
        if n >= cfg.min_periods:
            ci = sharpe_ci(r, periods_per_year, rf, cfg.confidence, cfg.method, cfg.n_resamples, cfg.block_length,
                           cfg.seed)
            out |= {"sharpe": ci.sharpe, "sharpe CI low": ci.low, "sharpe CI high": ci.high,
                    "max_drawdown": row["max_drawdown"], "win_rate": row["win_rate"], "shown": "all"}
        else:
            out |= {"annual_return": np.nan, "sharpe": np.nan, "sharpe CI low": np.nan, "sharpe CI high": np.nan,
                    "max_drawdown": np.nan, "win_rate": row["win_rate"],
                    "shown": f"{n} < {cfg.min_periods} periods: no Sharpe, drawdown or annual return"}
        rows.append(out)
    return pd.DataFrame(rows)
