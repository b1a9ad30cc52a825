"""Prices -> ``returns``: a long CSV (date, ticker, ret or adjusted close) or a wide CSV of
adjusted closes (date, then one column per ticker)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from kgfin.data.importers.common import (
    LINE,
    Format,
    ImportReport,
    Problems,
    Source,
    existing_sources,
    parse_dates,
    parse_numbers,
    read_delimited,
    resolve_universe,
    write_imported,
)

__all__ = ["import_prices"]

DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d")


def _read(source: Source, price_column: str, problems: Problems) -> pd.DataFrame:
    """One file as rows of date, ticker, ret (or NaN) and price (or NaN), with their lines."""
    raw = read_delimited(source, ",", ["date"], lower_header=True)
    label = source.label
    if "ticker" in raw.columns:
        if "ret" not in raw.columns and price_column not in raw.columns:
            problems.add(label, "ret", f"a long file needs a 'ret' or a '{price_column}' column", [1])
            return pd.DataFrame()
        has_ret = "ret" in raw.columns
        frame = pd.DataFrame({"date": parse_dates(raw, "date", label, problems, DATE_FORMATS),
                              "ticker": raw["ticker"].str.strip().str.upper(), LINE: raw[LINE]})
        problems.add_mask(label, "ticker", "missing value", raw, frame["ticker"].eq("").to_numpy())
        if has_ret:
            frame["ret"] = parse_numbers(raw, "ret", label, problems, required=False, min_value=-1.0)
            frame["price"] = np.nan
        else:
            frame["ret"] = np.nan
            frame["price"] = parse_numbers(raw, price_column, label, problems, required=False)
        frame["kind"] = "ret" if has_ret else "price"
        frame["column"] = "ret" if has_ret else price_column
    else:
        dates = parse_dates(raw, "date", label, problems, DATE_FORMATS)
        parts = []
        for col in [c for c in raw.columns if c not in ("date", LINE)]:
            parts.append(pd.DataFrame({"date": dates, "ticker": col.strip().upper(), LINE: raw[LINE],
                                       "ret": np.nan, "price": parse_numbers(raw, col, label, problems, required=False),
                                       "kind": "price", "column": col}))
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if not frame.empty:
        nonpos = (frame["price"] <= 0).to_numpy()
        for col, part in frame.loc[nonpos].groupby("column", sort=True):
            problems.add(label, str(col), f"adjusted close must be positive, got {part['price'].iloc[0]:g}",
                         part[LINE].to_numpy())
        frame["_file"], frame["_label"] = source.name, label
    return frame


def import_prices(paths: Sequence[str | Path], out_dir: str | Path, *, companies: str | Path | pd.DataFrame | None = None,
                  price_column: str = "adj_close", fmt: Format = "csv") -> ImportReport:
    """Import price files as daily ``returns``.

    A file with a ``ticker`` column is long: ``date, ticker`` and ``ret`` (simple return)
    or ``price_column`` (adjusted close). Any other file is wide: ``date`` and one column
    of adjusted closes per ticker. Returns from closes are p_t / p_(t-1) - 1 between
    consecutive rows of a ticker; the first close of each ticker, empty cells and the day
    after an empty cell (its return would span two days) are counted and left out. Dates
    are ``YYYY-MM-DD`` or ``YYYYMMDD``; a (date, ticker) given twice is an error.
    """
    universe = resolve_universe(companies, out_dir)
    problems = Problems()
    parts = []
    for source in existing_sources(paths, problems):
        parts.append(_read(source, price_column.lower(), problems))
    problems.raise_if_any()
    rows = pd.concat(parts, ignore_index=True)
    dup = rows.duplicated(["date", "ticker"], keep=False).to_numpy()
    for label, part in rows.loc[dup].groupby("_label", sort=True):
        problems.add(str(label), "date,ticker", f"({part['date'].iloc[0]:%Y-%m-%d}, {part['ticker'].iloc[0]}) "
                     "given more than once", part[LINE].to_numpy())
    problems.raise_if_any()
    report = ImportReport("prices", "returns", [Path(p).name for p in paths], rows_read=len(rows),
                          settings={"price_column": price_column})

    drop = partial(report.drop_rows, by="_file")

    rows = drop("ticker not in companies", rows, ~rows["ticker"].isin(universe))
    rows = rows.sort_values(["ticker", "date"], kind="mergesort", ignore_index=True)
    given = rows.loc[rows["kind"] == "ret"]
    given = drop("missing return", given, given["ret"].isna())
    closes = rows.loc[rows["kind"] == "price"]
    previous = closes.groupby("ticker")["price"].shift()
    first = ~closes["ticker"].duplicated().to_numpy()
    closes = closes.assign(ret=(closes["price"] / previous - 1.0).round(12))
    missing = closes["price"].isna().to_numpy()
    reasons = np.select([missing, first, previous.isna().to_numpy()],
                        ["missing close", "first close of a ticker (no previous close)",
                         "previous close missing (the return would span two days)"], "")
    for reason in sorted(set(reasons) - {""}):
        drop(str(reason), closes, reasons == reason)
    closes = closes.loc[reasons == ""]
    out = pd.concat([given, closes], ignore_index=True)[["date", "ticker", "ret"]]
    write_imported(out, report, out_dir, fmt, universe)
    return report
