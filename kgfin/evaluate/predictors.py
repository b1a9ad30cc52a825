"""Ripple predictors: one protocol for every method, a registry by name.

A :class:`Predictor` takes events and a :class:`RippleContext` (the market, the point-in-time
graphs, the candidate sets) and returns, per event, :class:`EventScores` over that event's
candidates (:mod:`kgfin.graph.candidates`): the ripple evaluation v2 scores every method on
the same rows, with no per-method branches.

Registered predictors (:data:`PREDICTORS`, :func:`build_predictor`):

* ``random``: standard normal scores, ``random_draws`` draws per event (metrics averaged over the
  draws): the self-check of the metrics, its CI must contain 0;
* ``graph_distance``: ``news sign / hops`` from the focal firm in the month graph (any relation,
  undirected; 0 if unreachable);
* ``propagation_only``: the focal firm's headline-sentiment impact pushed through mu, as the paper
  tables' row (fixed sign per relation type);
* ``ridge_rule``: a ridge regression of candidates' realised window residuals on ``news sign x``
  the lagged graph's per-relation strengths (downstream, upstream, board, co-held, technology,
  named in the news), coefficients per event type, fitted on earlier events whose outcome window
  ended before the scored month began;
* ``gnn``: the relational graph neural network of :mod:`kgfin.gnn` (event type and news sign at the named
  firms, carried over the lagged graph's relations), refitted for each scored month on the events of the
  ``gnn.train_months`` before it whose outcome window ended before it began, early-stopped on the latest of them;
* ``rule_oracle``: the synthetic market's planted rule for the event's type, applied with the
  planted focal shock over the graph the methods see (the ceiling of a method that knows the
  rules; synthetic market only);
* ``oracle``: the planted shocks themselves (true graph; synthetic market only);
* ``graph_shuffled`` (negative control): ``propagation_only`` over the month's mu with company
  labels permuted (degrees kept);
* ``time_shuffled`` (negative control): each event scored, ticker by ticker, with another event's
  scores of the same type from the best non-oracle row (or ``time_shuffled_source``);
* the language-model methods (``zero_shot``, ``icl``, ``rag``, ``knowledge``, ``aligned``):
  :class:`LanguageModelPredictor`, :func:`kgfin.align.predict.predict_events` with the one
  :class:`~kgfin.align.decoding.Decoder`, each answer's propagated Z read on the candidates.

**Answers over the universe** (:class:`AnsweringPredictor`): ``propagation_only``, ``oracle`` and
the language-model rows also give each event's :class:`~kgfin.align.predict.Prediction` (Z over
every company of the graph month, with the reward terms) at one or more temperatures: what the
paper-analogue tables (:mod:`kgfin.evaluate.ripple`) are computed from. The same answers become
the v2 row through :class:`PredictionsPredictor`, so a language model answers each event once.

**News sign** (graph_distance, ridge_rule, the propagation rows): the sign of the headline-sentiment
model's focal impact (:func:`headline_sentiment`): a ridge regression of the focal firm's event-day
residual on the headline's embedding, fitted on the news of the ``sentiment_months`` months before
the first evaluated month. It reads the text only, never the evaluated outcome.

**Event type** (ridge_rule, rule_oracle, time_shuffled): on the synthetic market, the type its
text was written from (``truth/events``; the headlines of each type are distinct, so it is what
the text says, not what happened); without it every event has one type, ``all``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from pydantic import Field

from kgfin.align.config import AlignConfig, EventConfig
from kgfin.align.events import AlignInputError, news_events
from kgfin.align.predict import LLM_METHODS, Prediction
from kgfin.align.reward import PropagationConfig, propagate
from kgfin.config import KgfinConfig
from kgfin.data.calendar import add_months
from kgfin.data.loaders import MarketData
from kgfin.errors import KgfinError
from kgfin.gnn.config import GnnConfig
from kgfin.graph.candidates import CandidateSet, candidate_sets, event_seed
from kgfin.graph.snapshot import GraphSnapshot
from kgfin.llm.parse import Impacts

if TYPE_CHECKING:
    import scipy.sparse as sp

    from kgfin.align.impact_reward import ImpactReward
    from kgfin.data.synth.events import MonthGraph

__all__ = ["PREDICTORS", "AnsweringPredictor", "EventScores", "LanguageModelPredictor", "LanguageModelSetup", "Predictor",
           "PredictionsPredictor", "PredictorSettings", "RippleContext", "build_predictor", "check_predictors", "headline_sentiment", "icl_example",
           "prediction_scores", "register_predictor", "relation_features"]

log = logging.getLogger(__name__)

RELATION_FEATURES = ("downstream", "upstream", "board", "co_held", "tech", "named")


class PredictorSettings(KgfinConfig):
    """Settings of the non-language predictors."""

    random_draws: int = Field(20, ge=1, description="random: score vectors drawn per event (metrics averaged)")
    ridge_alpha: float = Field(1e-3, gt=0, description="ridge_rule: penalty (statsmodels fit_regularized alpha)")
    ridge_months: int = Field(12, ge=1, description="ridge_rule: months of earlier news it learns from")
    ridge_min_events: int = Field(
        8, ge=1, description="ridge_rule: an event type with fewer earlier events uses the coefficients pooled over "
                             "every type")
    hop_damping: float = Field(
        0.5, ge=0, le=1, description="rule_oracle: second supply-chain hop damping (the synthetic market's "
                                     "events.hop_damping)")
    gnn: GnnConfig = Field(default_factory=GnnConfig, description="gnn: the relational GNN (kgfin.gnn)")
    propagation: PropagationConfig = Field(
        default_factory=lambda: PropagationConfig(normalize="max_row"),
        description="propagation_only, graph_shuffled: how the focal firm's impact spreads over mu (the baseline's "
                    "own setting, so that a recipe reading language-model answers out another way, "
                    "align.impact.reward.propagation, leaves the baseline as it is)")
    time_shuffled_source: str | None = Field(
        None, description="time_shuffled: the row whose scores it reuses (None: the best non-oracle row by mean "
                          "rank IC)")


@dataclass
class EventScores:
    """One method's scores over one event's candidates: (C,), or (D, C) for D random draws."""

    scores: np.ndarray
    refused: bool = False
    outside: tuple[str, ...] = ()  # firms the method named outside the candidate set (reported, not scored)


@dataclass
class LanguageModelSetup:
    """What the language-model predictors need beyond the align section."""

    adapters_root: Path = Path("adapters")
    aligned_dir: Path | None = None
    max_new_tokens: int = 160
    batch_size: int = 8
    context_facts: int = 40
    seed: int = 0


@dataclass
class RippleContext:
    """Everything a predictor may read. Predictors that learn read only outcomes that ended before the day they
    score (``moves`` is indexed by window start; ``window_end`` gives each start's last day)."""

    market: MarketData
    read_snapshot: Callable[[str], GraphSnapshot]
    events: pd.DataFrame  # evaluated events: EVENT_COLUMNS + event_type
    candidates: dict[str, CandidateSet]
    align: AlignConfig
    resid: pd.DataFrame  # long residuals (date, ticker, resid) of align.impact.residuals
    moves: pd.DataFrame  # (window start x ticker) realised residual over the primary window
    window_end: pd.Series  # window start -> its last trading day
    embed: Callable[[list[str]], np.ndarray] | None = None
    impacts: pd.DataFrame | None = None  # truth/impacts (oracles only)
    planted: pd.DataFrame | None = None  # truth/events indexed by event_id (event types; focal shocks for oracles)
    settings: PredictorSettings = field(default_factory=PredictorSettings)
    sentiment_months: int = 12
    sentiment_ridge: float = 1.0
    n_random: int = 20  # random non-neighbours per candidate set (for the candidate sets of training events)
    seed: int = 0
    lm: LanguageModelSetup = field(default_factory=LanguageModelSetup)
    rows: dict[str, dict[str, EventScores]] = field(default_factory=dict)  # rows scored so far (for the controls)
    best_row: str | None = None
    impact_reward: ImpactReward | None = None  # the paper tables' reward over these events (else built on demand)
    _cache: dict = field(default_factory=dict, repr=False)

    def snapshot(self, month: str) -> GraphSnapshot:
        key = ("snap", month)
        if key not in self._cache:
            self._cache[key] = self.read_snapshot(month)
        return self._cache[key]

    def has_snapshot(self, month: str) -> bool:
        """Whether graph month ``month`` can be read (an earlier month than the data's first has none)."""
        try:
            self.snapshot(month)
        except KgfinError:
            return False
        return True

    def mu(self, month: str) -> sp.csr_matrix:
        key = ("mu", month)
        if key not in self._cache:
            self._cache[key] = self.snapshot(month).mu()
        return self._cache[key]

    def event_type(self, event_id: str) -> str:
        if self.planted is None or event_id not in self.planted.index:
            return "all"
        return str(self.planted.loc[event_id, "event_type"])

    def focal_impact(self, events: pd.DataFrame) -> pd.Series:
        """Event id -> the headline-sentiment model's focal impact score in [-10, 10] (fitted once, cached)."""
        model = self._cache.get("sentiment")
        if model is None:
            if self.embed is None:
                raise AlignInputError("the news sign needs a text embedder (embed)")
            first = min(self.events["month"])
            model = headline_sentiment(self.market, first, self.sentiment_months, self.sentiment_ridge, self.align,
                                       self.embed, self.resid)
            self._cache["sentiment"] = model
        known: dict[str, float] = self._cache.setdefault("focal", {})
        todo = events[~events["event_id"].astype(str).isin(known)]
        if len(todo):
            known.update(zip(todo["event_id"].astype(str), model(todo["headline"].tolist()), strict=True))
        return pd.Series([known[str(e)] for e in events["event_id"]], index=events["event_id"].astype(str))

    def reward(self) -> ImpactReward:
        """The evaluated events' reward object (universe, mu, propagation): how a language-model answer becomes Z."""
        if self.impact_reward is not None:
            return self.impact_reward
        if "reward" not in self._cache:
            from kgfin.align.impact_reward import build_impact_reward

            self._cache["reward"], _ = build_impact_reward(
                self.events, self.market, self.read_snapshot, self.align.impact, require_outcome=False,
                prefix=self.align.decoding.answer_prefix, resid=self.resid)
        return self._cache["reward"]


@runtime_checkable
class Predictor(Protocol):
    """Scores each event's candidates. ``uses_rows``: it reads other rows' scores (``ctx.rows``), so it runs after
    them."""

    name: str
    uses_rows: bool

    def predict(self, events: pd.DataFrame, ctx: RippleContext) -> dict[str, EventScores]: ...


@runtime_checkable
class AnsweringPredictor(Predictor, Protocol):
    """A predictor that also answers over the whole universe: per temperature, one
    :class:`~kgfin.align.predict.Prediction` per event (Z over ``ctx.reward().tickers``), the input of the
    paper-analogue tables. ``generates``: its answers are generated text (sampled at every temperature asked; its
    refusals and raw replies are reported); otherwise it is deterministic and answers at temperature 0 only."""

    generates: bool

    def answers(self, events: pd.DataFrame, ctx: RippleContext,
                temperatures: Sequence[float] = (0.0,)) -> dict[float, list[Prediction]]: ...


PREDICTORS: dict[str, Callable[[], Predictor]] = {}


def register_predictor(name: str) -> Callable[[Callable[[], Predictor]], Callable[[], Predictor]]:
    """Register a predictor factory under ``name`` (a class with a no-argument constructor will do)."""

    def deco(factory: Callable[[], Predictor]) -> Callable[[], Predictor]:
        if name in PREDICTORS:
            raise KgfinError(f"predictor {name!r} is already registered")
        PREDICTORS[name] = factory
        return factory

    return deco


def check_predictors(names: Sequence[str]) -> None:
    """A ValueError (for config validators) naming every name in ``names`` that is not a registered predictor."""
    unknown = [n for n in names if n not in PREDICTORS]
    if unknown:
        raise ValueError(f"unknown predictor(s) {unknown} (known: {', '.join(sorted(PREDICTORS))})")


def build_predictor(name: str) -> Predictor:
    """The registered predictor ``name``."""
    if name not in PREDICTORS:
        import difflib

        close = difflib.get_close_matches(name, PREDICTORS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(sorted(PREDICTORS))})"
        raise KgfinError(f"unknown ripple predictor {name!r}{hint}")
    return PREDICTORS[name]()


