"""Fusion power study: the return-model grid on a market big enough to decide (docs/fusion.md leads with it).

A synthetic market of ``synth.companies`` x ``synth.months`` (recipe: 500 x 120), the models of ``fusion.models``
retrained walk-forward over the last ``study.test_months`` (60) feature months, ``study.seeds`` (5) model seeds,
ripple sources side by side: none, the observable propagation baseline, a language model's ripple-score table
(``kgfin ripple scores``; on the months and news items it affords, counted), and the planted oracle. Prints and
writes (--out): the seed table (mean +- std over seeds of IC / rank IC with Newey-West t, decile monotonicity,
long-only and long-short Sharpe with CIs, turnover, returns net of costs), the paired tables (each ripple source vs
none; decoupled vs conventional), the mixture component gradient variance, the factor-research tables of the best
signal (IC decay, rank autocorrelation, turnover, quantile returns with error bars, cumulative long-short with
drawdown), wall time and peak memory, and kgfin-run.json (config, versions).

    python eval/fusion_power.py --config eval/fusion_power.yaml --out runs/power/study
    python eval/fusion_power.py --config eval/fusion_power.yaml --lm-table runs/power/lm   # a table made before
    python eval/fusion_power.py --config eval/fusion_power.yaml --config eval/fusion_power_aligned.yaml \
        --set lm.aligned_dir=runs/align22/latest --lm-only --out runs/power/aligned/x  # aligned table -> aligned/lm_scores
    python eval/fusion_power.py --config eval/fusion_power.yaml --set study.seeds=[0] --set synth.months=48 \\
        --set study.test_months=12 --set synth.companies=100                               # a quick check
"""

from __future__ import annotations

import argparse
import logging
import resource
import time
from pathlib import Path

import pandas as pd
from pydantic import Field, model_validator

from kgfin.align import AlignConfig
from kgfin.config import KgfinConfig, load_sections
from kgfin.data import load_market
from kgfin.data.synth import SynthConfig, synthesize
from kgfin.evaluate.scores import RippleScoresConfig, read_ripple_scores, ripple_scores
from kgfin.fusion import FusionConfig, NewsEmbedder, build_panel, oracle_ripple, propagation_ripple
from kgfin.fusion.study import (
    StudyConfig,
    factor_tables,
    headline_table,
    paired_months,
    ripple_signal,
    run_study,
    seed_table,
)
from kgfin.runinfo import write_manifest
from kgfin.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]


class LmConfig(KgfinConfig):
    """The language-model ripple source of the study (the ``lm`` section)."""

    enabled: bool = Field(True, description="score news with a language model (kgfin ripple scores) for a row")
    predictor: str = Field("zero_shot", description="registered language-model predictor")
    months: int = Field(12, ge=1, description="the last feature months it scores")
    max_events_per_month: int | None = Field(8, ge=1, description="news items scored per month (seeded choice)")
    aligned_dir: Path | None = Field(None, description="predictor aligned: kgfin align's final/ (or latest/) folder; "
                                     "with align.knowledge false it reads the relations from its prompt, so it "
                                     "needs no adapter of this market")

    @model_validator(mode="after")
    def _aligned_needs_its_folder(self) -> LmConfig:
        if self.enabled and self.predictor == "aligned" and self.aligned_dir is None:
            raise ValueError("lm.predictor aligned needs lm.aligned_dir (kgfin align's final/ or latest/ folder)")
        return self


def _lm_table(market, data: Path, fusion: FusionConfig, scfg: RippleScoresConfig, acfg: AlignConfig, lm: LmConfig,
              months: list[str], out: Path) -> tuple[pd.DataFrame, dict]:
    from kgfin.graph.snapshot import build_snapshot

    snaps: dict[str, object] = {}

    def read(m: str):
        if m not in snaps:
            snaps[m] = build_snapshot(market, m)
        return snaps[m]

    cfg = scfg.model_copy(update={"predictor": lm.predictor, "max_events_per_month": lm.max_events_per_month,
                                  "rebalance_time": fusion.features.rebalance_time})
    res = ripple_scores(market, read, months, cfg, acfg, data_dir=data, aligned_dir=lm.aligned_dir)
    res.write(out)
    return res.monthly, res.metadata


