"""CAPM / Fama-French 3 / Fama-French 5 residual (abnormal) returns, daily and monthly.

Daily, for stock n on day d (``docs/asset-pricing.md`` has the full statement):

    excess[d, n]   = ret[d, n] - rf[d]
    expected[d, n] = f[d] . beta[d, n]            (+ alpha[d, n] if alpha_in_expected)
    resid[d, n]    = excess[d, n] - expected[d, n]
    sresid[d, n]   = resid[d, n] / sigma[d, n]

where ``beta``, ``alpha`` and ``sigma`` (the residual standard deviation) come from a
rolling OLS of the stock's excess returns on the model's factors over the ``window``
trading days *before* d (:func:`kgfin.market.betas.rolling_ols`). By default the
estimated intercept is left out of the expected return: the pricing models say it is
zero, and a 252-day intercept estimate is mostly noise.

Monthly residuals compound the daily ones (buy-and-hold abnormal returns): over the
trading days of a month, ``ret_m = prod(1 + ret) - 1``, ``expected_m = prod(1 + rf +
expected) - prod(1 + rf)`` and ``resid_m = ret_m - prod(1 + rf + expected) + 1``, i.e.
realised minus model-expected total return. Every loading used was estimated before the
day it prices, so a month's residual uses nothing after that month.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from kgfin.config import KgfinConfig, resolve_config
from kgfin.market.betas import rolling_ols
from kgfin.market.returns import MarketInputError, as_dates, require_columns, take_strings, to_wide

__all__ = ["FACTOR_MODELS", "ResidualConfig", "monthly_residuals", "residual_vector", "residuals", "window_moves"]

FACTOR_MODELS: dict[str, tuple[str, ...]] = {
    "capm": ("mkt_rf",),
    "ff3": ("mkt_rf", "smb", "hml"),
    "ff5": ("mkt_rf", "smb", "hml", "rmw", "cma"),
}


class ResidualConfig(KgfinConfig):
    """How residual returns are computed."""

    model: Literal["capm", "ff3", "ff5"] = Field("capm", description="factor model: capm, ff3 or ff5")
    window: int = Field(252, ge=3, description="estimation window in trading days (about one year)")
    min_obs: int = Field(126, ge=3, description="fewest valid days in the window for a fit (half a year)")
    alpha_in_expected: bool = Field(
        False, description="add the estimated intercept to the expected return (market-model style)"
    )

    @model_validator(mode="after")
    def _check(self) -> ResidualConfig:
        k = len(FACTOR_MODELS[self.model]) + 1
        if not k < self.min_obs <= self.window:
            raise ValueError(
                f"need {k} < min_obs <= window for {self.model} (min_obs={self.min_obs}, window={self.window})"
            )
        return self


def _factor_panel(factors: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    require_columns(factors, ["date", *columns, "rf"], "factors")
    f = factors[["date", *columns, "rf"]].copy()
    f["date"] = as_dates(f["date"])
    if f["date"].duplicated().any():
        raise MarketInputError(f"factors: duplicate date {f.loc[f['date'].duplicated(), 'date'].iloc[0].date()}")
    return f.set_index("date").sort_index()


def residuals(
    returns: pd.DataFrame, factors: pd.DataFrame, config: ResidualConfig | None = None,
    keep_betas: bool = False, **overrides: Any,
) -> pd.DataFrame:
    """Daily residual returns of every stock under a CAPM / FF3 / FF5 model.

    ``returns``: (date, ticker, ret); ``factors``: daily (date, mkt_rf, smb, hml, [rmw,
    cma,] rf) covering every return date. Settings come from ``config`` and/or keyword
    ``overrides`` of :class:`ResidualConfig` fields (``model="ff5"``, ``window=120``).

    Returns one row per input return, sorted by (date, ticker), with columns ``date,
    ticker, ret, rf, excess, expected, resid, sigma, sresid`` (``expected`` is the model's
    expected *excess* return); ``expected`` and the columns after it are NaN until a stock
    has ``min_obs`` days of history. ``keep_betas=True`` adds ``alpha``, ``beta_<factor>``
    and ``nobs``. The rolling window runs over the factor table's trading days.
    """
    cfg = resolve_config(ResidualConfig, config, overrides)
    cols = FACTOR_MODELS[cfg.model]
    f = _factor_panel(factors, cols)
    require_columns(returns, ["date", "ticker", "ret"], "returns")
    ret = to_wide(returns[returns["ret"].notna()], "ret")  # (T_r, N)
    if ret.empty:
        raise MarketInputError("returns: no rows")
    missing = ret.index.difference(f.index)
    if len(missing):
        raise MarketInputError(
            f"factors: no row for {len(missing)} return date(s), first {missing[0].date()}, last {missing[-1].date()}"
        )
    calendar = f.index[(f.index >= ret.index[0]) & (f.index <= ret.index[-1])]
    ret = ret.reindex(calendar)
    fx = f.loc[calendar, list(cols)].to_numpy()  # (T, K)
    rf = f.loc[calendar, "rf"].to_numpy()  # (T,)

    values = ret.to_numpy()
    excess = values - rf[:, None]  # (T, N)
    fit = rolling_ols(excess, fx, window=cfg.window, min_obs=cfg.min_obs)
    expected = fit.expected(fx, include_alpha=cfg.alpha_in_expected)

    present = np.isfinite(values).ravel()  # date-major, tickers sorted
    dense = bool(present.all())
    keep = np.flatnonzero(present)
    rows, tick = np.divmod(keep, values.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        columns = {"ret": values, "rf": None, "excess": excess, "expected": expected,
                   "resid": excess - expected, "sigma": fit.sigma, "sresid": (excess - expected) / fit.sigma}
    if keep_betas:
        columns |= {"alpha": fit.alpha} | {f"beta_{c}": fit.beta[:, :, k] for k, c in enumerate(cols)}
    body = np.empty((len(columns), keep.size))  # one row per output column: pandas keeps it as one block
    for j, panel in enumerate(columns.values()):
        if panel is None:
            body[j] = rf[rows]
        else:
            flat = np.ravel(panel)
            body[j] = flat if dense else flat[keep]
    out = pd.DataFrame(body.T, columns=list(columns), copy=False)
    out.insert(0, "ticker", take_strings(ret.columns.to_numpy(), tick))
    out.insert(0, "date", calendar.to_numpy()[rows])
    if keep_betas:
        out["nobs"] = fit.nobs.ravel()[keep]
    return out


def monthly_residuals(daily: pd.DataFrame) -> pd.DataFrame:
    """Compound daily residuals (from :func:`residuals`) into monthly buy-and-hold ones.

    Returns ``(month, ticker, ret, excess, expected, resid, n_days)``; ``month`` is
    ``YYYY-MM``. A stock-month is kept only when the stock has a residual on every
    trading day of the month (trading days: every date in ``daily``).
    """
    require_columns(daily, ["date", "ticker", "ret", "rf", "expected"], "daily residuals")
    d = daily[["date", "ticker", "ret", "rf", "expected"]].copy()
    d["date"] = as_dates(d["date"])
    ret = to_wide(d, "ret", what="daily residuals")
    exp_total = to_wide(d.assign(v=d["rf"] + d["expected"]), "v", what="daily residuals")
    rf = d.groupby("date")["rf"].first().reindex(ret.index).to_numpy()  # (T,)
    months = ret.index.strftime("%Y-%m")
    complete = exp_total.notna().groupby(months).all()

    def comp(panel: pd.DataFrame) -> pd.DataFrame:
        return (1.0 + panel).groupby(months).prod() - 1.0

    ret_m, exp_m = comp(ret), comp(exp_total)
    rf_m = (pd.Series(1.0 + rf, index=ret.index).groupby(months).prod() - 1.0).to_numpy()[:, None]
    n_days = exp_total.notna().groupby(months).sum()
    out = pd.DataFrame({
        "month": np.repeat(ret_m.index.to_numpy(dtype=object), ret.shape[1]),
        "ticker": np.tile(ret.columns.to_numpy(dtype=object), len(ret_m)),
        "ret": ret_m.to_numpy().ravel(),
        "excess": (ret_m.to_numpy() - rf_m).ravel(),
        "expected": (exp_m.to_numpy() - rf_m).ravel(),
        "resid": (ret_m.to_numpy() - exp_m.to_numpy()).ravel(),
        "n_days": n_days.to_numpy().ravel(),
    })
    return out[complete.to_numpy().ravel()].reset_index(drop=True)


def residual_vector(
    table: pd.DataFrame, date: str | pd.Timestamp, tickers: list[str] | np.ndarray, column: str = "resid",
    fill: float = 0.0,
) -> np.ndarray:
    """The residuals of one day as a vector in the order of ``tickers`` (N,).

    For the alignment reward: ``eps = residual_vector(resid, event_day, snapshot.tickers)``.
    Companies without a value that day (no return yet, no fitted loadings) get ``fill``.
    """
    require_columns(table, ["date", "ticker", column], "residual table")
    day = table[as_dates(table["date"]) == pd.Timestamp(date).normalize()]
    values = pd.Series(day[column].to_numpy(dtype=float), index=day["ticker"].astype(str).to_numpy())
    if values.index.has_duplicates:
        raise MarketInputError(f"residual table: several rows for one ticker on {pd.Timestamp(date).date()}")
    out = values.reindex(np.asarray(tickers, dtype=str)).to_numpy()
    return np.where(np.isnan(out), fill, out)


def window_moves(resid: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """(dates x tickers) the sum of each stock's residual over trading days ``d .. d + horizon``, indexed by ``d``.

    ``resid``: long (date, ticker, resid) as :func:`kgfin.market.residuals` returns it; its dates are the trading
    days. A window with a missing residual (no fitted beta yet) or running past the last day is NaN.

    >>> r = pd.DataFrame({"date": pd.to_datetime(["2015-01-02", "2015-01-05", "2015-01-06"]), "ticker": "A",
    ...                   "resid": [0.01, 0.02, -0.01]})
    >>> window_moves(r, 1)["A"].round(3).tolist()
    [0.03, 0.01, nan]
    """
    wide = resid.pivot(index="date", columns="ticker", values="resid").sort_index()
    out = wide.copy()
    for k in range(1, horizon + 1):
        out = out + wide.shift(-k)
    return out
