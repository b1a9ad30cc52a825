"""Factor returns for the synthetic market, driven by real history where a package ships it.

Sources, per month and series (recorded in ``truth/factor_sources.csv``):

The files are read straight from the installed packages (importing the packages
themselves costs seconds).

* trading calendar and ``mkt_rf``: the real daily S&P 500 (``arch.data.sp500``,
  1999-01..2018-12; price index, so dividends are missing) minus the daily risk-free rate;
* ``rf``, ``smb``, ``hml``: real monthly Fama-French values (``arch.data.frenchdata``,
  1926-07..2018-11), spread over the month's trading days by *disaggregation*: the daily
  log returns are the monthly log return divided evenly plus zero-sum Gaussian noise with
  the series' typical daily volatility, so every month compounds exactly to the real value;
* industry factors (industry minus market, used for sector co-movement): the real monthly
  Fama-French 12 industry portfolios (``linearmodels.datasets.french``, 1949-01..2017-03),
  disaggregated the same way;
* ``rmw``, ``cma``: no package ships them, so they are always synthetic (Gaussian daily
  returns with FF5-like means and volatilities).

Months outside a source's coverage fall back to synthetic draws with the history's mean
and volatility, and the fallback is recorded. Monthly factors are the compounded daily
ones, so the daily and monthly tables agree.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from kgfin.data.calendar import add_months
from kgfin.errors import KgfinError

__all__ = ["FACTOR_COLUMNS", "FactorHistory", "build_factor_history"]

FACTOR_COLUMNS = ("mkt_rf", "smb", "hml", "rmw", "cma", "rf")

# Synthetic fallbacks: (monthly mean, daily volatility).
_SYNTH = {
    "mkt_rf": (0.006, 0.010), "smb": (0.002, 0.005), "hml": (0.003, 0.005),
    "rmw": (0.003, 0.0020), "cma": (0.0025, 0.0018), "rf": (0.003, 0.0), "industry": (0.0, 0.006),
}


@dataclass
class FactorHistory:
    """Daily and monthly factor returns over the simulated months."""

    daily: pd.DataFrame  # date, mkt_rf, smb, hml, rmw, cma, rf
    monthly: pd.DataFrame  # date (YYYY-MM), mkt_rf, smb, hml, rmw, cma, rf
    industry: pd.DataFrame  # index date, one column per FF industry (industry minus market)
    sources: pd.DataFrame  # month, series, source
    days_by_month: dict[str, pd.DatetimeIndex]


def _package_file(package: str, *parts: str) -> Path:
    """A data file shipped inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise KgfinError(f"package {package!r} is not installed; it ships the real factor history "
                         f"(install kgfin's dependencies, e.g. `make setup`)")
    path = Path(spec.submodule_search_locations[0], *parts)
    if not path.exists():
        raise KgfinError(f"{path} not found: the installed {package} does not ship the expected data file")
    return path


@cache
def _sp500_returns() -> pd.Series:
    """Daily S&P 500 returns, 1999-01-04..2018-12-31 (the data of ``arch.data.sp500``)."""
    px = pd.read_csv(_package_file("arch", "data", "sp500", "sp500.csv.gz"))
    px.index = pd.to_datetime(px["Date"], format="%m/%d/%Y")
    ret = px["Adj Close"].pct_change()
    ret.iloc[0] = px["Adj Close"].iloc[0] / px["Open"].iloc[0] - 1.0
    return ret


@cache
def _french_monthly() -> pd.DataFrame:
    """Monthly Mkt-RF, SMB, HML, RF 1926-07..2018-11 (the data of ``arch.data.frenchdata``), as decimals."""
    f = pd.read_csv(_package_file("arch", "data", "frenchdata", "frenchdata.csv.gz"))
    months = [f"{v // 100:04d}-{v % 100:02d}" for v in f["Date"].astype(int)]
    return pd.DataFrame({
        "mkt_rf": f["Mkt-RF"].to_numpy() / 100, "smb": f["SMB"].to_numpy() / 100,
        "hml": f["HML"].to_numpy() / 100, "rf": f["RF"].to_numpy() / 100,
    }, index=months)


@cache
def _industries_monthly() -> pd.DataFrame:
    """Fama-French 12-industry excess over the market, 1949-01..2017-03 (``linearmodels.datasets.french``)."""
    d = pd.read_csv(_package_file("linearmodels", "datasets", "french", "french.csv.bz2"))
    months = pd.to_datetime(d["dates"]).dt.strftime("%Y-%m")
    inds = ["BusEq", "Hlth", "Money", "Enrgy", "Chems", "Manuf", "Shops", "NoDur", "Telcm", "Utils"]
    excess = d[inds].sub(d["RF"] + d["MktRF"], axis=0)
    excess.index = months
    return excess


