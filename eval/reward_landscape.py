"""What the alignment reward pays for: the mean reward of simple answer policies on a market's news.

Scores hand-written answers with the training reward (kgfin.align.impact_reward, the recipe
in the align section of the recipe, default the AlignConfig defaults) on every event of the given news months of a synthetic market,
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

import numpy as np
import pandas as pd
from _synthetic_run import add_market_args, load_run, month_range

from kgfin.align import build_impact_reward, news_events
from kgfin.llm.parse import Impacts
from kgfin.store import open_store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_market_args(ap, "news months")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    run = load_run(ap, args)
    cfg, market, truth, focal_shock = run.cfg, run.market, run.impacts, run.planted_events["focal_shock"]
    with open_store(run.store_path) as store:
        events = news_events(market, month_range(args.months), cfg.events.model_copy(update={"max_events_per_month": None}))
        reward, events = build_impact_reward(events, market, store.read_snapshot, cfg.impact, prefix=cfg.decoding.answer_prefix)
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
