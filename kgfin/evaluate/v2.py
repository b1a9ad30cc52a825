"""Ripple evaluation v2: every method scored on the same candidates, on the ripple itself, with confidence intervals.

Protocol (``docs/ripple-evaluation.md``):

1. Events: every news item of the held-out months (``max_events_per_month``: None), each read with
   the graph of month ``m - graph_lag_months`` (point in time). An event whose window runs past the
   data is dropped and counted.
2. Candidates (:mod:`kgfin.graph.candidates`): the focal firm's one-hop neighbours plus
   ``random_candidates`` seeded others, identical for every method; the focal firm is never scored.
   Variant ``focal`` scores them all; variant ``named`` also leaves out every firm the news names
   (the direct counterparty).
3. Outcome: each candidate's residual (``align.impact.residuals``, point-in-time betas) summed over
   trading days ``0..horizon`` from the event day; ``extra_horizons`` are reported too. A candidate
   without a residual in the window is left out of that event and counted.
4. Per-event metrics (:mod:`kgfin.evaluate.metrics`): rank IC (the headline), precision / recall /
   NDCG@k of the planted ripple firms (synthetic market; else the k largest |moves|), sign accuracy
   of the named firms, correlation with the planted shock.
5. Uncertainty (:mod:`kgfin.evaluate.uncertainty`): mean over events with a seeded bootstrap CI;
   each row paired with the ``baselines`` on the same events (bootstrap CI of the difference,
   Wilcoxon p); a power table from the observed paired spread.
6. Long-short (:mod:`kgfin.evaluate.long_short`): each row's scores traded daily over the whole
   evaluation window; a Sharpe ratio only with its periods and CI, none under 60 periods.

:func:`run_ripple_v2` runs it alone (``eval/ripple_v2.py``: every news item of the held-out months);
:func:`kgfin.evaluate.ripple.run_ripple_eval` runs it on the paper tables' events through
:func:`prepare_v2` (the events given) and :func:`score_v2` (the language-model rows as their
answers, generated once).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from kgfin.align.config import AlignConfig
from kgfin.align.events import AlignInputError, news_events
from kgfin.config import KgfinConfig
from kgfin.data.loaders import MarketData, find_table
from kgfin.data.tables import read_table
from kgfin.evaluate.coverage import coverage
from kgfin.evaluate.long_short import long_short_on_scores
from kgfin.evaluate.metrics import (
    planted_corr,
    rank_ic,
    realised_relevance,
    sign_accuracy,
    top_k,
)
from kgfin.evaluate.predictors import (
    EventScores,
    LanguageModelSetup,
    Predictor,
    PredictorSettings,
    RippleContext,
    build_predictor,
    check_predictors,
)
from kgfin.evaluate.uncertainty import events_needed, mean_ci, paired_test
from kgfin.graph.candidates import CandidateSet, candidate_sets
from kgfin.graph.snapshot import GraphSnapshot
from kgfin.market.residuals import residuals, window_moves
from kgfin.portfolio.backtest import LongShortConfig
from kgfin.portfolio.metrics import SharpeConfig
from kgfin.tables import markdown_table

if TYPE_CHECKING:
    from kgfin.align.impact_reward import ImpactReward

__all__ = ["CONTROLS", "DEFAULT_PREDICTORS", "ORACLES", "RippleV2Config", "RippleV2Result", "V2Setup", "prepare_v2",
           "run_ripple_v2", "score_v2", "v2_tables"]

log = logging.getLogger(__name__)

DEFAULT_PREDICTORS = ("random", "graph_distance", "propagation_only", "ridge_rule", "rule_oracle", "oracle",
                      "graph_shuffled", "time_shuffled")
CONTROLS = ("random", "graph_shuffled", "time_shuffled")  # rows whose CI must contain 0
ORACLES = ("oracle", "rule_oracle")


class RippleV2Config(KgfinConfig):
    """Settings of the ripple evaluation v2 (the ``v2`` part of the ``ripple_eval`` section)."""

    predictors: list[str] = Field(default_factory=lambda: list(DEFAULT_PREDICTORS),
                                  description="registered predictors to score (kgfin.evaluate.predictors.PREDICTORS)")
    max_events_per_month: int | None = Field(
        None, ge=1, description="events per month when v2 runs alone (eval/ripple_v2.py; None: every news item); "
                                "kgfin evaluate ripple and the demo score the paper tables' events "
                                "(ripple_eval.max_events_per_month) instead")
    random_candidates: int = Field(20, ge=0, description="random non-neighbours added to each candidate set")
    horizon: int = Field(1, ge=0, description="outcome window: trading days 0..horizon after the event day (shocks "
                                              "carry over about one day)")
    extra_horizons: list[int] = Field(default_factory=lambda: [2], description="further windows reported beside it")
    variant: Literal["focal", "named"] = Field(
        "focal", description="the headline's candidates: focal = all (the focal firm is never one); named = also "
                             "without every firm the news names")
    k: int = Field(10, ge=1, description="k of precision / recall / NDCG@k")
    baselines: list[str] = Field(default_factory=lambda: ["propagation_only", "knowledge"],
                                 description="rows every row is paired with (those present)")
    n_resamples: int = Field(2000, ge=100, description="bootstrap resamples (events)")
    confidence: float = Field(0.95, gt=0, lt=1, description="confidence level of every interval")
    power: float = Field(0.8, gt=0, lt=1, description="power of the power table")
    power_differences: list[float] = Field(default_factory=lambda: [0.02, 0.05, 0.10],
                                           description="differences in mean rank IC the power table sizes")
    predictor: PredictorSettings = Field(default_factory=PredictorSettings)
    long_short: LongShortConfig = Field(default_factory=LongShortConfig,
                                        description="daily long-short on each row's candidate scores")
    sharpe: SharpeConfig = Field(default_factory=SharpeConfig,
                                 description="the long-short table's Sharpe ratios: CI, fewest periods shown")
    seed: int = Field(0, description="candidate draws, random scores, bootstrap")

    @field_validator("predictors")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        check_predictors(v)
        return v


@dataclass
class RippleV2Result:
    """The v2 tables. ``per_event``: one row per method, event, variant (every metric); ``summary``: the headline
    table; ``paired``, ``power``, ``by_variant``, ``by_kind``, ``coverage`` (per event), ``counts``;
    ``long_short``: each row's daily long-short over the evaluation window (``long_short_daily`` its returns);
    ``scores``: every row's score of every candidate with the realised move and the planted shock (one row per
    method, event and candidate: the per-event rankings of the report)."""

    per_event: pd.DataFrame
    summary: pd.DataFrame
    paired: pd.DataFrame
    power: pd.DataFrame
    by_variant: pd.DataFrame
    by_kind: pd.DataFrame
    coverage: pd.DataFrame
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    long_short: pd.DataFrame = field(default_factory=pd.DataFrame)
    long_short_daily: pd.DataFrame = field(default_factory=pd.DataFrame)
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)

    TABLES = ("per_event", "summary", "paired", "power", "by_variant", "by_kind", "coverage", "long_short", "scores")

    def headline(self) -> dict[str, str]:
        """Method -> ``IC mean [CI low, CI high] (n=events)``, plus ``, k refused`` when the row refused events (they
        score 0): the stage summaries' one line per row."""
        return {str(r["method"]): f"IC {r['mean rank IC']:.4f} [{r['CI low']:.4f}, {r['CI high']:.4f}] "
                                  f"(n={int(r['events'])})" + (f", {int(r['refused'])} refused" if r["refused"] else "")
                for _, r in self.summary.iterrows()}

    def coverage_summary(self) -> pd.DataFrame:
        c = self.coverage
        if c.empty:
            return c
        hit = c[c["ripple_firms"] > 0]
        return pd.DataFrame([{
            "events": len(c), "mean candidates": c["candidates"].mean(), "mean neighbours": c["neighbours"].mean(),
            "events with planted ripple": len(hit),
            "ripple firms covered (pooled)": hit["covered_firms"].sum() / max(hit["ripple_firms"].sum(), 1),
            "ripple firms covered (mean)": hit["firm_share"].mean(), "|ripple shock| covered (mean)": hit["shock_share"].mean()}])

    def to_markdown(self) -> str:
        parts = [
            ("Ripple evaluation v2: mean rank IC over events (95 % bootstrap CI), paired tests", self.summary),
            ("Paired differences (row minus baseline, same events)", self.paired),
            ("Power: events needed for a difference in mean rank IC (paired, two-sided 5 %)", self.power),
            ("Mean rank IC by candidate variant and window", self.by_variant),
            ("Mean rank IC by news kind (synthetic truth)", self.by_kind),
            ("Candidate sets: coverage of the planted ripple", self.coverage_summary()),
            ("Daily long-short on each row's scores over the evaluation window (Sharpe with its CI, none under "
             "60 periods)", self.long_short),
            ("Counts", pd.DataFrame([self.counts])),
        ]
        out = [f"## {title}\n\n{markdown_table(t, '.4g')}" for title, t in parts if t is not None and len(t)]
        if self.notes:
            out.append("## Notes\n\n" + "\n".join(f"* {n}" for n in self.notes))
        return "\n\n".join(out) + "\n"

    def write(self, out_dir: str | Path) -> Path:
        """``v2.md``, one CSV per table (``v2_NAME.csv``), ``v2_coverage_summary.csv``, ``v2_counts.csv`` and
        ``v2_long_short_daily.csv`` under ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name in self.TABLES:
            getattr(self, name).to_csv(out / f"v2_{name}.csv", index=False)
        self.coverage_summary().to_csv(out / "v2_coverage_summary.csv", index=False)
        pd.DataFrame([self.counts]).to_csv(out / "v2_counts.csv", index=False)
        self.long_short_daily.to_csv(out / "v2_long_short_daily.csv")
        (out / "v2.md").write_text(self.to_markdown())
        return out


def _truth(data_dir: Path | None) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    if data_dir is None:
        return None, None
    imp, ev = find_table(data_dir / "truth", "impacts"), find_table(data_dir / "truth", "events")
    if imp is None or ev is None:
        return None, None
    planted = read_table(ev)
    planted["event_id"] = planted["event_id"].astype(str)
    planted["counterpart"] = planted["counterpart"].fillna("").astype(str)
    return read_table(imp), planted.set_index("event_id")


def _event_rows(method: str, scored: dict[str, EventScores], events: pd.DataFrame,
                candidates: dict[str, CandidateSet], moves: dict[int, pd.DataFrame], primary: int, k: int,
                shocks: dict[str, dict[str, float]] | None, kinds: dict[str, str]) -> list[dict]:
    rows = []
    for ev in events.itertuples(index=False):
        eid = str(ev.event_id)
        cand, got = candidates[eid], scored[eid]
        day = pd.Timestamp(ev.day)
        mv = {h: m.loc[day].reindex(list(cand.tickers)).to_numpy(dtype=float) for h, m in moves.items()}
        have = np.isfinite(mv[primary])
        draws = got.scores if got.scores.ndim == 2 else got.scores[None, :]
        shock = np.array([shocks.get(eid, {}).get(t, 0.0) for t in cand.tickers]) if shocks is not None else None
        for variant in ("focal", "named"):
            keep = cand.mask(variant) & have
            m = {h: v[keep] for h, v in mv.items()}
            gains = np.abs(shock[keep]) if shock is not None else realised_relevance(m[primary], k)
            per_draw = []
            for s_all in draws:
                s = s_all[keep]
                prec, rec, ndcg = top_k(s, gains, k)
                per_draw.append({
                    **{f"ic_h{h}": rank_ic(s, m[h]) for h in moves},
                    f"precision@{k}": prec, f"recall@{k}": rec, f"ndcg@{k}": ndcg,
                    "sign_acc": sign_accuracy(s, m[primary]),
                    "sign_acc_planted": sign_accuracy(s, shock[keep]) if shock is not None else np.nan,
                    "corr_planted": planted_corr(s, shock[keep]) if shock is not None else np.nan})
            metrics = pd.DataFrame(per_draw).mean(axis=0, skipna=True).to_dict() if len(per_draw) > 1 else per_draw[0]
            s0 = draws[0][keep]
            rows.append({"method": method, "event_id": eid, "month": ev.month, "event_type": ev.event_type,
                         "kind": kinds.get(eid, ""), "variant": variant, "candidates": int(keep.sum()),
                         "missing_outcome": int((cand.mask(variant) & ~have).sum()),
                         "refused": got.refused, "constant": bool(s0.size == 0 or np.all(s0 == s0[0])),
                         "outside": len(got.outside), **metrics})
    return rows


@dataclass
class V2Setup:
    """Everything :func:`score_v2` needs: the context predictors read (events, candidates, outcomes, truth) and
    what the tables add (outcome windows, planted shocks, news kinds, counts, notes)."""

    ctx: RippleContext
    cfg: RippleV2Config
    months: list[str]
    moves: dict[int, pd.DataFrame]
    shocks: dict[str, dict[str, float]] | None
    kinds: dict[str, str]
    counts: dict[str, int]
    notes: list[str]
    started: float

    @property
    def events(self) -> pd.DataFrame:
        return self.ctx.events

    def predictors(self, names: Sequence[str] | None = None) -> list[Predictor]:
        """The registered predictors ``names`` (default ``cfg.predictors``); an oracle without truth is skipped and
        noted."""
        out = []
        for name in self.cfg.predictors if names is None else names:
            if name in ORACLES and self.ctx.impacts is None:
                self.notes.append(f"{name} skipped: the data folder has no truth/ tables (not a synthetic market)")
                continue
            out.append(build_predictor(name))
        return out


def prepare_v2(
    market: MarketData,
    read_snapshot: Callable[[str], GraphSnapshot],
    months: Sequence[str],
    cfg: RippleV2Config,
    align_cfg: AlignConfig,
    *,
    events: pd.DataFrame | None = None,
    data_dir: str | Path | None = None,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    sentiment_months: int = 12,
    sentiment_ridge: float = 1.0,
    lm: LanguageModelSetup | None = None,
    resid: pd.DataFrame | None = None,
    impact_reward: ImpactReward | None = None,
) -> V2Setup:
    """Events, outcome windows, candidate sets and truth of a v2 run. ``events``: the events to score (default:
    :func:`~kgfin.align.events.news_events` of ``months`` with ``cfg.max_events_per_month``); an event whose longest
    outcome window runs past the data is dropped and counted."""
    t0 = time.perf_counter()
    if embed is None:
        from kgfin.llm.embeddings import NewsEmbedder

        embedder = NewsEmbedder()
        embed = lambda texts: embedder.embed(texts, progress=False)  # noqa: E731
    counts: dict[str, int] = {}
    if events is None:
        events = news_events(market, sorted(months), align_cfg.events.model_copy(
            update={"max_events_per_month": cfg.max_events_per_month}))
    counts["news items"] = len(events)
    if resid is None:
        resid = residuals(market.returns, market.factors_daily, align_cfg.impact.residuals)
    horizons = list(dict.fromkeys([cfg.horizon, *cfg.extra_horizons]))
    moves = {h: window_moves(resid, h) for h in horizons}
    days = moves[cfg.horizon].index
    window_end = pd.Series(days[np.minimum(np.arange(len(days)) + cfg.horizon, len(days) - 1)], index=days)
    window_end[np.arange(len(days)) + cfg.horizon >= len(days)] = pd.NaT
    longest = max(horizons)
    pos = days.get_indexer(pd.DatetimeIndex(events["day"]))
    ok = (pos >= 0) & (pos + longest < len(days))
    counts["dropped: outcome window past the data"] = int((~ok).sum())
    events = events[ok].reset_index(drop=True)
    if events.empty:
        raise AlignInputError(f"no event of {list(months)} has a complete outcome window of {longest + 1} days")
    impacts, planted = _truth(Path(data_dir) if data_dir else None)
    events["event_type"] = [str(planted.loc[str(e), "event_type"]) if planted is not None and str(e) in planted.index
                            else "all" for e in events["event_id"]]
    kinds = ({str(e): str(planted.loc[str(e), "kind"]) for e in events["event_id"] if str(e) in planted.index}
             if planted is not None else {})
    shocks = None
    if impacts is not None:
        imp = impacts[impacts["event_id"].astype(str).isin(set(events["event_id"].astype(str)))]
        shocks = {str(e): dict(zip(g["ticker"], g["shock"].astype(float), strict=True))
                  for e, g in imp.groupby("event_id")}
    candidates = candidate_sets(events, read_snapshot, cfg.random_candidates, cfg.seed)
    ctx = RippleContext(market, read_snapshot, events, candidates, align_cfg, resid, moves[cfg.horizon], window_end,
                        embed=embed, impacts=impacts, planted=planted, settings=cfg.predictor,
                        sentiment_months=sentiment_months, sentiment_ridge=sentiment_ridge,
                        n_random=cfg.random_candidates, seed=cfg.seed, lm=lm or LanguageModelSetup(),
                        impact_reward=impact_reward)
    return V2Setup(ctx, cfg, sorted(months), moves, shocks, kinds, counts, [], t0)


def score_v2(setup: V2Setup, predictors: Sequence[Predictor], progress: bool = True) -> RippleV2Result:
    """Score ``predictors`` on the setup's events and candidates and build the v2 tables. Every row must score every
    event over its candidates; rows that reuse other rows' scores (``uses_rows``) run last."""
    from tqdm.auto import tqdm

    ctx, cfg, events, candidates = setup.ctx, setup.cfg, setup.ctx.events, setup.ctx.candidates
    notes, counts = setup.notes, dict(setup.counts)
    names = [p.name for p in predictors]
    if len(set(names)) != len(names):
        raise AlignInputError(f"ripple v2 rows must have distinct names, got {names}")
    ordered = sorted(predictors, key=lambda p: p.uses_rows)  # controls that reuse other rows' scores go last
    per_event: list[dict] = []
    seconds: dict[str, float] = {}
    for p in tqdm(ordered, desc="ripple v2 rows", disable=not progress):
        if p.uses_rows and ctx.best_row is None:
            ctx.best_row = _best_row(pd.DataFrame(per_event), cfg)
            if p.name == "time_shuffled":
                notes.append(f"time_shuffled reuses the scores of {ctx.settings.time_shuffled_source or ctx.best_row}")
        start = time.perf_counter()
        scored = p.predict(events, ctx)
        missing = set(events["event_id"].astype(str)) - set(scored)
        if missing:
            raise AlignInputError(f"predictor {p.name} returned no scores for {len(missing)} event(s)")
        for eid, s in scored.items():
            if s.scores.shape[-1] != len(candidates[eid]):
                raise AlignInputError(f"predictor {p.name}: {s.scores.shape[-1]} scores for event {eid}'s "
                                      f"{len(candidates[eid])} candidates")
        ctx.rows[p.name] = scored
        per_event += _event_rows(p.name, scored, events, candidates, setup.moves, cfg.horizon, cfg.k, setup.shocks,
                                 setup.kinds)
        seconds[p.name] = time.perf_counter() - start
        log.info("ripple v2: %s scored %d events in %.1f s", p.name, len(scored), seconds[p.name])
    frame = pd.DataFrame(per_event)
    counts["events scored"] = len(events)
    counts["candidate rows without outcome (left out)"] = int(
        frame.loc[(frame["variant"] == "focal"), "missing_outcome"].sum() / max(len(ordered), 1))
    focal = frame[frame["variant"] == "focal"]
    counts["refusals (all rows)"] = int(focal["refused"].sum())
    counts["firms named outside the candidates (all rows)"] = int(focal["outside"].sum())
    cov = coverage(candidates.values(), ctx.impacts) if ctx.impacts is not None else pd.DataFrame()
    summary, paired, power, by_variant, by_kind = v2_tables(frame, cfg)
    rows = {p.name: ctx.rows[p.name] for p in ordered}
    ls_daily, ls_table, ls_notes = long_short_on_scores(rows, events, candidates, ctx.market.returns, setup.months,
                                                        cfg.long_short, cfg.sharpe)
    notes += ls_notes
    seconds["total"] = time.perf_counter() - setup.started
    return RippleV2Result(frame, summary, paired, power, by_variant, by_kind, cov, counts, notes, seconds,
                          ls_table, ls_daily, _score_table(rows, events, candidates, setup.moves[cfg.horizon],
                                                           setup.shocks))


