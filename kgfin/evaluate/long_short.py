"""Daily long-short portfolios on ripple scores, over the whole evaluation window.

A row's scores become signals: each event's nonzero candidate scores dated on the event day (the
mean over draws for ``random``), summed per (day, ticker); a zero score is no view and is not
traded. :func:`kgfin.portfolio.long_short_backtest` trades them (top minus bottom quantile, on the
``lag``-th day after the event). The daily series covers every trading day of the evaluation
window, the first day of the first evaluated month to the last day of the last one (or the last
held day, if later), with return 0 on the days the portfolio is flat: a strategy that trades on
few days is not credited with the days it sat out. :func:`kgfin.portfolio.performance_table` then
shows each row's periods, its mean daily return with a CI, and a Sharpe ratio with its CI only
when the window has at least ``SharpeConfig.min_periods`` days.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from kgfin.data.calendar import month_bounds
from kgfin.evaluate.predictors import EventScores
from kgfin.graph.candidates import CandidateSet
from kgfin.portfolio.backtest import LongShortConfig, long_short_backtest
from kgfin.portfolio.errors import PortfolioInputError
from kgfin.portfolio.metrics import SharpeConfig, performance_table

__all__ = ["evaluation_days", "long_short_on_scores", "score_signals"]


def score_signals(rows: Mapping[str, EventScores], events: pd.DataFrame,
                  candidates: Mapping[str, CandidateSet]) -> pd.DataFrame:
    """``date, ticker, score``: every event's nonzero candidate scores on its day, summed per (date, ticker).

    >>> import numpy as np, pandas as pd
    >>> from kgfin.graph.candidates import CandidateSet
    >>> c = CandidateSet("E1", "A", "2015-01", ("B", "C", "D"), np.ones(3, bool), frozenset({"A"}))
    >>> ev = pd.DataFrame({"event_id": ["E1"], "day": [pd.Timestamp("2015-02-02")]})
    >>> score_signals({"E1": EventScores(np.array([0.5, 0.0, -1.0]))}, ev, {"E1": c})["ticker"].tolist()
    ['B', 'D']
    """
    parts = []
    for row in events.itertuples(index=False):
        eid = str(row.event_id)
        s = rows[eid].scores
        s = s.mean(axis=0) if s.ndim == 2 else s
        keep = s != 0
        if keep.any():
            parts.append(pd.DataFrame({"date": pd.Timestamp(row.day),
                                       "ticker": np.asarray(candidates[eid].tickers, dtype=object)[keep],
                                       "score": s[keep]}))
    if not parts:
        return pd.DataFrame(columns=["date", "ticker", "score"])
    return pd.concat(parts, ignore_index=True).groupby(["date", "ticker"], as_index=False)["score"].sum()


def evaluation_days(returns: pd.DataFrame, months: Sequence[str]) -> pd.DatetimeIndex:
    """The trading days (dates of ``returns``) from the first day of the first month to the last day of the last."""
    days = pd.DatetimeIndex(sorted(pd.to_datetime(returns["date"]).unique()))
    start, end = month_bounds(min(months))[0], month_bounds(max(months))[1]
    return days[(days >= start) & (days <= end)]


def long_short_on_scores(rows_by_method: Mapping[str, Mapping[str, EventScores]], events: pd.DataFrame,
                         candidates: Mapping[str, CandidateSet], returns: pd.DataFrame, months: Sequence[str],
                         config: LongShortConfig | None = None, sharpe: SharpeConfig | None = None
                         ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Each row's daily long-short on its scores over the evaluation window of ``months``.

    Returns the daily returns (``date`` x row, 0 on flat days), the table (:func:`performance_table` plus
    ``days held``: days with a position) and notes (rows with nothing to trade: they hold nothing all window).
    """
    cfg = config or LongShortConfig()
    window = evaluation_days(returns, months)
    series: dict[str, pd.Series] = {}
    held: dict[str, int] = {}
    notes: list[str] = []
    for method, rows in rows_by_method.items():
        signals = score_signals(rows, events, candidates)
        try:
            daily = long_short_backtest(signals, returns, score="score", config=cfg).set_index("date")
        except PortfolioInputError as exc:
            notes.append(f"long-short {method}: {exc}; flat over the window")
            daily = pd.DataFrame({"ret": [], "n_long": []}, index=pd.DatetimeIndex([], name="date"))
        window = window.union(daily.index[daily.index > window[-1]]) if len(window) and len(daily) else window
        series[method] = daily["ret"]
        held[method] = int((daily["n_long"] > 0).sum())
    frame = pd.DataFrame({m: s.reindex(window).fillna(0.0) for m, s in series.items()}, index=window)
    table = performance_table(frame, config=sharpe)
    table.insert(2, "days held", table["strategy"].map(held))
    return frame.rename_axis("date"), table, notes
