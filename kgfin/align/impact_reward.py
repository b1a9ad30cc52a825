"""The market reward of one answer: parse it, spread it over the graph, compare with residual returns.

For an event priced on day d and read with the graph of month g (see
:mod:`kgfin.align.events`)::

    Y_j = impact_score_j * score_unit            (0 for companies the answer does not name)
    Z   = propagate(mu_g, Y)                     (kgfin.align.reward.propagate)
    R   = cos(Z, eps_d) + lam * coverage(Z, eps_d)

with ``eps_d`` the CAPM (or FF3 / FF5) residual returns of every company on day d, from
loadings fitted on the days before (point in time, :func:`kgfin.market.residuals`). That is
``reward.kind: paper``; the candidate rewards (``candidate_mse``, ``rank_ic``, ``sized_ripple``, the
default; :mod:`kgfin.align.reward`) instead read ``Z`` on the event's candidate set
(:func:`kgfin.graph.candidates.candidate_sets`, as the ripple evaluation v2 does) against the
candidates' residual moves over days ``d .. d + horizon`` (candidates with no residual in the
window are left out, as in the evaluation). An
answer that is a refusal (:func:`kgfin.llm.parse.parse_impacts`: unparsable, no known
company, or a copy of the prompt's example) earns ``refusal_reward``: copying the example
can never beat answering.

With ``scope="batch"`` (``experimental.reward_scope``) an answer is scored on its news item
stacked with the other items of the same call (a PPO step's batch), each of those represented
by the mean ``Z`` of its answers: ``R([Z; Zbar_others], [eps; eps_others])``. The formula is
the same; what changes is that an answer too large or too small for its news, relative to the
other news, now costs reward.

:meth:`ImpactReward.score_batch` returns one :class:`ScoredAnswer` per completion; the
alignment algorithms (:mod:`kgfin.align.algorithms`) wrap it in the reward-function calling
convention of kgfin's PPO and TRL's GRPO / RLOO trainers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kgfin.align.config import ImpactRewardConfig
from kgfin.align.events import AlignInputError
from kgfin.align.reward import candidate_mse, candidate_rank_ic, propagate, ripple_reward
from kgfin.data.loaders import MarketData
from kgfin.graph.candidates import candidate_sets
from kgfin.graph.snapshot import GraphSnapshot
from kgfin.llm.parse import Impacts, Universe, parse_impacts
from kgfin.market.residuals import residuals, window_moves

__all__ = ["EventCandidates", "ImpactReward", "ScoredAnswer", "build_impact_reward", "event_candidates"]


@dataclass(frozen=True)
class EventCandidates:
    """One event's candidates as the candidate rewards read them: universe indices, ripple mask, realised moves."""

    index: np.ndarray  # (C,) positions in the universe of the candidates with a realised move
    ripple: np.ndarray  # (C,) bool: candidates the news does not name (rank_ic's rows)
    moves: np.ndarray  # (C,) residual move over days d .. d + horizon


@dataclass
class ScoredAnswer:
    """One answer's parse, propagated ripple and reward terms."""

    impacts: Impacts
    y: np.ndarray  # (N,) direct impacts in return units
    z: np.ndarray  # (N,) propagated ripple
    cos: float
    coverage: float
    reward: float
    mse: float = float("nan")  # candidate_mse on the candidates (NaN without candidates)
    ic: float = float("nan")  # rank IC on the ripple candidates (NaN without candidates)

    @property
    def refused(self) -> bool:
        return self.impacts.refused