def _feature_months(market) -> list[str]:
    """The months with factors and a next-month return (the panel's feature months), without building the panel."""
    from kgfin.data.calendar import add_months

    have = set(market.stock_factors["month"].astype(str))
    ret = set(pd.to_datetime(market.returns["date"]).dt.strftime("%Y-%m"))
    return sorted(m for m in have if add_months(m, 1) in ret)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, action="append", default=[], help="recipe(s) (default eval/fusion_power.yaml)")
    ap.add_argument("--set", dest="set_", action="append", default=[], help="SECTION.KEY=VALUE (repeatable)")
    ap.add_argument("--data", type=Path, help="market folder (generated there from the synth section if absent)")
    ap.add_argument("--lm-table", type=Path, help="a kgfin ripple scores folder or table for the language-model row")
    ap.add_argument("--lm-only", action="store_true",
                    help="only write the language-model table (to OUT/../lm_scores) and stop: run it first, in parallel")
    ap.add_argument("--signal-only", action="store_true",
                    help="only the ripple tables as signals on the language model's months (no model grid)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "fusion_power")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    cfgs = load_sections({"synth": SynthConfig, "fusion": FusionConfig, "study": StudyConfig, "lm": LmConfig,
                          "ripple_scores": RippleScoresConfig, "align": AlignConfig},
                         args.config or [ROOT / "eval" / "fusion_power.yaml"], args.set_)
    synth, fusion, study, lm = cfgs["synth"], cfgs["fusion"], cfgs["study"], cfgs["lm"]
    data = args.data or args.out.parent / f"market-{synth.companies}x{synth.months}-s{synth.seed}"
    timings: dict[str, float] = {}
    if not (data / "truth").exists():
        t = time.perf_counter()
        synthesize(synth, data, progress=False)
        timings["synthesize"] = time.perf_counter() - t
    t = time.perf_counter()
    market = load_market(data)
    if args.lm_only:
        months = _feature_months(market)[-lm.months:]
        _, meta = _lm_table(market, data, fusion, cfgs["ripple_scores"], cfgs["align"], lm, months,
                            args.out.parent / "lm_scores")
        print(f"language-model table: {meta['events_scored']} news items of {months[0]}..{months[-1]} in "
              f"{time.perf_counter() - t:.0f} s -> {args.out.parent / 'lm_scores'}; counts {meta['counts']}")
        return
    panel = build_panel(market, config=fusion.features)
    embedder = NewsEmbedder(fusion.embed)
    vectors = embedder.embed(panel.texts, progress=False)
    x_n = panel.pooled_news(vectors)
    timings["panel + embeddings"] = time.perf_counter() - t
    print(f"market {data}: {len(panel):,} stock-months, {len(panel.months)} feature months, "
          f"{len(panel.texts):,} news texts in windows ({embedder.computed:,} embedded now)", flush=True)

    t = time.perf_counter()
    days = pd.DatetimeIndex(pd.to_datetime(market.returns["date"]).unique())
    ripple: dict[str, pd.DataFrame | None] = {"none": None,
                                              "propagation": propagation_ripple(market, fusion.features.rebalance_time)}
    lm_meta: dict = {}
    if args.lm_table:
        ripple["language_model"], lm_meta = read_ripple_scores(args.lm_table)
    elif lm.enabled:
        months = sorted(panel.months)[-lm.months:]
        assert months == _feature_months(market)[-lm.months:]
        ripple["language_model"], lm_meta = _lm_table(market, data, fusion, cfgs["ripple_scores"], cfgs["align"], lm,
                                                      months, args.out.parent / "lm_scores")
    if "language_model" in ripple:
        ripple["language_model"] = ripple["language_model"][["month", "ticker", "ripple"]]
    ripple["oracle"] = oracle_ripple(data, days, fusion.features.rebalance_time, min_hop=1)  # linked firms' shocks
    timings["ripple tables"] = time.perf_counter() - t
    print(f"ripple tables in {timings['ripple tables']:.0f} s; language model: "
          f"{lm_meta.get('predictor')} on {len(lm_meta.get('months', []))} months, "
          f"{lm_meta.get('events_scored', 0)} news items", flush=True)

    if "language_model" in ripple:  # the sources side by side where the language model scored (its months)
        lm_months = sorted(set(ripple["language_model"]["month"]))
        tables = {k: v for k, v in ripple.items() if v is not None}
        signal = pd.concat([ripple_signal(tables, panel, lm_months, None, study.nw_lags),
                            ripple_signal(tables, panel, lm_months, "language_model", study.nw_lags)])
        args.out.mkdir(parents=True, exist_ok=True)
        signal.to_csv(args.out / "ripple_signal.csv", index=False)
        text = (f"## Ripple tables as signals on the language model's months ({lm_months[0]}..{lm_months[-1]}, "
                f"{lm_meta.get('events_scored')} news items scored by {lm_meta.get('predictor')})\n\n"
                + markdown_table(signal, ".4g") + "\n")
        (args.out / "ripple_signal.md").write_text(text)
        print(text, flush=True)
        if args.signal_only:
            return
    t = time.perf_counter()
    res = run_study(panel, x_n, ripple, fusion, study, progress=True)
    timings["study"] = time.perf_counter() - t

    # --- tables ---
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    res.runs.to_csv(out / "runs.csv", index=False)
    res.monthly.to_csv(out / "monthly.csv", index=False)
    seeds = seed_table(res.runs)
    seeds.to_csv(out / "seed_table.csv", index=False)
    head = headline_table(res.runs)
    head.to_csv(out / "headline.csv", index=False)
    pairs = []
    trained = set(zip(res.runs["model"], res.runs["source"], strict=True))
    for model, source in sorted(trained):
        if source != "none" and (model, "none") in trained:
            for metric in ("rank_ic", "ic"):
                pairs.append(paired_months(res.monthly, (model, source), (model, "none"), metric, study.nw_lags))
    for model in sorted(m for m, src in trained if src == "none" and m != "factors_alone"):
        if ("factors_alone", "none") in trained:  # do the news (and each way of fusing it) add to the factors?
            pairs.append(paired_months(res.monthly, (model, "none"), ("factors_alone", "none"), "rank_ic",
                                       study.nw_lags))
    for source in ripple:
        if {("mixture_decoupled", source), ("mixture_conventional", source)} <= trained:
            for metric in ("rank_ic", "ic", "long_short"):
                pairs.append(paired_months(res.monthly, ("mixture_decoupled", source),
                                           ("mixture_conventional", source), metric, study.nw_lags))
    paired = pd.DataFrame(pairs)
    paired.to_csv(out / "paired.csv", index=False)
    gv = pd.DataFrame()
    if len(res.grad_var):
        g = res.grad_var[(res.grad_var["epoch"] > 0) & (res.grad_var["component"] != "gate")]
        gv = (g.groupby(["loss", "model", "source"])[["raw", "relative"]].mean().reset_index()
              .sort_values(["loss", "source", "model"]))
        traj = g[g["loss"] == "trajectory"].groupby(["model", "source", "seed", "block"])["relative"].mean().unstack(0)
        if {"mixture_decoupled", "mixture_conventional"} <= set(traj.columns):
            lower = (traj["mixture_decoupled"] < traj["mixture_conventional"])
            gv_note = (f"relative step-gradient variance (mean over components and epochs) lower under decoupled "
                       f"training in {int(lower.sum())} of {len(lower)} (source, seed, block) fits")
        else:
            gv_note = ""
        gv.to_csv(out / "grad_variance.csv", index=False)
    else:
        gv_note = ""
    # factor-research tables of the best non-oracle signal (seed-averaged predictions)
    ranked = res.runs[res.runs["source"] != "oracle"].groupby(["model", "source"])["rank IC"].mean()
    best = ranked.idxmax()
    sig = res.predictions[(res.predictions["model"] == best[0]) & (res.predictions["source"] == best[1])]
    signal = sig.groupby(["month", "ticker"])["pred"].mean().reset_index()
    monthly_ret = panel.keys[["target_month", "ticker"]].assign(ret=panel.ret).rename(columns={"target_month": "month"})
    ft = factor_tables(signal, monthly_ret, study)
    for k, v in ft.items():
        v.to_csv(out / f"factor_{k}.csv", index=False)
    _plots(ft, out, best)

    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        load = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        load = []
    blocks = res.blocks
    lines = [f"# Fusion power study: {synth.companies} companies x {synth.months} months, seeds {study.seeds}",
             f"test months {blocks[0]['test'][0]}..{blocks[-1]['test'][-1]} ({sum(len(b['test']) for b in blocks)}), "
             f"{len(blocks)} {study.window} windows retrained every {study.retrain_every} months "
             f"(first training {blocks[0]['train'][0]}..{blocks[0]['train'][-1]}, validation {study.valid_months} months)",
             "", "## Headline (mean ± std over seeds; CI: mean 95 % bounds over seeds; costs per unit turnover)", "",
             markdown_table(head), "", "## Every metric (mean ± std over seeds; seed_table.csv)", "",
             markdown_table(seeds, ".3f"), "",
             "## Paired: ripple source vs none, decoupled vs conventional (seed-averaged monthly series)", "",
             markdown_table(paired, ".4g"), "", "## Ripple coverage", "", markdown_table(res.coverage, ".3f"), "",
             f"language-model table: {lm_meta.get('predictor')} ({lm_meta.get('model')}), months "
             f"{lm_meta.get('months', [''])[0]}..{lm_meta.get('months', [''])[-1]}, counts {lm_meta.get('counts')}",
             "", "## Mixture component gradient variance (epochs >= 1, components)", "", markdown_table(gv, ".3g"),
             gv_note, "", f"## Factor research: {best[0]} / {best[1]} (seed-averaged signal)", ""]
    for k in ("ic_decay", "quantile_returns", "summary"):
        lines += [f"### {k}", "", markdown_table(ft[k], ".4g"), ""]
    lines += [f"wall time {wall:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in timings.items())}), "
              f"peak memory {peak:.0f} MB, load average at the end {' '.join(load)}"]
    report = "\n".join(lines) + "\n"
    (out / "report.md").write_text(report)
    print(report)
    write_manifest(out, "eval/fusion_power.py", {k: v.model_dump(mode="json") for k, v in cfgs.items()},
                   extra={"timings": timings, "wall_seconds": wall, "peak_rss_mb": peak, "load_average": load,
                          "blocks": blocks, "language_model": lm_meta, "data": data.name,
                          "stock_months": len(panel), "seeds": study.seeds})


def _plots(ft: dict[str, pd.DataFrame], out: Path, best: tuple[str, str]) -> None:
    from kgfin.report.charts import factor_research_figure

    factor_research_figure(ft, f"{best[0]} / {best[1]}, seed-averaged out-of-sample signal").savefig(
        out / "factor_research.png", dpi=110)

if __name__ == "__main__":
    main()
