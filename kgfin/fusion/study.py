"""The fusion power study: the model grid out of sample with retraining, over seeds and ripple sources.

:func:`run_study` trains every model of ``fusion.models`` (news models once per ripple source) in walk-forward
windows: the last ``test_months`` feature months are predicted in blocks of ``retrain_every`` months, each block by
models trained on the months before it (``window: expanding`` from the first month, or ``rolling``: the
``train_months`` before), the last ``valid_months`` of them held out to pick the epoch. Nothing of a block or later
feeds its predictions. Every (model, source) is trained with each of ``seeds``.

Per model, source and seed, on the out-of-sample months (:func:`evaluate_signal`): mean monthly IC (Pearson) and
rank IC (Spearman) with Newey-West t-stats, decile monotonicity (Spearman correlation of decile number and decile
mean return), top-decile long-only and top-minus-bottom long-short Sharpe ratios with CIs, their turnover and their
returns net of ``costs_bps``. The table reports each metric's mean +- std over seeds; the paired tables compare,
month by month on seed-averaged ICs, each ripple source with none and the decoupled mixture with the conventional
one (mean difference, Newey-West t, two-sided p). The factor-research tables (:mod:`kgfin.portfolio.factor_research`)
describe the best model's seed-averaged signal: IC decay over horizons, rank autocorrelation, top-decile turnover,
quantile returns with error bars, cumulative long-short with its drawdown.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator
from tqdm.auto import tqdm

from kgfin.config import KgfinConfig
from kgfin.fusion.config import NEWS_MODELS, FusionConfig
from kgfin.fusion.features import Panel, attach_ripple
from kgfin.fusion.train import SPLITS, ModelData, fit_model
from kgfin.portfolio.deciles import decile_portfolios
from kgfin.portfolio.factor_research import (
    align_signal,
    drawdown,
    ic_by_horizon,
    monthly_ic,
    newey_west_t,
    quantile_returns,
    quantile_turnover,
    rank_autocorrelation,
)
from kgfin.portfolio.metrics import SharpeConfig, annualized_return, sharpe_ci

__all__ = ["StudyConfig", "StudyResult", "evaluate_signal", "factor_tables", "headline_table", "paired_months", "ripple_signal",
           "run_study", "seed_table", "walk_forward"]

log = logging.getLogger(__name__)


class StudyConfig(KgfinConfig):
    """The walk-forward protocol, the seeds, the costs and the conventions of the report."""

    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], min_length=1, description="model seeds")
    test_months: int = Field(60, ge=1, description="last feature months predicted out of sample")
    retrain_every: int = Field(12, ge=1, description="months per block predicted by one set of trained models")
    window: Literal["expanding", "rolling"] = Field("expanding", description="training window of each block")
    train_months: int = Field(48, ge=2, description="rolling window: training + validation months")
    valid_months: int = Field(6, ge=1, description="months before each block that pick the epoch (validation IC)")
    costs_bps: list[float] = Field(default_factory=lambda: [15.0, 25.0],
                                   description="one-way costs per unit of turnover, basis points")
    quantiles: int = Field(10, ge=2, description="portfolio groups (deciles)")
    horizons: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6], description="IC decay horizons (months)")
    sources_for: dict[str, list[str]] = Field(
        default_factory=dict, description="model -> the ripple sources it is trained with (default: every source; "
                                          "factors_alone takes none)")
    grad_var_blocks: int = Field(1, ge=0, description="blocks (the first ones) in which the mixtures' component "
                                                       "gradient variance is measured (it costs most of their time)")
    nw_lags: int | None = Field(None, ge=0, description="Newey-West lags (None: floor(4 (n/100)^(2/9)))")
    sharpe: SharpeConfig = Field(default_factory=SharpeConfig, description="Sharpe CIs; none under min_periods")

    @model_validator(mode="after")
    def _check(self) -> StudyConfig:
        if self.window == "rolling" and self.train_months <= self.valid_months:
            raise ValueError("train_months must exceed valid_months (they include them)")
        return self


def walk_forward(months: list[str], cfg: StudyConfig) -> list[dict[str, list[str]]]:
    """The blocks: per block its ``train``, ``valid`` and ``test`` feature months (time order, disjoint)."""
    months = sorted(months)
    if len(months) < cfg.test_months + cfg.valid_months + 2:
        raise ValueError(f"{len(months)} feature months cannot hold {cfg.test_months} test months, "
                         f"{cfg.valid_months} validation months and training months")
    first_test = len(months) - cfg.test_months
    blocks = []
    for start in range(first_test, len(months), cfg.retrain_every):
        lo = 0 if cfg.window == "expanding" else max(0, start - cfg.train_months)
        before = months[lo:start]
        blocks.append({"train": before[:-cfg.valid_months], "valid": before[-cfg.valid_months:],
                       "test": months[start:start + cfg.retrain_every]})
    return blocks


def _block_data(panel: Panel, x_n: np.ndarray, block: dict[str, list[str]]) -> ModelData:
    """ModelData of one block: its splits (other months in none), scalings fitted on its training rows."""
    month = panel.keys["month"].to_numpy()
    split = np.full(len(panel), "none", dtype=object)
    for s in SPLITS:
        split[np.isin(month, block[s])] = s
    train = split == "train"
    y_scale = float(np.std(panel.y[train]))
    has_r = panel.has_ripple
    r_sd = float(np.std(panel.ripple[train & has_r])) if (train & has_r).sum() > 1 else 0.0
    ripple_scale = r_sd if r_sd > 0 else 1.0
    x_r = np.stack([panel.ripple / ripple_scale, has_r.astype(np.float32)], 1).astype(np.float32)
    rows = {s: np.flatnonzero(split == s) for s in SPLITS}
    return ModelData(panel=panel, split=split, x_n=x_n, d_n=int(x_n.shape[1]), x_r=x_r,
                     y=(panel.y / y_scale).astype(np.float32), y_scale=y_scale, ripple_scale=ripple_scale, rows=rows)


def evaluate_signal(pred: pd.DataFrame, realised: pd.DataFrame, cfg: StudyConfig) -> tuple[dict[str, Any], pd.DataFrame]:
    """Metrics of one out-of-sample signal (``target_month, ticker, pred``) against ``realised``
    (``target_month, ticker, ret``, the return of the target month) and its monthly IC / rank IC / portfolio
    returns (``target_month, ic, rank_ic, long_only, long_short, turnover_long_only, turnover_long_short``)."""
    from scipy import stats

    j = pred.merge(realised, on=["target_month", "ticker"], how="inner")
    ic = j.groupby("target_month").apply(lambda g: g["pred"].corr(g["ret"]), include_groups=False)
    ric = j.groupby("target_month").apply(lambda g: g["pred"].rank().corr(g["ret"].rank()), include_groups=False)
    dec = decile_portfolios(j.rename(columns={"target_month": "month"})[["month", "ticker", "pred"]],
                            j.rename(columns={"target_month": "month"})[["month", "ticker", "ret"]],
                            n_groups=cfg.quantiles)
    r = dec.returns.set_index("month")
    monthly = pd.DataFrame({"ic": ic, "rank_ic": ric}).join(
        r[["long_only", "long_short", "turnover_long_only", "turnover_long_short"]])
    monthly.index.name = "target_month"
    labels = [f"D{i}" for i in range(1, cfg.quantiles + 1)]
    mono = float(stats.spearmanr(np.arange(cfg.quantiles), r[labels].mean().to_numpy())[0])
    nw_ic, nw_ric = newey_west_t(monthly["ic"], cfg.nw_lags), newey_west_t(monthly["rank_ic"], cfg.nw_lags)
    sc = cfg.sharpe
    out: dict[str, Any] = {"months": len(monthly), "IC": nw_ic.mean, "IC NW t": nw_ic.t, "rank IC": nw_ric.mean,
                           "rank IC NW t": nw_ric.t, "decile monotonicity": mono}
    for leg, short in (("long_only", "LO"), ("long_short", "LS")):
        gross = monthly[leg]
        nets = {"": gross} | {f" net {c:g}bp": gross - c / 1e4 * monthly[f"turnover_{leg}"] for c in cfg.costs_bps}
        for tag, series in nets.items():
            if len(series.dropna()) >= sc.min_periods:
                s = sharpe_ci(series, 12, confidence=sc.confidence, method=sc.method, n_resamples=sc.n_resamples,
                              block_length=sc.block_length, seed=sc.seed)
                out[f"{short} Sharpe{tag}"], out[f"{short} Sharpe{tag} CI"] = s.sharpe, (s.low, s.high)
            else:
                out[f"{short} Sharpe{tag}"], out[f"{short} Sharpe{tag} CI"] = np.nan, (np.nan, np.nan)
            out[f"{short} ann. return{tag}"] = annualized_return(series, 12)
        out[f"{short} turnover"] = float(monthly[f"turnover_{leg}"].iloc[1:].mean())
    return out, monthly.reset_index()


@dataclass
class StudyResult:
    """Everything the study produced."""

    runs: pd.DataFrame  # one row per model, source, seed: evaluate_signal's metrics + training seconds
    monthly: pd.DataFrame  # model, source, seed, target_month, ic, rank_ic, long_only, long_short, turnovers
    predictions: pd.DataFrame  # model, source, seed, month, target_month, ticker, pred (out of sample)
    grad_var: pd.DataFrame  # model, source, seed, block, epoch, loss, component, raw, relative
    blocks: list[dict[str, list[str]]]
    coverage: pd.DataFrame  # source, stock-months with a ripple score (all / out of sample)
    seconds: dict[str, float] = field(default_factory=dict)


def run_study(panel: Panel, x_n: np.ndarray, ripple: dict[str, pd.DataFrame | None], fusion: FusionConfig,
              cfg: StudyConfig, progress: bool = True) -> StudyResult:
    """Train and predict the grid (module doc). ``panel``: :func:`~kgfin.fusion.features.build_panel` without
    ripple; ``x_n``: its pooled news vectors (one row per stock-month); ``ripple``: source name -> ``month, ticker,
    ripple`` table (None: the models without ripple input)."""
    t0 = time.perf_counter()
    blocks = walk_forward(panel.months, cfg)
    test_months = [m for b in blocks for m in b["test"]]
    realised = panel.keys[["target_month", "ticker"]].assign(ret=panel.ret)
    jobs: list[tuple[str, str]] = []  # (model, source)
    for m in fusion.models:
        for source in cfg.sources_for.get(m, list(ripple)):
            if source not in ripple:
                raise ValueError(f"study.sources_for[{m}] names {source!r}; the sources are {list(ripple)}")
            if ripple[source] is None or m in NEWS_MODELS:
                jobs.append((m, source))
    runs, monthly, preds, grads, coverage = [], [], [], [], []
    oos = panel.keys["month"].isin(test_months).to_numpy()
    datas: dict[str, list[ModelData]] = {}
    for source, table in ripple.items():
        p = Panel(**{**panel.__dict__})
        p.ripple, p.has_ripple = np.zeros(len(panel), np.float32), np.zeros(len(panel), bool)
        if table is not None:
            attach_ripple(p, table)
        coverage.append({"source": source, "stock-months with a score": float(p.has_ripple.mean()),
                         "out of sample": float(p.has_ripple[oos].mean())})
        datas[source] = [_block_data(p, x_n, b) for b in blocks]
    bar = tqdm(total=len(jobs) * len(cfg.seeds) * len(blocks), desc="power study fits", disable=not progress)
    for model, source in jobs:
        for seed in cfg.seeds:
            parts, secs = [], 0.0
            for k, data in enumerate(datas[source]):
                train = fusion.train.model_copy(update={"grad_var": fusion.train.grad_var and k < cfg.grad_var_blocks})
                fc = fusion.model_copy(update={"seed": seed, "train": train})
                fit = fit_model(model, data, fc, use_ripple=ripple[source] is not None)
                secs += fit.seconds
                out = fit.predictions[fit.predictions["split"] == "test"][["month", "target_month", "ticker", "pred"]]
                parts.append(out)
                if len(fit.grad_var):
                    grads.append(fit.grad_var.assign(model=model, source=source, seed=seed, block=k))
                bar.update()
            pred = pd.concat(parts, ignore_index=True)
            metrics, month_rows = evaluate_signal(pred[["target_month", "ticker", "pred"]], realised, cfg)
            tags = {"model": model, "source": source, "seed": seed}
            runs.append({**tags, **metrics, "train seconds": secs})
            monthly.append(month_rows.assign(**tags))
            preds.append(pred.assign(**tags))
    bar.close()
    return StudyResult(pd.DataFrame(runs), pd.concat(monthly, ignore_index=True), pd.concat(preds, ignore_index=True),
                       pd.concat(grads, ignore_index=True) if grads else pd.DataFrame(), blocks,
                       pd.DataFrame(coverage), {"total": time.perf_counter() - t0})


# --- tables ------------------------------------------------------------------------------------------------------


def seed_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per model and source: ``mean +- std`` over seeds of every numeric metric (Qlib's convention), and the seeds."""
    num = [c for c in runs.columns if c not in ("model", "source", "seed") and pd.api.types.is_numeric_dtype(runs[c])]
    rows = []
    for (m, s), g in runs.groupby(["model", "source"], sort=False):
        row: dict[str, Any] = {"model": m, "ripple": s, "seeds": len(g)}
        for c in num:
            row[c] = f"{g[c].mean():.3f} ± {g[c].std(ddof=1) if len(g) > 1 else 0.0:.3f}"
        rows.append(row)
    return pd.DataFrame(rows)


