"""Does the warm start learn its teacher? Teacher agreement on the answer's choices (issue 22).

The warm start (``align.warm_start``) fine-tunes the policy on target answers: the news' company, then the
candidates a teacher (``target: ridge_rule`` or ``gnn``; the recipe's, ridge_rule for realised targets) expects
to move most, with its sizes. A held-out ripple row says
whether what was learnt *helps*; this probe says whether it was *learnt*, far more cheaply: each model reads the
target answers teacher-forced and, at every position where the answer grammar leaves a choice, we record whether
the target's token is the model's most likely allowed one (what greedy decoding would write there, given the
answer so far) and its log-probability (:func:`kgfin.align.warm_start.choice_agreement`). Choices are grouped by
what they decide: the news' company's direction, and for the ripple entries which listed company, which
direction, what size (a score digit), and whether another entry follows.

Sets: ``held-out`` (the news of ``--months``) and, with ``--in-sample``, the warm start's own training items
(those of ``align.warm_start.months`` before the first held-out month whose outcome window ended before it).
Per model, set and kind: choices, items, mean per-item agreement with a 95 % bootstrap CI over items, mean
log-probability; each model after the first is compared with the first on the same items (paired bootstrap and
Wilcoxon p of the per-item agreement). The ripple direction's ``majority`` is the share of the teacher's more
common direction: a model that always writes it scores that much.

    python eval/warm_start_probe.py --data runs/demo/data --store runs/graph-all --months 2016-07..2016-12 \\
        --config training/align-ripple.yaml --config training/align-direct.yaml \\
        --model base --model runs/wsd/warm_start --in-sample --out runs/probe
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from _synthetic_run import add_v2_args, start_v2

from kgfin.align.config import AlignConfig
from kgfin.align.decoding import Decoder
from kgfin.align.events import news_events
from kgfin.align.impact_reward import build_impact_reward
from kgfin.align.models import knowledge_model, merge_alignment
from kgfin.align.warm_start import (
    choice_agreement,
    rule_answers,
    warm_start_events,
    warm_start_targets,
)
from kgfin.data.tables import read_table
from kgfin.evaluate.predictors import relation_features
from kgfin.evaluate.teacher import row_teacher
from kgfin.evaluate.uncertainty import mean_ci, paired_test
from kgfin.llm.generate import chat_prompts
from kgfin.llm.grammar import SLOT_NAME, SLOT_SCORE, SLOT_TYPE, company_labels
from kgfin.llm.prompts import SYSTEM_PROMPT
from kgfin.market.residuals import residuals
from kgfin.store import open_store, required_snapshots

RELATION_KINDS = ("downstream", "upstream", "board", "co-held", "technology")  # relation_features' columns
KINDS = {  # kind -> which choices (entry, slot, digit)
    "news company: direction": lambda f: (f["entry"] == 0) & (f["slot"] == SLOT_TYPE),
    "ripple: company": lambda f: (f["entry"] >= 1) & (f["slot"] == SLOT_NAME),
    "ripple: direction": lambda f: (f["entry"] >= 1) & (f["slot"] == SLOT_TYPE),
    "ripple: size": lambda f: (f["entry"] >= 1) & (f["slot"] == SLOT_SCORE) & f["digit"],
    "another entry or close": lambda f: (f["slot"] == SLOT_SCORE) & ~f["digit"],
}


def teacher_row(cfg: AlignConfig) -> str:
    """The row whose answers are probed: the recipe's warm-start teacher, the ridge rule for realised targets."""
    return "ridge_rule" if cfg.warm_start.target == "realised" else cfg.warm_start.target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_v2_args(ap)
    ap.add_argument("--model", action="append", default=[],
                    help="'base' (no alignment) or an alignment folder (OUT/warm_start, OUT/final); repeatable "
                         "(none: the lookup table alone)")
    ap.add_argument("--in-sample", action="store_true", help="also probe the warm start's own training items")
    ap.add_argument("--adapters", type=Path, default=Path("adapters"), help="knowledge adapters (with knowledge on)")
    ap.add_argument("--batch-size", type=int, default=4)
    run = start_v2(ap)
    args, cfg, market = run.args, run.align, run.market
    read = required_snapshots(open_store(args.store), cfg.events.graph_lag_months)
    resid = residuals(market.returns, market.factors_daily, cfg.impact.residuals)
    every = cfg.events.model_copy(update={"max_events_per_month": None})  # the ripple evaluation scores every item
    reward, held_out = build_impact_reward(news_events(market, run.months, every), market, read, cfg.impact,
                                           prefix=cfg.decoding.answer_prefix, resid=resid)
    sets = {"held-out": held_out}
    if args.in_sample:
        days = pd.DatetimeIndex(sorted(resid["date"].unique()))
        sets["in-sample"] = warm_start_events(market, run.months[0], cfg.warm_start, cfg.events, days,
                                              cfg.impact.horizon)
    decoder = Decoder.for_months(cfg.decoding, reward.universe, market, run.months, cfg.events)
    teacher = row_teacher(market, read, cfg, row=teacher_row(cfg), data_dir=args.data)
    types = _event_types(args.data)
    frames, dropped, directions = [], {}, []
    for set_name, events in sets.items():
        expected = teacher(events, resid)  # once per set (point in time per month), shared by every model
        keep = events["event_id"].astype(str).isin(expected).to_numpy()
        events, dropped[set_name] = events[keep].reset_index(drop=True), int((~keep).sum())
        sets[set_name] = events
        rules = decoder.first_entries(events, read)
        if types is not None:
            directions.append(_ripple_directions(events, read, resid, reward.universe, cfg, rules, expected, types)
                              .assign(set=set_name))
        for spec in args.model:
            for graph_month, part in events.groupby("graph_month", sort=True):  # one model per knowledge adapter
                idx = part.index.to_numpy() if cfg.knowledge else events.index.to_numpy()
                model, tok = knowledge_model(cfg, args.adapters, str(graph_month))
                if spec != "base":
                    model = merge_alignment(model, Path(spec))
                grammar = decoder.grammar(model, tok, str(graph_month), cfg.ppo.max_new_tokens,
                                          lambda ev: decoder.messages(ev, read))
                sub = events.loc[idx].reset_index(drop=True)
                sub_rules = None if rules is None else [rules[i] for i in idx]
                answers = warm_start_targets(sub, read, resid, reward.universe, cfg, sub_rules, grammar, tok,
                                             lambda _events, _resid, moves=expected: moves)
                prompts = chat_prompts(tok, decoder.messages(sub, read), system=SYSTEM_PROMPT, prefix=decoder.prefix)
                got = choice_agreement(model, tok, prompts, answers, grammar, sub_rules, args.batch_size)
                got["item"] = sub["event_id"].astype(str).to_numpy()[got["item"]]
                frames.append(got.assign(model=spec, set=set_name))
                if not cfg.knowledge:
                    break
    counts = ", ".join(f"{k}: {len(v)} items ({dropped[k]} the teacher does not score, left out)"
                       for k, v in sets.items())
    print(f"# Teacher agreement on the answer's choices ({counts})\n")
    choices = pd.concat(frames, ignore_index=True) if frames else None
    table = summarise(choices, args.model) if choices is not None else None
    if table is not None:
        print(table.to_markdown(index=False, floatfmt=".3f"))
    lookup = _lookup_agreement(pd.concat(directions, ignore_index=True)) if "in-sample" in sets and directions \
        else None
    if lookup is not None:
        print("\nA lookup of the teacher's more common ripple direction per (event type, relation kinds to the news' "
              "company), learnt on the in-sample targets (the planted event type; the model must read it from the "
              "news):\n")
        print(lookup.to_markdown(index=False, floatfmt=".3f"))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        if choices is not None and table is not None:
            choices.to_csv(args.out / "choices.csv", index=False)
            table.to_csv(args.out / "agreement.csv", index=False)
        if lookup is not None:
            lookup.to_csv(args.out / "lookup.csv", index=False)
        print(f"\ntables: {args.out}")


