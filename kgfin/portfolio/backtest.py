"""Daily backtests: the event-driven long-short portfolio and the benchmark allocators.

Both return one row per trading day with ``date, ret, gross, turnover, cost`` plus counts;
``ret = gross - cost``, ``cost = cost_rate * turnover`` and ``turnover = sum_i |w_i(d) -
w_i(d-1)|`` (weights are rebalanced every day; drift within the day is ignored). A
stock can be held on day d only if it has a return on day d.

**Long-short** (:func:`long_short_backtest`): a signal dated s (a predicted impact known
on day s) is traded on the ``lag``-th trading day after s (``lag=1``: formed at the close of
s, earns day s+1's return; ``lag=0`` earns day s's own close-to-close return, the papers'
convention, which assumes the news arrived before the day's price move). Each held day,
the n stocks with a signal are ranked once by score (ties by ticker), with
``k = max(1, floor(quantile * n))`` (at most n // 2): the first k of that ranking form the
long leg, the last k the short leg. **Ties across the legs**: when the long leg's lowest
score equals the short leg's highest (saturated or constant scores), the stocks with that
score cannot be told apart, so neither leg holds them (counted in ``n_tied``); if a leg is
left empty the day holds nothing. Each leg is equal weighted over the names it keeps
(``+1/k_long``, ``-1/k_short``), so the book stays dollar neutral. Ties inside one leg's
edge only (not shared with the other leg) fall to the ticker order. Days with fewer than
``min_names`` scored stocks hold nothing (return 0). Rows cover every trading day from the
first to the last held day.

**Benchmarks** (:func:`allocator_backtest`): each day d with ``lookback`` trading days
before it, the weights of an allocator (:mod:`kgfin.portfolio.allocators`) from those
days, over the stocks with a return on all of them and on d.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from kgfin.config import KgfinConfig, resolve_config
from kgfin.market.returns import MarketInputError, as_dates, to_wide
from kgfin.portfolio.allocators import ALLOCATORS, AllocatorConfig, Method, allocate
from kgfin.portfolio.errors import PortfolioInputError

__all__ = ["LongShortConfig", "allocator_backtest", "long_short_backtest"]


class LongShortConfig(KgfinConfig):
    """The daily event-driven long-short portfolio."""

    quantile: float = Field(0.1, gt=0, le=0.5, description="share of ranked stocks in each leg (0.1: top/bottom 10 %)")
    lag: int = Field(1, ge=0, description="trading days between a signal's date and the day it earns")
    min_names: int = Field(2, ge=2, description="fewest ranked stocks needed to hold a position")
    cost: float = Field(0.0, ge=0, description="cost per unit of turnover (0.001 = 10 bp); 0 as in the papers")


def _returns_panel(returns: pd.DataFrame) -> pd.DataFrame:
    try:
        return to_wide(returns, "ret")
    except MarketInputError as exc:
        raise PortfolioInputError(str(exc)) from None


def _turnover(weights: list[dict[str, float]]) -> np.ndarray:
    out, prev = [], {}
    for w in weights:
        names = prev.keys() | w.keys()
        out.append(sum(abs(w.get(k, 0.0) - prev.get(k, 0.0)) for k in names))
        prev = w
    return np.array(out)


def _legs(day: pd.DataFrame, score: str, quantile: float) -> tuple[dict[str, float], int]:
    """One day's weights from one ranking (score descending, ticker ascending), and ``n_tied``.

    >>> _legs(pd.DataFrame({"ticker": list("ABCD"), "s": [1.0, 1.0, 1.0, 1.0]}), "s", 0.25)
    ({}, 4)
    >>> _legs(pd.DataFrame({"ticker": list("ABCD"), "s": [2.0, 1.0, 1.0, -1.0]}), "s", 0.5)
    ({'A': 1.0, 'D': -1.0}, 2)
    """
    n = len(day)
    k = min(max(1, math.floor(quantile * n)), n // 2)
    ranked = day.sort_values([score, "ticker"], ascending=[False, True])
    longs, shorts = ranked.iloc[:k], ranked.iloc[n - k:]
    n_tied = 0
    edge = longs[score].iloc[-1]
    if edge == shorts[score].iloc[0]:  # the legs' edges share a score: those names are indistinguishable
        n_tied = int((day[score] == edge).sum())
        longs, shorts = longs[longs[score] != edge], shorts[shorts[score] != edge]
    if longs.empty or shorts.empty:
        return {}, n_tied
    return ({t: 1.0 / len(longs) for t in longs["ticker"]}
            | {t: -1.0 / len(shorts) for t in shorts["ticker"]}), n_tied


def long_short_backtest(
    signals: pd.DataFrame, returns: pd.DataFrame, score: str = "score",
    config: LongShortConfig | None = None, **overrides: Any,
) -> pd.DataFrame:
    """Daily top-minus-bottom portfolio on ``signals`` (date, ticker, ``score``).

    ``returns``: (date, ticker, ret) daily. One signal per (date, ticker): aggregate several
    events of a day first. Returns ``date, ret, gross, turnover, cost, n_long, n_short,
    n_tied`` (``n_tied``: stocks held by neither leg because their score is shared by both).
    """
    cfg = resolve_config(LongShortConfig, config, overrides)
    missing = [c for c in ("date", "ticker", score) if c not in signals.columns]
    if missing:
        raise PortfolioInputError(f"signals: missing column(s) {missing}")
    sig = signals[["date", "ticker", score]].dropna(subset=[score])
    if sig.duplicated(["date", "ticker"]).any():
        first = sig.loc[sig.duplicated(["date", "ticker"]), ["date", "ticker"]].iloc[0].tolist()
        raise PortfolioInputError(f"signals: several rows for one (date, ticker), e.g. {first}; aggregate them first")
    ret = _returns_panel(returns)
    days = ret.index
    pos = days.searchsorted(as_dates(sig["date"]), side="left") + cfg.lag  # index of the held day
    sig = sig.assign(held=pos)[pos < len(days)]
    if sig.empty:
        raise PortfolioInputError("signals: none falls on or before the last trading day of the returns")

    rows, weights = [], []
    by_day = dict(tuple(sig.groupby("held", sort=True)))
    first, last = int(sig["held"].min()), int(sig["held"].max())
    for d in range(first, last + 1):
        w: dict[str, float] = {}
        n_tied = 0
        day = by_day.get(d)
        r_day = ret.iloc[d]
        if day is not None:
            day = day[day["ticker"].map(r_day).notna().to_numpy()]
            if len(day) >= cfg.min_names:
                w, n_tied = _legs(day, score, cfg.quantile)
        gross = float(sum(wt * r_day[t] for t, wt in w.items()))
        weights.append(w)
        rows.append((days[d], gross, sum(v > 0 for v in w.values()), sum(v < 0 for v in w.values()), n_tied))
    out = pd.DataFrame(rows, columns=["date", "gross", "n_long", "n_short", "n_tied"])
    out["turnover"] = _turnover(weights)
    out["cost"] = cfg.cost * out["turnover"]
    out["ret"] = out["gross"] - out["cost"]
    return out[["date", "ret", "gross", "turnover", "cost", "n_long", "n_short", "n_tied"]]


def allocator_backtest(
    returns: pd.DataFrame, method: Method, config: AllocatorConfig | None = None, cost: float = 0.0,
    start: str | pd.Timestamp | None = None, end: str | pd.Timestamp | None = None, **overrides: Any,
) -> pd.DataFrame:
    """Daily-rebalanced benchmark portfolio: ``method`` in :data:`ALLOCATORS`.

    Holds from the first day with ``lookback`` days of history (or ``start``, if later) to
    the last day (or ``end``).
    Returns ``date, ret, gross, turnover, cost, n_assets``.
    """
    if method not in ALLOCATORS:
        raise PortfolioInputError(f"unknown allocator {method!r}; choose one of {ALLOCATORS}")
    if cost < 0:
        raise PortfolioInputError(f"cost must be >= 0, got {cost}")
    cfg = resolve_config(AllocatorConfig, config, overrides)
    ret = _returns_panel(returns)
    days, values, tickers = ret.index, ret.to_numpy(), ret.columns.to_numpy(dtype=object)
    lo = days.searchsorted(pd.Timestamp(start)) if start is not None else 0
    hi = days.searchsorted(pd.Timestamp(end), side="right") if end is not None else len(days)
    first = max(cfg.lookback, lo)
    if first >= hi:
        raise PortfolioInputError(f"{method}: fewer than lookback={cfg.lookback} trading days before the period")
    rows, weights, prev = [], [], None
    for d in range(first, hi):
        window = values[d - cfg.lookback:d]
        ok = np.isfinite(window).all(axis=0) & np.isfinite(values[d])
        if not ok.any():
            rows.append((days[d], 0.0, 0))
            weights.append({})
            continue
        start_w = None if prev is None else np.array([prev.get(t, 0.0) for t in tickers[ok]])
        if start_w is not None and start_w.sum() <= 0:
            start_w = None
        w = allocate(method, window[:, ok], cfg, start=start_w)
        prev = dict(zip(tickers[ok], w, strict=True))
        weights.append(prev)
        rows.append((days[d], float(w @ values[d, ok]), int(ok.sum())))
    out = pd.DataFrame(rows, columns=["date", "gross", "n_assets"])
    out["turnover"] = _turnover(weights)
    out["cost"] = cost * out["turnover"]
    out["ret"] = out["gross"] - out["cost"]
    return out[["date", "ret", "gross", "turnover", "cost", "n_assets"]]