def _score_table(rows: dict[str, dict[str, EventScores]], events: pd.DataFrame, candidates: dict[str, CandidateSet],
                 moves: pd.DataFrame, shocks: dict[str, dict[str, float]] | None) -> pd.DataFrame:
    """One row per method, event and candidate: ``score`` (mean over draws), ``neighbour``, ``move`` (the realised
    residual over the headline window) and ``planted`` (the planted shock; NaN without truth)."""
    parts = []
    for ev in events.itertuples(index=False):
        eid = str(ev.event_id)
        cand = candidates[eid]
        move = moves.loc[pd.Timestamp(ev.day)].reindex(list(cand.tickers)).to_numpy(dtype=float)
        planted = (np.array([shocks.get(eid, {}).get(t, 0.0) for t in cand.tickers]) if shocks is not None
                   else np.full(len(cand), np.nan))
        for method, scored in rows.items():
            s = scored[eid].scores
            parts.append(pd.DataFrame({"method": method, "event_id": eid, "ticker": list(cand.tickers),
                                       "score": s.mean(axis=0) if s.ndim == 2 else s, "neighbour": cand.neighbour,
                                       "move": move, "planted": planted}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def run_ripple_v2(
    market: MarketData,
    read_snapshot: Callable[[str], GraphSnapshot],
    months: Sequence[str],
    cfg: RippleV2Config,
    align_cfg: AlignConfig,
    *,
    data_dir: str | Path | None = None,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    sentiment_months: int = 12,
    sentiment_ridge: float = 1.0,
    lm: LanguageModelSetup | None = None,
    extra: Sequence[Predictor] = (),
    resid: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    progress: bool = True,
) -> RippleV2Result:
    """Score ``cfg.predictors`` (and ``extra`` predictor objects, e.g. precomputed language-model answers) on the
    held-out ``months`` (or the ``events`` given) and build the v2 tables (module docstring). ``embed``: headline
    vectors for the news sign (default: the shipped MiniLM encoder)."""
    setup = prepare_v2(market, read_snapshot, months, cfg, align_cfg, events=events, data_dir=data_dir, embed=embed,
                       sentiment_months=sentiment_months, sentiment_ridge=sentiment_ridge, lm=lm, resid=resid)
    return score_v2(setup, [*setup.predictors(), *extra], progress=progress)


def _best_row(frame: pd.DataFrame, cfg: RippleV2Config) -> str | None:
    """The non-oracle, non-control row with the highest headline mean rank IC."""
    if frame.empty:
        return None
    col = f"ic_h{cfg.horizon}"
    part = frame[(frame["variant"] == cfg.variant) & ~frame["method"].isin([*ORACLES, *CONTROLS])]
    if part.empty:
        return None
    return str(part.groupby("method")[col].mean().idxmax())


def v2_tables(frame: pd.DataFrame, cfg: RippleV2Config) -> tuple[pd.DataFrame, ...]:
    """(summary, paired, power, by_variant, by_kind) from the per-event rows of every method (``per_event``): also
    for rows of several runs on the same events and candidates (``eval/v2_combine.py``)."""
    col, k = f"ic_h{cfg.horizon}", cfg.k
    boot = {"n_resamples": cfg.n_resamples, "confidence": cfg.confidence, "seed": cfg.seed}
    head = frame[frame["variant"] == cfg.variant]
    wide = head.pivot(index="event_id", columns="method", values=col)
    methods = list(dict.fromkeys(head["method"]))
    baselines = [b for b in cfg.baselines if b in methods]
    rows, paired_rows, power_rows = [], [], []
    for m in methods:
        part = head[head["method"] == m]
        ci = mean_ci(part[col], **boot)
        row = {"method": m, "events": ci.n, "mean rank IC": ci.mean, "CI low": ci.low, "CI high": ci.high}
        for b in baselines:
            if b != m:
                t = paired_test(wide[m], wide[b], **boot)
                row[f"p vs {b}"] = t.p_wilcoxon
                paired_rows.append({"method": m, "baseline": b, "events": t.n, "mean difference": t.diff,
                                    "CI low": t.low, "CI high": t.high, "p bootstrap": t.p_bootstrap,
                                    "p Wilcoxon": t.p_wilcoxon, "sd of differences": t.sd})
                if b == baselines[0]:
                    power_rows.append({"method": m, "vs": b, "sd of differences": t.sd,
                                       **{f"events for {d:g}": events_needed(d, t.sd, cfg.power)
                                          for d in cfg.power_differences}})
            else:
                row[f"p vs {b}"] = np.nan
        row.update({f"recall@{k}": part[f"recall@{k}"].mean(), f"precision@{k}": part[f"precision@{k}"].mean(),
                    f"NDCG@{k}": part[f"ndcg@{k}"].mean(), "corr planted": part["corr_planted"].mean(),
                    "sign acc": part["sign_acc"].mean(), "refused": int(part["refused"].sum()),
                    "no ranking": int(part["constant"].sum()), "named outside": int(part["outside"].sum()),
                    "IC undefined": ci.dropped})
        rows.append(row)
    by_variant = []
    horizons = sorted(int(c[4:]) for c in frame.columns if c.startswith("ic_h"))
    for m in methods:
        row = {"method": m}
        for v in ("focal", "named"):
            for h in horizons:
                ci = mean_ci(frame.loc[(frame["method"] == m) & (frame["variant"] == v), f"ic_h{h}"], **boot)
                row[f"{v} 0..+{h}"] = f"{ci.mean:.4f} [{ci.low:.4f}, {ci.high:.4f}]"
        by_variant.append(row)
    by_kind = []
    if head["kind"].astype(bool).any():
        for m in methods:
            row = {"method": m}
            for kind, part in head[head["method"] == m].groupby("kind"):
                ci = mean_ci(part[col], **boot)
                row[f"{kind} (n={ci.n})"] = f"{ci.mean:.4f} [{ci.low:.4f}, {ci.high:.4f}]"
            by_kind.append(row)
    return (pd.DataFrame(rows), pd.DataFrame(paired_rows), pd.DataFrame(power_rows), pd.DataFrame(by_variant),
            pd.DataFrame(by_kind))
