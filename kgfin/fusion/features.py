"""The stock-month panel: standardised factors, the news window, ripple scores, the target.

Row ``(month m, ticker)`` holds what is known when portfolios are formed at the
rebalancing time (the close, 16:00 by default) of m's last trading day, and the target is
the return of month m+1 (``target_month``):

* **factors** ``x_f``: each factor z-scored across the stocks of month m, clipped at
  ``+/- winsorize``; a missing value becomes 0 (the cross-sectional mean) and, with
  ``missing_flags``, a 0/1 indicator column ``<factor>__missing`` is added per factor.
  Only month m's cross-section is used, so nothing is fitted on other months.
* **news**: the news items naming the stock (``tickers`` contains it) published in
  ``[rebalance - news_window_days, rebalance)``. News at or after the rebalancing time is
  left out: it is priced on the next trading day, inside the target month. The panel keeps,
  per row, the indices of its items in ``texts`` (CSR layout: ``news_offsets``, ``news_index``);
  the newsflow vector is the mean of the item vectors (:mod:`kgfin.llm.embeddings`).
* **ripple** (optional): a table ``month, ticker, ripple``; rows without a score get 0 and
  ``has_ripple = False``.
* **target**: ``demeaned`` (default) is month m+1's compounded return minus its mean over
  the stocks in the panel that month (the market-wide part is the same for every stock and
  cannot be ranked); ``raw`` is the return itself. ``ret`` always holds the raw return, for
  portfolios. Stock-months without a complete next-month return are dropped.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kgfin.config import resolve_config
from kgfin.data.calendar import add_months, rebalance_times
from kgfin.data.loaders import MarketData
from kgfin.data.tables import read_table
from kgfin.errors import KgfinError
from kgfin.fusion.config import FeatureConfig
from kgfin.market.returns import monthly_returns

__all__ = ["FusionInputError", "Panel", "attach_ripple", "build_panel", "load_ripple", "rebalance_times"]

log = logging.getLogger(__name__)


class FusionInputError(KgfinError, ValueError):
    """Input data for the fusion models is missing or malformed."""


@dataclass
class Panel:
    """Stock-month arrays, row-aligned with ``keys`` (sorted by month, ticker)."""

    keys: pd.DataFrame  # month, target_month, ticker
    x_f: np.ndarray  # (n, d_f) float32 standardised factors (+ missing flags)
    factor_names: list[str]
    texts: list[str]  # texts of the news items referenced by the rows (one per item)
    news_ids: list[str]  # news ``id`` of each entry of texts
    news_offsets: np.ndarray  # (n + 1,) int64: row i's items are news_index[offsets[i]:offsets[i+1]]
    news_index: np.ndarray  # (total,) int64 indices into texts
    y: np.ndarray  # (n,) float32 target
    ret: np.ndarray  # (n,) float64 raw next-month return
    ripple: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (n,) 0 where none
    has_ripple: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (n,)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def has_news(self) -> np.ndarray:
        """(n,) bool: the row has at least one news item in its window."""
        return np.diff(self.news_offsets) > 0

    @property
    def months(self) -> list[str]:
        """Feature months present, sorted."""
        return sorted(self.keys["month"].unique())

    def news_lists(self, rows: np.ndarray) -> list[np.ndarray]:
        """Per row in ``rows``: the indices (into ``texts``) of its news items."""
        return [self.news_index[self.news_offsets[i]:self.news_offsets[i + 1]] for i in rows]

    def pooled_news(self, item_vectors: np.ndarray) -> np.ndarray:
        """(n, d) mean of each row's item vectors (zeros for rows without news)."""
        n, d = len(self), item_vectors.shape[1]
        counts = np.diff(self.news_offsets)
        rows = np.repeat(np.arange(n), counts)
        out = np.zeros((n, d), dtype=np.float64)
        np.add.at(out, rows, item_vectors[self.news_index])
        out[counts > 0] /= counts[counts > 0, None]
        return out.astype(np.float32)


def _standardise(sf: pd.DataFrame, names: list[str], cfg: FeatureConfig) -> tuple[np.ndarray, list[str]]:
    values = sf[names].to_numpy(dtype=np.float64)
    months = sf["month"].to_numpy()
    z = np.zeros_like(values)
    for m in np.unique(months):
        rows = months == m
        block = values[rows]
        with warnings.catch_warnings():  # all-missing columns (e.g. momentum before 13 months) give NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mu = np.nanmean(block, axis=0)
            sd = np.nanstd(block, axis=0, ddof=0)
        zz = (block - mu) / np.where(sd > 0, sd, np.nan)
        z[rows] = np.clip(np.nan_to_num(zz, nan=0.0), -cfg.winsorize, cfg.winsorize)
    cols, out_names = [z], list(names)
    if cfg.missing_flags:
        cols.append(np.isnan(values).astype(np.float64))
        out_names += [f"{n}__missing" for n in names]
    return np.hstack(cols).astype(np.float32), out_names