# --- shared pieces -------------------------------------------------------------------------------


def headline_sentiment(market: MarketData, first_month: str, months: int, ridge: float, align_cfg: AlignConfig,
                       embed: Callable[[list[str]], np.ndarray], resid: pd.DataFrame
                       ) -> Callable[[list[str]], np.ndarray]:
    """Ridge regression of the focal firm's event-day residual (in impact-score units) on the headline embedding,
    fitted on the news of the ``months`` months before ``first_month`` (point in time); returns headlines -> scores
    clipped to [-10, 10]."""
    import statsmodels.api as sm

    past = [add_months(first_month, -k) for k in range(months, 0, -1)]
    train = news_events(market, past, EventConfig(max_events_per_month=None, graph_lag_months=0))
    train = train[train["day"] < pd.Timestamp(f"{first_month}-01")]
    target = resid.set_index(["date", "ticker"])["resid"]
    keys = pd.MultiIndex.from_arrays([pd.DatetimeIndex(train["day"]), train["tickers"].map(lambda t: t[0])])
    y = target.reindex(keys).to_numpy()
    ok = np.isfinite(y)
    if ok.sum() < 20:
        raise AlignInputError(f"the headline-sentiment model has {int(ok.sum())} earlier events with residuals; "
                              "it needs at least 20 (evaluate later months or raise sentiment_months)")
    x = embed(train["headline"][ok].tolist())
    x = np.column_stack([np.ones(len(x)), x])
    fit = sm.OLS(y[ok] / align_cfg.impact.score_unit, x).fit_regularized(alpha=ridge / len(x), L1_wt=0.0)
    coef = np.asarray(fit.params)
    return lambda headlines: np.clip(np.column_stack([np.ones(len(headlines)), embed(headlines)]) @ coef, -10, 10)


