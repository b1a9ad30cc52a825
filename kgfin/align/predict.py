"""Ripple prediction: what a model says each news item does, spread over the graph, with the paths.

A :class:`ModelVariant` says which model answers and what its prompt holds:

* ``zero_shot``: the base model; the prompt lists graph facts of the 2-hop neighbourhood of
  the companies the news names, then random other facts of the month, up to
  ``context_facts`` (the paper's random fill to the context limit);
* ``icl``: as zero-shot, plus one worked example (an earlier event, answered with its
  realised residual returns);
* ``rag``: the base model with the ``context_facts`` facts of the month most similar to the
  news (MiniLM embeddings, cosine);
* ``knowledge``: the month's knowledge adapter merged, no context (the model must know);
* ``aligned``: the knowledge adapter plus the alignment result of ``kgfin align``;
* ``warm_start``: the knowledge adapter plus the supervised warm start of that alignment run
  (``OUT/warm_start/`` beside its ``final/``), before any PPO step.

:func:`predict_events` generates (greedy at temperature 0, sampled at others), decoded by a
:class:`~kgfin.align.decoding.Decoder`, parses, and propagates each answer over the graph
month's mu with :class:`~kgfin.align.impact_reward.ImpactReward`;
:func:`ripple_paths` explains each propagated score by the edges that carry it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kgfin.align.config import AlignConfig
from kgfin.align.decoding import Decoder
from kgfin.align.events import AlignInputError
from kgfin.align.impact_reward import ImpactReward, ScoredAnswer
from kgfin.align.models import knowledge_model, merge_alignment
from kgfin.data.loaders import MarketData
from kgfin.graph.snapshot import GraphSnapshot
from kgfin.llm.prompts import SYSTEM_PROMPT, analyst_prompt, relation_fact

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["LLM_METHODS", "ModelVariant", "Prediction", "embedding_similarity", "graph_facts", "load_variant_model",
           "mu_without", "predict_events", "predict_news", "prediction_frame", "prediction_records", "ripple_paths"]

Method = Literal["zero_shot", "icl", "rag", "knowledge", "warm_start", "aligned"]
LLM_METHODS: tuple[str, ...] = ("zero_shot", "icl", "rag", "knowledge", "warm_start", "aligned")
_KNOWING = ("knowledge", "warm_start", "aligned")  # prompted as alignment prompts (the Decoder's messages)



@dataclass
class ModelVariant:
    """Which model answers and what its prompt contains."""

    method: Method
    context_facts: int = 40
    example: tuple[str, str] | None = None  # (user message, answer) for icl
    aligned_dir: Path | None = None  # OUT/final of kgfin align (methods aligned, and warm_start: OUT/warm_start)


@dataclass
class Prediction:
    """One event's answer, parsed and propagated."""

    event_id: str
    day: pd.Timestamp
    graph_month: str
    completion: str
    scored: ScoredAnswer
    paths: dict[str, list[str]] = field(default_factory=dict)


def graph_facts(snapshot: GraphSnapshot, around: list[str] | None = None, limit: int | None = None,
                seed: int = 0) -> list[str]:
    """Sentences for the month's company-company edges.

    With ``around``: first the edges within the 2-hop neighbourhood of those tickers (both
    ends within one hop of them, strongest first), then a seeded random fill from the rest,
    ``limit`` in all. Without: every edge, strongest first.
    """
    edges = snapshot.edge_table().sort_values(["weight", "relation", "source", "target"],
                                              ascending=[False, True, True, True]).reset_index(drop=True)
    names = dict(zip(snapshot.companies["ticker"], snapshot.companies["name"], strict=True))
    if around is not None:
        near = set(around)
        near |= set(edges.loc[edges["source"].isin(near), "target"]) | set(edges.loc[edges["target"].isin(near), "source"])
        inside = edges["source"].isin(near) & edges["target"].isin(near)
        rest = edges[~inside].sample(frac=1.0, random_state=seed)
        edges = pd.concat([edges[inside], rest])
    if limit is not None:
        edges = edges.head(limit)
    return [relation_fact(r.relation, r.source, r.target, r.weight, names) for r in edges.itertuples()]


def embedding_similarity(embed: Callable[[list[str]], np.ndarray]) -> Callable[[list[str], list[str]], np.ndarray]:
    """The ``rag_scores`` of the rag method: cosine similarity (queries x facts) of ``embed``'s vectors."""

    def scores(queries: list[str], facts: list[str]) -> np.ndarray:
        q, f = embed(queries), embed(facts)
        q = q / np.linalg.norm(q, axis=1, keepdims=True).clip(1e-12)
        f = f / np.linalg.norm(f, axis=1, keepdims=True).clip(1e-12)
        return q @ f.T

    return scores


