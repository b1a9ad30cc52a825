"""Returns: long <-> wide reshaping, excess returns and monthly compounding.

Long tables follow ``docs/data-formats.md``: daily returns are ``(date, ticker, ret)``,
factors ``(date, mkt_rf, smb, hml, [rmw, cma,] rf)``. Wide panels are DataFrames indexed
by date (``datetime64[ns]``, sorted) with one column per ticker (sorted); a missing
return is NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kgfin.errors import KgfinError

__all__ = [
    "MarketInputError", "compound", "excess_returns", "monthly_returns", "take_strings", "to_long", "to_wide",
]


class MarketInputError(KgfinError, ValueError):
    """Returns or factors that cannot be used (missing columns, duplicates, gaps)."""


def require_columns(frame: pd.DataFrame, columns: list[str] | tuple[str, ...], what: str) -> None:
    """Raise :class:`MarketInputError` naming every column of ``columns`` absent from ``frame``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MarketInputError(f"{what}: missing column(s) {missing} (has {list(frame.columns)})")


def as_dates(values: pd.Series | pd.Index | np.ndarray) -> pd.DatetimeIndex:
    """Dates as a ``datetime64[ns]`` index normalised to midnight."""
    return pd.DatetimeIndex(pd.to_datetime(values)).as_unit("ns").normalize()


def to_wide(
    frame: pd.DataFrame, value: str = "ret", index: str = "date", columns: str = "ticker",
    what: str = "returns",
) -> pd.DataFrame:
    """Pivot a long table to a (dates x tickers) panel; duplicate keys are an error.

    >>> long = pd.DataFrame({"date": ["2020-01-02", "2020-01-02", "2020-01-03"],
    ...                      "ticker": ["B", "A", "A"], "ret": [0.1, 0.2, 0.3]})
    >>> to_wide(long).to_numpy().tolist()
    [[0.2, 0.1], [0.3, nan]]
    """
    require_columns(frame, [index, columns, value], what)
    idx = as_dates(frame[index]) if index == "date" else pd.Index(frame[index])
    row_codes, rows = pd.factorize(idx, sort=True)
    col_codes, cols = pd.factorize(frame[columns].astype(str), sort=True)
    flat = row_codes.astype(np.int64) * len(cols) + col_codes
    counts = np.bincount(flat, minlength=len(rows) * len(cols))
    if (counts > 1).any():
        cell = int(np.flatnonzero(counts > 1)[0])
        key = [rows[cell // len(cols)], cols[cell % len(cols)]]
        raise MarketInputError(
            f"{what}: {int((counts[flat] > 1).sum())} rows share a ({index}, {columns}) key, e.g. {key}"
        )
    out = np.full(len(rows) * len(cols), np.nan)
    out[flat] = frame[value].to_numpy(dtype=float)
    wide = pd.DataFrame(out.reshape(len(rows), len(cols)), index=rows,
                        columns=pd.Index(np.asarray(cols, dtype=object), dtype=object, name=columns))
    wide.index.name = index
    return wide


def take_strings(values: np.ndarray, codes: np.ndarray) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """``values[codes]`` as a string column, built without a per-row Python object when
    pandas stores strings in Arrow (which is much faster for long tables)."""
    dtype = pd.Series(["x"]).dtype  # pandas' default string dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        import pyarrow as pa

        return pd.array(pa.array(np.asarray(values, dtype=object).astype(str)).take(pa.array(codes)), dtype=dtype)
    return np.asarray(values, dtype=object)[codes]


def to_long(wide: pd.DataFrame, value: str = "ret", dropna: bool = True) -> pd.DataFrame:
    """Stack a (dates x tickers) panel into ``(date, ticker, value)`` rows, date-major."""
    n_rows, n_cols = wide.shape
    out = pd.DataFrame({
        wide.index.name or "date": np.repeat(wide.index.to_numpy(), n_cols),
        wide.columns.name or "ticker": np.tile(wide.columns.to_numpy(dtype=object), n_rows),
        value: wide.to_numpy(dtype=float).ravel(),
    })
    return out.dropna(subset=[value]).reset_index(drop=True) if dropna else out


def compound(returns: pd.DataFrame | pd.Series | np.ndarray, axis: int = 0) -> np.ndarray | float:
    """Compounded simple return ``prod(1 + r) - 1`` along ``axis`` (NaN if any input is NaN).

    >>> round(float(compound(np.array([0.1, -0.1]))), 10)
    -0.01
    """
    arr = np.asarray(returns, dtype=float)
    return np.prod(1.0 + arr, axis=axis) - 1.0


def excess_returns(returns: pd.DataFrame, factors: pd.DataFrame) -> pd.DataFrame:
    """Daily excess returns: ``(date, ticker, ret, rf, excess)`` with ``excess = ret - rf``.

    Every return date must have a factor row (the risk-free rate of that day).
    """
    require_columns(returns, ["date", "ticker", "ret"], "returns")
    require_columns(factors, ["date", "rf"], "factors")
    rf = pd.Series(factors["rf"].to_numpy(dtype=float), index=as_dates(factors["date"]))
    if rf.index.has_duplicates:
        raise MarketInputError(f"factors: duplicate dates, e.g. {rf.index[rf.index.duplicated()][0].date()}")
    dates = as_dates(returns["date"])
    missing = dates.difference(rf.index)
    if len(missing):
        raise MarketInputError(
            f"factors: no row for {len(missing)} return date(s), first {missing[0].date()}, last {missing[-1].date()}"
        )
    out = pd.DataFrame({"date": dates, "ticker": returns["ticker"].to_numpy(),
                        "ret": returns["ret"].to_numpy(dtype=float)})
    out["rf"] = rf.reindex(dates).to_numpy()
    out["excess"] = out["ret"] - out["rf"]
    return out


def monthly_returns(
    daily: pd.DataFrame, value: str = "ret", calendar: pd.DatetimeIndex | None = None,
) -> pd.DataFrame:
    """Compound daily ``value`` into months: ``(month, ticker, <value>, n_days)``.

    A stock-month is kept only when ``value`` is present on every trading day of that
    month; trading days are ``calendar`` if given, else every date in ``daily``. Months
    are ``YYYY-MM`` strings.

    >>> d = pd.DataFrame({"date": ["2020-01-02", "2020-01-03", "2020-02-03"],
    ...                   "ticker": "A", "ret": [0.1, 0.1, 0.05]})
    >>> monthly_returns(d)[["month", "ret", "n_days"]].round(4).values.tolist()
    [['2020-01', 0.21, 2], ['2020-02', 0.05, 1]]
    """
    wide = to_wide(daily, value=value, what="daily table")
    if calendar is not None:
        cal = as_dates(calendar)
        extra = wide.index.difference(cal)
        if len(extra):
            raise MarketInputError(f"daily table: {len(extra)} date(s) not in the calendar, first {extra[0].date()}")
        wide = wide.reindex(cal)
    months = wide.index.strftime("%Y-%m")
    present = wide.notna()
    comp = (1.0 + wide).groupby(months).prod() - 1.0
    complete = present.groupby(months).all().to_numpy().ravel()
    out = to_long(comp.rename_axis("month"), value=value, dropna=False)
    out["n_days"] = present.groupby(months).sum().to_numpy().ravel()
    return out[complete].reset_index(drop=True)
