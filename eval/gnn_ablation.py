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

from _synthetic_run import add_v2_args, print_v2, start_v2

from kgfin.evaluate.predictors import GnnPredictor
from kgfin.evaluate.v2 import run_ripple_v2
from kgfin.gnn import STORE_RELATIONS
from kgfin.store import open_store

ABLATIONS = {"supply": "SUPPLIES", "board": "SHARES_DIRECTOR", "fund": "CO_HELD", "patent": "TECH_SIMILAR"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_v2_args(ap)
    run = start_v2(ap)
    args, cfg, acfg, market, months, t0 = run.args, run.cfg, run.align, run.market, run.months, run.started
    gnn = cfg.v2.predictor.gnn
    v2 = cfg.v2.model_copy(update={"predictors": ["propagation_only"], "baselines": ["propagation_only", "gnn"]})
    rows = [GnnPredictor("gnn", gnn)] + [
        GnnPredictor(f"gnn -{short}", gnn.model_copy(update={"relations": [r for r in STORE_RELATIONS if r != rel]}))
        for short, rel in ABLATIONS.items()]
    with open_store(args.store) as store:
        res = run_ripple_v2(market, store.read_snapshot, months, v2, acfg, data_dir=args.data, extra=rows,
                            sentiment_months=cfg.sentiment_months, sentiment_ridge=cfg.sentiment_ridge, progress=True)
    fits = [f"{row.name} fits (train+validation events, best/last epoch, seconds): "
            + ", ".join(f"{m} {f.train_events}+{f.val_events} ev {f.best_epoch}/{f.epochs} ep {f.seconds:.0f} s"
                        for m, fs in row.fits.items() for f in fs) for row in rows]
    print_v2("GNN relation ablation", months, res, t0, args.out, fits)


if __name__ == "__main__":
    main()
