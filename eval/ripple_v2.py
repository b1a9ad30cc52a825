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
from pathlib import Path

from _synthetic_run import add_v2_args, print_v2, start_v2

from kgfin.evaluate.predictors import LanguageModelSetup
from kgfin.evaluate.v2 import run_ripple_v2
from kgfin.store import open_store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_v2_args(ap)
    ap.add_argument("--adapters", type=Path, default=Path("adapters"), help="knowledge adapters (language-model rows)")
    ap.add_argument("--aligned", type=Path, help="kgfin align's final/ folder (the aligned row)")
    run = start_v2(ap)
    args, cfg, acfg, market, months, t0 = run.args, run.cfg, run.align, run.market, run.months, run.started
    lm = LanguageModelSetup(args.adapters, args.aligned, cfg.max_new_tokens, cfg.batch_size, cfg.context_facts,
                            cfg.seed)
    with open_store(args.store) as store:
        res = run_ripple_v2(market, store.read_snapshot, months, cfg.v2, acfg, data_dir=args.data,
                            sentiment_months=cfg.sentiment_months, sentiment_ridge=cfg.sentiment_ridge, lm=lm,
                            progress=True)
    print_v2("Ripple evaluation v2", months, res, t0, args.out)


if __name__ == "__main__":
    main()