def _news_windows(news: pd.DataFrame, keys: pd.DataFrame, cutoffs: pd.Series, cfg: FeatureConfig,
                  ) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    texts_all = news["headline"].astype(str)
    if cfg.text == "headline_body":
        texts_all = texts_all + ". " + news["body"].astype(str)
    exploded = pd.DataFrame({"item": np.arange(len(news)), "timestamp": pd.to_datetime(news["timestamp"]).to_numpy(),
                             "ticker": news["tickers"].to_numpy()}).explode("ticker")
    window = pd.Timedelta(days=cfg.news_window_days)
    parts = []
    for month in keys["month"].unique():
        end = cutoffs[month]
        sel = exploded[(exploded["timestamp"] >= end - window) & (exploded["timestamp"] < end)]
        parts.append(sel.assign(month=month))
    hits = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["item", "ticker", "month"])
    row_of = pd.Series(np.arange(len(keys)), index=pd.MultiIndex.from_frame(keys[["month", "ticker"]]))
    hits = hits[pd.MultiIndex.from_frame(hits[["month", "ticker"]]).isin(row_of.index)]
    hits = hits.assign(row=row_of.loc[pd.MultiIndex.from_frame(hits[["month", "ticker"]])].to_numpy())
    hits = hits.sort_values(["row", "timestamp", "item"], kind="stable")
    used = np.unique(hits["item"].to_numpy().astype(np.int64))
    remap = np.full(len(news), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    counts = np.bincount(hits["row"].to_numpy().astype(np.int64), minlength=len(keys))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return (texts_all.to_numpy()[used].tolist(), news["id"].astype(str).to_numpy()[used].tolist(), offsets,
            remap[hits["item"].to_numpy().astype(np.int64)])


def load_ripple(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Read and check a ripple table (Parquet/CSV path or DataFrame): ``month, ticker, ripple``."""
    what = str(source) if not isinstance(source, pd.DataFrame) else "ripple table"
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
    else:
        path = Path(source)
        if not path.exists():
            raise FusionInputError(f"ripple file not found: {path}")
        try:
            frame = read_table(path)
        except ValueError as exc:
            raise FusionInputError(str(exc)) from None
    missing = [c for c in ("month", "ticker", "ripple") if c not in frame.columns]
    if missing:
        raise FusionInputError(f"{what}: missing column(s) {missing} (need month, ticker, ripple)")
    frame = frame[["month", "ticker", "ripple"]].copy()
    frame["month"] = frame["month"].astype(str)
    bad = ~frame["month"].str.fullmatch(r"\d{4}-\d{2}")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise FusionInputError(f"{what} row {i + 1}, column 'month': {frame['month'].iloc[i]!r} is not YYYY-MM")
    values = pd.to_numeric(frame["ripple"], errors="coerce")
    bad = ~np.isfinite(values.to_numpy(dtype=float))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise FusionInputError(f"{what} row {i + 1}, column 'ripple': {frame['ripple'].iloc[i]!r} is not a finite number")
    frame["ripple"] = values.astype(float)
    dup = frame.duplicated(["month", "ticker"])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise FusionInputError(f"{what} row {i + 1}: second row for ({frame['month'].iloc[i]}, {frame['ticker'].iloc[i]})")
    return frame.reset_index(drop=True)


def build_panel(
    market: MarketData, ripple: pd.DataFrame | None = None, config: FeatureConfig | None = None,
    **overrides: Any,
) -> Panel:
    """Build the stock-month panel from a loaded data directory (see the module doc)."""
    cfg = resolve_config(FeatureConfig, config, overrides)
    for name in ("stock_factors", "returns"):
        if getattr(market, name) is None:
            raise FusionInputError(f"the data directory has no {name} table (needed by the fusion models)")
    sf = market.stock_factors.copy()
    sf["month"] = sf["month"].astype(str)
    names = [c for c in sf.columns if c not in ("month", "ticker")]
    if not names:
        raise FusionInputError("stock_factors has no factor columns")

    realised = monthly_returns(market.returns)[["month", "ticker", "ret"]]
    realised = realised.rename(columns={"month": "target_month"})
    sf["target_month"] = [add_months(m, 1) for m in sf["month"]]
    sf = sf.merge(realised, on=["target_month", "ticker"], how="inner")
    if sf.empty:
        raise FusionInputError("no stock-month has a next-month return (need at least two months of returns)")
    sf = sf.sort_values(["month", "ticker"], ignore_index=True)
    keys = sf[["month", "target_month", "ticker"]].reset_index(drop=True)

    x_f, factor_names = _standardise(sf, names, cfg)
    ret = sf["ret"].to_numpy(dtype=np.float64)
    y = ret - sf.groupby("target_month")["ret"].transform("mean").to_numpy() if cfg.target == "demeaned" else ret

    cutoffs = rebalance_times(pd.DatetimeIndex(pd.to_datetime(market.returns["date"]).unique()), cfg.rebalance_time)
    if market.news is not None and len(market.news):
        texts, ids, offsets, index = _news_windows(market.news, keys, cutoffs, cfg)
    else:
        texts, ids, offsets, index = [], [], np.zeros(len(keys) + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)

    panel = Panel(keys=keys, x_f=x_f, factor_names=factor_names, texts=texts, news_ids=ids, news_offsets=offsets,
                  news_index=index, y=y.astype(np.float32), ret=ret,
                  ripple=np.zeros(len(keys), np.float32), has_ripple=np.zeros(len(keys), bool))
    if ripple is not None:
        attach_ripple(panel, ripple)
    log.info("panel: %d stock-months, %d factors, %.1f%% with news, %d news texts",
             len(keys), len(factor_names), 100 * panel.has_news.mean(), len(texts))
    return panel


def attach_ripple(panel: Panel, ripple: pd.DataFrame) -> None:
    """Set ``panel.ripple`` / ``has_ripple`` from a ripple table (0 and False where none)."""
    table = load_ripple(ripple)
    merged = panel.keys[["month", "ticker"]].merge(table, on=["month", "ticker"], how="left")
    unmatched = len(table) - int(merged["ripple"].notna().sum())
    if unmatched:
        log.info("ripple: %d row(s) match no stock-month of the panel and are ignored", unmatched)
    panel.has_ripple = merged["ripple"].notna().to_numpy()
    panel.ripple = merged["ripple"].fillna(0.0).to_numpy(dtype=np.float32)