def _event_types(data: Path) -> pd.Series | None:
    """Event id -> planted event type (synthetic markets' truth/events), None without it."""
    path = data / "truth" / "events.parquet"
    return read_table(path).set_index("event_id")["event_type"].astype(str) if path.exists() else None


def _ripple_directions(events: pd.DataFrame, read, resid: pd.DataFrame, universe, cfg, rules, expected,
                       types: pd.Series) -> pd.DataFrame:
    """One row per ripple entry of the target answers: event, entry, event type, relation kinds, direction."""
    answers = rule_answers(events, read, resid, universe, cfg, rules, expected)
    ticker_of = {label: t for t, label in company_labels(universe.tickers, universe.names).items()}
    rows = []
    for row, entries in zip(events.itertuples(index=False), answers, strict=True):
        tickers = [ticker_of[label] for label, _ in entries[1:]]
        feats = relation_features(read(str(row.graph_month)), str(row.tickers[0]), tickers) if tickers else []
        for k, (ticker, (_, score), x) in enumerate(zip(tickers, entries[1:], feats, strict=True), start=1):
            kinds = "+".join(n for n, v in zip(RELATION_KINDS, x, strict=True) if v) or "none"
            rows.append({"item": str(row.event_id), "entry": k, "event_type": types.get(str(row.event_id), "?"),
                         "relation": kinds, "direction": int(np.sign(score)), "ticker": ticker})
    return pd.DataFrame(rows)


