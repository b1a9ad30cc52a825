"""How much of the planted ripple (synthetic market) each event's candidate set (:mod:`kgfin.graph.candidates`)
reaches: the share of the planted ripple firms (hop >= 1) it contains and the share of their |shock|."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from kgfin.graph.candidates import CandidateSet

__all__ = ["coverage"]


def coverage(sets: Iterable[CandidateSet], impacts: pd.DataFrame) -> pd.DataFrame:
    """How much of the planted ripple each candidate set holds (``truth/impacts`` rows: event_id, ticker, shock,
    min_hop).

    One row per event: ``candidates``, ``neighbours``, ``ripple_firms`` (planted firms with hop >= 1, the focal
    firm aside), ``covered_firms``, ``firm_share`` and ``shock_share`` (share of their |shock| inside the set;
    NaN for an event without planted ripple).
    """
    ripple = impacts[(impacts["min_hop"] >= 1) & (impacts["shock"] != 0)]
    by_event = {str(e): g for e, g in ripple.groupby("event_id")}
    rows = []
    for c in sets:
        part = by_event.get(c.event_id)
        if part is not None:
            part = part[part["ticker"] != c.focal]
        inside = part["ticker"].isin(set(c.tickers)).to_numpy() if part is not None else np.zeros(0, dtype=bool)
        size = np.abs(part["shock"].to_numpy(dtype=float)) if part is not None else np.zeros(0)
        rows.append({"event_id": c.event_id, "candidates": len(c), "neighbours": int(c.neighbour.sum()),
                     "ripple_firms": int(inside.size), "covered_firms": int(inside.sum()),
                     "firm_share": float(inside.mean()) if inside.size else np.nan,
                     "shock_share": float(size[inside].sum() / size.sum()) if size.sum() > 0 else np.nan})
    return pd.DataFrame(rows, columns=["event_id", "candidates", "neighbours", "ripple_firms", "covered_firms",
                                       "firm_share", "shock_share"])
