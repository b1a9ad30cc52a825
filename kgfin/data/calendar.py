"""Months and trading days.

Months are ISO ``YYYY-MM`` strings throughout kgfin. News published after the close
(16:00 exchange time by default) moves prices on the next trading day; news before the
close moves them the same day (pre-market news included).
"""

from __future__ import annotations

import re
from datetime import time

import numpy as np
import pandas as pd

from kgfin.errors import KgfinError

__all__ = [
    "MARKET_CLOSE", "add_months", "assign_months", "event_trading_day", "month_bounds", "month_of", "months_of",
    "month_range", "months_between", "rebalance_times", "trading_days_by_month",
]

MARKET_CLOSE = time(16, 0)
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def month_of(ts: pd.Timestamp | str) -> str:
    """The ``YYYY-MM`` month of a date or timestamp.

    >>> month_of("2021-03-31 18:00")
    '2021-03'
    """
    return pd.Timestamp(ts).strftime("%Y-%m")


def months_of(timestamps: pd.Series | pd.DatetimeIndex) -> list[str]:
    """The sorted ``YYYY-MM`` months that ``timestamps`` fall in.

    >>> months_of(pd.Series(pd.to_datetime(["2021-03-31 18:00", "2021-01-05 09:30", "2021-03-01 12:00"])))
    ['2021-01', '2021-03']
    """
    return sorted({str(p) for p in pd.DatetimeIndex(timestamps).to_period("M")})


def add_months(month: str, n: int) -> str:
    """``month`` shifted by ``n`` months.

    >>> add_months("2021-11", 3)
    '2022-02'
    """
    return str(pd.Period(month, freq="M") + n)


def month_bounds(month: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last day of ``month`` ('YYYY-MM').

    >>> month_bounds("2024-02")
    (Timestamp('2024-02-01 00:00:00'), Timestamp('2024-02-29 00:00:00'))
    """
    if not isinstance(month, str) or not _MONTH.fullmatch(month):
        raise KgfinError(f"month must be a 'YYYY-MM' string, got {month!r}")
    p = pd.Period(month, freq="M")
    return p.start_time.normalize(), p.end_time.normalize()


def month_range(start: str, n: int) -> list[str]:
    """``n`` consecutive months from ``start``.

    >>> month_range("2021-11", 3)
    ['2021-11', '2021-12', '2022-01']
    """
    return [add_months(start, i) for i in range(n)]


def months_between(first: str, last: str) -> list[str]:
    """All months from ``first`` to ``last`` inclusive."""
    n = (pd.Period(last, freq="M") - pd.Period(first, freq="M")).n + 1
    if n < 1:
        raise ValueError(f"last month {last} is before first month {first}")
    return month_range(first, n)


def trading_days_by_month(days: pd.DatetimeIndex) -> dict[str, pd.DatetimeIndex]:
    """Group trading days by month."""
    days = pd.DatetimeIndex(days).sort_values()
    keys = days.strftime("%Y-%m")
    return {m: days[keys == m] for m in pd.unique(keys)}


def event_trading_day(
    timestamps: pd.Series | pd.DatetimeIndex,
    trading_days: pd.DatetimeIndex,
    close: time = MARKET_CLOSE,
) -> pd.DatetimeIndex:
    """The first trading day whose close comes after each timestamp (NaT past the last day).

    News at or after the close belongs to the next trading day; news on a non-trading day
    to the next trading day.
    """
    ts = pd.DatetimeIndex(timestamps)
    days = pd.DatetimeIndex(trading_days).sort_values().normalize()
    after_close = (ts.hour * 60 + ts.minute) >= close.hour * 60 + close.minute
    day = ts.normalize() + pd.to_timedelta(after_close.astype(int), unit="D")
    pos = days.searchsorted(day, side="left")
    out = np.full(len(ts), np.datetime64("NaT"), dtype="datetime64[ns]")
    ok = pos < len(days)
    out[ok] = days.values[pos[ok]]
    return pd.DatetimeIndex(out)


def rebalance_times(trading_days: pd.DatetimeIndex, at: str = "16:00") -> pd.Series:
    """Rebalancing timestamp per month: ``at`` on the month's last trading day (index: month)."""
    days = pd.DatetimeIndex(trading_days).normalize().unique().sort_values()
    last = pd.Series(days, index=days.strftime("%Y-%m")).groupby(level=0).max()
    hh, mm = (int(x) for x in at.split(":"))
    return last + pd.Timedelta(hours=hh, minutes=mm)


def assign_months(timestamps: pd.Series, cutoffs: pd.Series) -> np.ndarray:
    """The month whose window ``[cutoff(m-1), cutoff(m))`` holds each timestamp (None past the last).

    ``cutoffs``: :func:`rebalance_times` (index: month). News published at or after month m's rebalancing time
    belongs to month m+1: a month's inputs hold only what was known when its portfolios were formed.
    """
    ends = cutoffs.sort_values()
    pos = np.searchsorted(ends.to_numpy(), pd.to_datetime(timestamps).to_numpy(), side="right")
    months = np.array(list(ends.index) + [None], dtype=object)
    return months[pos]
