"""The whole fusion experiment: panel -> embeddings -> every model -> Table 1 analogue.

:func:`run_fusion` trains each configured model (and, given ripple scores, each news
model again with ripple as a third input; with ``lora.enabled``, the listed models with a
LoRA-fine-tuned language model), predicts the test months out of sample, and evaluates
the test predictions with :func:`kgfin.portfolio.decile_portfolios`: top-decile long-only
and top-minus-bottom long-short portfolios (annualised return, Sharpe), monthly rank IC,
MAPE, decile profile and cumulative returns. :func:`write_outputs` saves everything.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from kgfin.config import resolve_config
from kgfin.data.loaders import MarketData, find_table
from kgfin.data.tables import read_table, write_table
from kgfin.fusion.config import NEWS_MODELS, FusionConfig
from kgfin.fusion.features import Panel, build_panel, load_ripple
from kgfin.fusion.train import FitResult, ModelData, fit_model, prepare_data
from kgfin.llm.embeddings import NewsEmbedder
from kgfin.portfolio.deciles import DecileResult, decile_portfolios, mape
from kgfin.tables import markdown_table

__all__ = ["FusionRun", "Variant", "evaluate_predictions", "run_fusion", "write_outputs"]

log = logging.getLogger(__name__)

TABLE_COLUMNS = ["model", "ripple", "lora", "lo_annual_return", "lo_sharpe", "ls_annual_return", "ls_sharpe",
                 "ic_mean", "ic_t", "mape", "test_months", "best_epoch", "train_seconds"]


@dataclass(frozen=True)
class Variant:
    """One row of the results table: a model, with or without ripple input and LoRA fine-tuning."""

    model: str
    ripple: bool = False
    lora: bool = False

    @property
    def label(self) -> str:
        return self.model + ("+ripple" if self.ripple else "") + ("+lora" if self.lora else "")


@dataclass
class FusionRun:
    """Everything one run produced (see :func:`write_outputs` for the files)."""

    table: pd.DataFrame  # TABLE_COLUMNS, test split
    predictions: pd.DataFrame  # variant, model, ripple, lora, month, target_month, ticker, split, pred, ...
    curves: pd.DataFrame  # variant, epoch, split, series, mse, ic
    grad_var: pd.DataFrame  # variant, epoch, loss, component, raw, relative, grad_norm, n_params
    deciles: pd.DataFrame  # variant, group, months, mean_stocks, mean_return, annual_return, sharpe
    cumulative: pd.DataFrame  # variant, month, long_only, long_short (cumulative returns)
    timings: dict[str, Any] = field(default_factory=dict)
    ripple_label: str | None = None
    split_months: dict[str, list[str]] = field(default_factory=dict)
    ripple_input: pd.DataFrame | None = None  # the checked ripple table the models read (month, ticker, ripple)


def evaluate_predictions(preds: pd.DataFrame, panel: Panel) -> tuple[dict[str, float], DecileResult]:
    """Test-split metrics of one variant's predictions: portfolios, IC, MAPE (vs the model's target)."""
    test = preds[preds["split"] == "test"]
    rows = test.index.to_numpy()
    pred = test[["target_month", "ticker", "pred"]].rename(columns={"target_month": "month"})
    realised = pred[["month", "ticker"]].assign(ret=panel.ret[rows])
    res = decile_portfolios(pred, realised)
    perf = res.performance.set_index("strategy")
    err, _ = mape(test["pred"].to_numpy(), panel.y[rows])
    metrics = {
        "lo_annual_return": float(perf.loc["long_only", "annual_return"]), "lo_sharpe": float(perf.loc["long_only", "sharpe"]),
        "ls_annual_return": float(perf.loc["long_short", "annual_return"]), "ls_sharpe": float(perf.loc["long_short", "sharpe"]),
        "ic_mean": float(res.accuracy["ic_mean"].iloc[0]), "ic_t": float(res.accuracy["ic_t"].iloc[0]), "mape": err,
        "test_months": int(res.accuracy["months"].iloc[0]),
    }
    return metrics, res


def _variants(cfg: FusionConfig, has_ripple: bool) -> list[Variant]:
    out = []
    for m in cfg.models:
        out.append(Variant(m))
        if has_ripple and cfg.ripple.use and m in NEWS_MODELS:
            out.append(Variant(m, ripple=True))
        if cfg.lora.enabled and m in cfg.lora.models:
            out.append(Variant(m, lora=True))
    return out


def _planted_alpha(data_dir: Path | None, panel: Panel) -> pd.DataFrame | None:
    """The synthetic market's planted next-month alpha as a prediction (the ceiling), if the truth is there."""
    if data_dir is None or find_table(data_dir / "truth", "monthly_alpha") is None:
        return None
    alpha = read_table(find_table(data_dir / "truth", "monthly_alpha"))[["month", "ticker", "alpha"]]
    alpha = alpha.assign(month=alpha["month"].astype(str)).rename(columns={"month": "target_month", "alpha": "pred"})
    return panel.keys.merge(alpha, on=["target_month", "ticker"], how="left")


