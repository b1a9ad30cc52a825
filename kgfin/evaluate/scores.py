"""Ripple-score tables from any registered predictor (``kgfin ripple scores``): the fusion models' ripple input.

:func:`ripple_scores` runs one predictor of :data:`~kgfin.evaluate.predictors.PREDICTORS` (``aligned``,
``knowledge``, ``propagation_only``, ``gnn``, ``oracle``, ...) over every news item of the months asked (or at most
``max_events_per_month`` of them, a seeded choice) and sums its scores into

* ``monthly``: ``month, ticker, ripple, events`` (the fusion input, :func:`kgfin.fusion.features.load_ripple`),
  an event belonging to month m when its news was published in ``[rebalance(m-1), rebalance(m))``, the close of
  each month's last trading day (``rebalance_time``), so a month-m score uses only news known when month m's
  portfolios are formed;
* ``daily``: ``date, ticker, ripple, events``, an event belonging to the trading day its news is priced on (news at
  or after the close: the next trading day);
* ``events``: one row per scored event and company with a non-zero score (``event_id, timestamp, day, month,
  graph_month, ticker, score``).

Scores: an answering predictor (language models, ``propagation_only``, ``oracle``) gives each event's propagated
``Z`` over the whole universe; the others score the event's candidate set (its graph neighbours plus
``random_candidates`` others, :mod:`kgfin.graph.candidates`) and nothing else. Each predictor is as point in
time as in the ripple evaluation v2: learners fit on outcomes that ended before the scored month began, the
headline-sentiment sign on the ``sentiment_months`` before the first scored month; no event is dropped for lack of
an outcome (a score does not need one).

**Knowledge adapters** (``knowledge``, ``aligned``): news of graph month g is answered with g's adapter
(``adapter_policy: exact``) or with the latest adapter trained for a month <= g (``latest``, the default: a
cheaper pipeline trains adapters for a few months only); that month's graph then also carries the propagation.
News with no usable adapter is not scored and is counted. ``metadata`` records the predictor, the aligned
adapter, the adapter month used for each graph month, every count, and whether an aligned model scored the months
it was aligned on (in-sample for the alignment).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from kgfin.align.config import AlignConfig
from kgfin.align.events import AlignInputError, news_events
from kgfin.config import KgfinConfig
from kgfin.data.calendar import assign_months, rebalance_times
from kgfin.data.loaders import MarketData
from kgfin.errors import KgfinError
from kgfin.evaluate.predictors import (
    PREDICTORS,
    LanguageModelSetup,
    PredictorSettings,
    RippleContext,
    build_predictor,
    check_predictors,
)
from kgfin.evaluate.v2 import _truth
from kgfin.graph.candidates import candidate_sets
from kgfin.graph.snapshot import GraphSnapshot
from kgfin.market.residuals import residuals, window_moves

__all__ = ["KNOWLEDGE_PREDICTORS", "RippleScores", "RippleScoresConfig", "adapter_months", "read_ripple_scores",
           "ripple_scores"]

log = logging.getLogger(__name__)

# predictors that read a knowledge adapter per graph month
KNOWLEDGE_PREDICTORS = ("knowledge", "warm_start", "aligned")
META_KEY = b"kgfin.ripple_scores"


class RippleScoresConfig(KgfinConfig):
    """Settings of ``kgfin ripple scores`` (the ``ripple_scores`` section)."""

    predictor: str = Field("aligned", description="registered predictor whose scores fill the tables "
                                                  "(kgfin.evaluate.predictors.PREDICTORS)")
    max_events_per_month: int | None = Field(
        None, ge=1, description="news items scored per month, a seeded choice (None: every news item); the language "
                                "models take seconds per item on a CPU")
    adapter_policy: Literal["exact", "latest"] = Field(
        "latest", description="knowledge / aligned: the adapter of the news' graph month (exact) or the latest "
                              "trained for a month <= it (latest)")
    rebalance_time: str = Field("16:00", pattern=r"^\d{2}:\d{2}$",
                                description="close of a month's last trading day: news at or after it belongs to "
                                            "the next month (the fusion features' rebalance_time)")
    random_candidates: int = Field(20, ge=0, description="candidate-set predictors: random non-neighbours per event")
    sentiment_months: int = Field(12, ge=1, description="months of earlier news the headline-sentiment sign learns "
                                                        "from (propagation_only, graph_distance, ridge_rule, gnn)")
    sentiment_ridge: float = Field(1.0, gt=0, description="ridge penalty of the headline-sentiment model")
    horizon: int = Field(1, ge=0, description="learners (ridge_rule, gnn): outcome window, trading days 0..horizon")
    max_new_tokens: int = Field(64, ge=8, description="language models: answer length limit")
    batch_size: int = Field(8, ge=1, description="language models: generation batch size")
    context_facts: int = Field(20, ge=1, description="zero_shot / icl / rag: graph facts in the prompt")
    predictors: PredictorSettings = Field(default_factory=PredictorSettings,
                                          description="settings of the non-language predictors")
    seed: int = Field(0, description="event choice, candidate draws, generation")

    @field_validator("predictor")
    @classmethod
    def _known(cls, v: str) -> str:
        check_predictors([v])
        return v


@dataclass
class RippleScores:
    """The tables of one predictor (module doc) and their ``metadata``."""

    monthly: pd.DataFrame  # month, ticker, ripple, events
    daily: pd.DataFrame  # date, ticker, ripple, events
    events: pd.DataFrame  # event_id, timestamp, day, month, graph_month, ticker, score
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The source's name as the fusion table shows it."""
        m = self.metadata
        return f"{m.get('predictor')} ({m.get('events_scored', 0)} news items{', ' + m['adapter'] if m.get('adapter') else ''})"

    def write(self, out_dir: str | Path) -> Path:
        """``monthly.parquet``, ``daily.parquet``, ``events.parquet`` (the metadata in each Parquet file's key-value
        metadata, read back by :func:`read_ripple_scores`) and ``metadata.json`` under ``out_dir``."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        blob = json.dumps(self.metadata, sort_keys=True, default=str).encode()
        for name in ("monthly", "daily", "events"):
            table = pa.Table.from_pandas(getattr(self, name), preserve_index=False)
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: blob})
            tmp = out / f".{name}.parquet.partial"
            pq.write_table(table, tmp)
            tmp.replace(out / f"{name}.parquet")
        (out / "metadata.json").write_text(json.dumps(self.metadata, indent=2, sort_keys=True, default=str) + "\n")
        return out


def read_ripple_scores(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A table written by :meth:`RippleScores.write` (a Parquet file, or a folder: its ``monthly.parquet``) and the
    metadata stored in it (``{}`` for a plain table)."""
    import pyarrow.parquet as pq

    path = Path(path)
    if path.is_dir():
        path = path / "monthly.parquet"
    table = pq.read_table(path)
    meta = (table.schema.metadata or {}).get(META_KEY)
    return table.to_pandas(), json.loads(meta) if meta else {}


