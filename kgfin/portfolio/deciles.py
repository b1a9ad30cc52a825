"""Monthly decile portfolios from predicted returns, with IC and MAPE.

Inputs are long tables keyed by (month, ticker), where ``month`` is the month whose
return is predicted (the prediction must use data up to the end of the month before):
``predictions`` (month, ticker, pred) and ``realised`` (month, ticker, ret). Per month,
the stocks present in both are ranked by prediction (ties by ticker) and split into
``n_groups`` equal-count groups, ``D1`` (lowest) .. ``Dn`` (highest), group g holding the
ranks r with ``ceil(r * n_groups / n) = g``. Portfolios are equal weighted:

* decile return: mean realised return of the group;
* top long-only: ``Dn``; top-minus-bottom long-short: ``Dn - D1``;
* costs: ``cost * turnover`` with ``turnover = sum_i |w_i(m) - w_i(m-1)|`` (the first
  month trades in from cash; drift within the month is ignored); default cost 0.

Accuracy: the information coefficient is the Spearman rank correlation of prediction and
realised return per month (mean, sample standard deviation with ddof 1,
``t = mean / (std / sqrt(months))``, ``ICIR = mean / std``; months without an IC are left out); MAPE is ``mean(|pred - ret| / |ret|)`` over stock-months with a
non-zero realised return (large when returns are near zero, as it always is).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from kgfin.config import KgfinConfig, resolve_config
from kgfin.portfolio.errors import PortfolioInputError
from kgfin.portfolio.metrics import annualized_return, performance, sharpe_ratio
from kgfin.tables import markdown_table

__all__ = ["DecileConfig", "DecileResult", "decile_portfolios", "information_coefficient", "mape"]


class DecileConfig(KgfinConfig):
    """Monthly decile portfolios."""

    n_groups: int = Field(10, ge=2, description="number of prediction groups (10: deciles)")
    cost: float = Field(0.0, ge=0, description="cost per unit of turnover; 0 as in the papers")
    periods_per_year: int = Field(12, ge=1, description="periods per year for annualisation")


@dataclass
class DecileResult:
    """Decile portfolio returns, the decile profile, IC per month and the summaries."""

    returns: pd.DataFrame  # month, D1..Dn, long_only, long_short, turnover_long_only, turnover_long_short
    profile: pd.DataFrame  # group, months, mean_stocks, mean_return, annual_return, sharpe
    ic: pd.DataFrame  # month, ic, n
    performance: pd.DataFrame  # strategy rows (long_only, long_short): see portfolio.metrics.performance
    accuracy: pd.DataFrame  # one row: months, ic_mean, ic_std, ic_t, icir, mape, mape_n

    def to_markdown(self, floatfmt: str = ".4g") -> str:
        """Performance, accuracy and the decile profile as Markdown sections."""
        parts = [("Portfolios", self.performance), ("Prediction accuracy", self.accuracy),
                 ("Decile profile", self.profile)]
        return "\n\n".join(f"**{title}**\n\n{markdown_table(t, floatfmt)}" for title, t in parts)


def _joined(predictions: pd.DataFrame, realised: pd.DataFrame, pred: str, ret: str) -> pd.DataFrame:
    for frame, cols, what in ((predictions, ["month", "ticker", pred], "predictions"),
                              (realised, ["month", "ticker", ret], "realised")):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise PortfolioInputError(f"{what}: missing column(s) {missing}")
        if frame.duplicated(["month", "ticker"]).any():
            raise PortfolioInputError(f"{what}: several rows for one (month, ticker)")
    data = predictions[["month", "ticker", pred]].merge(realised[["month", "ticker", ret]], on=["month", "ticker"])
    data = data.rename(columns={pred: "pred", ret: "ret"}).dropna(subset=["pred", "ret"])
    if data.empty:
        raise PortfolioInputError("predictions and realised returns share no (month, ticker) with values")
    data["month"] = data["month"].astype(str)
    return data.sort_values(["month", "ticker"], ignore_index=True)


def information_coefficient(data: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation of ``pred`` and ``ret`` per month: ``month, ic, n``."""
    rows = []
    for month, g in data.groupby("month", sort=True):
        rp, rr = g["pred"].rank(), g["ret"].rank()
        ic = float(np.corrcoef(rp, rr)[0, 1]) if len(g) > 1 and rp.std() > 0 and rr.std() > 0 else np.nan
        rows.append((month, ic, len(g)))
    return pd.DataFrame(rows, columns=["month", "ic", "n"])


