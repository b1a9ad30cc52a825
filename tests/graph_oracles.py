"""The questions of graphdb/queries answered with networkx on the same snapshots (test oracles).

Each oracle takes the snapshots by month and the query's parameters and returns the rows
the Cypher query should return, in its order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from kgfin.graph import RELATIONS, GraphSnapshot

Oracle = Callable[[dict[str, GraphSnapshot], dict[str, Any]], pd.DataFrame]
ORACLES: dict[str, Oracle] = {}


def oracle(name: str) -> Callable[[Oracle], Oracle]:
    def register(fn: Oracle) -> Oracle:
        ORACLES[name] = fn
        return fn
    return register


def graph(snaps: dict[str, GraphSnapshot], month: str) -> nx.MultiDiGraph:
    return snaps[month].to_networkx(bipartite=True)


def names(g: nx.MultiDiGraph, tickers: list[str]) -> list[str]:
    return [g.nodes[t]["name"] for t in tickers]


def stored_edges(g: nx.MultiDiGraph, node: str) -> list[tuple[str, str, str, float]]:
    """Company-company edges incident to ``node`` as stored (SUPPLIES directed, others source < target)."""
    out = set()
    for u, v, k, d in [*g.out_edges(node, keys=True, data=True), *g.in_edges(node, keys=True, data=True)]:
        if k not in RELATIONS:
            continue
        s, t = (u, v) if k == "SUPPLIES" else (min(u, v), max(u, v))
        out.add((k, s, t, d["weight"]))
    return sorted(out)


@oracle("suppliers")
def suppliers(snaps: dict[str, GraphSnapshot], p: dict[str, Any]) -> pd.DataFrame:
    g = graph(snaps, p["month"])
    rows = [(u, g.nodes[u]["name"], d["value_usd"], d["weight"])
            for u, _, k, d in g.in_edges(p["ticker"], keys=True, data=True) if k == "SUPPLIES"]
    df = pd.DataFrame(rows, columns=["supplier", "name", "value_usd", "share_of_purchases"])
    return df.sort_values(["value_usd", "supplier"], ascending=[False, True]).head(p["k"])


@oracle("customers")
def customers(snaps: dict[str, GraphSnapshot], p: dict[str, Any]) -> pd.DataFrame:
    g = graph(snaps, p["month"])
    rows = [(v, g.nodes[v]["name"], d["value_usd"], d["reverse_weight"])
            for _, v, k, d in g.out_edges(p["ticker"], keys=True, data=True) if k == "SUPPLIES"]
    df = pd.DataFrame(rows, columns=["customer", "name", "value_usd", "share_of_sales"])
    return df.sort_values(["value_usd", "customer"], ascending=[False, True]).head(p["k"])


def directors_of(g: nx.MultiDiGraph, ticker: str) -> set[str]:
    return {u.split(":", 1)[1] for u, _, k in g.in_edges(ticker, keys=True) if k == "SITS_ON"}


@oracle("shared_directors")
def shared_directors(snaps: dict[str, GraphSnapshot], p: dict[str, Any]) -> pd.DataFrame:
    g = graph(snaps, p["month"])
    mine = directors_of(g, p["ticker"])
    rows = []
    for firm in (n for n, d in g.nodes(data=True) if d["label"] == "Company" and n != p["ticker"]):
        common = sorted(mine & directors_of(g, firm))
        if common:
            rows.append((firm, g.nodes[firm]["name"], len(common), common))
    df = pd.DataFrame(rows, columns=["firm", "name", "directors", "director_ids"])
    return df.sort_values(["directors", "firm"], ascending=[False, True])


@oracle("directors_linking")
def directors_linking(snaps: dict[str, GraphSnapshot], p: dict[str, Any]) -> pd.DataFrame:
    g = graph(snaps, p["month"])
    return pd.DataFrame({"director": sorted(directors_of(g, p["x"]) & directors_of(g, p["y"]))})


def holdings_of(g: nx.MultiDiGraph, ticker: str) -> dict[str, float]:
    return {u.split(":", 1)[1]: d["weight"] for u, _, k, d in g.in_edges(ticker, keys=True, data=True) if k == "HOLDS"}


@oracle("common_funds")
def common_funds(snaps: dict[str, GraphSnapshot], p: dict[str, Any]) -> pd.DataFrame:
    g = graph(snaps, p["month"])
    hx, hy = holdings_of(g, p["x"]), holdings_of(g, p["y"])
    rows = [(f, hx[f], hy[f], min(hx[f], hy[f])) for f in set(hx) & set(hy)]
    df = pd.DataFrame(rows, columns=["fund", "weight_x", "weight_y", "overlap"])
    return df.sort_values(["overlap", "fund"], ascending=[False, True])


@oracle("fund_holders")
def fund_holders(snaps: dict[str, GraphSnapshot], p: dict[str, Any]) -> pd.DataFrame:
    h = holdings_of(graph(snaps, p["month"]), p["ticker"])
    df = pd.DataFrame(list(h.items()), columns=["fund", "weight"])
    return df.sort_values(["weight", "fund"], ascending=[False, True])


@oracle("tech_similar")
def tech_similar(snaps: dict[str, GraphSnapshot], p: dict[str, Any]) -> pd.DataFrame:
    g = graph(snaps, p["month"])
    rows = [(v, g.nodes[v]["name"], g.nodes[v]["sector"], d["similarity"])
            for _, v, k, d in g.out_edges(p["ticker"], keys=True, data=True) if k == "TECH_SIMILAR"]
    df = pd.DataFrame(rows, columns=["firm", "name", "sector", "similarity"])
    return df.sort_values(["similarity", "firm"], ascending=[False, True]).head(p["k"])


@oracle("cpc_profile")
def cpc_profile(snaps: dict[str, GraphSnapshot], p: dict[str, Any]) -> pd.DataFrame:
    g = graph(snaps, p["month"])
    rows = [(v.split(":", 1)[1], d["patents"], d["share"])
            for _, v, k, d in g.out_edges(p["ticker"], keys=True, data=True) if k == "PATENTS_IN"]
    df = pd.DataFrame(rows, columns=["cpc_group", "patents", "share"])
    return df.sort_values(["share", "cpc_group"], ascending=[False, True])


@oracle("ripple_2hop")
def ripple_2hop(snaps: dict[str, GraphSnapshot], p: dict[str, Any]) -> pd.DataFrame:
    g = graph(snaps, p["month"])
    x = p["ticker"]
    hop1 = stored_edges(g, x)
    first = {s if t == x else t for _, s, t, _ in hop1}
    hop2 = {e for a in first for e in stored_edges(g, a) if x not in (e[1], e[2])}
    rows = [(1, s, t, k, w) for k, s, t, w in hop1] + [(2, s, t, k, w) for k, s, t, w in hop2]
    df = pd.DataFrame(rows, columns=["hop", "source", "target", "relation", "weight"])
    return df.sort_values(["hop", "relation", "source", "target"])


@oracle("neighbourhood_change")
def neighbourhood_change(snaps: dict[str, GraphSnapshot], p: dict[str, Any]) -> pd.DataFrame:
    x = p["ticker"]

    def links(month: str) -> dict[tuple[str, str], float]:
        out = {}
        for k, s, t, w in stored_edges(graph(snaps, month), x):
            other = t if s == x else s
            out[(other, "SUPPLIED_BY" if k == "SUPPLIES" and t == x else k)] = w
        return out

    a, b = links(p["from_month"]), links(p["to_month"])
    rows = []
    for key in set(a) | set(b):
        change = "added" if key not in a else "removed" if key not in b else "kept"
        rows.append((*key, change, a.get(key, np.nan), b.get(key, np.nan)))
    df = pd.DataFrame(rows, columns=["firm", "relation", "change", "weight_from", "weight_to"])
    return df.sort_values(["change", "relation", "firm"])


@oracle("most_connected")
def most_connected(snaps: dict[str, GraphSnapshot], p: dict[str, Any]) -> pd.DataFrame:
    g = graph(snaps, p["month"])
    rows = []
    for c in (n for n, d in g.nodes(data=True) if d["label"] == "Company"):
        edges = stored_edges(g, c)
        if edges:
            neighbours = {t if s == c else s for _, s, t, _ in edges}
            rows.append((c, g.nodes[c]["name"], len(neighbours), len(edges)))
    df = pd.DataFrame(rows, columns=["firm", "name", "neighbours", "relationships"])
    return df.sort_values(["neighbours", "relationships", "firm"], ascending=[False, False, True]).head(p["k"])


def assert_frames_match(got: pd.DataFrame, want: pd.DataFrame, rtol: float = 1e-12, atol: float = 0.0) -> None:
    """Same columns, same rows in the same order; floats to tolerance, lists exactly."""
    assert list(got.columns) == list(want.columns), (list(got.columns), list(want.columns))
    assert len(got) == len(want), f"{len(got)} rows, expected {len(want)}\n{got}\n{want}"
    for c in want.columns:
        w = want[c].tolist()
        g = got[c].tolist()
        if want[c].dtype.kind == "f":
            np.testing.assert_allclose(np.array(g, dtype=float), np.array(w, dtype=float), rtol=rtol, atol=atol,
                                       err_msg=c)
        else:
            assert g == w, f"column {c}: {g} != {w}"


def neighbourhood(snap: GraphSnapshot, ticker: str, hops: int) -> pd.DataFrame:
    """What ``GraphStore.neighbourhood`` should return: companies within ``hops`` links of ``ticker`` in ``snap``."""
    g = nx.Graph()
    g.add_nodes_from(snap.tickers)
    for e in snap.edges.values():
        g.add_edges_from(zip(e["source"], e["target"], strict=True))
    dist = nx.single_source_shortest_path_length(g, ticker, cutoff=hops) if ticker in g else {}
    rows = sorted((d, t) for t, d in dist.items() if d > 0)
    return pd.DataFrame({"ticker": pd.Series([t for _, t in rows], dtype=object),
                         "hop": pd.Series([d for d, _ in rows], dtype="int64")})
