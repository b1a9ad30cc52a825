"""Monthly company knowledge graphs: relation builders, GraphSnapshot and the interaction measure μ.

    from kgfin.data import load_market
    from kgfin.graph import GraphConfig, build_snapshot
    snap = build_snapshot(load_market("data/synth"), "2014-06", GraphConfig())
    snap.stats().edges, snap.mu().shape
"""

from kgfin.graph.builders import (
    CO_HELD,
    EDGE_COLUMNS,
    RELATIONS,
    SHARES_DIRECTOR,
    SUPPLIES,
    TECH_SIMILAR,
    co_held,
    cpc_portfolio,
    director_seats,
    fund_holdings,
    shares_director,
    supplies,
    tech_similar,
)
from kgfin.graph.config import GraphConfig, MuConfig, MuRule
from kgfin.graph.export import export_snapshot
from kgfin.graph.snapshot import (
    GraphSnapshot,
    SnapshotStats,
    build_snapshot,
    build_snapshots,
    data_months,
)

__all__ = [
    "CO_HELD", "EDGE_COLUMNS", "RELATIONS", "SHARES_DIRECTOR", "SUPPLIES", "TECH_SIMILAR",
    "GraphConfig", "GraphSnapshot", "MuConfig", "MuRule", "SnapshotStats", "build_snapshot",
    "build_snapshots", "co_held", "cpc_portfolio", "data_months", "director_seats",
    "export_snapshot", "fund_holdings", "shares_director", "supplies", "tech_similar",
]