class ImpactReward:
    """The market reward over a fixed set of events: :meth:`score_batch` scores answers, returning them parsed,
    propagated and with their reward terms (it keeps no state)."""

    def __init__(
        self,
        universe: Universe,
        mu: dict[str, sp.csr_matrix],
        eps: dict[str, np.ndarray],
        graph_month: dict[str, str],
        config: ImpactRewardConfig | None = None,
        prefix: str = "",
        candidates: dict[str, EventCandidates] | None = None,
        focal: dict[str, str] | None = None,
    ):
        self.universe, self.mu, self.eps, self.graph_month = universe, mu, eps, graph_month
        self.focal = focal or {}  # event id -> the news' own company (its score is in impact.focal_score_unit)
        self.cfg = config or ImpactRewardConfig()
        self.prefix = prefix  # prefilled start of every answer: completions are parsed as prefix + completion
        self.candidates = candidates or {}
        if self.cfg.reward.kind != "paper" and set(eps) - set(self.candidates):
            raise AlignInputError(f"reward kind {self.cfg.reward.kind} needs every event's candidates "
                                  f"({len(set(eps) - set(self.candidates))} events have none)")

    @property
    def tickers(self) -> tuple[str, ...]:
        return self.universe.tickers

    def score(self, completion: str, event_id: str, prefixed: bool = False) -> ScoredAnswer:
        """Parse and score one answer to event ``event_id`` (``prefixed``: it already starts with the prefix)."""
        if event_id not in self.eps:
            raise AlignInputError(f"event {event_id!r} has no residual returns in this reward's event set")
        impacts = parse_impacts(completion if prefixed else self.prefix + completion, self.universe)
        if impacts.refused:
            zero = np.zeros(len(self.tickers))
            return ScoredAnswer(impacts, zero, zero, 0.0, 0.0, self.cfg.refusal_reward)
        y = np.asarray(impacts.vector(self.tickers)) * 10 * self._units(event_id)
        return self.score_vectors(event_id, impacts, y)

    def _units(self, event_id: str) -> float | np.ndarray:
        """Return per score point: ``score_unit``, or per company with the news' own on ``focal_score_unit``."""
        focal = self.focal.get(event_id)
        if self.cfg.focal_score_unit is None or focal not in self.tickers:
            return self.cfg.score_unit
        units = np.full(len(self.tickers), self.cfg.score_unit)
        units[self.tickers.index(focal)] = self.cfg.unit_of(focal=True)
        return units

    def score_vectors(self, event_id: str, impacts: Impacts, y: np.ndarray, z: np.ndarray | None = None,
                      mu: Any = None) -> ScoredAnswer:
        """Score direct impacts ``y`` (return units): ``z`` given, or ``y`` propagated over ``mu`` (default: the event's)."""
        if z is None:
            z = propagate(self.mu[self.graph_month[event_id]] if mu is None else mu, y, self.cfg.reward.propagation)
        eps = self.eps[event_id]
        cos = float(ripple_reward(z, eps, lam=0.0))
        total = float(ripple_reward(z, eps, lam=self.cfg.reward.lam))
        coverage = (total - cos) / self.cfg.reward.lam if self.cfg.reward.lam > 0 else 0.0
        cand = self.candidates.get(event_id)
        if cand is None:
            return ScoredAnswer(impacts, y, z, cos, coverage, total)
        zc = z[cand.index]
        mse, ic = candidate_mse(zc, cand.moves), candidate_rank_ic(zc[cand.ripple], cand.moves[cand.ripple])
        kind = self.cfg.reward.kind
        reward = {"paper": total, "candidate_mse": mse, "rank_ic": ic, "sized_ripple": 0.5 * mse + 0.5 * ic}[kind]
        return ScoredAnswer(impacts, y, z, cos, coverage, reward, mse, ic)

    def score_batch(self, completions: Sequence[Any], event_ids: Sequence[str], *,
                    scope: Literal["item", "batch"] = "item") -> list[ScoredAnswer]:
        """Score each completion against its event (TRL's chat-message completions accepted).

        ``scope="batch"``: rewards as :meth:`batch_scored` (each item stacked with the call's other items).
        """
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        if len(texts) != len(event_ids):
            raise AlignInputError(f"{len(texts)} completions for {len(event_ids)} event ids")
        ids = [str(e) for e in event_ids]
        scored = [self.score(t, e) for t, e in zip(texts, ids, strict=True)]
        return self.batch_scored(scored, ids) if scope == "batch" else scored

    def batch_scored(self, scored: Sequence[ScoredAnswer], event_ids: Sequence[str]) -> list[ScoredAnswer]:
        """``scored`` with each reward taken on the answer's item stacked with the batch's other items.

        The other items enter with the mean ``Z`` of their answers (refusals count as zero), so
        the answers to one item compete against the same context. ``cos`` and ``coverage`` stay
        the answer's own terms; a refusal keeps the refusal reward; a batch of one item scores
        as ``scope: item``.
        """
        zs: dict[str, list[np.ndarray]] = {}
        for s, e in zip(scored, event_ids, strict=True):
            zs.setdefault(e, []).append(s.z)
        mean_z = {e: np.mean(z, axis=0) for e, z in zs.items()}
        out = []
        for s, e in zip(scored, event_ids, strict=True):
            if s.refused:
                out.append(s)
                continue
            others = [o for o in mean_z if o != e]
            z = np.concatenate([s.z, *(mean_z[o] for o in others)])
            eps = np.concatenate([self.eps[e], *(self.eps[o] for o in others)])
            out.append(replace(s, reward=float(ripple_reward(z, eps, lam=self.cfg.reward.lam))))
        return out


