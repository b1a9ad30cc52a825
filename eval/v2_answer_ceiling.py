"""What an answer naming a few companies can score on the ripple, whatever model writes it (issue 22's diagnosis).

A language-model row's scores over an event's candidates are its answer's impacts propagated over the month's mu
(:class:`~kgfin.evaluate.predictors.LanguageModelPredictor`): the focal firm's score spreads to its neighbours, and
each further company the answer names adds its own score (and spreads it). This script writes such answers from rows
that know more, and scores them exactly as the language-model rows are scored, beside the full rows, on the same
events and candidates (ripple evaluation v2):

* ``answer:SRC:K:NAMES``: the focal firm at the news sign's impact (the propagation row's, so ``K = 0`` *is*
  ``propagation_only``: a self-check the script asserts), plus the K candidates with the largest ``|SRC score|``
  among NAMES (``listed``: the companies the candidate-listing prompt shows, the focal firm's
  ``decoding.candidate_facts`` strongest relations; ``all``: any candidate), each at SRC's score in score units
  rounded to a nonzero integer in [-10, 10] (the answer grammar's language). K = 3 is the alignment recipe's answer
  (``max_companies: 4``), K = 12 an answer that scores every listed company, K = 60 with ``all`` one that scores
  every candidate the source scores (the focal firm's every neighbour and the random others: what is lost to the
  prompt listing only 12 relations). ``:direct``: the same answer read out with hops 0 (its scores alone, no spread
  over mu: ``training/align-direct.yaml``), where an answer naming only the news' company says "no ripple". A
  recipe that already reads answers out with hops 0 gets the direct rows only (and no self-check).
* SRC (``--sources``, default ``ridge_rule rule_oracle``): ``ridge_rule``, the point-in-time per-event-type ridge
  (a teacher a model could be distilled from); ``gnn``, the relational GNN row (another such teacher, slower);
  ``rule_oracle``: the market's planted rule (the ceiling of a model that knows the mechanics).

    python eval/v2_answer_ceiling.py --data runs/demo/data --store runs/graph-all --months 2016-07..2016-12 \\
        --config training/align-ripple.yaml --out runs/v2-ceiling
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import pandas as pd
from _synthetic_run import add_v2_args, print_v2, start_v2

from kgfin.align.reward import propagate
from kgfin.evaluate.predictors import (  # the propagation rows' own helpers
    EventScores,
    RippleContext,
    _on_candidates,
    _universe_vector,
    build_predictor,
)
from kgfin.evaluate.v2 import prepare_v2, score_v2
from kgfin.llm.prompts import focal_facts
from kgfin.store import open_store

SOURCES = ("ridge_rule", "gnn", "rule_oracle")
ANSWERS = ((3, "listed"), (3, "all"), (12, "listed"), (60, "all"))


@dataclass
class AnswerOf:
    """Answers built from another row's scores (module docstring), scored as a language-model answer is."""

    source: str
    k: int
    names: str  # listed or all
    listed: int = 12  # decoding.candidate_facts
    direct: bool = False  # read out with hops 0: the answer's scores alone, no spread over mu
    uses_rows: bool = True

    @property
    def name(self) -> str:
        return f"answer:{self.source}:{self.k}:{self.names}" + (":direct" if self.direct else "")

    def predict(self, events: pd.DataFrame, ctx: RippleContext) -> dict[str, EventScores]:
        focal = ctx.focal_impact(events)
        unit = ctx.align.impact.score_unit
        rows = ctx.rows[self.source]
        out = {}
        for row in events.itertuples(index=False):
            eid, month, first = str(row.event_id), str(row.graph_month), str(row.tickers[0])
            snap, cand = ctx.snapshot(month), ctx.candidates[eid]
            y, tickers = _universe_vector(ctx, row, focal[eid] * unit)  # the focal firm as propagation_only has it
            src = rows[eid].scores
            src = src.mean(axis=0) if src.ndim == 2 else src
            allowed = self._listed(ctx, month, first) if self.names == "listed" else None
            pick = [i for i, t in enumerate(cand.tickers) if t not in cand.named and t in snap.index
                    and (allowed is None or t in allowed) and src[i] != 0]
            pick = sorted(pick, key=lambda i: (-abs(src[i]), cand.tickers[i]))[:self.k]
            for i in pick:
                score = int(np.clip(np.round(src[i] / unit), -10, 10)) or int(np.sign(src[i]))
                y[snap.index[cand.tickers[i]]] = score * unit
            spread = ctx.align.impact.reward.propagation
            z = propagate(ctx.mu(month), y, spread.model_copy(update={"hops": 0}) if self.direct else spread)
            out[eid] = EventScores(_on_candidates(z, tickers, cand))
        return out

    def _listed(self, ctx: RippleContext, month: str, focal: str) -> set[str]:
        """The firms the candidate-listing prompt names for ``focal`` in graph month ``month`` (built once)."""
        key = ("listed", month, focal, self.listed)
        if key not in ctx._cache:
            ctx._cache[key] = set(focal_facts(ctx.snapshot(month), focal, self.listed)[1])
        return ctx._cache[key]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_v2_args(ap)
    ap.add_argument("--sources", nargs="+", choices=SOURCES, default=["ridge_rule", "rule_oracle"],
                    help="rows whose scores the answers are written from")
    run = start_v2(ap)
    args, cfg, acfg, market, months, t0 = run.args, run.cfg, run.align, run.market, run.months, run.started
    listed = acfg.decoding.candidate_facts
    sources = args.sources
    has_spread = acfg.impact.reward.propagation.hops > 0  # hops 0 (training/align-direct.yaml): every answer is direct
    rows = [build_predictor(n) for n in ("random", "propagation_only", "graph_distance", *sources)]
    if has_spread:
        rows += [AnswerOf(sources[0], 0, "all", listed)]  # the self-check: the focal firm alone = propagation_only
        rows += [AnswerOf(s, k, names, listed) for s in sources for k, names in ANSWERS]
    rows += [AnswerOf(s, k, names, listed, direct=True) for s in sources for k, names in ANSWERS]
    v2 = cfg.v2.model_copy(update={"baselines": ["propagation_only", sources[0]]})
    with open_store(args.store) as store:
        setup = prepare_v2(market, store.read_snapshot, months, v2, acfg, data_dir=args.data,
                           sentiment_months=cfg.sentiment_months, sentiment_ridge=cfg.sentiment_ridge)
        res = score_v2(setup, rows, progress=True)
    same = True
    if has_spread:
        check = res.per_event[res.per_event["variant"] == "focal"].pivot_table(index="event_id", columns="method",
                                                                              values="ic_h1")
        same = np.allclose(check["propagation_only"], check[f"answer:{sources[0]}:0:all"], equal_nan=True)
    notes = [f"self-check: the focal firm alone scores as propagation_only on every event: {same}" if has_spread else
             "the recipe reads answers out with hops 0: the direct rows only, no self-check (it needs the spread)"]
    print_v2("Answer-format ceiling (ripple evaluation v2)", months, res, t0, args.out,
             [*notes, f"listed companies per answer: the focal firm's {listed} strongest relations"])
    if not same:
        raise SystemExit(f"self-check failed: answer:{sources[0]}:0:all differs from propagation_only")


if __name__ == "__main__":
    main()