def mape(pred: np.ndarray | pd.Series, actual: np.ndarray | pd.Series) -> tuple[float, int]:
    """Mean absolute percentage error over entries with ``actual != 0``, and their count.

    >>> mape(np.array([0.02, 0.01, 0.5]), np.array([0.01, -0.01, 0.0]))
    (1.5, 2)
    """
    p, a = np.asarray(pred, dtype=float), np.asarray(actual, dtype=float)
    ok = (a != 0) & np.isfinite(a) & np.isfinite(p)
    if not ok.any():
        return np.nan, 0
    return float(np.mean(np.abs(p[ok] - a[ok]) / np.abs(a[ok]))), int(ok.sum())


def _turnover(groups: pd.DataFrame, legs: dict[str, float]) -> np.ndarray:
    """Turnover per month of an equal-weighted portfolio long/short the groups in ``legs``."""
    out, prev = [], pd.Series(dtype=float)
    for _, g in groups.groupby("month", sort=True):
        parts = []
        for label, sign in legs.items():
            members = g.loc[g["group"] == label, "ticker"]
            parts.append(pd.Series(sign / len(members), index=members.to_numpy()))
        w = pd.concat(parts).groupby(level=0).sum()
        out.append(float(w.sub(prev, fill_value=0.0).abs().sum()))
        prev = w
    return np.array(out)


def decile_portfolios(
    predictions: pd.DataFrame, realised: pd.DataFrame, pred: str = "pred", ret: str = "ret",
    config: DecileConfig | None = None, **overrides: Any,
) -> DecileResult:
    """Decile portfolios, long-only / long-short returns, IC and MAPE (see the module doc)."""
    cfg = resolve_config(DecileConfig, config, overrides)
    data = _joined(predictions, realised, pred, ret)
    counts = data.groupby("month").size()
    small = counts[counts < cfg.n_groups]
    if len(small):
        raise PortfolioInputError(
            f"month {small.index[0]}: {int(small.iloc[0])} stocks cannot form {cfg.n_groups} groups"
        )
    g = cfg.n_groups
    ranks = data.groupby("month")["pred"].rank(method="first")  # ties: ticker order (data is sorted)
    codes = np.ceil(ranks * g / data["month"].map(counts)).astype(int)
    labels = [f"D{i}" for i in range(1, g + 1)]
    data["group"] = [labels[c - 1] for c in codes]

    table = data.pivot_table(index="month", columns="group", values="ret", aggfunc="mean")[labels]
    top, bottom = labels[-1], labels[0]
    turn_lo = _turnover(data, {top: 1.0})
    turn_ls = _turnover(data, {top: 1.0, bottom: -1.0})
    table["long_only"] = table[top] - cfg.cost * turn_lo
    table["long_short"] = table[top] - table[bottom] - cfg.cost * turn_ls
    table["turnover_long_only"] = turn_lo
    table["turnover_long_short"] = turn_ls
    returns = table.reset_index().rename_axis(columns=None)

    sizes = data.groupby(["month", "group"]).size().unstack()[labels]
    profile = pd.DataFrame({
        "group": labels, "months": [int(table[c].notna().sum()) for c in labels],
        "mean_stocks": [float(sizes[c].mean()) for c in labels],
        "mean_return": [float(table[c].mean()) for c in labels],
        "annual_return": [annualized_return(table[c], cfg.periods_per_year) for c in labels],
        "sharpe": [sharpe_ratio(table[c], cfg.periods_per_year) for c in labels],
    })
    ic = information_coefficient(data)
    ics = ic["ic"].dropna()
    ic_std = float(ics.std(ddof=1)) if len(ics) > 1 else np.nan
    err, n_err = mape(data["pred"], data["ret"])
    accuracy = pd.DataFrame([{
        "months": len(table), "ic_mean": float(ics.mean()) if len(ics) else np.nan, "ic_std": ic_std,
        "ic_t": float(ics.mean() / (ic_std / np.sqrt(len(ics)))) if ic_std > 0 else np.nan,
        "icir": float(ics.mean() / ic_std) if ic_std > 0 else np.nan, "mape": err, "mape_n": n_err,
    }])
    perf = performance(table[["long_only", "long_short"]], periods_per_year=cfg.periods_per_year)
    return DecileResult(returns=returns, profile=profile, ic=ic, performance=perf, accuracy=accuracy)
