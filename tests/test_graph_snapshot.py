"""GraphSnapshot: μ rules, Table-6 statistics, conversions and export."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from kgfin.data import load_market
from kgfin.errors import KgfinError
from kgfin.graph import (
    GraphConfig,
    GraphSnapshot,
    MuConfig,
    MuRule,
    build_snapshot,
    export_snapshot,
)


def small_snapshot(config: GraphConfig | None = None) -> GraphSnapshot:
    """A (supplies B, weight .25 / reverse .5; co-held with B, weight 1), A-C tech .8, B-C directors .5."""
    companies = pd.DataFrame({"ticker": ["C", "A", "B"], "name": ["Cee", "Ay", "Bee"], "sector": ["x", "y", "x"]})
    edges = {
        "SUPPLIES": pd.DataFrame({"source": ["A"], "target": ["B"], "value_usd": [10.0], "weight": [0.25],
                                  "reverse_weight": [0.5]}),
        "CO_HELD": pd.DataFrame({"source": ["A"], "target": ["B"], "funds": [2], "overlap": [0.3], "weight": [1.0]}),
        "TECH_SIMILAR": pd.DataFrame({"source": ["A"], "target": ["C"], "similarity": [0.8], "weight": [0.8]}),
        "SHARES_DIRECTOR": pd.DataFrame({"source": ["B"], "target": ["C"], "count": [1], "weight": [0.5]}),
    }
    return GraphSnapshot(
        "2020-03", companies, edges,
        seats=pd.DataFrame({"director_id": ["D1", "D1", "D2"], "ticker": ["B", "C", "A"]}),
        holdings=pd.DataFrame({"fund_id": ["F1", "F1"], "ticker": ["A", "B"], "weight": [0.4, 0.3]}),
        cpc=pd.DataFrame({"ticker": ["A", "C"], "cpc_group": ["H01", "H01"], "patents": [3, 2], "share": [1.0, 1.0]}),
        config=config or GraphConfig(),
    )


def test_companies_sorted_and_index() -> None:
    snap = small_snapshot()
    assert snap.tickers == ["A", "B", "C"]
    assert snap.index == {"A": 0, "B": 1, "C": 2}


def test_mu_default_rules() -> None:
    mu = small_snapshot().mu().toarray()
    want = np.array([
        # A      B            C
        [0.0, 0.25 + 1.0, -0.8],  # A -> (supplies fwd + co-held), tech competitor C
        [0.5 + 1.0, 0.0, 0.5],    # B -> A: supplier's sales share (upstream) + co-held; B-C directors
        [-0.8, 0.5, 0.0],
    ])
    np.testing.assert_allclose(mu, want)


def test_mu_custom_rules() -> None:
    rules = MuConfig(supplies_upstream=0.0, tech_similar=MuRule(sign=1, weight=0.5),
                     co_held=MuRule(sign=1, weight=0.0))
    mu = small_snapshot().mu(rules).toarray()
    np.testing.assert_allclose(mu, [[0.0, 0.25, 0.4], [0.0, 0.0, 0.5], [0.4, 0.5, 0.0]])
    # ripple Z_j = sum_i mu[i, j] Y_i: a shock to A reaches B through the supply link only
    z = small_snapshot().mu(rules).T @ np.array([1.0, 0.0, 0.0])
    np.testing.assert_allclose(z, [0.0, 0.25, 0.4])


def test_stats_table6() -> None:
    st = small_snapshot().stats()
    assert st.companies == 3 and st.total_edges == 4
    assert st.edges == {"SUPPLIES": 1, "SHARES_DIRECTOR": 1, "CO_HELD": 1, "TECH_SIMILAR": 1}
    assert st.pairs == 3
    assert (st.share_1, st.share_2, st.share_3plus) == pytest.approx((2 / 3, 1 / 3, 0.0))
    assert (st.directors, st.funds, st.cpc_groups, st.seats, st.holdings) == (2, 1, 1, 3, 2)


def test_empty_snapshot() -> None:
    snap = GraphSnapshot("2020-03", small_snapshot().companies, {})
    st = snap.stats()
    assert st.pairs == 0 and st.total_edges == 0 and st.share_1 == 0.0
    assert snap.mu().nnz == 0 and snap.to_networkx().number_of_edges() == 0


def test_validation_errors() -> None:
    snap = small_snapshot()
    with pytest.raises(KgfinError, match="not a listed company"):
        GraphSnapshot("2020-03", snap.companies, {"SUPPLIES": snap.edges["SUPPLIES"].assign(target="Z")})
    with pytest.raises(KgfinError, match="source < target"):
        GraphSnapshot("2020-03", snap.companies, {"CO_HELD": snap.edges["CO_HELD"].rename(
            columns={"source": "target", "target": "source"})})
    with pytest.raises(KgfinError, match="unknown relation"):
        GraphSnapshot("2020-03", snap.companies, {"FRIENDS": snap.edges["CO_HELD"]})
    with pytest.raises(KgfinError, match="duplicate key"):
        GraphSnapshot("2020-03", snap.companies, {"CO_HELD": pd.concat([snap.edges["CO_HELD"]] * 2)})


def test_differences() -> None:
    a, b = small_snapshot(), small_snapshot()
    assert a.equals(b)
    b.edges["CO_HELD"].loc[0, "overlap"] = 0.3 + 1e-9
    assert a.differences(b) == ["CO_HELD.overlap: values differ"]
    assert a.equals(b, rtol=1e-6)


def test_to_networkx() -> None:
    g = small_snapshot().to_networkx(bipartite=True)
    assert g.has_edge("A", "B", key="SUPPLIES") and not g.has_edge("B", "A", key="SUPPLIES")
    assert g.has_edge("A", "C", key="TECH_SIMILAR") and g.has_edge("C", "A", key="TECH_SIMILAR")
    assert g.edges["A", "B", "SUPPLIES"]["reverse_weight"] == 0.5
    assert sorted(p for p in g.predecessors("C") if g.nodes[p]["label"] == "Director") == ["director:D1"]
    assert g.edges["fund:F1", "A", "HOLDS"]["weight"] == 0.4
    assert g.nodes["cpc:H01"]["label"] == "CPC"
    assert small_snapshot().to_networkx().number_of_nodes() == 3


def test_to_hetero_data() -> None:
    data = small_snapshot().to_hetero_data()
    assert data["company"].num_nodes == 3 and data["company"].ticker == ["A", "B", "C"]
    sup = data["company", "supplies", "company"]
    assert sup.edge_index.tolist() == [[0], [1]]
    assert sup.edge_attr_names == ["value_usd", "weight", "reverse_weight"]
    assert data["company", "tech_similar", "company"].edge_index.tolist() == [[0, 2], [2, 0]]
    assert data["company", "co_held", "company"].edge_weight.tolist() == [1.0, 1.0]
    assert data["director", "sits_on", "company"].edge_index.shape == (2, 3)
    assert data["fund", "holds", "company"].edge_weight.tolist() == pytest.approx([0.4, 0.3])
    assert data["company", "patents_in", "cpc"].edge_index.tolist() == [[0, 2], [0, 0]]
    data.validate()


def test_export_parquet_and_graphml(tmp_path: Path) -> None:
    snap = small_snapshot()
    files = export_snapshot(snap, tmp_path / "pq", "parquet")
    assert sorted(f.name for f in files) == ["companies.parquet", "cpc.parquet", "edges.parquet",
                                             "holdings.parquet", "seats.parquet"]
    edges = pd.read_parquet(tmp_path / "pq" / "edges.parquet")
    assert sorted(edges["relation"]) == ["CO_HELD", "SHARES_DIRECTOR", "SUPPLIES", "TECH_SIMILAR"]
    (path,) = export_snapshot(snap, tmp_path / "g.graphml", "graphml")
    g = nx.read_graphml(path, force_multigraph=True)
    assert g.number_of_nodes() == 3 + 2 + 1 + 1
    assert g.number_of_edges() == 1 + 2 * 3 + 3 + 2 + 2
    with pytest.raises(KgfinError, match="unknown export format"):
        export_snapshot(snap, tmp_path / "x", "csv")  # type: ignore[arg-type]


def test_built_snapshot_is_consistent(synth_dir: Path) -> None:
    market = load_market(synth_dir)
    snap = build_snapshot(market, sorted(market.supply_links["month"].unique())[2])
    st = snap.stats()
    assert all(v > 0 for v in st.edges.values())
    assert st.share_1 + st.share_2 + st.share_3plus == pytest.approx(1.0)
    mu = snap.mu()
    assert mu.shape == (len(snap.companies),) * 2 and mu.diagonal().sum() == 0
    # symmetric relations are symmetric in μ; with supply links removed, μ is symmetric
    no_supply = snap.mu(MuConfig(supplies=MuRule(sign=1, weight=0.0)))
    assert abs(no_supply - no_supply.T).max() < 1e-12
    assert (snap.edges["TECH_SIMILAR"]["similarity"] >= snap.config.tech_threshold).all()
