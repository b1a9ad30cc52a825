"""The reward check before any alignment run: does each reward rank answers the way learning needs?

On every news item of the given (held-out) months of a synthetic market, answers built from the planted
truth are scored with each reward kind of ``kgfin.align.reward`` (paper, candidate_mse, rank_ic,
sized_ripple), exactly as training scores an answer (integer scores in [-10, 10], propagated over the
month's mu, read on the event's candidate set against the candidates' residual moves):

* ``truth``: the focal firm and the ``--ripple-firms`` planted ripple firms with the largest |shock|, each
  at its planted size (rounded to the grammar's integer scores, at least 1 in size);
* ``saturated``: the same firms and signs, every score at +-10;
* ``perturbed``: ``truth`` with every size multiplied by a lognormal factor (sigma 0.5, then rounded; the
  firms and signs kept): a policy that knows who moves and which way, and roughly how much;
* ``scrambled``: ``perturbed`` with, further, one ripple firm swapped for a random candidate the news did
  not move and one ripple sign in five flipped;
* ``propagation``: the focal firm alone at its planted size (what propagation only answers);
* ``random``: ``--ripple-firms + 1`` random candidates with random nonzero scores.

The check passes for a reward when, on the mean over events with 95 % bootstrap CIs and paired
bootstrap differences: perturbed > propagation > random (the lower CI bounds of both differences above 0), and
saturated is not above truth, on the mean nor in most events (saturated beats truth in under half of them).

    python eval/reward_check.py --data runs/demo/data --store runs/graph-all --months 2016-07..2016-12
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
from _synthetic_run import add_market_args, load_run, month_range

from kgfin.align import build_impact_reward, news_events
from kgfin.align.impact_reward import ImpactReward
from kgfin.align.reward import REWARD_KINDS
from kgfin.llm.parse import Impacts
from kgfin.runinfo import package_versions
from kgfin.store import open_store

ANSWERS = ("truth", "saturated", "perturbed", "scrambled", "propagation", "random")


def _bootstrap(x: np.ndarray, rng: np.random.Generator, n: int = 2000) -> tuple[float, float, float]:
    means = x[rng.integers(0, len(x), (n, len(x)))].mean(axis=1)
    return float(x.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_market_args(ap, "held-out news months")
    ap.add_argument("--ripple-firms", type=int, default=4, help="planted ripple firms an answer names")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the table here")
    args = ap.parse_args()
    started = time.perf_counter()
    run = load_run(ap, args)
    cfg, truth, planted = run.cfg, run.impacts, run.planted_events
    unit = cfg.impact.score_unit
    rng = np.random.default_rng(args.seed)
    months = month_range(args.months)
    with open_store(run.store_path) as store:
        events = news_events(run.market, months, cfg.events.model_copy(update={"max_events_per_month": None}))
        base, kept = build_impact_reward(events, run.market, store.read_snapshot, cfg.impact.model_copy(
            update={"reward": cfg.impact.reward.model_copy(update={"kind": "sized_ripple"})}))
    rewards = {}
    for kind in REWARD_KINDS:  # the same events, mu, residuals and candidates; only the kind differs
        impact = cfg.impact.model_copy(update={"reward": cfg.impact.reward.model_copy(update={"kind": kind})})
        rewards[kind] = ImpactReward(base.universe, base.mu, base.eps, base.graph_month, impact,
                                     candidates=base.candidates, focal=base.focal)
    tickers = list(rewards["paper"].tickers)
    position = {t: i for i, t in enumerate(tickers)}
    by_event = {str(e): g for e, g in truth.groupby("event_id")}
    cands = rewards["sized_ripple"].candidates

    def as_score(shock: float) -> float:
        s = float(np.clip(np.round(shock / unit), -10, 10))
        return s if s != 0 else float(np.sign(shock) or 1.0)

    rows, skipped = [], 0
    for ev in kept.itertuples(index=False):
        eid = str(ev.event_id)
        if eid not in planted.index or eid not in by_event:
            skipped += 1
            continue
        focal = ev.tickers[0]
        part = by_event[eid]
        moved = set(part["ticker"])
        ripple = part[part["ticker"] != focal].sort_values("shock", key=np.abs, ascending=False).head(args.ripple_firms)
        truth_ans = {focal: as_score(float(planted.loc[eid, "focal_shock"])),
                     **{t: as_score(s) for t, s in zip(ripple["ticker"], ripple["shock"], strict=True)}}
        c = cands[eid]
        cand_tickers = [tickers[i] for i in c.index]
        quiet = [t for t in cand_tickers if t not in moved]
        perturbed = {t: float(np.clip(np.round(s * rng.lognormal(0, 0.5)), -10, 10)) or s for t, s in truth_ans.items()}
        scrambled = dict(perturbed)
        ripple_names = [t for t in scrambled if t != focal]
        if ripple_names and quiet:
            gone = ripple_names[int(rng.integers(len(ripple_names)))]
            scrambled[str(rng.choice(quiet))] = scrambled.pop(gone)
        for t in [t for t in scrambled if t != focal]:
            if rng.random() < 0.2:
                scrambled[t] = -scrambled[t]
        pool = [t for t in cand_tickers if t != focal] or [t for t in tickers if t != focal]
        picks = rng.choice(pool, size=min(len(pool), args.ripple_firms + 1), replace=False)
        answers = {
            "truth": truth_ans,
            "saturated": {t: 10.0 * np.sign(s) for t, s in truth_ans.items()},
            "perturbed": perturbed,
            "scrambled": scrambled,
            "propagation": {focal: truth_ans[focal]},
            "random": {str(t): float(rng.choice([-1, 1]) * rng.integers(1, 11)) for t in picks},
        }
        row = {"event_id": eid}
        for name, ans in answers.items():
            y = np.zeros(len(tickers))
            for t, s in ans.items():
                y[position[t]] = s * unit
            for kind, reward in rewards.items():
                row[(kind, name)] = reward.score_vectors(eid, Impacts(scores=ans), y).reward
        rows.append(row)
    frame = pd.DataFrame(rows).set_index("event_id")
    boot = np.random.default_rng(args.seed + 1)
    table, checks = [], {}
    for kind in REWARD_KINDS:
        line: dict[str, object] = {"reward": kind}
        for name in ANSWERS:
            m, lo, hi = _bootstrap(frame[(kind, name)].to_numpy(), boot)
            line[name] = f"{m:.4f} [{lo:.4f}, {hi:.4f}]"
        diffs = {}
        for a, b in (("perturbed", "propagation"), ("scrambled", "propagation"), ("propagation", "random"),
                     ("saturated", "truth")):
            m, lo, hi = _bootstrap((frame[(kind, a)] - frame[(kind, b)]).to_numpy(), boot)
            diffs[f"{a} - {b}"] = (m, lo, hi)
            line[f"{a} - {b}"] = f"{m:+.4f} [{lo:+.4f}, {hi:+.4f}]"
        sat_wins = float((frame[(kind, "saturated")] > frame[(kind, "truth")]).mean())
        line["saturated > truth (share of events)"] = f"{sat_wins:.2f}"
        ok = (diffs["perturbed - propagation"][1] > 0 and diffs["propagation - random"][1] > 0
              and diffs["saturated - truth"][0] <= 0 and sat_wins < 0.5)
        line["passes"] = "yes" if ok else "no"
        checks[kind] = ok
        table.append(line)
    out = pd.DataFrame(table).set_index("reward")
    print(f"# reward check: {len(frame)} news items of {args.months} ({skipped} without planted truth skipped), "
          f"candidate sets of {cfg.impact.random_candidates} random + neighbours, window 0..+{cfg.impact.horizon} "
          f"days, score unit {unit}; means with 95 % bootstrap CIs (events resampled, 2000 draws), seed {args.seed}; "
          f"{time.perf_counter() - started:.0f} s")
    for kind in REWARD_KINDS:
        print(f"\n## {kind}: {'passes' if checks[kind] else 'FAILS'}")
        print(out.loc[[kind]].T.to_markdown())
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"events": len(frame), "skipped": skipped, "months": months, "table": table,
                       "versions": package_versions()}, f, indent=1, default=str)


if __name__ == "__main__":
    main()