def adapter_months(adapters_root: str | Path) -> list[str]:
    """Months with a trained knowledge adapter under ``adapters_root`` (``kgfin.inject.adapter_dir``'s layout)."""
    from kgfin.inject.trainer import adapter_dir

    root = Path(adapters_root)
    if not root.exists():
        return []
    months = [p.name.removeprefix("kg-") for p in root.iterdir() if p.name.startswith("kg-")]
    return sorted(m for m in months if (adapter_dir(root, m) / "adapter_config.json").exists())


def _adapter_map(graph_months: Sequence[str], available: Sequence[str], policy: str) -> dict[str, str | None]:
    """Graph month -> the adapter month that answers its news (None: none usable)."""
    out: dict[str, str | None] = {}
    for g in graph_months:
        if policy == "exact":
            out[g] = g if g in available else None
        else:
            earlier = [a for a in available if a <= g]
            out[g] = earlier[-1] if earlier else None
    return out


def _sum_table(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame({key: pd.Series(dtype=str if key == "month" else "datetime64[ns]"),
                             "ticker": pd.Series(dtype=str), "ripple": pd.Series(dtype=float),
                             "events": pd.Series(dtype=int)})
    g = frame.groupby([key, "ticker"], sort=True)
    return pd.DataFrame({"ripple": g["score"].sum(), "events": g["event_id"].nunique()}).reset_index()


def ripple_scores(
    market: MarketData,
    read_snapshot: Callable[[str], GraphSnapshot],
    months: Sequence[str],
    cfg: RippleScoresConfig,
    align_cfg: AlignConfig,
    *,
    adapters_root: str | Path = "adapters",
    aligned_dir: str | Path | None = None,
    aligned_months: Sequence[str] = (),
    data_dir: str | Path | None = None,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    resid: pd.DataFrame | None = None,
) -> RippleScores:
    """Score the news of ``months`` with ``cfg.predictor`` and sum the scores per month and per day (module doc).

    ``aligned_months``: the news months the aligned model was trained on (recorded; scores of those months are
    in-sample for the alignment). ``data_dir``: the synthetic market's folder (its ``truth/`` for the oracles and
    the event types). ``embed``: headline vectors for the news sign (default: the shipped MiniLM encoder).
    """
    t0 = time.perf_counter()
    months = sorted(months)
    name = cfg.predictor
    counts: dict[str, int] = {}
    if market.news is None or market.returns is None:
        raise AlignInputError("ripple scores need the news and returns tables")
    in_months = market.news["timestamp"].dt.strftime("%Y-%m").isin(months)
    counts["news items in the months"] = int(in_months.sum())
    events = news_events(market, months, align_cfg.events.model_copy(update={"max_events_per_month": None,
                                                                          "seed": cfg.seed}))
    counts["not scored: priced after the last trading day or naming too few firms"] = int(
        counts["news items in the months"] - len(events))
    adapter_used: dict[str, str | None] = {}
    graph_months = sorted(events["graph_month"].astype(str).unique())
    if name in KNOWLEDGE_PREDICTORS and align_cfg.knowledge:
        available = adapter_months(adapters_root)
        adapter_used = _adapter_map(graph_months, available, cfg.adapter_policy)
        events["graph_month"] = events["graph_month"].astype(str).map(adapter_used)
        missing = events["graph_month"].isna()
        counts["not scored: no knowledge adapter for the graph month"] = int(missing.sum())
        if missing.all():
            raise AlignInputError(f"no knowledge adapter under {adapters_root} for the graph months of {months} "
                                  f"(policy {cfg.adapter_policy}; adapters: {available or 'none'})")
    else:
        readable = {}
        for g in graph_months:
            try:
                read_snapshot(g)
                readable[g] = True
            except KgfinError:
                readable[g] = False
        missing = ~events["graph_month"].astype(str).map(readable)
        counts["not scored: no graph for the graph month"] = int(missing.sum())
        if missing.all():
            raise AlignInputError(f"no graph month of the news of {months} can be read")
    events = events[~missing.to_numpy()]
    if cfg.max_events_per_month is not None:  # news_events' seeded order within each month: its first ones
        capped = events.groupby("month", sort=False).head(cfg.max_events_per_month)
        counts["not scored: over max_events_per_month"] = int(len(events) - len(capped))
        events = capped
    events = events.reset_index(drop=True)
    if embed is None:
        from kgfin.llm.embeddings import NewsEmbedder

        embedder = NewsEmbedder()
        embed = lambda texts: embedder.embed(texts, progress=False)  # noqa: E731
    if resid is None:
        resid = residuals(market.returns, market.factors_daily, align_cfg.impact.residuals)
    moves = window_moves(resid, cfg.horizon)
    days = moves.index
    window_end = pd.Series(days[np.minimum(np.arange(len(days)) + cfg.horizon, len(days) - 1)], index=days)
    window_end[np.arange(len(days)) + cfg.horizon >= len(days)] = pd.NaT
    impacts, planted = _truth(Path(data_dir) if data_dir else None)
    events["event_type"] = [str(planted.loc[str(e), "event_type"]) if planted is not None and str(e) in planted.index
                            else "all" for e in events["event_id"]]
    candidates = candidate_sets(events, read_snapshot, cfg.random_candidates, cfg.seed)
    lm = LanguageModelSetup(Path(adapters_root), Path(aligned_dir) if aligned_dir else None, cfg.max_new_tokens,
                            cfg.batch_size, cfg.context_facts, cfg.seed)
    ctx = RippleContext(market, read_snapshot, events, candidates, align_cfg, resid, moves, window_end, embed=embed,
                        impacts=impacts, planted=planted, settings=cfg.predictors,
                        sentiment_months=cfg.sentiment_months, sentiment_ridge=cfg.sentiment_ridge,
                        n_random=cfg.random_candidates, seed=cfg.seed, lm=lm)
    predictor = build_predictor(name)
    if predictor.uses_rows:
        raise AlignInputError(f"{name} reuses other predictors' scores (a negative control): it makes no score table")
    t_pred = time.perf_counter()
    parts = []
    refused = 0
    if hasattr(predictor, "answers"):
        reward = ctx.reward()
        tickers = np.asarray(reward.tickers)
        preds = predictor.answers(events, ctx, [0.0])[0.0]
        for row, p in zip(events.itertuples(index=False), preds, strict=True):
            refused += int(p.scored.refused)
            hit = np.flatnonzero(p.scored.z != 0)
            parts.append((str(row.event_id), tickers[hit], p.scored.z[hit]))
        scope = "universe"
    else:
        scored = predictor.predict(events, ctx)
        for row in events.itertuples(index=False):
            eid = str(row.event_id)
            s = scored[eid].scores
            s = s.mean(axis=0) if s.ndim == 2 else s
            refused += int(scored[eid].refused)
            hit = np.flatnonzero(s != 0)
            parts.append((eid, np.asarray(candidates[eid].tickers)[hit], s[hit]))
        scope = "candidates"
    seconds_predict = time.perf_counter() - t_pred
    trading_days = pd.DatetimeIndex(pd.to_datetime(market.returns["date"]).unique())
    info = events.set_index(events["event_id"].astype(str))
    month_of_event = pd.Series(assign_months(info["timestamp"], rebalance_times(trading_days, cfg.rebalance_time)),
                               index=info.index)
    rows = pd.DataFrame({
        "event_id": np.concatenate([np.repeat(e, len(t)) for e, t, _ in parts]) if parts else [],
        "ticker": np.concatenate([t for _, t, _ in parts]) if parts else [],
        "score": np.concatenate([s for _, _, s in parts]).astype(float) if parts else []})
    rows["event_id"] = rows["event_id"].astype(str)
    rows["ticker"] = rows["ticker"].astype(str)
    rows.insert(1, "timestamp", info.loc[rows["event_id"], "timestamp"].to_numpy())
    rows.insert(2, "day", pd.DatetimeIndex(info.loc[rows["event_id"], "day"].to_numpy()))
    rows.insert(3, "month", month_of_event.loc[rows["event_id"]].to_numpy())
    rows.insert(4, "graph_month", info.loc[rows["event_id"], "graph_month"].astype(str).to_numpy())
    past_last = rows["month"].isna()
    counts["events scored"] = len(events)
    counts["refused (score 0)"] = refused
    counts["events with no non-zero score"] = int(len(events) - rows["event_id"].nunique())
    counts["score rows after the last rebalancing (in no month)"] = int(past_last.sum())
    rows = rows.sort_values(["day", "event_id", "ticker"], ignore_index=True)
    monthly = _sum_table(rows[~past_last].astype({"month": str}), "month")
    daily = _sum_table(rows.rename(columns={"day": "date"}), "date")
    aligned = name == "aligned"
    metadata = {
        "predictor": name, "scope": scope, "months": months,
        "adapter": (str(Path(aligned_dir).name) if aligned and aligned_dir else None),
        "aligned_dir": "/".join(Path(aligned_dir).parts[-2:]) if aligned and aligned_dir else None,
        "aligned_months": list(aligned_months) if aligned else [],
        "in_sample_months": sorted(set(aligned_months) & set(months)) if aligned else [],
        "knowledge_adapters": {g: a for g, a in sorted(adapter_used.items())} if adapter_used else {},
        "adapter_policy": cfg.adapter_policy if adapter_used else None,
        "model": align_cfg.model if name in PREDICTORS and hasattr(predictor, "generates")
        and getattr(predictor, "generates", False) else None,
        "events_scored": len(events), "counts": counts, "rebalance_time": cfg.rebalance_time,
        "config": cfg.model_dump(mode="json"),
        "seconds": {"predict": round(seconds_predict, 2), "total": round(time.perf_counter() - t0, 2)},
    }
    log.info("ripple scores (%s): %d events, %d month rows, %d day rows in %.1f s", name, len(events), len(monthly),
             len(daily), time.perf_counter() - t0)
    return RippleScores(monthly, daily, rows, metadata)