def icl_example(market: MarketData, read_snapshot: Callable[[str], GraphSnapshot], align_cfg: AlignConfig,
                first: str, resid: pd.DataFrame) -> tuple[str, str]:
    """The ICL method's worked example: one event before month ``first`` answered with its realised residuals (the
    focal firm and its three strongest-moving neighbours)."""
    import json

    from kgfin.align.impact_reward import build_impact_reward
    from kgfin.llm.prompts import event_messages

    earlier = news_events(market, [add_months(first, -1)], align_cfg.events.model_copy(
        update={"max_events_per_month": None}))
    earlier = earlier[earlier["day"] < pd.Timestamp(f"{first}-01")]
    ex_reward, earlier = build_impact_reward(earlier, market, read_snapshot, align_cfg.impact, resid=resid)
    row = earlier.iloc[0]
    eps = ex_reward.eps[str(row["event_id"])]
    tickers = list(ex_reward.tickers)
    snap = read_snapshot(row["graph_month"])
    mu = ex_reward.mu[row["graph_month"]]
    focal = tickers.index(row["tickers"][0])
    linked = set(mu.getrow(focal).indices) | set(mu.getcol(focal).indices)
    chosen = [focal] + sorted(linked, key=lambda j: -abs(eps[j]))[:3]
    names = dict(zip(snap.companies["ticker"], snap.companies["name"], strict=True))
    scores = {j: int(np.clip(round(eps[j] / align_cfg.impact.score_unit), -10, 10)) for j in chosen}
    items = [{"name": f"{names[tickers[j]]} ({tickers[j]})", "impact_type": "negative" if s < 0 else "positive",
              "impact_score": s} for j, s in scores.items()]
    answer = json.dumps({"impact_analysis": {"affected_companies": items,
                                             "analysis": "Scores from the realised abnormal returns."}})
    return event_messages(earlier.iloc[[0]])[0], answer


