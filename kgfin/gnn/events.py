"""Events as GNN inputs and targets, and the point-in-time choice of training events.

An event (one row of a DataFrame with :data:`EVENT_INPUT_COLUMNS`) enters the model as a signal
at the nodes the news names, built from what the text says only:

    e = [onehot(event_type), sign * onehot(event_type), sign]        (D = 2 T + 1)
    x_i = [focal_i * e, named_i * e, focal_i, named_i]              (F = 2 D + 2)

``sign`` is the news sign (e.g. the headline-sentiment model's), ``named_i`` marks the firms the
news names besides the focal one. An event type unseen in training contributes only its sign.
Its target is every firm's realised residual over the outcome window (``moves``), the focal
firm left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kgfin.data.calendar import add_months
from kgfin.errors import KgfinError
from kgfin.gnn.graph import RelationGraph

__all__ = ["EVENT_INPUT_COLUMNS", "EventEncoder", "by_graph_month", "node_inputs", "point_in_time", "split_validation",
           "targets"]

EVENT_INPUT_COLUMNS = ("event_id", "month", "graph_month", "day", "tickers", "event_type", "sign")


def _check(events: pd.DataFrame) -> None:
    missing = [c for c in EVENT_INPUT_COLUMNS if c not in events.columns]
    if missing:
        raise KgfinError(f"GNN events: missing column(s) {missing} (need {', '.join(EVENT_INPUT_COLUMNS)})")


@dataclass(frozen=True)
class EventEncoder:
    """The event vector ``e`` over a fixed vocabulary of event types (those seen in training, sorted)."""

    types: tuple[str, ...]

    @classmethod
    def fit(cls, events: pd.DataFrame) -> EventEncoder:
        _check(events)
        return cls(tuple(sorted(events["event_type"].astype(str).unique())))

    @property
    def dim(self) -> int:
        """D = 2 T + 1."""
        return 2 * len(self.types) + 1

    @property
    def input_dim(self) -> int:
        """F = 2 D + 2, the node input width."""
        return 2 * self.dim + 2

    def encode(self, events: pd.DataFrame) -> np.ndarray:
        """(B, D) event vectors."""
        _check(events)
        pos = {t: i for i, t in enumerate(self.types)}
        t_count = len(self.types)
        out = np.zeros((len(events), self.dim), dtype=np.float32)
        sign = np.sign(events["sign"].to_numpy(dtype=float))
        for b, t in enumerate(events["event_type"].astype(str)):
            if t in pos:
                out[b, pos[t]] = 1.0
                out[b, t_count + pos[t]] = sign[b]
        out[:, -1] = sign
        return out


def node_inputs(events: pd.DataFrame, graph: RelationGraph, encoder: EventEncoder) -> np.ndarray:
    """(B, N, F) node inputs of events read on ``graph`` (module docstring). A named firm outside the graph is
    skipped; a focal firm outside it leaves the event without signal (it then scores 0 everywhere)."""
    e = encoder.encode(events)  # (B, D)
    d = encoder.dim
    idx = graph.index
    x = np.zeros((len(events), len(graph), encoder.input_dim), dtype=np.float32)
    for b, tickers in enumerate(events["tickers"]):
        for k, t in enumerate(tickers):
            i = idx.get(str(t))
            if i is None:
                continue
            role = 0 if k == 0 else 1  # focal, named
            x[b, i, role * d:(role + 1) * d] = e[b]
            x[b, i, 2 * d + role] = 1.0
    return x


def targets(events: pd.DataFrame, graph: RelationGraph, moves: pd.DataFrame) -> np.ndarray:
    """(B, N) realised window residual of every firm (``moves``: window start x ticker), NaN for the focal firm and
    where there is no outcome."""
    y = moves.reindex(pd.DatetimeIndex(events["day"])).reindex(columns=list(graph.tickers)).to_numpy(dtype=np.float32, copy=True)
    idx = graph.index
    for b, tickers in enumerate(events["tickers"]):
        i = idx.get(str(tickers[0]))
        if i is not None:
            y[b, i] = np.nan
    return y


def point_in_time(history: pd.DataFrame, window_end: pd.Series, month: str, months: int) -> pd.DataFrame:
    """The events of ``history`` a model scoring ``month`` may learn from: those of the ``months`` months before it
    whose outcome window (``window_end``: window start day -> its last trading day, NaT past the data) ended before
    ``month`` began."""
    _check(history)
    start = pd.Timestamp(f"{month}-01")
    past = {add_months(month, -k) for k in range(1, months + 1)}
    ends = window_end.reindex(pd.DatetimeIndex(history["day"])).to_numpy()
    keep = history["month"].astype(str).isin(past).to_numpy() & pd.notna(ends) & (ends < np.datetime64(start))
    return history[keep].reset_index(drop=True)


def split_validation(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training, validation): the validation events are those of the latest month present."""
    _check(events)
    if events["month"].nunique() < 2:
        raise KgfinError(f"GNN training needs events of at least two months (one for validation); got "
                         f"{sorted(events['month'].astype(str).unique())}")
    last = max(events["month"].astype(str))
    is_val = (events["month"].astype(str) == last).to_numpy()
    return events[~is_val].reset_index(drop=True), events[is_val].reset_index(drop=True)


def by_graph_month(events: pd.DataFrame) -> Sequence[tuple[str, pd.DataFrame]]:
    """Events grouped by the graph month they are read with, months sorted."""
    return [(str(g), part.reset_index(drop=True)) for g, part in events.groupby("graph_month", sort=True)]
