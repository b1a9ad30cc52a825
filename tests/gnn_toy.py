"""A toy market for the GNN tests: random month graphs and events whose ripple follows a known rule."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kgfin.data.calendar import add_months
from kgfin.graph.snapshot import GraphSnapshot

# the rule: ripple_j = sign * mult[type][relation] * strength(focal -> j)
RULE = {"up_chain": {"supplies": 1.0, "tech_similar": -0.5},  # customers gain, technical peers lose
        "peer_hit": {"tech_similar": 1.0, "supplied_by": -1.0}}  # peers move with the focal firm, suppliers against
TYPE_SIGN = {"up_chain": 1.0, "peer_hit": -1.0}


def toy_graph(month: str, n: int = 30, seed: int = 0) -> GraphSnapshot:
    """Random supply links (directed) and technical similarity (undirected) among ``n`` firms; board and fund links
    that carry no rule."""
    rng = np.random.default_rng([seed, int(month.replace("-", ""))])
    tickers = [f"T{i:02d}" for i in range(n)]

    def pairs(k: int, directed: bool) -> list[tuple[int, int]]:
        out: set[tuple[int, int]] = set()
        while len(out) < k:
            a, b = (int(v) for v in rng.choice(n, 2, replace=False))
            out.add((a, b) if directed else (min(a, b), max(a, b)))
        return sorted(out)

    sup = pairs(3 * n, True)
    tech = pairs(2 * n, False)
    board = pairs(n, False)
    fund = pairs(2 * n, False)

    def frame(p: list[tuple[int, int]], **cols: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"source": [tickers[a] for a, _ in p], "target": [tickers[b] for _, b in p], **cols})

    edges = {
        "SUPPLIES": frame(sup, value_usd=np.ones(len(sup)), weight=rng.uniform(0.05, 1, len(sup)),
                          reverse_weight=rng.uniform(0.05, 1, len(sup))),
        "TECH_SIMILAR": frame(tech, similarity=np.ones(len(tech)), weight=rng.uniform(0.1, 1, len(tech))),
        "SHARES_DIRECTOR": frame(board, count=np.ones(len(board), dtype=int), weight=rng.uniform(0.1, 1, len(board))),
        "CO_HELD": frame(fund, funds=np.ones(len(fund), dtype=int), overlap=np.ones(len(fund)),
                         weight=rng.uniform(0.1, 1, len(fund))),
    }
    companies = pd.DataFrame({"ticker": tickers, "name": tickers, "sector": "x"})
    return GraphSnapshot(month, companies, edges)


def planted(snap: GraphSnapshot, focal: str, event_type: str) -> pd.Series:
    """The rule's ripple of one event over the snapshot's firms (focal firm 0)."""
    out = pd.Series(0.0, index=snap.tickers)
    sign = TYPE_SIGN[event_type]
    for rel, mult in RULE[event_type].items():
        if rel == "supplies":
            e = snap.edges["SUPPLIES"]
            part = e[e["source"] == focal]
            out[part["target"].to_numpy()] += sign * mult * part["weight"].to_numpy()
        elif rel == "supplied_by":
            e = snap.edges["SUPPLIES"]
            part = e[e["target"] == focal]
            out[part["source"].to_numpy()] += sign * mult * part["reverse_weight"].to_numpy()
        else:
            e = snap.edges["TECH_SIMILAR"]
            for a, b in (("source", "target"), ("target", "source")):
                part = e[e[a] == focal]
                out[part[b].to_numpy()] += sign * mult * part["weight"].to_numpy()
    return out


def toy_market(months: list[str], per_month: int = 20, noise: float = 0.3, seed: int = 0
               ) -> tuple[pd.DataFrame, dict[str, GraphSnapshot], pd.DataFrame, pd.Series, dict[str, pd.Series]]:
    """Events (one a day, GNN input columns), graphs (graph month = the month before), moves (day x ticker: the rule's
    ripple plus noise), window ends (the next day) and the planted ripple per event."""
    rng = np.random.default_rng(seed)
    snaps = {add_months(m, -1): toy_graph(add_months(m, -1), seed=seed) for m in months}
    rows, moves, truth = [], {}, {}
    for m in months:
        g = add_months(m, -1)
        snap = snaps[g]
        days = pd.bdate_range(f"{m}-01", f"{m}-28")[:per_month]
        for k, day in enumerate(days):
            et = "up_chain" if rng.random() < 0.5 else "peer_hit"
            focal = snap.tickers[int(rng.integers(len(snap.tickers)))]
            eid = f"{m}-{k}"
            truth[eid] = planted(snap, focal, et)
            moves[day] = truth[eid] + noise * rng.standard_normal(len(snap.tickers))
            rows.append({"event_id": eid, "month": m, "graph_month": g, "day": day, "tickers": [focal],
                         "event_type": et, "sign": TYPE_SIGN[et]})
    events = pd.DataFrame(rows)
    mv = pd.DataFrame(moves).T.sort_index()
    window_end = pd.Series(mv.index + pd.Timedelta(days=1), index=mv.index)
    return events, snaps, mv, window_end, truth