def relation_features(snapshot: GraphSnapshot, focal: str, tickers: Sequence[str]) -> np.ndarray:
    """(C, 5) strength of each candidate's link to ``focal`` per relation: downstream (focal supplies it: its
    purchase share from focal), upstream (it supplies focal: its sales share to focal), board, co-held, technology
    (the edges' weights); 0 where unlinked."""
    pos = {t: i for i, t in enumerate(tickers)}
    out = np.zeros((len(tickers), 5))
    sup = snapshot.edges["SUPPLIES"]
    down = sup[sup["source"] == focal]
    for t, w in zip(down["target"], down["weight"], strict=True):
        if t in pos:
            out[pos[t], 0] = w
    up = sup[sup["target"] == focal]
    for t, w in zip(up["source"], up["reverse_weight"], strict=True):
        if t in pos:
            out[pos[t], 1] = w
    for col, rel in ((2, "SHARES_DIRECTOR"), (3, "CO_HELD"), (4, "TECH_SIMILAR")):
        frame = snapshot.edges[rel]
        for a, b in (("source", "target"), ("target", "source")):
            mine = frame[frame[a] == focal]
            for t, w in zip(mine[b], mine["weight"], strict=True):
                if t in pos:
                    out[pos[t], col] = w
    return out


def _universe_vector(ctx: RippleContext, row: pd.Series | tuple, value: float) -> tuple[np.ndarray, list[str]]:
    snap = ctx.snapshot(str(row.graph_month))
    tickers = snap.tickers
    y = np.zeros(len(tickers))
    focal = str(row.tickers[0])
    if focal in snap.index:
        y[snap.index[focal]] = value
    return y, tickers


def _on_candidates(z: np.ndarray, universe: Sequence[str], cand: CandidateSet) -> np.ndarray:
    pos = {t: i for i, t in enumerate(universe)}
    return np.array([z[pos[t]] if t in pos else 0.0 for t in cand.tickers])


def prediction_scores(preds: Sequence[Prediction], tickers: Sequence[str], candidates: dict[str, CandidateSet]
                      ) -> dict[str, EventScores]:
    """Language-model predictions (their propagated Z over ``tickers``) as scores over the candidates: a refusal
    scores 0 everywhere; firms the answer names outside the set and outside the news are reported."""
    out = {}
    for p in preds:
        cand = candidates[p.event_id]
        outside = tuple(sorted(t for t in p.scored.impacts.scores
                               if t not in cand.tickers and t not in cand.named))
        scores = np.zeros(len(cand)) if p.scored.refused else _on_candidates(p.scored.z, tickers, cand)
        out[p.event_id] = EventScores(scores, refused=p.scored.refused, outside=outside)
    return out


