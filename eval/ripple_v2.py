"""Ripple evaluation v2 on held-out months: the non-language rows on the same candidates, with CIs and paired tests.

Prints the v2 tables (kgfin.evaluate.v2: mean rank IC with its bootstrap CI and n, paired p-values against
propagation only, recall@k, the power table, coverage of the planted ripple), the wall time and the peak memory,
and writes them under --out. The market and graphs come from the ordinary commands:

    kgfin data synth --out /tmp/r21/data
    kgfin graph build /tmp/r21/data --store /tmp/r21/graph
    python eval/ripple_v2.py --data /tmp/r21/data --store /tmp/r21/graph --months 2016-07..2016-12 --out /tmp/r21/v2

The recipe's ripple_eval section (its v2 part) and align section (events, residuals, propagation) apply
(--config, --set ripple_eval.v2.horizon=2). Language-model rows: --set ripple_eval.v2.predictors=[...,knowledge]
with --adapters / --aligned (hours on a CPU).
"""

from __future__ import annotations

import argparse
import logging
import resource
import time
from pathlib import Path

from _synthetic_run import month_range

from kgfin.align import AlignConfig
from kgfin.config import load_sections
from kgfin.data import load_market
from kgfin.evaluate.predictors import LanguageModelSetup
from kgfin.evaluate.ripple import RippleEvalConfig
from kgfin.evaluate.v2 import run_ripple_v2
from kgfin.pipeline import RECIPE_KEYS
from kgfin.store import open_store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="data folder of the market (with truth/ if synthetic)")
    ap.add_argument("--store", required=True, help="graph store holding the graph months")
    ap.add_argument("--months", required=True, help="held-out news months, YYYY-MM or YYYY-MM..YYYY-MM")
    ap.add_argument("--config", type=Path, action="append", default=[], help="recipe(s) (ripple_eval and align)")
    ap.add_argument("--set", dest="set_", action="append", default=[],
                    help="SECTION.KEY=VALUE for ripple_eval or align (repeatable)")
    ap.add_argument("--adapters", type=Path, default=Path("adapters"), help="knowledge adapters (language-model rows)")
    ap.add_argument("--aligned", type=Path, help="kgfin align's final/ folder (the aligned row)")
    ap.add_argument("--out", type=Path, help="write v2.md and the CSVs here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    cfgs = load_sections({"ripple_eval": RippleEvalConfig, "align": AlignConfig}, args.config, args.set_,
                         known=RECIPE_KEYS)
    cfg, acfg = cfgs["ripple_eval"], cfgs["align"]
    market = load_market(args.data)
    months = month_range(args.months)
    lm = LanguageModelSetup(args.adapters, args.aligned, cfg.max_new_tokens, cfg.batch_size, cfg.context_facts,
                            cfg.seed)
    with open_store(args.store) as store:
        res = run_ripple_v2(market, store.read_snapshot, months, cfg.v2, acfg, data_dir=args.data,
                            sentiment_months=cfg.sentiment_months, sentiment_ridge=cfg.sentiment_ridge, lm=lm,
                            progress=True)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"# Ripple evaluation v2: {', '.join(months)} ({res.counts['events scored']} events)\n")
    print(res.to_markdown())
    print("seconds per row: " + ", ".join(f"{k} {v:.1f}" for k, v in res.seconds.items()))
    print(f"wall time {wall:.0f} s, peak memory {peak:.0f} MB")
    if args.out:
        res.write(args.out)
        print(f"tables: {args.out}")


if __name__ == "__main__":
    main()
