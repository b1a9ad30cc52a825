"""Asset-pricing statistics of predicted impacts against realised residual returns.

Everything takes and returns tidy DataFrames (one row per regression / test / group);
statsmodels and scipy do the estimation. ``docs/asset-pricing.md`` states the formulas.

* :func:`impact_regression`: OLS of (standardised) residuals on the predicted impact
  with optional controls: coefficient, classical and heteroskedasticity-robust t and p,
  R^2, the variance absorption ``R^2_Phi`` and the raw absorption of the residual.
* :func:`impact_groups`, :func:`group_tests`, :func:`group_summary`: one-way ANOVA
  (F, p, eta^2) and Kruskal-Wallis over groups of predicted impact.
* :func:`refusal_rate`: the share of predictions that are refusals.
* :func:`impact_stats`: all of the above for a table of predictions joined to residuals,
  with :meth:`ImpactStats.to_markdown`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from kgfin.config import KgfinConfig, resolve_config
from kgfin.errors import KgfinError
from kgfin.tables import markdown_table

__all__ = [
    "ImpactStats", "ImpactStatsConfig", "StatsInputError", "group_summary", "group_tests",
    "impact_groups", "impact_regression", "impact_stats", "refusal_rate",
]


class StatsInputError(KgfinError, ValueError):
    """Data that a statistic cannot be computed from (missing columns, too few rows)."""


class ImpactStatsConfig(KgfinConfig):
    """Settings of the predicted-impact statistics."""

    standardize: Literal["none", "y", "both"] = Field(
        "y", description="z-score the residual (y), both residual and impact (both), or neither"
    )
    cov_type: Literal["HC0", "HC1", "HC2", "HC3"] = Field("HC3", description="heteroskedasticity-robust covariance")
    groups: Literal["sign", "quantile"] = Field(
        "sign", description="impact groups: negative / neutral / positive, or quantiles of the impact"
    )
    n_groups: int = Field(3, ge=2, description="number of quantile groups (groups='quantile')")
    neutral_band: float = Field(0.0, ge=0, description="|impact| <= this is 'neutral' (groups='sign')")


def _need(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise StatsInputError(f"{what}: missing column(s) {missing} (has {list(frame.columns)})")


def _zscore(v: pd.Series) -> pd.Series:
    sd = v.std(ddof=1)
    if not sd > 0:
        raise StatsInputError(f"cannot standardise {v.name!r}: it is constant")
    return (v - v.mean()) / sd


def impact_regression(
    data: pd.DataFrame, y: str = "resid", x: str = "impact", controls: list[str] | tuple[str, ...] = (),
    config: ImpactStatsConfig | None = None, **overrides: Any,
) -> pd.DataFrame:
    """Regress residuals ``y`` on predicted impact ``x`` (plus ``controls``) by OLS.

    ``y_i = a + b * x_i + c . controls_i + u_i`` over the rows where every variable is
    present. Returns one row: ``y, x, controls, nobs, coef, se, t, p`` (classical),
    ``robust_se, robust_t, robust_p`` (``cov_type``, normal reference as in statsmodels),
    ``r2``, ``r2_phi`` and ``absorption``:

    * ``r2_phi`` (variance absorption) is the share of the residual variance left by the
      controls that the predicted impact absorbs, the partial R^2
      ``(SSR_controls - SSR_full) / SSR_controls``; with no controls it is the R^2.
    * ``absorption`` takes the prediction at face value (no fitted coefficient, raw
      units): ``1 - sum((y - x)^2) / sum((y - mean(y))^2)``; negative when subtracting the
      prediction makes the residuals worse.
    """
    import statsmodels.api as sm

    cfg = resolve_config(ImpactStatsConfig, config, overrides)
    controls = list(controls)
    _need(data, [y, x, *controls], "regression data")
    d = data[[y, x, *controls]].astype(float).replace([np.inf, -np.inf], np.nan).dropna()
    if len(d) < len(controls) + 3:
        raise StatsInputError(f"regression of {y} on {x}: {len(d)} complete rows, need at least {len(controls) + 3}")
    yv = (_zscore(d[y]) if cfg.standardize in ("y", "both") else d[y]).to_numpy()
    xv = (_zscore(d[x]) if cfg.standardize == "both" else d[x]).to_numpy()
    ones = np.ones((len(d), 1))
    ctrl = d[controls].to_numpy()
    classic = sm.OLS(yv, np.column_stack([ones, xv, ctrl])).fit()  # column 1 is the impact
    robust = classic.get_robustcov_results(cov_type=cfg.cov_type, use_t=False)
    if controls:
        restricted = sm.OLS(yv, np.column_stack([ones, ctrl])).fit()
        r2_phi = (restricted.ssr - classic.ssr) / restricted.ssr if restricted.ssr > 0 else np.nan
    else:
        r2_phi = classic.rsquared
    tss = float(((d[y] - d[y].mean()) ** 2).sum())
    absorption = 1.0 - float(((d[y] - d[x]) ** 2).sum()) / tss if tss > 0 else np.nan
    return pd.DataFrame([{
        "y": y, "x": x, "controls": ",".join(controls), "nobs": int(classic.nobs),
        "coef": classic.params[1], "se": classic.bse[1], "t": classic.tvalues[1], "p": classic.pvalues[1],
        "robust_se": robust.bse[1], "robust_t": robust.tvalues[1], "robust_p": robust.pvalues[1],
        "r2": classic.rsquared, "r2_phi": r2_phi, "absorption": absorption, "cov_type": cfg.cov_type,
    }])


def impact_groups(impact: pd.Series, config: ImpactStatsConfig | None = None, **overrides: Any) -> pd.Series:
    """Group labels for predicted impacts (NaN impacts get no group).

    ``groups="sign"``: ``negative`` (< -band), ``neutral`` (|impact| <= band), ``positive``;
    ``groups="quantile"``: ``Q1`` (lowest) .. ``Qn`` by rank, ties broken by order.

    >>> impact_groups(pd.Series([-0.2, 0.0, 0.3, np.nan])).tolist()
    ['negative', 'neutral', 'positive', nan]
    >>> impact_groups(pd.Series([5.0, 1.0, 3.0, 2.0]), groups="quantile", n_groups=2).tolist()
    ['Q2', 'Q1', 'Q2', 'Q1']
    """
    cfg = resolve_config(ImpactStatsConfig, config, overrides)
    v = pd.Series(impact, dtype=float)
    labels = np.full(len(v), None, dtype=object)
    ok = v.notna().to_numpy()
    vals = v.to_numpy()
    if cfg.groups == "sign":
        band = cfg.neutral_band
        names = ["negative", "neutral", "positive"]
        labels[ok & (vals < -band)] = "negative"
        labels[ok & (np.abs(vals) <= band)] = "neutral"
        labels[ok & (vals > band)] = "positive"
    else:
        if ok.sum() < cfg.n_groups:
            raise StatsInputError(f"{int(ok.sum())} impacts cannot form {cfg.n_groups} quantile groups")
        names = [f"Q{i}" for i in range(1, cfg.n_groups + 1)]
        ranks = v[ok].rank(method="first").to_numpy()
        codes = np.ceil(ranks * cfg.n_groups / ok.sum()).astype(int)
        labels[ok] = [names[c - 1] for c in codes]
    return pd.Series(pd.Categorical(labels, categories=names, ordered=True), index=v.index)


def group_summary(data: pd.DataFrame, y: str = "resid", group: str = "group") -> pd.DataFrame:
    """Per group: ``group, n, mean, std, median`` of ``y``."""
    _need(data, [y, group], "group data")
    d = data[[group, y]].dropna()
    g = d.groupby(group, sort=True, observed=True)[y]
    return pd.DataFrame({"n": g.size(), "mean": g.mean(), "std": g.std(ddof=1), "median": g.median()}).reset_index()


def group_tests(data: pd.DataFrame, y: str = "resid", group: str = "group") -> pd.DataFrame:
    """One-way ANOVA and Kruskal-Wallis of ``y`` across the groups in column ``group``.

    Returns one row: ``n_groups, nobs, anova_f, anova_p, eta2, kruskal_h, kruskal_p`` with
    ``eta2 = SS_between / SS_total``. Constant data give NaN statistics.
    """
    from scipy import stats

    _need(data, [y, group], "group data")
    d = data[[group, y]].dropna()
    samples = [g[y].to_numpy(dtype=float) for _, g in d.groupby(group, sort=True, observed=True)]
    if len(samples) < 2 or len(d) <= len(samples):
        raise StatsInputError(f"group tests need at least 2 groups and more rows than groups "
                              f"(got {len(samples)} groups, {len(d)} rows)")
    allv = np.concatenate(samples)
    ss_total = float(((allv - allv.mean()) ** 2).sum())
    ss_between = float(sum(len(s) * (s.mean() - allv.mean()) ** 2 for s in samples))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant groups: scipy warns, we return NaN
        f_stat, f_p = stats.f_oneway(*samples)
        try:
            h_stat, h_p = stats.kruskal(*samples)
        except ValueError:  # all values identical
            h_stat, h_p = np.nan, np.nan
    return pd.DataFrame([{
        "n_groups": len(samples), "nobs": len(allv), "anova_f": float(f_stat), "anova_p": float(f_p),
        "eta2": ss_between / ss_total if ss_total > 0 else np.nan,
        "kruskal_h": float(h_stat), "kruskal_p": float(h_p),
    }])


def _refused(predictions: pd.DataFrame, refused: str, impact: str) -> pd.Series:
    if refused not in predictions.columns and impact not in predictions.columns:
        raise StatsInputError(f"predictions: need a {refused!r} or an {impact!r} column")
    flag = pd.Series(False, index=predictions.index)
    if refused in predictions.columns:
        col = predictions[refused]
        if col.isna().any():
            raise StatsInputError(f"predictions: column {refused!r} has missing values")
        flag |= col.astype(bool)
    if impact in predictions.columns:
        flag |= predictions[impact].isna()
    return flag


def refusal_rate(predictions: pd.DataFrame, refused: str = "refused", impact: str = "impact") -> float:
    """Share of predictions that are refusals: ``refused`` is True or ``impact`` is NaN.

    >>> refusal_rate(pd.DataFrame({"impact": [0.1, np.nan, -0.2, np.nan]}))
    0.5
    """
    if len(predictions) == 0:
        raise StatsInputError("predictions: no rows, refusal rate undefined")
    return float(_refused(predictions, refused, impact).mean())


@dataclass
class ImpactStats:
    """The statistics of one set of predictions against one set of residuals."""

    regression: pd.DataFrame  # one row, see impact_regression
    tests: pd.DataFrame  # one row, see group_tests (empty when computed without group tests)
    groups: pd.DataFrame  # one row per impact group, see group_summary (empty without group tests)
    refusal: pd.DataFrame  # one row: predictions, refused, refusal_rate, matched

    def summary(self) -> pd.DataFrame:
        """Everything on one row (for comparing models or residual definitions)."""
        reg = self.regression.drop(columns=["y", "x", "controls"])
        tests = [self.tests.drop(columns="nobs")] if len(self.tests) else []
        return pd.concat([reg, *tests, self.refusal], axis=1)

    def to_markdown(self, floatfmt: str = ".4g") -> str:
        """The four tables as Markdown sections."""
        parts = [("Regression of residuals on predicted impact", self.regression),
                 ("Differences across impact groups", self.tests),
                 ("Impact groups", self.groups), ("Refusals", self.refusal)]
        return "\n\n".join(f"**{title}**\n\n{markdown_table(t, floatfmt)}" for title, t in parts)


def impact_stats(
    predictions: pd.DataFrame, realised: pd.DataFrame, on: tuple[str, ...] = ("date", "ticker"),
    impact: str = "impact", resid: str = "resid", controls: list[str] | tuple[str, ...] = (),
    refused: str = "refused", config: ImpactStatsConfig | None = None, with_group_tests: bool = True,
    **overrides: Any,
) -> ImpactStats:
    """Join predictions to realised residuals on ``on`` and compute every statistic.

    ``with_group_tests=False`` fits the regression only (``tests`` and ``groups`` empty): for
    predictions that may fall in a single impact group (all positive, say), where the
    regression is defined but the group tests are not.

    ``predictions``: the keys, ``impact`` and optionally a boolean ``refused`` column;
    refusals (``refused`` or NaN impact) count in the refusal rate and are left out of the
    other statistics. ``realised``: the keys, ``resid`` and any ``controls`` (for example
    the output of :func:`kgfin.market.residuals`, one row per key).
    """
    cfg = resolve_config(ImpactStatsConfig, config, overrides)
    on = list(on)
    _need(predictions, on, "predictions")
    _need(realised, [*on, resid, *controls], "realised residuals")
    if realised.duplicated(on).any():
        raise StatsInputError(f"realised residuals: duplicate keys {on}")
    if len(predictions) == 0:
        raise StatsInputError("predictions: no rows")
    flag = _refused(predictions, refused, impact)
    answered = predictions.loc[~flag, [*on, impact]]
    data = answered.merge(realised[[*on, resid, *controls]], on=on, how="inner")
    data = data.dropna(subset=[resid])
    data["group"] = impact_groups(data[impact], cfg)
    refusal = pd.DataFrame([{
        "predictions": len(predictions), "refused": int(flag.sum()), "refusal_rate": float(flag.mean()),
        "matched": len(data),
    }])
    return ImpactStats(
        regression=impact_regression(data, resid, impact, controls, cfg),
        tests=group_tests(data, resid, "group") if with_group_tests else pd.DataFrame(),
        groups=group_summary(data, resid, "group") if with_group_tests else pd.DataFrame(),
        refusal=refusal,
    )