# --- the predictors ------------------------------------------------------------------------------


@register_predictor("random")
class RandomPredictor:
    """Standard normal scores, ``random_draws`` draws per event, seeded by event id."""

    name, uses_rows = "random", False

    def predict(self, events: pd.DataFrame, ctx: RippleContext) -> dict[str, EventScores]:
        d = ctx.settings.random_draws
        return {str(e): EventScores(event_seed(ctx.seed, str(e), stream=1).standard_normal((d, len(ctx.candidates[str(e)]))))
                for e in events["event_id"]}


class _Propagation:
    """The focal firm's sentiment impact propagated over a month's mu (``shuffled``: labels permuted)."""

    uses_rows = False
    shuffled = False
    generates = False

    def _mu(self, ctx: RippleContext, month: str) -> sp.csr_matrix:
        mu = ctx.mu(month)
        if not self.shuffled:
            return mu
        key = ("shuffled_mu", month)
        if key not in ctx._cache:
            perm = np.random.default_rng([ctx.seed, int(month.replace("-", "")), 7]).permutation(mu.shape[0])
            ctx._cache[key] = mu[perm][:, perm].tocsr()  # node i carries node perm[i]'s links: degrees kept
        return ctx._cache[key]

    def predict(self, events: pd.DataFrame, ctx: RippleContext) -> dict[str, EventScores]:
        focal = ctx.focal_impact(events)
        unit = ctx.align.impact.score_unit
        out = {}
        for row in events.itertuples(index=False):
            eid = str(row.event_id)
            y, tickers = _universe_vector(ctx, row, focal[eid] * unit)
            z = propagate(self._mu(ctx, str(row.graph_month)), y, ctx.settings.propagation)
            out[eid] = EventScores(_on_candidates(z, tickers, ctx.candidates[eid]))
        return out

    def answers(self, events: pd.DataFrame, ctx: RippleContext,
                temperatures: Sequence[float] = (0.0,)) -> dict[float, list[Prediction]]:
        """The same Z over the reward's universe: the focal firm's impact as the answer, propagated over mu."""
        reward, focal = ctx.reward(), ctx.focal_impact(events)
        pos = {t: i for i, t in enumerate(reward.tickers)}
        out = []
        for row in events.itertuples(index=False):
            eid, name = str(row.event_id), str(row.tickers[0])
            y = np.zeros(len(pos))
            if name in pos:
                y[pos[name]] = focal[eid] * ctx.align.impact.score_unit
            scored = reward.score_vectors(eid, Impacts(scores={name: float(focal[eid])}), y,
                                          mu=self._mu(ctx, str(row.graph_month)))
            out.append(Prediction(eid, pd.Timestamp(row.day), str(row.graph_month), "", scored))
        return {0.0: out}


@register_predictor("propagation_only")
class PropagationOnly(_Propagation):
    """The paper tables' propagation-only row, on the candidates."""

    name = "propagation_only"


@register_predictor("graph_shuffled")
class GraphShuffled(_Propagation):
    """Negative control: propagation over the month's mu with company labels permuted (degrees kept)."""

    name, shuffled = "graph_shuffled", True


@register_predictor("graph_distance")
class GraphDistance:
    """``news sign / hops`` from the focal firm in the month graph (every relation, undirected)."""

    name, uses_rows = "graph_distance", False

    def predict(self, events: pd.DataFrame, ctx: RippleContext) -> dict[str, EventScores]:
        import networkx as nx

        sign = np.sign(ctx.focal_impact(events))
        graphs: dict[str, nx.Graph] = {}
        out = {}
        for row in events.itertuples(index=False):
            eid, g = str(row.event_id), str(row.graph_month)
            if g not in graphs:
                edges = ctx.snapshot(g).edge_table()
                graphs[g] = nx.Graph()
                graphs[g].add_nodes_from(ctx.snapshot(g).tickers)
                graphs[g].add_edges_from(zip(edges["source"], edges["target"], strict=True))
            hops = nx.single_source_shortest_path_length(graphs[g], str(row.tickers[0]))
            cand = ctx.candidates[eid]
            out[eid] = EventScores(np.array([sign[eid] / hops[t] if hops.get(t, 0) > 0 else 0.0
                                             for t in cand.tickers]))
        return out


