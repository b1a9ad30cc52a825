"""What the ripple evaluation can pay for: its metrics for answers that know the planted truth.

Scores hand-built answers on the held-out events of a synthetic market exactly as
``kgfin evaluate ripple`` scores a method (same events, propagation over mu, CAPM
regression, recall@k, correlation with the planted shocks), once per propagation
normalisation. The policies know more than any model can (the planted sign, the planted
sizes, the market's event rules), so each row is a ceiling:

* focal firm, +10 / planted sign / planted size: one-company answers (propagation only's
  ranking, so its recall@k, is that of any answer naming the focal firm alone);
* focal firm, planted sign with a fixed fifth of the items flipped: the language-model rows'
  focal-sign rate (0.8-0.9) at the +-10 they answer with;
* event rules on the graph: the focal firm plus its neighbours in the point-in-time graph
  along the relations the synthetic market's rule for that event type moves, signed and
  sized by the rule (what a model that knew the market's mechanics and the graph could say);
* planted signs at +-10, every affected firm: who moves and which way, but no size (what the
  alignment reward can teach: its cosine ignores each answer's scale and its coverage term only
  grows with it, so a trained policy answers at the largest score);
* planted sizes, k most affected: the truly affected firms at their planted sizes;
* planted shocks as Z: the oracle row (no propagation).

Besides the evaluation's metrics and the mean per-item reward, ``batch_reward`` scores each
batch of ``--batch-items`` consecutive items on their stacked Z and eps: the same formula,
but sensitive to each answer's size relative to the others (the per-item reward is not).

    python eval/ripple_headroom.py --run runs/demo --months 2015-04
    python eval/ripple_headroom.py --run runs/demo --months 2015-04 --normalize none,max_row --max-events 0
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import pandas as pd
from _synthetic_run import add_market_args, load_run, month_range

from kgfin.align import build_impact_reward, news_events
from kgfin.align.predict import Prediction, prediction_frame
from kgfin.align.reward import ripple_reward
from kgfin.data.synth.events import EVENT_TYPES, RELATION_LABEL
from kgfin.evaluate.ripple import daily_impacts, truth_metrics
from kgfin.evaluate.stats import impact_stats
from kgfin.graph.snapshot import GraphSnapshot
from kgfin.llm.parse import Impacts
from kgfin.market import residuals
from kgfin.store import open_store

Answer = dict[str, float]  # ticker -> impact score in [-10, 10]


def rule_neighbours(snap: GraphSnapshot, focal: str, relation: str) -> dict[str, float]:
    """The focal firm's neighbours along one relation of the synthetic rules, with edge strengths."""
    frame = snap.edges[RELATION_LABEL[relation]]
    if relation == "customers":  # SUPPLIES runs supplier -> customer
        mine = frame[frame["source"] == focal]
        return dict(zip(mine["target"], mine["weight"], strict=True))
    if relation == "suppliers":
        mine = frame[frame["target"] == focal]
        return dict(zip(mine["source"], mine["reverse_weight"], strict=True))
    out = dict(zip(frame.loc[frame["source"] == focal, "target"], frame.loc[frame["source"] == focal, "weight"],
                   strict=True))
    out.update(zip(frame.loc[frame["target"] == focal, "source"], frame.loc[frame["target"] == focal, "weight"],
                   strict=True))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_market_args(ap, "held-out news months")
    ap.add_argument("--max-events", type=int, default=24,
                    help="events per month, as the evaluation's max_events_per_month (0: all)")
    ap.add_argument("--normalize", default="none,row,max_row", help="propagation normalisations to compare")
    ap.add_argument("--recall-k", type=int, default=10)
    ap.add_argument("--batch-items", type=int, default=8,
                    help="news items per batch for batch_reward: the reward on the batch's stacked Z and eps")
    args = ap.parse_args()
    run = load_run(ap, args)
    cfg, market, truth, planted_events = run.cfg, run.market, run.impacts, run.planted_events
    rules = {et.name: et.rules for et in EVENT_TYPES}
    resid = residuals(market.returns, market.factors_daily, cfg.impact.residuals)
    with open_store(run.store_path) as store:
        events = news_events(market, month_range(args.months), cfg.events.model_copy(
            update={"max_events_per_month": args.max_events or None}))
        reward, events = build_impact_reward(events, market, store.read_snapshot, cfg.impact,
                                             prefix=cfg.decoding.answer_prefix, resid=resid)
        snaps = {g: store.read_snapshot(g) for g in events["graph_month"].unique()}
    tickers, unit = list(reward.tickers), cfg.impact.score_unit
    truth = truth[truth["event_id"].isin(set(events["event_id"]))]
    by_event = {e: g for e, g in truth.groupby("event_id")}
    focal = {str(e): t[0] for e, t in zip(events["event_id"], events["tickers"], strict=True)}

    def score_of(shock: float) -> float:
        """A planted shock as an impact score (at least one point, so small shocks are still named)."""
        return float(np.clip(round(shock / unit), -10, 10)) or float(np.sign(shock))

    def planted_top(k: int | None) -> Callable[[str, str, pd.DataFrame], Answer]:
        def answer(eid: str, graph_month: str, part: pd.DataFrame) -> Answer:
            top = part[part["shock"] != 0].sort_values("shock", key=np.abs, ascending=False).head(k)
            return {t: score_of(s) for t, s in zip(top["ticker"], top["shock"], strict=True)}
        return answer

    def event_rules(eid: str, graph_month: str, part: pd.DataFrame) -> Answer:
        f, s0 = focal[eid], 10 * float(np.sign(planted_events.loc[eid, "focal_shock"]))
        spread: dict[str, float] = {}
        for rule in rules[planted_events.loc[eid, "event_type"]]:
            if rule.source == "focal":
                for t, w in rule_neighbours(snaps[graph_month], f, rule.relation).items():
                    spread[t] = spread.get(t, 0.0) + rule.mult * w * s0
        return {f: s0, **{t: float(round(v)) for t, v in spread.items() if t != f and round(v) != 0}}

    def sign(eid: str) -> float:
        return float(np.sign(planted_events.loc[eid, "focal_shock"]))

    ids = sorted(focal)  # a fixed fifth of the items gets the wrong sign (the models' focal-sign rate is 0.8-0.9)
    flipped = set(np.random.default_rng(0).choice(ids, size=round(len(ids) / 5), replace=False).tolist())

    policies: dict[str, Callable[[str, str, pd.DataFrame], Answer]] = {
        "focal firm, +10": lambda eid, g, part: {focal[eid]: 10.0},
        "focal firm, planted sign": lambda eid, g, part: {focal[eid]: 10 * sign(eid)},
        "focal firm, planted sign, 1 in 5 flipped": lambda eid, g, part: {
            focal[eid]: (-10 if eid in flipped else 10) * sign(eid)},
        "focal firm, planted size": lambda eid, g, part: {
            focal[eid]: score_of(float(planted_events.loc[eid, "focal_shock"]))},
        "event rules on the graph": event_rules,
        "planted signs at +-10, every affected firm": lambda eid, g, part: {
            t: 10.0 * float(np.sign(s)) for t, s in zip(part["ticker"], part["shock"], strict=True) if s != 0},
        "planted sizes, 2 most affected": planted_top(2),
        "planted sizes, 5 most affected": planted_top(5),
        "planted sizes, every affected firm": planted_top(None),
    }
    def batch_reward(preds: list[Prediction]) -> float:
        """Mean reward over batches of consecutive items, each scored on its stacked Z and eps: unlike the
        per-item reward, it pays for an answer's size relative to the other answers of its batch."""
        size = args.batch_items
        return float(np.mean([
            ripple_reward(np.concatenate([p.scored.z for p in preds[i:i + size]]),
                          np.concatenate([reward.eps[p.event_id] for p in preds[i:i + size]]),
                          lam=reward.cfg.reward.lam)
            for i in range(0, len(preds), size)]))

    for how in args.normalize.split(","):
        propagation = cfg.impact.reward.propagation.model_copy(update={"normalize": how})
        reward.cfg = reward.cfg.model_copy(update={"reward": reward.cfg.reward.model_copy(
            update={"propagation": propagation})})
        rows = []
        for name, policy in [*policies.items(), ("planted shocks as Z (oracle)", None)]:
            preds = []
            for ev in events.itertuples(index=False):
                eid = str(ev.event_id)
                part = by_event.get(eid, truth.iloc[:0])
                if policy is None:
                    z = np.zeros(len(tickers))
                    z[[tickers.index(t) for t in part["ticker"]]] = part["shock"].to_numpy(dtype=float)
                    scored = reward.score_vectors(eid, Impacts(), z, z=z)
                else:
                    answer = {t: s for t, s in policy(eid, ev.graph_month, part).items() if t in tickers}
                    y = np.zeros(len(tickers))
                    y[[tickers.index(t) for t in answer]] = [s * unit for s in answer.values()]
                    scored = reward.score_vectors(eid, Impacts(scores=answer), y)
                preds.append(Prediction(eid, pd.Timestamp(ev.day), ev.graph_month, "", scored))
            reg = impact_stats(daily_impacts(prediction_frame(preds, tickers)), resid,
                               with_group_tests=False).regression.iloc[0]
            metrics = truth_metrics(preds, truth, tickers, focal, args.recall_k)
            rows.append({"policy": name, "coef": reg["coef"], "p": reg["robust_p"], "r2": reg["r2"],
                         **{k: v for k, v in metrics.items() if k not in ("events", "refusal_rate")},
                         "batch_reward": batch_reward(preds)})
        row_sums = {g: float(abs(m).sum(axis=1).max()) for g, m in reward.mu.items()}
        print(f"\npropagation normalize={how} (hops {cfg.impact.reward.propagation.hops}; largest |mu| row sum "
              f"{', '.join(f'{g}: {v:.1f}' for g, v in row_sums.items())}); {len(events)} events of {args.months}, "
              f"{cfg.impact.residuals.model} residuals")
        print(pd.DataFrame(rows).round(4).to_string(index=False))


if __name__ == "__main__":
    main()
