"""One candidate set per event, the same for every method: what a ripple predictor is scored on.

For an event read with graph month ``g`` (the month graph the methods see, point in time), the
candidates are

* every direct neighbour of the focal firm in ``g``, over every relation type (SUPPLIES both
  ways, SHARES_DIRECTOR, CO_HELD, TECH_SIMILAR), and
* ``n_random`` firms drawn from the other companies of ``g`` (not the focal firm, not a
  neighbour), by a generator seeded with ``(seed, event id)``,

in ticker order. The focal firm is never a candidate. Two hops are the whole universe on the
default market (fund co-holding is dense), so one hop it is. Every method scores every
candidate (0 where it names nothing), so rows of different methods are the same rows.

:func:`coverage` says how much of the planted ripple (synthetic market) a set reaches: the
share of the planted ripple firms (hop >= 1) it contains and the share of their |shock|.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kgfin.graph.snapshot import GraphSnapshot

__all__ = ["CandidateSet", "candidate_sets", "coverage", "event_seed", "focal_neighbours"]


@dataclass(frozen=True)
class CandidateSet:
    """The firms one event is scored on.

    ``tickers``: the candidates in ticker order; ``neighbour``: (C,) True for the focal firm's
    graph neighbours, False for the random others; ``named``: the firms the news names (the focal
    firm among them), which the ``named`` scoring variant excludes as well.
    """

    event_id: str
    focal: str
    graph_month: str
    tickers: tuple[str, ...]
    neighbour: np.ndarray
    named: frozenset[str]

    def __len__(self) -> int:
        return len(self.tickers)

    def mask(self, variant: str) -> np.ndarray:
        """(C,) the candidates a scoring variant keeps: ``focal`` all of them (the focal firm is never one),
        ``named`` those the news does not name."""
        if variant == "focal":
            return np.ones(len(self.tickers), dtype=bool)
        if variant == "named":
            return np.array([t not in self.named for t in self.tickers], dtype=bool)
        raise ValueError(f"unknown candidate variant {variant!r} (focal or named)")


def event_seed(seed: int, event_id: str, stream: int = 0) -> np.random.Generator:
    """The generator of one random use (``stream``: 0 the candidates, others the predictors') for one event: seeded
    by ``(seed, crc32(event id), stream)``, so it does not depend on which other events are evaluated or in which
    order."""
    return np.random.default_rng([seed, zlib.crc32(str(event_id).encode()), stream])


def focal_neighbours(snapshot: GraphSnapshot, focal: str) -> set[str]:
    """Every company linked to ``focal`` in the snapshot by any relation, in either direction."""
    out: set[str] = set()
    for frame in snapshot.edges.values():
        out.update(frame.loc[frame["source"] == focal, "target"])
        out.update(frame.loc[frame["target"] == focal, "source"])
    out.discard(focal)
    return out


def candidate_sets(events: pd.DataFrame, read_snapshot: Callable[[str], GraphSnapshot], n_random: int = 20,
                   seed: int = 0) -> dict[str, CandidateSet]:
    """The candidate set of every event (rows of :func:`~kgfin.align.events.news_events`: ``event_id``,
    ``graph_month``, ``tickers`` with the focal firm first). Deterministic given ``seed``; each graph month is read
    once."""
    snaps: dict[str, GraphSnapshot] = {}
    out = {}
    for row in events.itertuples(index=False):
        g = str(row.graph_month)
        if g not in snaps:
            snaps[g] = read_snapshot(g)
        snap = snaps[g]
        focal = str(row.tickers[0])
        near = focal_neighbours(snap, focal)
        others = sorted(set(snap.tickers) - near - {focal})
        k = min(n_random, len(others))
        drawn = event_seed(seed, str(row.event_id)).choice(len(others), size=k, replace=False) if k else []
        chosen = sorted(near | {others[i] for i in drawn})
        out[str(row.event_id)] = CandidateSet(
            str(row.event_id), focal, g, tuple(chosen), np.array([t in near for t in chosen], dtype=bool),
            frozenset(str(t) for t in row.tickers))
    return out


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