@register_predictor("ridge_rule")
class RidgeRule:
    """Per-event-type ridge of candidates' realised window residuals on news sign x relation strengths, refitted for
    each scored month on the events of the ``ridge_months`` before it whose outcome window ended before it began."""

    name, uses_rows = "ridge_rule", False

    def _design(self, events: pd.DataFrame, cands: dict[str, CandidateSet], ctx: RippleContext
                ) -> dict[str, np.ndarray]:
        sign = np.sign(ctx.focal_impact(events))
        out = {}
        for row in events.itertuples(index=False):
            eid = str(row.event_id)
            c = cands[eid]
            x = relation_features(ctx.snapshot(str(row.graph_month)), c.focal, c.tickers)
            named = np.array([t in c.named for t in c.tickers], dtype=float)[:, None]
            out[eid] = sign[eid] * np.hstack([x, named])  # (C, 6)
        return out

    def _fit(self, month: str, ctx: RippleContext) -> dict[str, np.ndarray]:
        import statsmodels.api as sm

        start = pd.Timestamp(f"{month}-01")
        past = [add_months(month, -k) for k in range(ctx.settings.ridge_months, 0, -1)]
        train = news_events(ctx.market, past, ctx.align.events.model_copy(update={"max_events_per_month": None}))
        ends = ctx.window_end.reindex(pd.DatetimeIndex(train["day"])).to_numpy()
        train = train[pd.notna(ends) & (ends < np.datetime64(start))]  # outcome known by then
        graphs = {g for g in train["graph_month"].unique() if ctx.has_snapshot(str(g))}
        train = train[train["graph_month"].isin(graphs)].reset_index(drop=True)  # news before the first graph month
        cands = candidate_sets(train, ctx.snapshot, ctx.n_random, ctx.seed)
        design = self._design(train, cands, ctx)
        xs: dict[str, list[np.ndarray]] = {}
        ys: dict[str, list[np.ndarray]] = {}
        for row in train.itertuples(index=False):
            eid = str(row.event_id)
            c = cands[eid]
            y = ctx.moves.loc[pd.Timestamp(row.day)].reindex(list(c.tickers)).to_numpy(dtype=float)
            ok = np.isfinite(y)
            for key in (ctx.event_type(eid), "*pooled*"):
                xs.setdefault(key, []).append(design[eid][ok])
                ys.setdefault(key, []).append(y[ok])
        counts = pd.Series([ctx.event_type(str(e)) for e in train["event_id"]]).value_counts()
        coefs = {}
        for key, x in xs.items():
            if key != "*pooled*" and counts.get(key, 0) < ctx.settings.ridge_min_events:
                continue
            fit = sm.OLS(np.concatenate(ys[key]), np.vstack(x)).fit_regularized(alpha=ctx.settings.ridge_alpha,
                                                                                 L1_wt=0.0)
            coefs[key] = np.asarray(fit.params)
        log.info("ridge_rule %s: %d training events before %s, %d types with own coefficients", month, len(train),
                 start.date(), len(coefs) - 1)
        return coefs

    def predict(self, events: pd.DataFrame, ctx: RippleContext) -> dict[str, EventScores]:
        design = self._design(events, ctx.candidates, ctx)
        out = {}
        for month, part in events.groupby("month", sort=True):
            coefs = self._fit(str(month), ctx)
            pooled = coefs.get("*pooled*", np.zeros(len(RELATION_FEATURES)))
            for eid in part["event_id"].astype(str):
                out[eid] = EventScores(design[eid] @ coefs.get(ctx.event_type(eid), pooled))
        return out


@register_predictor("gnn")
@dataclass
class GnnPredictor:
    """The relational GNN (:func:`kgfin.gnn.gnn_ripple_scores`) read on the candidates; ``config`` None: the
    settings' ``gnn`` (the relation ablation passes its own)."""

    name: str = "gnn"
    config: GnnConfig | None = None
    uses_rows: bool = False
    fits: dict = field(default_factory=dict, repr=False)  # scored month -> the last run's kgfin.gnn.FitReport per seed

    def predict(self, events: pd.DataFrame, ctx: RippleContext) -> dict[str, EventScores]:
        from kgfin.gnn import gnn_ripple_scores

        cfg = self.config or ctx.settings.gnn
        months = sorted(events["month"].astype(str).unique())
        past = [add_months(months[0], -k) for k in range(cfg.train_months, 0, -1)]
        history = news_events(ctx.market, past + months, ctx.align.events.model_copy(
            update={"max_events_per_month": None}))
        inputs = [frame.assign(event_type=[ctx.event_type(str(e)) for e in frame["event_id"]],
                               sign=np.sign(ctx.focal_impact(frame).to_numpy())) for frame in (events, history)]
        got = gnn_ripple_scores(*inputs, ctx.snapshot, ctx.moves, ctx.window_end, cfg)
        self.fits = got.fits
        return {str(e): EventScores(got.series(str(e)).reindex(list(ctx.candidates[str(e)].tickers)).fillna(0.0)
                                    .to_numpy(dtype=float)) for e in events["event_id"]}


