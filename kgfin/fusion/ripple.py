"""Ripple scores per stock-month (``month, ticker, ripple``): the fusion models' third input.

The aligned LLM of the alignment stage produces, per news event, ripple magnitudes ``Z``
over the companies; summed over the events of a month they give one score per
stock-month: :func:`kgfin.evaluate.scores.ripple_scores` (``kgfin ripple scores``) writes that table from any
registered predictor, and :func:`ripple_input` reads it. Two clearly labelled stand-ins need no model and measure the
ripple path on the synthetic market; **neither is an LLM output**:

* ``oracle``: the planted shocks of the synthetic market (``truth/impacts``: the event-day
  shock of every affected firm, focal and counterpart included), summed per stock over the
  month's events: perfect ripple knowledge, which no model has (an upper bound of ripple
  accuracy, not of what ripple scores add to return prediction).
* ``propagation``: a baseline from observable data only. Each news item's focal company
  (its first ticker) gets its market reaction ``Y`` = its return on the trading day the
  news is priced minus that day's cross-sectional mean; ``Y`` is pushed one hop through the
  month's *observed* supply links (``kgfin.align.reward.propagate``), a supplier's move
  reaching its customer with strength ``sqrt(value / customer's purchases)`` and a
  customer's reaching its supplier with ``sqrt(value / supplier's sales)``, always with a
  positive sign; ``Z`` (direct reaction included) is summed per stock over the month.

An event belongs to month m when its news is published between the rebalancing times of
m-1 and m (see :func:`kgfin.data.calendar.rebalance_times`), like the news window.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kgfin.align.reward import propagate
from kgfin.data.calendar import assign_months, event_trading_day, rebalance_times
from kgfin.data.loaders import MarketData, find_table
from kgfin.data.tables import read_table
from kgfin.fusion.config import FusionConfig
from kgfin.fusion.features import FusionInputError, load_ripple

__all__ = ["RIPPLE_SOURCES", "assign_months", "oracle_ripple", "propagation_ripple", "ripple_input"]

RIPPLE_SOURCES = {
    "oracle": "oracle: planted shocks (truth/impacts), perfect ripple knowledge, not a model output",
    "propagation": "propagation baseline: focal market reaction through observed supply links, not an LLM",
}


def _truth_table(data_dir: Path, name: str) -> pd.DataFrame:
    path = find_table(data_dir / "truth", name)
    if path is None:
        raise FusionInputError(f"{data_dir}/truth has no {name} table: the oracle ripple needs a synthetic market's truth")
    return read_table(path)


def oracle_ripple(data_dir: str | Path, trading_days: pd.DatetimeIndex, rebalance_time: str = "16:00",
                  min_hop: int = 0) -> pd.DataFrame:
    """Planted shocks summed per stock over each month's events (synthetic market only); ``min_hop`` 1 keeps only the
    shocks of linked firms (the ripple proper, whose next-month drift the market plants), leaving out the firms the
    news is about."""
    data_dir = Path(data_dir)
    impacts = _truth_table(data_dir, "impacts")
    if min_hop > 0:
        impacts = impacts[impacts["min_hop"] >= min_hop]
    events = _truth_table(data_dir, "events")[["event_id", "timestamp"]]
    frame = impacts.merge(events, on="event_id", how="left")
    frame["month"] = assign_months(frame["timestamp"], rebalance_times(trading_days, rebalance_time))
    frame = frame.dropna(subset=["month"])
    out = frame.groupby(["month", "ticker"], sort=True)["shock"].sum().rename("ripple").reset_index()
    return out


def _supply_matrix(links: pd.DataFrame, index: pd.Index) -> sp.csr_array:
    n = len(index)
    s = index.get_indexer(links["supplier"])
    c = index.get_indexer(links["customer"])
    v = links["value_usd"].to_numpy(dtype=float)
    purchases = np.bincount(c, weights=v, minlength=n)
    sales = np.bincount(s, weights=v, minlength=n)
    down = np.sqrt(np.divide(v, purchases[c], out=np.zeros_like(v), where=purchases[c] > 0))  # supplier -> customer
    up = np.sqrt(np.divide(v, sales[s], out=np.zeros_like(v), where=sales[s] > 0))  # customer -> supplier
    return sp.csr_array((np.concatenate([down, up]), (np.concatenate([s, c]), np.concatenate([c, s]))), shape=(n, n))


def propagation_ripple(market: MarketData, rebalance_time: str = "16:00") -> pd.DataFrame:
    """Observable baseline: focal reactions pushed one hop through the month's supply links."""
    for name in ("news", "returns", "supply_links"):
        if getattr(market, name) is None:
            raise FusionInputError(f"the propagation ripple baseline needs the {name} table")
    returns = market.returns
    wide = returns.pivot(index="date", columns="ticker", values="ret").sort_index()
    abnormal = wide.sub(wide.mean(axis=1), axis=0)
    days = pd.DatetimeIndex(wide.index)
    tickers = pd.Index(market.tickers)
    news = market.news
    focal = news["tickers"].map(lambda t: t[0] if len(t) else None)
    priced = event_trading_day(news["timestamp"], days)
    month = assign_months(news["timestamp"], rebalance_times(days, rebalance_time))
    ev = pd.DataFrame({"focal": focal, "day": priced, "month": month}).dropna()
    ev = ev[ev["focal"].isin(abnormal.columns)]
    ev["y"] = abnormal.stack().reindex(pd.MultiIndex.from_arrays([ev["day"], ev["focal"]])).to_numpy()
    ev = ev.dropna(subset=["y"])
    links = market.supply_links.assign(month=market.supply_links["month"].astype(str))
    parts = []
    for m, g in ev.groupby("month", sort=True):
        y = np.zeros((len(g), len(tickers)))
        y[np.arange(len(g)), tickers.get_indexer(g["focal"])] = g["y"].to_numpy()
        z = propagate(_supply_matrix(links[links["month"] == m], tickers), y, hops=1, direct=True).sum(0)
        hit = np.flatnonzero(z != 0)
        parts.append(pd.DataFrame({"month": m, "ticker": tickers[hit], "ripple": z[hit]}))
    if not parts:
        return pd.DataFrame({"month": pd.Series(dtype=str), "ticker": pd.Series(dtype=str), "ripple": pd.Series(dtype=float)})
    return pd.concat(parts, ignore_index=True)


