"""Benchmark: the full factor/news/ripple table on the default synthetic market.

Generates the default synthetic market (120 companies x 36 months, seed 0) unless
``--data`` is given, measures news-embedding throughput on a cold cache (headlines/s),
then runs ``kgfin fuse``'s pipeline with cached embeddings and prints the results table,
the time taken, the effect of the ripple input (with minus without, per model), the
decoupled-vs-conventional comparison and the mixture gradient-variance summary.

    .venv/bin/python eval/bench_fusion.py                         # table with the oracle ripple stand-in
    .venv/bin/python eval/bench_fusion.py --ripple propagation    # observable ripple baseline instead
    .venv/bin/python eval/bench_fusion.py --seeds 5               # + mixtures re-trained with model seeds 0..4
    .venv/bin/python eval/bench_fusion.py --lora                  # + LoRA-fine-tuned news_alone row (slower)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from kgfin.config import load_config
from kgfin.data import load_market
from kgfin.data.synth import SynthConfig, synthesize
from kgfin.fusion import (
    FusionConfig,
    NewsEmbedder,
    build_panel,
    oracle_ripple,
    propagation_ripple,
    run_fusion,
)
from kgfin.fusion.ripple import RIPPLE_SOURCES
from kgfin.fusion.run import grad_var_summary, write_outputs
from kgfin.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]


def _ripple(kind: str, data: Path, market, cfg: FusionConfig) -> tuple[pd.DataFrame | None, str | None]:
    if kind == "none":
        return None, None
    if kind == "oracle":
        days = pd.DatetimeIndex(pd.to_datetime(market.returns["date"]).unique())
        return oracle_ripple(data, days, cfg.features.rebalance_time), RIPPLE_SOURCES["oracle"]
    return propagation_ripple(market, cfg.features.rebalance_time), RIPPLE_SOURCES["propagation"]


def _delta(table: pd.DataFrame) -> pd.DataFrame:
    cols = ["lo_annual_return", "lo_sharpe", "ls_annual_return", "ls_sharpe", "ic_mean"]
    base = table[(table["ripple"] == "none") & ~table["lora"]].set_index("model")[cols]
    with_r = table[(table["ripple"] != "none") & ~table["lora"]].set_index("model")[cols]
    return (with_r - base.loc[with_r.index]).reset_index()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="data directory (default: generate the default synthetic market)")
    ap.add_argument("--config", type=Path, default=ROOT / "kgfin" / "recipes" / "fusion.yaml",
                    help="recipe with a fusion section (default: kgfin fuse's)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override key=value")
    ap.add_argument("--ripple", choices=["oracle", "propagation", "none"], default="oracle")
    ap.add_argument("--seeds", type=int, default=1, help="also re-train the two mixtures with model seeds 0..N-1")
    ap.add_argument("--lora", action="store_true", help="add LoRA-fine-tuned rows (lora.models)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_fusion")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "synth"
            t0 = time.perf_counter()
            synthesize(SynthConfig(), data, progress=False)
            print(f"default synthetic market generated in {time.perf_counter() - t0:.1f} s")
        overrides = list(args.overrides) + (["lora.enabled=true"] if args.lora else [])
        cfg = load_config(FusionConfig, args.config, overrides, section="fusion")
        market = load_market(data)
        panel = build_panel(market, config=cfg.features)
        headlines = market.news["headline"].astype(str).tolist()
        cold = NewsEmbedder(cfg.embed, cache_root=Path(tmp) / "cold")
        cold.embed(headlines, progress=False)
        print(f"embedding ({cfg.embed.model}, cold cache): {cold.computed} distinct headlines in "
              f"{cold.compute_seconds:.1f} s = {cold.computed / cold.compute_seconds:.0f} headlines/s "
              f"({len(panel.texts)} of them fall in a stock-month's news window)")
        NewsEmbedder(cfg.embed).embed(panel.texts, progress=False)  # warm the real cache

        ripple, label = _ripple(args.ripple, data, market, cfg)
        t0 = time.perf_counter()
        run = run_fusion(market, cfg, ripple=ripple, ripple_label=label, data_dir=data, progress=False)
        total = time.perf_counter() - t0
        write_outputs(run, args.out, cfg, command="eval/bench_fusion.py", extra={"data": data.name})

    n_models = len(run.table) - run.table["model"].str.startswith("planted").sum()
    print(f"\n{n_models} trained rows, cached embeddings: {total:.1f} s in total "
          f"(training {run.timings['train_seconds']:.1f} s); outputs in {args.out}")
    t = run.table
    base = t[(t["ripple"] == "none") & ~t["lora"] & ~t["model"].str.startswith("planted")]
    print(f"the eight models without ripple: {base['train_seconds'].sum():.1f} s of training")
    print("\n" + markdown_table(t, ".3f"))
    if ripple is not None:
        print(f"\nripple ({label}) minus no ripple, per model:\n" + markdown_table(_delta(t), ".3f"))
    mix = t[t["model"].str.startswith("mixture") & ~t["lora"]].set_index(["model", "ripple"])[["ls_sharpe", "ic_mean"]]
    print("\nmixtures:\n" + markdown_table(mix.reset_index(), ".3f"))
    gv = grad_var_summary(run.grad_var)
    if len(gv):
        print("\ncomponent gradient variance (mean over epochs 1..E):\n" + markdown_table(gv, ".3g"))

    if args.seeds > 1:
        rows = []
        for seed in range(args.seeds):
            c = cfg.model_copy(update={"seed": seed, "models": ["mixture_conventional", "mixture_decoupled"]})
            r = run_fusion(market, c, ripple=ripple, ripple_label=label, progress=False)
            gv = grad_var_summary(r.grad_var)
            gv = gv[(gv["component"] != "gate") & (gv["loss"] == "trajectory")].groupby("variant")[["raw", "relative"]].mean()
            for row in r.table.itertuples():
                v = row.model + ("+ripple" if row.ripple != "none" else "")
                rows.append({"seed": seed, "model": row.model, "ripple": row.ripple != "none",
                             "ls_sharpe": row.ls_sharpe, "ic_mean": row.ic_mean,
                             "grad_var_raw": gv.loc[v, "raw"], "grad_var_relative": gv.loc[v, "relative"]})
        seeds = pd.DataFrame(rows)
        wide = seeds.pivot_table(index=["seed", "ripple"], columns="model",
                                 values=["ls_sharpe", "ic_mean", "grad_var_raw", "grad_var_relative"])
        dec, conv = "mixture_decoupled", "mixture_conventional"
        summary = pd.DataFrame({
            "decoupled >= conventional: LS Sharpe": (wide["ls_sharpe"][dec] >= wide["ls_sharpe"][conv]),
            "IC": (wide["ic_mean"][dec] >= wide["ic_mean"][conv]),
            "raw grad var lower": (wide["grad_var_raw"][dec] < wide["grad_var_raw"][conv]),
            "relative grad var lower": (wide["grad_var_relative"][dec] < wide["grad_var_relative"][conv]),
        })
        print(f"\nmixtures re-trained with model seeds 0..{args.seeds - 1}:\n"
              + markdown_table(seeds, ".3f") + "\n\n" + markdown_table(summary.reset_index(), ".3f"))
        print("\nshare of runs where it holds:\n" + summary.mean().to_string())


if __name__ == "__main__":
    main()