def _need_truth(ctx: RippleContext, name: str) -> None:
    if ctx.impacts is None or ctx.planted is None:
        raise AlignInputError(f"{name} needs the planted truth (a synthetic market's truth/ folder)")


@register_predictor("oracle")
class PlantedOracle:
    """The planted shocks (event day) on the candidates: what the true graph and rules did."""

    name, uses_rows, generates = "oracle", False, False

    @staticmethod
    def _shocks(ctx: RippleContext) -> dict[str, dict[str, float]]:
        _need_truth(ctx, "oracle")
        assert ctx.impacts is not None
        return {str(e): dict(zip(g["ticker"], g["shock"].astype(float), strict=True))
                for e, g in ctx.impacts.groupby("event_id")}

    def predict(self, events: pd.DataFrame, ctx: RippleContext) -> dict[str, EventScores]:
        by_event = self._shocks(ctx)
        return {str(e): EventScores(np.array([by_event.get(str(e), {}).get(t, 0.0)
                                              for t in ctx.candidates[str(e)].tickers], dtype=float))
                for e in events["event_id"]}

    def answers(self, events: pd.DataFrame, ctx: RippleContext,
                temperatures: Sequence[float] = (0.0,)) -> dict[float, list[Prediction]]:
        """The planted shocks as Z over the reward's universe (nothing is named, nothing propagated)."""
        by_event, reward = self._shocks(ctx), ctx.reward()
        out = []
        for row in events.itertuples(index=False):
            eid = str(row.event_id)
            z = np.array([by_event.get(eid, {}).get(t, 0.0) for t in reward.tickers], dtype=float)
            out.append(Prediction(eid, pd.Timestamp(row.day), str(row.graph_month), "",
                                  reward.score_vectors(eid, Impacts(), z, z=z)))
        return {0.0: out}


@register_predictor("rule_oracle")
class RuleOracle:
    """The synthetic market's rule for the event's type, with the planted focal shock, over the graph the methods
    see (observed strengths as the market defines its true ones: sqrt of supply shares, board and co-held weights,
    technical similarity)."""

    name, uses_rows = "rule_oracle", False

    @staticmethod
    def month_graph(snapshot: GraphSnapshot) -> MonthGraph:
        import scipy.sparse as sp

        from kgfin.data.synth.events import MonthGraph

        idx, n = snapshot.index, len(snapshot.tickers)

        def mat(rows: pd.Series, cols: pd.Series, vals: np.ndarray, symmetric: bool) -> sp.csr_matrix:
            i, j = rows.map(idx).to_numpy(dtype=int), cols.map(idx).to_numpy(dtype=int)
            if symmetric:
                i, j, vals = np.r_[i, j], np.r_[j, i], np.r_[vals, vals]
            return sp.csr_matrix((vals, (i, j)), shape=(n, n))

        e = snapshot.edges
        sup = e["SUPPLIES"]
        return MonthGraph(
            customers=mat(sup["source"], sup["target"], np.sqrt(sup["weight"].to_numpy(dtype=float)), False),
            suppliers=mat(sup["target"], sup["source"], np.sqrt(sup["reverse_weight"].to_numpy(dtype=float)), False),
            tech_peers=mat(e["TECH_SIMILAR"]["source"], e["TECH_SIMILAR"]["target"],
                           e["TECH_SIMILAR"]["weight"].to_numpy(dtype=float), True),
            board=mat(e["SHARES_DIRECTOR"]["source"], e["SHARES_DIRECTOR"]["target"],
                      e["SHARES_DIRECTOR"]["weight"].to_numpy(dtype=float), True),
            fund=mat(e["CO_HELD"]["source"], e["CO_HELD"]["target"], e["CO_HELD"]["weight"].to_numpy(dtype=float), True))

    def predict(self, events: pd.DataFrame, ctx: RippleContext) -> dict[str, EventScores]:
        from kgfin.data.synth.events import EVENT_BY_NAME
        from kgfin.data.synth.events import propagate as plant

        _need_truth(ctx, self.name)
        assert ctx.planted is not None
        out = {}
        for row in events.itertuples(index=False):
            eid, g = str(row.event_id), str(row.graph_month)
            key = ("month_graph", g)
            if key not in ctx._cache:
                ctx._cache[key] = self.month_graph(ctx.snapshot(g))
            snap, cand = ctx.snapshot(g), ctx.candidates[eid]
            ev = ctx.planted.loc[eid]
            z = np.zeros(len(snap.tickers))
            focal = snap.index.get(cand.focal)
            if focal is not None:
                cp = snap.index.get(str(ev["counterpart"])) if ev["counterpart"] else None
                for eff in plant(EVENT_BY_NAME[str(ev["event_type"])], focal, cp, float(ev["focal_shock"]),
                                 ctx._cache[key], ctx.settings.hop_damping):
                    z[eff.node] += eff.shock
            out[eid] = EventScores(_on_candidates(z, snap.tickers, cand))
        return out