def ripple_input(source: str | None, data_dir: str | Path, market: MarketData, cfg: FusionConfig
                 ) -> tuple[pd.DataFrame | None, str | None]:
    """The fusion models' ripple table and its label, from ``kgfin fuse --ripple``: ``None`` (no ripple input),
    ``oracle``, ``propagation``, a folder or table written by ``kgfin ripple scores`` (labelled with the predictor its
    metadata names) or a Parquet / CSV file of ``month, ticker, ripple``."""
    if source is None:
        return None, None
    rebalance = cfg.features.rebalance_time
    if source == "oracle":
        if market.returns is None:
            raise FusionInputError("the oracle ripple input needs the returns table (its trading days)")
        days = pd.DatetimeIndex(pd.to_datetime(market.returns["date"]).unique())
        return oracle_ripple(data_dir, days, rebalance), RIPPLE_SOURCES["oracle"]
    if source == "propagation":
        return propagation_ripple(market, rebalance), RIPPLE_SOURCES["propagation"]
    path = Path(source)
    if path.is_dir() or path.suffix == ".parquet":  # a `kgfin ripple scores` folder or table: its metadata names it
        from kgfin.evaluate.scores import read_ripple_scores

        if path.is_dir() and not (path / "monthly.parquet").exists():
            raise FusionInputError(f"{path} is a folder without monthly.parquet (write one with kgfin ripple scores)")
        if not path.exists():
            raise FusionInputError(f"ripple file not found: {path}")
        table, meta = read_ripple_scores(path)
        if meta:
            return (load_ripple(table), cfg.ripple.source
                    or f"{meta.get('predictor')} ripple scores ({meta.get('events_scored')} news items, {path.name})")
    return load_ripple(path), cfg.ripple.source or f"file {path.name}"