def run_fusion(
    market: MarketData, config: FusionConfig | None = None, ripple: pd.DataFrame | None = None,
    ripple_label: str | None = None, data_dir: str | Path | None = None, progress: bool = True, **overrides: Any,
) -> FusionRun:
    """Train and evaluate every configured model on ``market`` (see the module doc).

    ``ripple``: optional ``month, ticker, ripple`` table; ``ripple_label`` names its source in
    the table. ``data_dir`` (optional) lets the run add the planted-alpha ceiling row when the
    directory holds a synthetic market's truth.
    """
    cfg = resolve_config(FusionConfig, config, overrides)
    t_start = time.perf_counter()
    panel = build_panel(market, ripple=ripple, config=cfg.features)
    t_panel = time.perf_counter() - t_start
    needs_news = any(m in NEWS_MODELS for m in cfg.models)
    embedder = NewsEmbedder(cfg.embed)
    t0 = time.perf_counter()
    vectors = None
    states = None  # token states, for attention pooling learned with each model
    learned_pool = cfg.embed.pooling == "attention"
    if needs_news:
        if learned_pool:
            states = embedder.token_states(panel.texts, progress=progress)
        else:
            vectors = embedder.embed(panel.texts, progress=progress)
        if not panel.texts:
            log.warning("no stock-month has news in its window: every news model sees only the no-news vector")
    t_embed = time.perf_counter() - t0
    d_n = vectors.shape[1] if vectors is not None and len(vectors) else (embedder.dim() if needs_news else 1)
    data = prepare_data(panel, None if learned_pool else vectors, cfg, d_n=d_n)
    lora_data: ModelData | None = None

    variants = _variants(cfg, ripple is not None)
    fits: list[tuple[Variant, FitResult]] = []
    for v in tqdm(variants, desc="training models", unit="model", disable=not progress):
        encoder = None
        model_data = data
        if v.lora:
            from kgfin.fusion.lora import LoraNewsEncoder

            encoder = LoraNewsEncoder(cfg.embed, cfg.lora, seed=cfg.seed)
            if lora_data is None:
                lora_data = prepare_data(panel, None, cfg, d_n=encoder.dim)
            model_data = lora_data
        elif learned_pool and v.model in NEWS_MODELS and states is not None:
            from kgfin.fusion.pooling import AttentionPoolEncoder

            encoder = AttentionPoolEncoder(states, hidden=cfg.model.hidden, seed=cfg.seed,
                                           normalize=cfg.embed.normalize, lr=cfg.model.pool_lr)
        fits.append((v, fit_model(v.model, model_data, cfg, use_ripple=v.ripple, encoder=encoder)))

    rows, preds, curves, grads, deciles, cums = [], [], [], [], [], []
    label = ripple_label or cfg.ripple.source or ("user file" if ripple is not None else None)
    for v, fit in fits:
        metrics, res = evaluate_predictions(fit.predictions, panel)
        rows.append({"model": v.model, "ripple": label if v.ripple else "none", "lora": v.lora, **metrics,
                     "best_epoch": fit.best_epoch, "train_seconds": fit.seconds})
        tag = {"variant": v.label}
        preds.append(fit.predictions.assign(**tag, model=v.model, ripple=v.ripple, lora=v.lora))
        curves.append(fit.history.assign(**tag))
        if len(fit.grad_var):
            grads.append(fit.grad_var.assign(**tag))
        deciles.append(res.profile.assign(**tag))
        r = res.returns.set_index("month")[["long_only", "long_short"]]
        cums.append(((1 + r).cumprod() - 1).reset_index().assign(**tag))
    alpha = _planted_alpha(Path(data_dir) if data_dir is not None else None, panel)
    if alpha is not None and alpha["pred"].notna().all():
        metrics, res = evaluate_predictions(alpha.assign(split=data.split), panel)
        rows.append({"model": "planted_alpha (truth, ceiling)", "ripple": "none", "lora": False, **metrics,
                     "best_epoch": np.nan, "train_seconds": np.nan})
    by_split = {s: sorted(panel.keys["month"][data.split == s].unique()) for s in ("train", "valid", "test")}
    timings = {"panel_seconds": t_panel, "embed_seconds": t_embed, "texts": len(panel.texts),
               "texts_embedded": embedder.computed,
               "headlines_per_second": embedder.computed / embedder.compute_seconds if embedder.computed else None,
               "train_seconds": sum(f.seconds for _, f in fits), "total_seconds": time.perf_counter() - t_start}
    return FusionRun(
        table=pd.DataFrame(rows, columns=TABLE_COLUMNS), predictions=pd.concat(preds, ignore_index=True),
        curves=pd.concat(curves, ignore_index=True),
        grad_var=pd.concat(grads, ignore_index=True) if grads else pd.DataFrame(),
        deciles=pd.concat(deciles, ignore_index=True), cumulative=pd.concat(cums, ignore_index=True),
        timings=timings, ripple_label=label, split_months=by_split,
        ripple_input=load_ripple(ripple) if ripple is not None else None,
    )