def build_impact_reward(
    events: pd.DataFrame,
    market: MarketData,
    read_snapshot: Callable[[str], GraphSnapshot],
    config: ImpactRewardConfig | None = None,
    require_outcome: bool = True,
    prefix: str = "",
    resid: pd.DataFrame | None = None,
) -> tuple[ImpactReward, pd.DataFrame]:
    """The reward for ``events`` (from :func:`~kgfin.align.events.news_events`), and the events it can score.

    Residuals are fitted once on the whole return history (each day's loadings use earlier
    days only). Events whose day has no residual for a company they name (too early for a
    fitted beta, or after the data) are dropped, unless ``require_outcome`` is False
    (prediction): then they are kept with zero residuals (cos and coverage 0). ``resid``:
    the output of :func:`kgfin.market.residuals` for ``config.residuals``, if already fitted.
    """
    cfg = config or ImpactRewardConfig()
    if market.factors_daily is None or market.returns is None:
        raise AlignInputError("the reward needs the returns and daily factors tables")
    snaps = {m: read_snapshot(m) for m in sorted(events["graph_month"].unique())}
    first = next(iter(snaps.values()))
    tickers = first.tickers
    for m, s in snaps.items():
        if s.tickers != tickers:
            raise AlignInputError(f"graph month {m} lists other companies than {first.month}; rebuild the graphs")
    universe = Universe.from_frame(first.companies)
    if resid is None:
        resid = residuals(market.returns, market.factors_daily, cfg.residuals)
    wide = resid.pivot(index="date", columns="ticker", values="resid").reindex(columns=tickers)
    eps: dict[str, np.ndarray] = {}
    keep = []
    for row in events.itertuples(index=False):
        day = pd.Timestamp(row.day)
        ok = False
        if day in wide.index:
            vec = wide.loc[day]
            named = [t for t in row.tickers if t in vec.index]
            ok = bool(named) and bool(np.isfinite(vec[named].to_numpy(dtype=float)).all())
            if ok:
                eps[str(row.event_id)] = np.nan_to_num(vec.to_numpy(dtype=float), nan=0.0)
        if not ok and not require_outcome:
            eps[str(row.event_id)] = np.zeros(len(tickers))
            ok = True
        keep.append(ok)
    kept = events[np.asarray(keep, dtype=bool)].reset_index(drop=True)
    if kept.empty:
        raise AlignInputError("no event has residual returns on its day (the first year of data has no fitted betas)")
    mu = {m: s.mu() for m, s in snaps.items()}
    graph_month = dict(zip(kept["event_id"].astype(str), kept["graph_month"], strict=True))
    cands = event_candidates(kept, snaps.__getitem__, resid, tickers, cfg) if cfg.reward.kind != "paper" else None
    focal = {str(e): str(t[0]) for e, t in zip(kept["event_id"], kept["tickers"], strict=True)}
    return ImpactReward(universe, mu, eps, graph_month, cfg, prefix, cands, focal), kept


def event_candidates(events: pd.DataFrame, read_snapshot: Callable[[str], GraphSnapshot], resid: pd.DataFrame,
                     tickers: Sequence[str], config: ImpactRewardConfig) -> dict[str, EventCandidates]:
    """Each event's candidates (:func:`kgfin.graph.candidates.candidate_sets` with the config's random count and
    seed) with their residual moves over days ``d .. d + horizon`` (``resid``: long residuals); candidates without a
    move in the window (no fitted beta yet, past the data's end) are left out; an event outside the residuals' days
    (prediction) gets zero moves."""
    sets = candidate_sets(events, read_snapshot, config.random_candidates, config.candidate_seed)
    moves = window_moves(resid, config.horizon)
    position = {t: i for i, t in enumerate(tickers)}
    out = {}
    for row in events.itertuples(index=False):
        cand = sets[str(row.event_id)]
        day = pd.Timestamp(row.day)
        mv = (moves.loc[day].reindex(list(cand.tickers)).to_numpy(dtype=float) if day in moves.index
              else np.zeros(len(cand)))
        have = np.isfinite(mv)
        chosen = [t for t, ok in zip(cand.tickers, have, strict=True) if ok]
        out[str(row.event_id)] = EventCandidates(
            np.array([position[t] for t in chosen], dtype=int),
            np.array([t not in cand.named for t in chosen], dtype=bool), mv[have])
    return out
