"""News events for alignment and ripple evaluation: what the model reads, when, and with which graph.

An event is one news item. It belongs to the calendar month of its timestamp; its **event
day** is the trading day on which it is priced (news at or after the close moves the next
day, :func:`kgfin.data.calendar.event_trading_day`). Point in time: the model reads month m's
news with the graph and knowledge adapter of month ``m - graph_lag_months`` (default 1: a
month's supply links, fund reports and board lists are complete only at its end), and the
reward compares its answer with residual returns of the event day itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from kgfin.align.config import EventConfig
from kgfin.data.calendar import add_months, event_trading_day
from kgfin.data.loaders import MarketData
from kgfin.errors import KgfinError

__all__ = ["EVENT_COLUMNS", "AlignInputError", "events_from_news", "news_events"]

EVENT_COLUMNS = ["event_id", "month", "graph_month", "timestamp", "day", "tickers", "headline", "body"]


class AlignInputError(KgfinError, ValueError):
    """Missing tables, months without graphs or adapters, or no usable events."""


def events_from_news(news: pd.DataFrame, trading_days: pd.DatetimeIndex, config: EventConfig | None = None,
                     keep_unpriced: bool = False) -> pd.DataFrame:
    """Events (columns :data:`EVENT_COLUMNS`) from a news table, in its order.

    ``day`` is NaT for news priced after the last of ``trading_days``; such events are
    dropped unless ``keep_unpriced`` (prediction needs no outcome).
    """
    cfg = config or EventConfig()
    news = news[news["tickers"].map(len) >= cfg.min_tickers]
    ts = pd.DatetimeIndex(news["timestamp"])
    month = ts.to_period("M").astype(str)
    frame = pd.DataFrame({
        "event_id": news["id"].astype(str).to_numpy(), "month": month,
        "graph_month": [add_months(m, -cfg.graph_lag_months) for m in month],
        "timestamp": ts, "day": event_trading_day(ts, trading_days),
        "tickers": [list(t) for t in news["tickers"]], "headline": news["headline"].to_numpy(),
        "body": news["body"].to_numpy(),
    })
    return frame if keep_unpriced else frame.dropna(subset=["day"]).reset_index(drop=True)


def news_events(market: MarketData, months: Sequence[str], config: EventConfig | None = None) -> pd.DataFrame:
    """The events of ``months`` (columns :data:`EVENT_COLUMNS`), month by month, each in a seeded shuffle.

    Events priced after the last trading day of the data are dropped (they have no
    outcome yet); so are news naming fewer than ``min_tickers`` companies;
    ``max_events_per_month`` caps each month after the shuffle.
    """
    cfg = config or EventConfig()
    if market.news is None or market.returns is None:
        raise AlignInputError("alignment needs the news and returns tables")
    days = pd.DatetimeIndex(np.sort(market.returns["date"].unique()))
    all_events = events_from_news(market.news, days, cfg)
    frames = []
    for m in months:
        frame = all_events[all_events["month"] == m]
        rng = np.random.default_rng([cfg.seed, int(m.replace("-", ""))])
        order = rng.permutation(len(frame))
        if cfg.max_events_per_month is not None:
            order = order[:cfg.max_events_per_month]
        frames.append(frame.iloc[order])
    if not frames or sum(len(f) for f in frames) == 0:
        raise AlignInputError(f"no news events in months {list(months)}")
    return pd.concat(frames, ignore_index=True)[EVENT_COLUMNS]