def _lookup_agreement(directions: pd.DataFrame) -> pd.DataFrame:
    """Per set: per-item agreement of the in-sample majority direction per (event type, relation kinds), falling
    back to the event type's, then the overall majority."""
    train = directions[directions["set"] == "in-sample"]
    overall = 1 if (train["direction"] > 0).mean() >= 0.5 else -1
    by_type = train.groupby("event_type")["direction"].mean()
    by_cell = train.groupby(["event_type", "relation"])["direction"].mean()
    rows = []
    for set_name, part in directions.groupby("set", sort=False):
        guess = []
        for r in part.itertuples(index=False):
            m = by_cell.get((r.event_type, r.relation), by_type.get(r.event_type, overall))
            guess.append(int(np.sign(m)) or overall)
        hit = part.assign(hit=np.array(guess) == part["direction"].to_numpy())
        ci = mean_ci(hit.groupby("item")["hit"].mean().to_numpy())
        rows.append({"set": set_name, "entries": len(part), "items": ci.n, "agreement": ci.mean, "ci_low": ci.low,
                     "ci_high": ci.high, "cells": int(by_cell.size)})
    return pd.DataFrame(rows)


def summarise(choices: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """Per set, kind and model: choices, items, per-item agreement [95 % CI], log-probability, vs the first model."""
    rows = []
    for set_name in choices["set"].unique():
        for kind, which in KINDS.items():
            rows += _kind_rows(choices[(choices["set"] == set_name) & which(choices)], set_name, kind, models)
    return pd.DataFrame(rows)


def _kind_rows(mine: pd.DataFrame, set_name: str, kind: str, models: list[str]) -> list[dict]:
    per_item = {m: mine[mine["model"] == m].groupby("item")["hit"].mean() for m in models}
    items = per_item[models[0]].index
    first = per_item[models[0]].reindex(items).to_numpy()
    ours = mine[mine["model"] == models[0]]
    majority = float(ours["token"].value_counts(normalize=True).max()) if kind.endswith("direction") and len(ours) \
        else np.nan
    rows = []
    for m in models:
        hits = per_item[m].reindex(items).to_numpy()
        ci = mean_ci(hits)
        test = paired_test(hits, first) if m != models[0] else None
        rows.append({"set": set_name, "kind": kind, "model": m, "choices": int((mine["model"] == m).sum()),
                     "items": ci.n, "agreement": ci.mean, "ci_low": ci.low, "ci_high": ci.high, "majority": majority,
                     "mean_logp": float(mine[mine["model"] == m]["logp"].mean()),
                     "vs_first": np.nan if test is None else test.diff,
                     "p_wilcoxon": np.nan if test is None else test.p_wilcoxon})
    return rows


if __name__ == "__main__":
    main()
