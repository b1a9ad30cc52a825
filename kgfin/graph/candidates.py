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

The ripple evaluation v2 (:mod:`kgfin.evaluate`) scores every method on these sets, and the
candidate rewards of alignment (:mod:`kgfin.align.reward`) are taken on them, so alignment trains
on the rows it is judged on.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kgfin.graph.snapshot import GraphSnapshot

__all__ = ["CandidateSet", "candidate_sets", "event_seed", "focal_neighbours"]


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
