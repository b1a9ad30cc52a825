"""The GNN ripple baseline's relation ablation on held-out months: the same model without each relation type.

Scores propagation_only, the full ``gnn`` and ``gnn -supply`` / ``-board`` / ``-fund`` / ``-patent`` (the model
refitted without SUPPLIES, SHARES_DIRECTOR, CO_HELD or TECH_SIMILAR) with the ripple evaluation v2 on the same
events and candidates; each row is paired with propagation_only and with the full gnn. Prints the tables, each fit's
epochs and seconds, the wall time and the peak memory:

    python eval/gnn_ablation.py --data /tmp/r24/data --store /tmp/r24/graph --months 2016-07..2016-12

--config / --set as in eval/ripple_v2.py (ripple_eval and align sections; the gnn settings are
ripple_eval.v2.predictor.gnn.*).
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
from kgfin.evaluate.predictors import GnnPredictor
from kgfin.evaluate.ripple import RippleEvalConfig
from kgfin.evaluate.v2 import run_ripple_v2
from kgfin.gnn import STORE_RELATIONS
from kgfin.pipeline import RECIPE_KEYS
from kgfin.store import open_store

ABLATIONS = {"supply": "SUPPLIES", "board": "SHARES_DIRECTOR", "fund": "CO_HELD", "patent": "TECH_SIMILAR"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="data folder of the market (with truth/ if synthetic)")
    ap.add_argument("--store", required=True, help="graph store holding the graph months")
    ap.add_argument("--months", required=True, help="held-out news months, YYYY-MM or YYYY-MM..YYYY-MM")
    ap.add_argument("--config", type=Path, action="append", default=[], help="recipe(s) (ripple_eval and align)")
    ap.add_argument("--set", dest="set_", action="append", default=[],
                    help="SECTION.KEY=VALUE for ripple_eval or align (repeatable)")
    ap.add_argument("--out", type=Path, help="write v2.md and the CSVs here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    cfgs = load_sections({"ripple_eval": RippleEvalConfig, "align": AlignConfig}, args.config, args.set_,
                         known=RECIPE_KEYS)
    cfg, acfg = cfgs["ripple_eval"], cfgs["align"]
    gnn = cfg.v2.predictor.gnn
    v2 = cfg.v2.model_copy(update={"predictors": ["propagation_only"], "baselines": ["propagation_only", "gnn"]})
    rows = [GnnPredictor("gnn", gnn)] + [
        GnnPredictor(f"gnn -{short}", gnn.model_copy(update={"relations": [r for r in STORE_RELATIONS if r != rel]}))
        for short, rel in ABLATIONS.items()]
    market = load_market(args.data)
    months = month_range(args.months)
    with open_store(args.store) as store:
        res = run_ripple_v2(market, store.read_snapshot, months, v2, acfg, data_dir=args.data, extra=rows,
                            sentiment_months=cfg.sentiment_months, sentiment_ridge=cfg.sentiment_ridge, progress=True)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"# GNN relation ablation: {', '.join(months)} ({res.counts['events scored']} events)\n")
    print(res.to_markdown())
    for row in rows:
        fits = ", ".join(f"{m} {f.train_events}+{f.val_events} ev {f.best_epoch}/{f.epochs} ep {f.seconds:.0f} s"
                         for m, f in row.fits.items())
        print(f"{row.name} fits (train+validation events, best/last epoch, seconds): {fits}")
    print("seconds per row: " + ", ".join(f"{k} {v:.1f}" for k, v in res.seconds.items()))
    print(f"wall time {wall:.0f} s, peak memory {peak:.0f} MB")
    if args.out:
        res.write(args.out)
        print(f"tables: {args.out}")


if __name__ == "__main__":
    main()