def load_variant_model(variant: ModelVariant, cfg: AlignConfig, adapters_root: str | Path, graph_month: str
                       ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model of ``variant`` for news read with ``graph_month``'s knowledge."""
    knowledge = variant.method in ("knowledge", "warm_start", "aligned")
    model, tok = knowledge_model(cfg.model_copy(update={"knowledge": cfg.knowledge and knowledge}), adapters_root,
                                 graph_month)
    if variant.method == "aligned":
        model = merge_alignment(model, variant.aligned_dir)
    elif variant.method == "warm_start":
        if variant.aligned_dir is None:
            raise AlignInputError("the warm_start method needs the alignment run's final/ folder (aligned_dir)")
        model = merge_alignment(model, variant.aligned_dir.parent / "warm_start")
    return model, tok


def _messages(variant: ModelVariant, events: pd.DataFrame, snapshot: GraphSnapshot,
              rag_scores: Callable[[list[str], list[str]], np.ndarray] | None, decoder: Decoder) -> list[str]:
    answer_format = decoder.cfg.format_in_prompt
    if variant.method in _KNOWING:
        return decoder.messages(events, lambda _month: snapshot)
    out = []
    facts_all = graph_facts(snapshot) if variant.method == "rag" else []
    sims = None
    if variant.method == "rag":
        if rag_scores is None:
            raise AlignInputError("the rag method needs a similarity function")
        sims = rag_scores([f"{h}. {b}" for h, b in zip(events["headline"], events["body"], strict=True)], facts_all)
    for k, row in enumerate(events.itertuples(index=False)):
        if variant.method == "rag":
            assert sims is not None
            top = np.argsort(-sims[k], kind="stable")[:variant.context_facts]
            facts = [facts_all[i] for i in top]
        else:
            facts = graph_facts(snapshot, list(row.tickers), variant.context_facts, seed=k)
        text = analyst_prompt(row.headline, row.body, pd.Timestamp(row.timestamp).strftime("%Y-%m-%d"),
                              context="\n".join(facts), answer_format=answer_format)
        if variant.method == "icl":
            if variant.example is None:
                raise AlignInputError("the icl method needs a worked example")
            text = f"Worked example.\n{variant.example[0]}\nAnswer: {variant.example[1]}\n\nNow the real task.\n{text}"
        out.append(text)
    return out


def ripple_paths(snapshot: GraphSnapshot, scored: ScoredAnswer, top: int = 10) -> dict[str, list[str]]:
    """For the ``top`` companies by |Z|: the named companies and relations their score comes through."""
    tickers = snapshot.tickers
    edges = snapshot.edge_table()
    named = [t for t in scored.impacts.scores]
    out: dict[str, list[str]] = {}
    for j in np.argsort(-np.abs(scored.z), kind="stable")[:top]:
        if scored.z[j] == 0:
            break
        target = tickers[j]
        paths = [f"{target} (named)"] if target in named else []
        links = edges[((edges["source"].isin(named)) & (edges["target"] == target))
                      | ((edges["target"].isin(named)) & (edges["source"] == target))]
        for r in links.itertuples():
            src = r.source if r.target == target else r.target
            paths.append(f"{src} -[{r.relation}]- {target}")
        out[target] = paths
    return out


def predict_events(
    variant: ModelVariant,
    events: pd.DataFrame,
    reward: ImpactReward,
    read_snapshot: Callable[[str], GraphSnapshot],
    cfg: AlignConfig,
    adapters_root: str | Path = "adapters",
    *,
    decoder: Decoder | None = None,
    temperatures: Sequence[float] = (0.0,),
    max_new_tokens: int = 160,
    batch_size: int = 8,
    seed: int = 0,
    rag_scores: Callable[[list[str], list[str]], np.ndarray] | None = None,
    with_paths: bool = False,
    progress: bool = False,
) -> dict[float, list[Prediction]]:
    """Answers of ``variant`` to ``events`` at each of ``temperatures`` (0: greedy), parsed and propagated.

    Each graph month's model is loaded (and its grammar calibrated) once for all temperatures.
    ``decoder`` decodes every answer (default: ``cfg.decoding`` over the reward's universe; a
    calibrating decoder needs the calibration events, :meth:`Decoder.for_months`), prompted as
    ``variant``'s answers are. Returns, per temperature, one prediction per event in order.
    """
    from kgfin.llm.generate import generate_replies

    decoder = decoder or Decoder(cfg.decoding, reward.universe)
    preds: dict[float, dict[str, Prediction]] = {t: {} for t in temperatures}
    for graph_month, part in events.groupby("graph_month", sort=True):
        snapshot = read_snapshot(str(graph_month))
        model, tok = load_variant_model(variant, cfg, adapters_root, str(graph_month))
        grammar = decoder.grammar(model, tok, str(graph_month), max_new_tokens,
                                  lambda cal, snap=snapshot: _messages(variant, cal, snap, rag_scores, decoder),
                                  what=f" {variant.method}")
        messages = _messages(variant, part, snapshot, rag_scores, decoder)
        first_entries = decoder.first_entries(part, (lambda _m, s=snapshot: s) if variant.method in _KNOWING else None)
        for temperature in temperatures:
            replies = generate_replies(model, tok, messages, system=SYSTEM_PROMPT, max_new_tokens=max_new_tokens,
                                       batch_size=batch_size, temperature=temperature, seed=seed, prefix=reward.prefix,
                                       stop_at_json_end=decoder.stop_at_json_end, grammar=grammar,
                                       first_entries=first_entries, progress=progress)
            for row, reply in zip(part.itertuples(index=False), replies, strict=True):
                scored = reward.score(reply, str(row.event_id), prefixed=True)
                preds[temperature][str(row.event_id)] = Prediction(
                    str(row.event_id), pd.Timestamp(row.day), str(graph_month), reply, scored,
                    ripple_paths(snapshot, scored) if with_paths else {})
        del model
    return {t: [got[str(e)] for e in events["event_id"]] for t, got in preds.items()}


def predict_news(
    news: pd.DataFrame,
    market: MarketData,
    read_snapshot: Callable[[str], GraphSnapshot],
    cfg: AlignConfig,
    method: Method = "aligned",
    adapters_root: str | Path = "adapters",
    aligned_dir: Path | None = None,
    *,
    max_new_tokens: int = 160,
    progress: bool = False,
) -> tuple[list[Prediction], tuple[str, ...]]:
    """``kgfin predict``: greedy answers of ``method`` to every item of a news table (columns of the news table), with
    graph paths; items need no outcome (residuals are used where they exist). Returns the predictions and the
    universe's tickers (the index of every ``z``)."""
    from kgfin.align.events import events_from_news
    from kgfin.align.impact_reward import build_impact_reward

    if method not in ("aligned", "knowledge", "zero_shot", "rag"):
        raise AlignInputError(f"method {method!r}: choose aligned, knowledge, zero_shot or rag")
    if market.returns is None:
        raise AlignInputError("prediction needs the returns table (its trading days date the news)")
    days = pd.DatetimeIndex(sorted(market.returns["date"].unique()))
    events = events_from_news(news, days, cfg.events, keep_unpriced=True)
    reward, events = build_impact_reward(events, market, read_snapshot, cfg.impact, require_outcome=False,
                                         prefix=cfg.decoding.answer_prefix)
    decoder = Decoder.for_months(cfg.decoding, reward.universe, market, sorted(events["month"].unique()), cfg.events)
    rag = None
    if method == "rag":
        from kgfin.llm.embeddings import NewsEmbedder

        embedder = NewsEmbedder()
        rag = embedding_similarity(lambda texts: embedder.embed(texts, progress=False))
    preds = predict_events(ModelVariant(method, aligned_dir=aligned_dir), events, reward, read_snapshot, cfg,
                           adapters_root, decoder=decoder, max_new_tokens=max_new_tokens, rag_scores=rag,
                           with_paths=True, progress=progress)[0.0]
    return preds, reward.tickers


def prediction_records(preds: Sequence[Prediction], tickers: Sequence[str]) -> list[dict[str, Any]]:
    """JSON-ready records of predictions: the named scores, the nonzero propagated ``z`` per ticker, the paths, the
    raw answer and, for a refusal, its reason."""
    records = []
    for p in preds:
        z = {tickers[j]: float(p.scored.z[j]) for j in np.flatnonzero(p.scored.z)}
        records.append({"event_id": p.event_id, "graph_month": p.graph_month, "refused": p.scored.refused,
                        "reason": p.scored.impacts.reason, "named": p.scored.impacts.scores, "z": z,
                        "paths": p.paths, "answer": p.completion})
    return records


def prediction_frame(preds: list[Prediction], tickers: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """Long table: one row per event and company with a nonzero Z (``impact`` = Z), one per refused event.

    Columns ``event_id, date, ticker, named_score, impact, refused``; a refused event has
    ticker None and impact NaN.
    """
    rows: list[dict[str, Any]] = []
    for p in preds:
        if p.scored.refused:
            rows.append({"event_id": p.event_id, "date": p.day, "ticker": None, "named_score": np.nan,
                         "impact": np.nan, "refused": True})
            continue
        for j in np.flatnonzero(p.scored.z):
            t = tickers[j]
            rows.append({"event_id": p.event_id, "date": p.day, "ticker": t,
                         "named_score": p.scored.impacts.scores.get(t, np.nan), "impact": float(p.scored.z[j]),
                         "refused": False})
    return pd.DataFrame(rows, columns=["event_id", "date", "ticker", "named_score", "impact", "refused"])


def mu_without(snapshot: GraphSnapshot, relation: str) -> sp.csr_matrix:
    """The month's mu with one relation type's weight set to 0 (the drop-one-relation ablation)."""
    rules = snapshot.config.mu
    rule = getattr(rules, relation.lower())
    return snapshot.mu(rules.model_copy(update={relation.lower(): rule.model_copy(update={"weight": 0.0})}))
