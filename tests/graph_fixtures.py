"""Shared helpers for the graph store tests: snapshots of the small synthetic market, query parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kgfin.data import load_market
from kgfin.graph import GraphSnapshot, build_snapshot, data_months


def small_snapshots(synth_dir: Path, n: int = 2) -> dict[str, GraphSnapshot]:
    """Snapshots of ``n`` consecutive months of the small synthetic market (from its third month)."""
    market = load_market(synth_dir)
    return {m: build_snapshot(market, m) for m in data_months(market)[2:2 + n]}


def _top(frame: Any, key: str) -> str:
    return str(frame[key].value_counts().sort_index().sort_values(ascending=False, kind="stable").index[0])


def query_params(snaps: dict[str, GraphSnapshot]) -> dict[str, dict[str, Any]]:
    """Parameters for every library query, chosen so that the answers are not empty."""
    m1, m2 = list(snaps)[:2]
    s = snaps[m1]
    e = s.edges
    busiest = _top(s.edge_table().melt(value_vars=["source", "target"]), "value")
    director_pair = e["SHARES_DIRECTOR"].sort_values(["count", "source"], ascending=[False, True]).iloc[0]
    fund_pair = e["CO_HELD"].sort_values(["funds", "source"], ascending=[False, True]).iloc[0]
    return {
        "suppliers": {"ticker": _top(e["SUPPLIES"], "target"), "month": m1, "k": 50},
        "customers": {"ticker": _top(e["SUPPLIES"], "source"), "month": m1, "k": 2},
        "shared_directors": {"ticker": director_pair["source"], "month": m1},
        "directors_linking": {"x": director_pair["source"], "y": director_pair["target"], "month": m1},
        "common_funds": {"x": fund_pair["source"], "y": fund_pair["target"], "month": m1},
        "fund_holders": {"ticker": _top(s.holdings, "ticker"), "month": m1},
        "tech_similar": {"ticker": _top(e["TECH_SIMILAR"].melt(value_vars=["source", "target"]), "value"),
                         "month": m1, "k": 3},
        "cpc_profile": {"ticker": _top(s.cpc, "ticker"), "month": m1},
        "ripple_2hop": {"ticker": busiest, "month": m1},
        "neighbourhood_change": {"ticker": busiest, "from_month": m1, "to_month": m2},
        "most_connected": {"month": m1, "k": 5},
    }
