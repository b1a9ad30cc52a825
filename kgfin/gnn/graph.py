"""The month graph as the GNN reads it: one edge type per relation and direction, with edge strengths.

Edge types, as ``(company, name, company)`` triples of torch-geometric's heterogeneous graphs:

* ``supplies``: supplier -> customer, strength the customer's purchase share from the supplier
  (the store's SUPPLIES ``weight``);
* ``supplied_by``: customer -> supplier, strength the supplier's sales share to the customer
  (``reverse_weight``);
* ``shares_director``, ``co_held``, ``tech_similar``: both directions, strength the edge ``weight``.

Messages run source -> target, so a node hears its suppliers over ``supplies`` and its customers
over ``supplied_by``: the two directions of a supply link can carry different rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kgfin.gnn.config import STORE_RELATIONS
from kgfin.graph.snapshot import GraphSnapshot

__all__ = ["EDGE_TYPES", "RelationGraph", "edge_types", "relation_graph"]

EDGE_TYPES = {"SUPPLIES": ("supplies", "supplied_by"), "SHARES_DIRECTOR": ("shares_director",),
              "CO_HELD": ("co_held",), "TECH_SIMILAR": ("tech_similar",)}


def edge_types(relations: Sequence[str] = STORE_RELATIONS) -> list[tuple[str, str, str]]:
    """The ``(company, name, company)`` edge types of ``relations``, in store order."""
    return [("company", name, "company") for rel in STORE_RELATIONS if rel in relations for name in EDGE_TYPES[rel]]


@dataclass(frozen=True)
class RelationGraph:
    """One month's company graph over the chosen relations (numpy; tensors are made where the model runs).

    ``edges``: edge type -> (edge_index (2, E) int64 source/target positions in ``tickers``, strength (E,) float32).
    """

    month: str
    tickers: tuple[str, ...]
    edges: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]]

    @property
    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tickers)}

    def __len__(self) -> int:
        return len(self.tickers)


def relation_graph(snapshot: GraphSnapshot, relations: Sequence[str] = STORE_RELATIONS) -> RelationGraph:
    """The snapshot's company-company edges of ``relations`` as :class:`RelationGraph` edge types."""
    idx = snapshot.index
    out: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] = {}
    for rel in STORE_RELATIONS:
        if rel not in relations:
            continue
        frame = snapshot.edges[rel]
        s = frame["source"].map(idx).to_numpy(dtype=np.int64)
        t = frame["target"].map(idx).to_numpy(dtype=np.int64)
        w = frame["weight"].to_numpy(dtype=np.float32)
        if rel == "SUPPLIES":
            out["company", "supplies", "company"] = (np.stack([s, t]).reshape(2, -1), w)
            out["company", "supplied_by", "company"] = (
                np.stack([t, s]).reshape(2, -1), frame["reverse_weight"].to_numpy(dtype=np.float32))
        else:
            name = EDGE_TYPES[rel][0]
            out["company", name, "company"] = (np.stack([np.r_[s, t], np.r_[t, s]]).reshape(2, -1), np.r_[w, w])
    return RelationGraph(snapshot.month, tuple(snapshot.tickers), out)
