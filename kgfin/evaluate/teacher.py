"""Teachers for the alignment's supervised warm start (``align.warm_start.target``): expected ripple moves.

At the ripple's signal-to-noise (about 0.4 per day on the synthetic market) a candidate's realised move is
mostly noise, so a warm start on realised moves teaches the policy little it can use (docs/alignment.md). A
teacher gives the move a rule *expects* from what the policy can see, the news and the focal firm's relations:
:func:`row_teacher` is a learned row of the ripple evaluation: ``ridge_rule`` (a per-event-type ridge of
candidates' realised window residuals on news sign x relation strengths) or ``gnn`` (the relational GNN, slower),
refitted for each month of the warm start's events on the events before it whose outcome window had ended (point in
time, as the row it is scored beside).

It lives here, not in :mod:`kgfin.align`, because it is the evaluation's rule; ``kgfin align`` builds it and hands
it to :func:`kgfin.align.trainer.align` as ``warm_start_teacher``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from kgfin.align.config import AlignConfig
from kgfin.align.events import AlignInputError
from kgfin.align.warm_start import WarmStartTeacher
from kgfin.data.loaders import MarketData
from kgfin.evaluate.predictors import build_predictor
from kgfin.evaluate.v2 import RippleV2Config, prepare_v2
from kgfin.graph.snapshot import GraphSnapshot

__all__ = ["TEACHERS", "row_teacher", "warm_start_teacher"]

TEACHERS = ("ridge_rule", "gnn")  # the rows a warm start can learn from (WarmStartConfig.target besides realised)


def row_teacher(market: MarketData, read_snapshot: Callable[[str], GraphSnapshot], align_cfg: AlignConfig, *,
                row: str = "ridge_rule", data_dir: str | Path | None = None, settings: RippleV2Config | None = None,
                embed: Callable[[list[str]], np.ndarray] | None = None) -> WarmStartTeacher:
    """The ripple evaluation's learned ``row`` (one of :data:`TEACHERS`) as a warm-start teacher: (events,
    residuals) -> per event id, each candidate's expected window move (return units). ``data_dir``: the market's
    folder (its ``truth/events`` give the synthetic market's event types; without them every event has one type);
    ``settings``: the ripple evaluation's (candidates, the row's settings and history; its outcome window is the
    reward's, ``align.impact.horizon``)."""
    if row not in TEACHERS:
        raise AlignInputError(f"no warm-start teacher {row!r}; choose one of {list(TEACHERS)}")
    cfg = (settings or RippleV2Config()).model_copy(update={"horizon": align_cfg.impact.horizon,
                                                            "extra_horizons": []})

    def teach(events: pd.DataFrame, resid: pd.DataFrame) -> dict[str, dict[str, float]]:
        setup = prepare_v2(market, read_snapshot, sorted(events["month"].unique()), cfg, align_cfg,
                           events=events.reset_index(drop=True), data_dir=data_dir, embed=embed, resid=resid)
        scored = build_predictor(row).predict(setup.events, setup.ctx)
        return {eid: dict(zip(setup.ctx.candidates[eid].tickers, map(float, s.scores), strict=True))
                for eid, s in scored.items()}

    return teach


def warm_start_teacher(align_cfg: AlignConfig, market: MarketData, read_snapshot: Callable[[str], GraphSnapshot],
                       data_dir: str | Path | None = None) -> WarmStartTeacher | None:
    """The teacher ``align_cfg.warm_start`` asks for (None for realised targets or no warm start): what ``kgfin
    align`` and the demo hand to :func:`kgfin.align.trainer.align`."""
    ws = align_cfg.warm_start
    if not ws.enabled or ws.target == "realised":
        return None
    return row_teacher(market, read_snapshot, align_cfg, row=ws.target, data_dir=data_dir)