def grad_var_summary(grad_var: pd.DataFrame) -> pd.DataFrame:
    """Mean over epochs 1..E of each mixture's component gradient variance, per measurement."""
    if grad_var.empty:
        return grad_var
    g = grad_var[grad_var["epoch"] > 0]
    return (g.groupby(["variant", "loss", "component"], sort=True)[["raw", "relative", "grad_norm"]].mean()
            .reset_index())


def _plots(run: FusionRun, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mix = run.curves[run.curves["variant"].str.startswith("mixture") & (run.curves["split"] == "train")]
    if len(mix):
        variants = sorted(mix["variant"].unique())
        fig, axes = plt.subplots(1, len(variants), figsize=(5 * len(variants), 3.6), sharey=True, squeeze=False)
        for ax, v in zip(axes[0], variants, strict=True):
            for s, g in mix[mix["variant"] == v].groupby("series"):
                ax.plot(g["epoch"], g["mse"], marker="o", ms=3, label=s)
            ax.set(title=v, xlabel="epoch", ylabel="training MSE (target / train std)^2")
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "component_curves.png", dpi=110)
        plt.close(fig)
    if not run.grad_var.empty:
        g = run.grad_var[(run.grad_var["loss"] == "trajectory") & ~run.grad_var["variant"].str.contains("+", regex=False)]
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        colours = dict(zip(["factors", "news", "fusion"], ["C0", "C1", "C2"], strict=True))
        for (v, comp), gc in g[g["component"] != "gate"].groupby(["variant", "component"]):
            style = "-" if "decoupled" in v else "--"
            label = f"{comp} ({v.split('_', 1)[1]})"
            for ax, col in zip(axes, ("raw", "relative"), strict=True):
                ax.plot(gc["epoch"], gc[col], style, color=colours.get(comp, "C3"), marker="o", ms=3, label=label)
        axes[0].set(yscale="log", title="step-gradient variance per parameter", xlabel="epoch")
        axes[1].set(yscale="log", title="relative variance (var / |mean|^2)", xlabel="epoch")
        axes[0].legend(fontsize=7)
        fig.suptitle("mixture components, without ripple: decoupled (solid) vs conventional (dashed)", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / "grad_variance.png", dpi=110)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4))
    for v, g in run.cumulative.groupby("variant", sort=True):
        ax.plot(g["month"], g["long_short"], marker=".", label=v)
    ax.set(title="cumulative long-short (D10 - D1) return, test months", ylabel="cumulative return")
    ax.tick_params(axis="x", rotation=45)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "cumulative.png", dpi=110)
    plt.close(fig)


def results_markdown(run: FusionRun) -> str:
    """The results table (Table 1 analogue) and the gradient-variance summary as Markdown."""
    table = run.table.copy()
    parts = [f"**Test months {run.split_months['test'][0]}..{run.split_months['test'][-1]} "
             f"(features; returns of the following months)**\n\n" + markdown_table(table, ".3f")]
    gv = grad_var_summary(run.grad_var)
    if len(gv):
        parts.append("**Mixture component gradient variance (mean over epochs)**\n\n" + markdown_table(gv, ".3g"))
    return "\n\n".join(parts) + "\n"


def write_outputs(run: FusionRun, out_dir: str | Path, config: FusionConfig, command: str = "kgfin fuse",
                  extra: dict[str, Any] | None = None) -> Path:
    """Write tables, curves, predictions, figures and the manifest into ``out_dir`` (atomically)."""
    from kgfin.runinfo import write_manifest

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        (tmp / "results.md").write_text(results_markdown(run))
        run.table.to_csv(tmp / "results.csv", index=False)
        run.curves.to_csv(tmp / "curves.csv", index=False)
        if not run.grad_var.empty:
            run.grad_var.to_csv(tmp / "grad_variance.csv", index=False)
        run.deciles.to_csv(tmp / "deciles.csv", index=False)
        run.cumulative.to_csv(tmp / "cumulative.csv", index=False)
        write_table(run.predictions, tmp, "predictions", "parquet")
        if run.ripple_input is not None:
            write_table(run.ripple_input, tmp, "ripple_input", "parquet")
        _plots(run, tmp)
        write_manifest(tmp, command, config, extra={"timings": run.timings, "ripple_source": run.ripple_label,
                                                     "split_months": run.split_months, **(extra or {})})
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