@register_predictor("time_shuffled")
class TimeShuffled:
    """Negative control: each event scored with another event's scores of the same type (seeded choice), ticker by
    ticker, from the source row; a ticker the other event did not score gets 0."""

    name, uses_rows = "time_shuffled", True

    def predict(self, events: pd.DataFrame, ctx: RippleContext) -> dict[str, EventScores]:
        source = ctx.settings.time_shuffled_source or ctx.best_row
        if source is None or source not in ctx.rows:
            raise AlignInputError(f"time_shuffled needs the scores of its source row {source!r}: run it first")
        rows = ctx.rows[source]
        ids = [str(e) for e in ctx.events["event_id"] if str(e) in rows]
        by_type: dict[str, list[str]] = {}
        for e in ids:
            by_type.setdefault(ctx.event_type(e), []).append(e)
        out = {}
        for eid in events["event_id"].astype(str):
            pool = [e for e in by_type.get(ctx.event_type(eid), []) if e != eid]
            cand = ctx.candidates[eid]
            if not pool:
                out[eid] = EventScores(np.zeros(len(cand)))
                continue
            other = pool[int(event_seed(ctx.seed, eid, stream=2).integers(len(pool)))]
            s = rows[other].scores
            lookup = dict(zip(ctx.candidates[other].tickers, s.mean(axis=0) if s.ndim == 2 else s, strict=True))
            out[eid] = EventScores(np.array([lookup.get(t, 0.0) for t in cand.tickers]))
        return out


@dataclass
class LanguageModelPredictor:
    """A language-model method (:data:`~kgfin.align.predict.LLM_METHODS`) as a predictor: answers decoded by the
    align section's one Decoder (built once per context), propagated over mu (the reward's propagation), read on
    the candidates."""

    name: str
    uses_rows: bool = False
    generates: bool = True

    def answers(self, events: pd.DataFrame, ctx: RippleContext,
                temperatures: Sequence[float] = (0.0,)) -> dict[float, list[Prediction]]:
        """Greedy answers at temperature 0 and sampled ones at the others (each model loaded once per month)."""
        from kgfin.align.decoding import Decoder
        from kgfin.align.predict import ModelVariant, embedding_similarity, predict_events

        reward = ctx.reward()
        if "decoder" not in ctx._cache:
            ctx._cache["decoder"] = Decoder.for_months(ctx.align.decoding, reward.universe, ctx.market,
                                                       sorted(ctx.events["month"].unique()), ctx.align.events)
        example = None
        if self.name == "icl":
            example = icl_example(ctx.market, ctx.read_snapshot, ctx.align, min(ctx.events["month"]), ctx.resid)
        rag = None
        if self.name == "rag":
            if ctx.embed is None:
                raise AlignInputError("the rag method needs a text embedder (embed)")
            rag = embedding_similarity(ctx.embed)
        variant = ModelVariant(self.name, ctx.lm.context_facts, example, ctx.lm.aligned_dir)  # type: ignore[arg-type]
        return predict_events(variant, events, reward, ctx.read_snapshot, ctx.align, ctx.lm.adapters_root,
                              decoder=ctx._cache["decoder"], temperatures=list(temperatures),
                              max_new_tokens=ctx.lm.max_new_tokens, batch_size=ctx.lm.batch_size, seed=ctx.lm.seed,
                              rag_scores=rag)

    def predict(self, events: pd.DataFrame, ctx: RippleContext) -> dict[str, EventScores]:
        return prediction_scores(self.answers(events, ctx, [0.0])[0.0], ctx.reward().tickers, ctx.candidates)


@dataclass
class PredictionsPredictor:
    """Predictions made elsewhere (e.g. the paper tables' language-model answers) as a predictor row."""

    name: str
    predictions: Sequence[Prediction]
    tickers: Sequence[str]
    uses_rows: bool = False

    def predict(self, events: pd.DataFrame, ctx: RippleContext) -> dict[str, EventScores]:
        wanted = set(events["event_id"].astype(str))
        return prediction_scores([p for p in self.predictions if p.event_id in wanted], self.tickers, ctx.candidates)


for _method in LLM_METHODS:
    register_predictor(_method)(lambda m=_method: LanguageModelPredictor(m))