def headline_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The compact table docs/fusion.md leads with: per model and source, ``mean ± std`` over seeds of rank IC and
    IC (with their Newey-West t), decile monotonicity, the long-only and long-short Sharpe ratios (with the mean CI
    bounds over seeds), the long-short Sharpe net of each cost and the long-short turnover."""
    def ms(g: pd.DataFrame, c: str, fmt: str = ".3f") -> str:
        v = g[c].astype(float)
        return f"{v.mean():{fmt}} ± {v.std(ddof=1) if len(v) > 1 else 0.0:{fmt}}"

    def ci(g: pd.DataFrame, c: str) -> str:
        lo = np.mean([x[0] for x in g[c]])
        hi = np.mean([x[1] for x in g[c]])
        return f"[{lo:.2f}, {hi:.2f}]"

    nets = [c for c in runs.columns if c.startswith("LS Sharpe net") and not c.endswith("CI")]
    rows = []
    for (m, s), g in runs.groupby(["model", "source"], sort=False):
        row = {"model": m, "ripple": s, "seeds": len(g), "months": int(g["months"].iloc[0]),
               "rank IC": ms(g, "rank IC", ".4f"), "rank IC NW t": ms(g, "rank IC NW t", ".2f"),
               "IC": ms(g, "IC", ".4f"), "IC NW t": ms(g, "IC NW t", ".2f"),
               "decile monotonicity": ms(g, "decile monotonicity", ".2f"),
               "LO Sharpe": ms(g, "LO Sharpe", ".2f"), "LO CI": ci(g, "LO Sharpe CI"),
               "LS Sharpe": ms(g, "LS Sharpe", ".2f"), "LS CI": ci(g, "LS Sharpe CI")}
        for c in nets:
            row[c.replace("LS Sharpe net", "LS net")] = ms(g, c, ".2f")
        row["LS turnover"] = ms(g, "LS turnover", ".2f")
        rows.append(row)
    return pd.DataFrame(rows)


def ripple_signal(tables: dict[str, pd.DataFrame], panel: Panel, months: list[str], common: str | None = None,
                  lags: int | None = None) -> pd.DataFrame:
    """Each ripple table as a signal on its own: per source, the monthly rank IC of its score with the next-month
    target (the panel's demeaned return) over the stock-months of ``months`` that it scores (and, with ``common``,
    only those that source ``common`` scores too: the same rows for every source), mean with its Newey-West t,
    the months and the stock-months."""
    keys = panel.keys[["month", "ticker"]].assign(ret=panel.y)
    keys = keys[keys["month"].isin(months)]
    support = None
    if common is not None:
        support = tables[common][["month", "ticker"]].drop_duplicates()
    rows = []
    for source, table in tables.items():
        j = keys.merge(table[["month", "ticker", "ripple"]], on=["month", "ticker"], how="inner")
        if support is not None:
            j = j.merge(support, on=["month", "ticker"], how="inner")
        ic = monthly_ic(j.rename(columns={"ripple": "pred"}))
        nw = newey_west_t(ic["ic"], lags)
        rows.append({"source": source, "rows": common or "own", "stock-months": len(j), "months": nw.n,
                     "mean rank IC": nw.mean, "NW t": nw.t})
    return pd.DataFrame(rows)


def paired_months(monthly: pd.DataFrame, a: tuple[str, str], b: tuple[str, str], metric: str = "rank_ic",
                  lags: int | None = None) -> dict[str, Any]:
    """Mean over months of ``metric``(a) - ``metric``(b), both averaged over seeds first, with its Newey-West t and
    two-sided normal p; ``a``, ``b``: (model, source)."""
    from scipy import stats

    def series(key: tuple[str, str]) -> pd.Series:
        g = monthly[(monthly["model"] == key[0]) & (monthly["source"] == key[1])]
        return g.groupby("target_month")[metric].mean()

    d = (series(a) - series(b)).dropna()
    nw = newey_west_t(d, lags)
    seeds_a = monthly[(monthly["model"] == a[0]) & (monthly["source"] == a[1])].groupby("seed")[metric].mean()
    seeds_b = monthly[(monthly["model"] == b[0]) & (monthly["source"] == b[1])].groupby("seed")[metric].mean()
    per_seed = (seeds_a - seeds_b).dropna()
    return {"a": f"{a[0]} / {a[1]}", "b": f"{b[0]} / {b[1]}", "metric": metric, "months": nw.n,
            "mean difference": nw.mean, "NW t": nw.t,
            "p (two-sided)": float(2 * stats.norm.sf(abs(nw.t))) if np.isfinite(nw.t) else np.nan,
            "seeds a > b": f"{int((per_seed > 0).sum())} of {len(per_seed)}"}


def factor_tables(signal: pd.DataFrame, returns: pd.DataFrame, cfg: StudyConfig) -> dict[str, pd.DataFrame]:
    """The factor-research conventions for one signal (``month, ticker, pred``; feature month m predicts m+1):
    IC decay, rank autocorrelation, top-decile turnover, quantile returns with error bars, long-short drawdown,
    and the rows lost in each join."""
    decay = ic_by_horizon(signal, returns, cfg.horizons, lags=cfg.nw_lags)
    auto = rank_autocorrelation(signal)
    turn = quantile_turnover(signal, cfg.quantiles)
    joined, loss = align_signal(signal, returns, 1)
    by_month, q = quantile_returns(joined, cfg.quantiles)
    ls = by_month[cfg.quantiles] - by_month[1]
    dd = drawdown(ls)
    summary = pd.DataFrame([{
        "mean rank autocorrelation": auto["autocorrelation"].mean(), "months": int(auto["autocorrelation"].notna().sum()),
        "mean top-decile turnover": turn["turnover"].mean(), "max drawdown (LS)": float(dd["drawdown"].min()),
        **{f"h=1 {k}": v for k, v in loss.as_dict().items()}}])
    return {"ic_decay": decay, "autocorrelation": auto, "turnover": turn, "quantile_returns": q,
            "long_short": dd.assign(long_short=ls).reset_index(), "summary": summary}
