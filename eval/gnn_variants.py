"""GNN variants on validation months: each scored with the ripple evaluation v2 against propagation_only.

Model changes are chosen here, on months before the held-out ones, never on the held-out months
(docs/gnn.md, "Choosing the model on validation months"). Each ``--variant NAME:KEY=VALUE,...`` is a
GnnConfig with those settings changed (values parsed as YAML); every variant is scored on the same
events and candidates, paired with propagation_only (bootstrap CI and p, Wilcoxon p), by kind of news:

    python eval/gnn_variants.py --data /tmp/r24/data --store /tmp/r24/graph --months 2016-01..2016-06 \
        --variant m12:train_months=12 --variant m12x3:train_months=12,ensemble=3 --variant m20:train_months=20

--config / --set as in eval/ripple_v2.py (ripple_eval and align sections; the variants start from
ripple_eval.v2.predictor.gnn).
"""

from __future__ import annotations

import argparse
import logging
import time

import yaml
from _synthetic_run import add_v2_args, load_v2_configs, month_range

from kgfin.data import load_market
from kgfin.evaluate.predictors import GnnPredictor
from kgfin.evaluate.v2 import prepare_v2, score_v2
from kgfin.store import open_store

SUMMARY = ["method", "events", "mean rank IC", "CI low", "CI high", "corr planted"]


def parse_variant(spec: str) -> tuple[str, dict]:
    """``NAME:KEY=VALUE,KEY=VALUE`` -> (name, settings); values as YAML scalars."""
    name, _, rest = spec.partition(":")
    settings = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise argparse.ArgumentTypeError(f"variant {spec!r}: {item!r} is not KEY=VALUE")
        settings[key.strip()] = yaml.safe_load(value)
    return name, settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_v2_args(ap)
    ap.add_argument("--variant", action="append", type=parse_variant, required=True,
                    help="NAME:KEY=VALUE,... (GnnConfig settings; repeatable)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kgfin.gnn").setLevel(logging.INFO)  # each fit's events, epochs, seconds
    cfg, acfg = load_v2_configs(args)
    base = cfg.v2.predictor.gnn
    v2 = cfg.v2.model_copy(update={"predictors": ["propagation_only"], "baselines": ["propagation_only"]})
    months = month_range(args.months)
    market = load_market(args.data)
    with open_store(args.store) as store:
        setup = prepare_v2(market, store.read_snapshot, months, v2, acfg, data_dir=args.data,
                           sentiment_months=cfg.sentiment_months, sentiment_ridge=cfg.sentiment_ridge)
        for name, settings in args.variant:
            t0 = time.perf_counter()
            gnn = base.model_validate({**base.model_dump(), **settings})
            res = score_v2(setup, [*setup.predictors(), GnnPredictor(name, gnn)], progress=False)
            print(f"## {name} ({settings}): {res.counts['events scored']} events, {time.perf_counter() - t0:.0f} s\n")
            print(res.summary[SUMMARY].to_markdown(index=False))
            print()
            print(res.paired.to_markdown(index=False))
            print()
            print(res.by_kind.to_markdown(index=False), flush=True)
            print()


if __name__ == "__main__":
    main()