def _disaggregate(monthly: float, n: int, daily_vol: float, rng: np.random.Generator) -> np.ndarray:
    """Daily simple returns that compound exactly to ``monthly`` over ``n`` days."""
    z = rng.standard_normal(n)
    log_daily = np.log1p(monthly) / n + daily_vol * (z - z.mean())
    return np.expm1(log_daily)


def build_factor_history(
    start: str, n_months: int, rng_for: Callable[[str, int], np.random.Generator]
) -> FactorHistory:
    """Daily/monthly factors for ``n_months`` from ``start``; ``rng_for(part, month_index)`` gives RNGs."""
    months = [add_months(start, i) for i in range(n_months)]
    sp = _sp500_returns()
    ff = _french_monthly()
    ind = _industries_monthly()
    sp_months = sp.index.strftime("%Y-%m")
    modern = ff.loc[ff.index >= "1963-07"]  # the usual FF sample start; the 1930s inflate volatility
    ff_vol = {c: modern[c].std() / np.sqrt(21) for c in ("smb", "hml")}
    ind_vol = ind.std() / np.sqrt(21)

    daily_rows: list[pd.DataFrame] = []
    ind_rows: list[pd.DataFrame] = []
    sources: list[tuple[str, str, str]] = []
    days_by_month: dict[str, pd.DatetimeIndex] = {}
    for k, month in enumerate(months):
        rng = rng_for("factors", k)
        if (sp_months == month).any():
            days = sp.index[sp_months == month]
            sp_ret = sp[sp_months == month].to_numpy()
            sources.append((month, "calendar+mkt_rf", "real daily: arch.data.sp500"))
        else:
            p = pd.Period(month, freq="M")
            days = pd.bdate_range(p.start_time, p.end_time)
            mean, vol = _SYNTH["mkt_rf"]
            sp_ret = mean / len(days) + vol * rng.standard_t(5, size=len(days)) / np.sqrt(5 / 3)
            sources.append((month, "calendar+mkt_rf", "synthetic: business days, Student-t market"))
        n = len(days)
        days_by_month[month] = days
        cols: dict[str, np.ndarray] = {}
        if month in ff.index:
            cols["rf"] = np.full(n, ff.at[month, "rf"] / n)
            for c in ("smb", "hml"):
                cols[c] = _disaggregate(ff.at[month, c], n, ff_vol[c], rng)
            sources.append((month, "rf+smb+hml", "real monthly: arch.data.frenchdata, disaggregated"))
        else:
            cols["rf"] = np.full(n, _SYNTH["rf"][0] / n)
            for c in ("smb", "hml"):
                mean, vol = _SYNTH[c]
                cols[c] = mean / n + vol * rng.standard_normal(n)
            sources.append((month, "rf+smb+hml", "synthetic fallback (outside 1926-07..2018-11)"))
        cols["mkt_rf"] = sp_ret - cols["rf"]
        for c in ("rmw", "cma"):
            mean, vol = _SYNTH[c]
            cols[c] = mean / n + vol * rng.standard_normal(n)
        sources.append((month, "rmw+cma", "synthetic (no shipped source)"))
        daily_rows.append(pd.DataFrame({"date": days, **{c: cols[c] for c in FACTOR_COLUMNS}}))

        if month in ind.index:
            ind_m = {c: _disaggregate(ind.at[month, c], n, ind_vol[c], rng) for c in ind.columns}
            sources.append((month, "industry", "real monthly: linearmodels.datasets.french, disaggregated"))
        else:
            ind_m = {c: _SYNTH["industry"][1] * rng.standard_normal(n) for c in ind.columns}
            sources.append((month, "industry", "synthetic fallback (outside 1949-01..2017-03)"))
        ind_rows.append(pd.DataFrame(ind_m, index=days))

    daily = pd.concat(daily_rows, ignore_index=True)
    daily["date"] = pd.DatetimeIndex(daily["date"]).astype("datetime64[us]")
    month_key = daily["date"].dt.strftime("%Y-%m")
    monthly = (
        daily.drop(columns="date").groupby(month_key, sort=True).apply(lambda g: (1 + g).prod() - 1)
        .rename_axis("date").reset_index()
    )
    industry = pd.concat(ind_rows)
    industry.index = pd.DatetimeIndex(industry.index).astype("datetime64[us]")
    src = pd.DataFrame(sources, columns=["month", "series", "source"])
    return FactorHistory(daily, monthly, industry, src, days_by_month)
