"""What the alignment reward pays for: the mean reward of simple answer policies on a market's news.

Scores hand-written answers with the training reward (kgfin.align.impact_reward, the recipe
in training/align.yaml) on every event of the given news months of a synthetic market,
using its planted truth. It tells how much a policy can gain by learning, for example,
the sign of the news, and how noisy one event's reward is: the scale PPO works with.

    python eval/reward_landscape.py --run runs/demo --months 2015-02..2015-04
    python eval/reward_landscape.py --data data/synth --store .kgfin/graph --months 2015-01..2015-06

Policies: refuse; name the focal firm with +10; with the planted sign; with the wrong sign;
the planted sign plus the three most affected neighbours at their planted sizes; a random
other firm; and the planted shocks themselves as Z (the ceiling of any answer).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from kgfin.align import AlignConfig, build_impact_reward, news_events
from kgfin.config import load_config
from kgfin.data import load_market
from kgfin.data.tables import read_table
from kgfin.llm.parse import Impacts
from kgfin.store import open_store


def month_range(spec: str) -> list[str]:
    lo, _, hi = spec.partition("..")
    return [str(p) for p in pd.period_range(lo, hi or lo, freq="M")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="a kgfin demo run folder (uses RUN/data and RUN/graph)")
    ap.add_argument("--data", type=Path, help="data folder of a synthetic market (with truth/)")
    ap.add_argument("--store", help="graph store holding the graph months")
    ap.add_argument("--months", required=True, help="news months, YYYY-MM or YYYY-MM..YYYY-MM")
    ap.add_argument("--config", type=Path, default=Path("training/align.yaml"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = args.data or (args.run / "data" if args.run else None)
    store_path = args.store or (str(args.run / "graph") if args.run else None)
    if data is None or store_path is None:
        ap.error("give --run, or --data and --store")
    cfg = load_config(AlignConfig, args.config)
    market = load_market(data)
    truth = read_table(data / "truth" / "impacts.parquet")
    focal_shock = read_table(data / "truth" / "events.parquet").set_index("event_id")["focal_shock"]
    with open_store(store_path) as store:
        events = news_events(market, month_range(args.months), cfg.events.model_copy(update={"max_events_per_month": None}))
        reward, events = build_impact_reward(events, market, store.read_snapshot, cfg.impact, prefix=cfg.answer_prefix)
    tickers, unit = list(reward.tickers), cfg.impact.score_unit
    rng = np.random.default_rng(args.seed)

    def score(event_id: str, scores: dict[str, float]) -> float:
        y = np.zeros(len(tickers))
        for t, s in scores.items():
            y[tickers.index(t)] = s * unit
        return reward.score_vectors(event_id, Impacts(scores=scores), y).reward

    rows = []
    for ev in events.itertuples(index=False):
        eid, focal = str(ev.event_id), ev.tickers[0]
        if eid not in focal_shock.index:
            continue
        sign = float(np.sign(focal_shock[eid]))
        part = truth[truth["event_id"] == eid]
        neighbours = part[part["ticker"] != focal].sort_values("shock", key=np.abs, ascending=False).head(3)
        other = str(rng.choice([t for t in tickers if t != focal]))
        planted = np.zeros(len(tickers))
        planted[[tickers.index(t) for t in part["ticker"]]] = part["shock"].to_numpy(dtype=float)
        rows.append({
            "refuse": cfg.impact.refusal_reward,
            "focal firm, +10": score(eid, {focal: 10.0}),
            "focal firm, planted sign": score(eid, {focal: 10 * sign}),
            "focal firm, wrong sign": score(eid, {focal: -10 * sign}),
            "planted sign + 3 most affected neighbours": score(eid, {
                focal: 10 * sign, **{t: float(np.clip(s / unit, -10, 10)) for t, s in zip(neighbours.ticker, neighbours.shock,
                                                                                        strict=True)}}),
            "a random other firm, +10": score(eid, {other: 10.0}),
            "planted shocks as Z (ceiling)": reward.score_vectors(eid, Impacts(), planted, z=planted).reward,
        })
    table = pd.DataFrame(rows).agg(["mean", "std"]).T
    table["s.e. (8 events)"] = table["std"] / np.sqrt(8)
    print(f"reward = cos(Z, eps) + {cfg.impact.reward.lam} x coverage ({cfg.impact.residuals.model} residuals, "
          f"score unit {unit}); {len(rows)} events in {args.months}, {len(tickers)} companies")
    print(table.round(4).to_string())


if __name__ == "__main__":
    main()
