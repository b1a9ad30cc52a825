"""GNN ripple scores, point in time: one model per scored month, trained on the events whose outcome it could know.

For each month ``m`` of the scored events: the training events are those of ``history`` from the
``train_months`` months before ``m`` whose outcome window ended before ``m`` began
(:func:`~kgfin.gnn.events.point_in_time`), less those whose graph month the store does not hold (a
warning: the store may begin after the earliest news); the latest of those months is the validation month
(early stopping), the rest are fitted (:func:`~kgfin.gnn.train.fit_gnn`), ``cfg.ensemble`` times with the
seeds ``cfg.seed``, ``cfg.seed + 1``, ...; the mean of those models' scores is the score of every firm of each
event's graph month. This is the ripple-score source the evaluation's ``gnn``
predictor reads on its candidates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kgfin.errors import KgfinError
from kgfin.gnn.config import GnnConfig
from kgfin.gnn.events import point_in_time, split_validation
from kgfin.gnn.graph import RelationGraph, relation_graph
from kgfin.gnn.train import FitReport, fit_gnn
from kgfin.graph.snapshot import GraphSnapshot

__all__ = ["GnnRippleScores", "gnn_ripple_scores"]

log = logging.getLogger(__name__)


@dataclass
class GnnRippleScores:
    """Per event, (N,) scores over ``tickers[event_id]`` (its graph month's firms); per month the fit report of
    each ensemble member (seed order)."""

    scores: dict[str, np.ndarray]
    tickers: dict[str, tuple[str, ...]]
    fits: dict[str, list[FitReport]] = field(default_factory=dict)

    def series(self, event_id: str) -> pd.Series:
        """One event's scores indexed by ticker."""
        return pd.Series(self.scores[event_id], index=list(self.tickers[event_id]))


def _readable(graph_of: Callable[[str], RelationGraph], month: str) -> bool:
    """Whether the graph month of training events can be read (the store may begin after the earliest news)."""
    try:
        graph_of(month)
    except KgfinError as exc:
        log.debug("graph month %s: %s", month, exc)
        return False
    return True


def gnn_ripple_scores(events: pd.DataFrame, history: pd.DataFrame, read_snapshot: Callable[[str], GraphSnapshot],
                      moves: pd.DataFrame, window_end: pd.Series, cfg: GnnConfig | None = None) -> GnnRippleScores:
    """Score ``events`` month by month with a GNN refitted on ``history``'s earlier events (module docstring).

    ``events`` and ``history``: :data:`~kgfin.gnn.events.EVENT_INPUT_COLUMNS`; ``moves``: window start x ticker,
    the realised residual over the outcome window; ``window_end``: window start -> its last trading day. Only the
    ``moves`` rows of training events whose window ended before the scored month are read.
    """
    cfg = cfg or GnnConfig()
    graphs: dict[str, RelationGraph] = {}

    def graph_of(month: str) -> RelationGraph:
        if month not in graphs:
            graphs[month] = relation_graph(read_snapshot(month), cfg.relations)
        return graphs[month]

    out = GnnRippleScores({}, {})
    for month, part in events.groupby("month", sort=True):
        eligible = point_in_time(history, window_end, str(month), cfg.train_months)
        readable = {g: _readable(graph_of, g) for g in eligible["graph_month"].astype(str).unique()}
        if not all(readable.values()):
            gone = sorted(g for g, ok in readable.items() if not ok)
            log.warning("gnn %s: %d training events left out: their graph month(s) %s cannot be read", month,
                        int((~eligible["graph_month"].astype(str).map(readable)).sum()), ", ".join(gone))
            eligible = eligible[eligible["graph_month"].astype(str).map(readable)].reset_index(drop=True)
        train, val = split_validation(eligible)
        members = [fit_gnn(train, val, graph_of, moves, cfg.model_copy(update={"seed": cfg.seed + k}))
                   for k in range(cfg.ensemble)]
        out.fits[str(month)] = [m.report for m in members]
        member_scores = [m.scores(part, graph_of) for m in members]
        for eid in member_scores[0]:
            out.scores[eid] = np.mean([ms[eid] for ms in member_scores], axis=0)
        for eid, g in zip(part["event_id"].astype(str), part["graph_month"].astype(str), strict=True):
            out.tickers[eid] = graph_of(g).tickers
        log.info("gnn %s: %d events scored by %d model(s) fitted on %d events (validation %s, %d events)", month,
                 len(part), len(members), len(train), val["month"].iloc[0], len(val))
    return out
