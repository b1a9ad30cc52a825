"""Candidate sets of the ripple evaluation v2: neighbours + seeded random others, focal excluded, coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kgfin.evaluate.coverage import coverage
from kgfin.graph.candidates import candidate_sets, focal_neighbours
from kgfin.graph.snapshot import GraphSnapshot


def toy_snapshot(month: str = "2015-01", n: int = 12) -> GraphSnapshot:
    """A0 supplies A1; A2 supplies A0; A0-A3 share a director; A0-A4 co-held; A5-A0 tech-similar; A6-A7 linked."""
    tickers = [f"A{i}" for i in range(n)]
    companies = pd.DataFrame({"ticker": tickers, "name": [f"Firm {t}" for t in tickers], "sector": "x"})
    edges = {
        "SUPPLIES": pd.DataFrame({"source": ["A0", "A2", "A6"], "target": ["A1", "A0", "A7"], "value_usd": [1.0] * 3,
                                  "weight": [0.5, 0.25, 0.4], "reverse_weight": [0.3, 0.6, 0.2]}),
        "SHARES_DIRECTOR": pd.DataFrame({"source": ["A0"], "target": ["A3"], "count": [1], "weight": [0.5]}),
        "CO_HELD": pd.DataFrame({"source": ["A0"], "target": ["A4"], "funds": [2], "overlap": [0.1], "weight": [0.8]}),
        "TECH_SIMILAR": pd.DataFrame({"source": ["A0"], "target": ["A5"], "similarity": [0.7], "weight": [0.7]}),
    }
    return GraphSnapshot(month, companies, edges)


def toy_events() -> pd.DataFrame:
    return pd.DataFrame({"event_id": ["E1", "E2", "E3"], "graph_month": ["2015-01"] * 3,
                         "tickers": [["A0", "A9"], ["A6"], ["A11"]]})


def test_neighbours_cover_every_relation_both_directions() -> None:
    assert focal_neighbours(toy_snapshot(), "A0") == {"A1", "A2", "A3", "A4", "A5"}
    assert focal_neighbours(toy_snapshot(), "A7") == {"A6"}


def test_candidate_set_is_neighbours_plus_seeded_random_others_without_the_focal_firm() -> None:
    snap = toy_snapshot()
    sets = candidate_sets(toy_events(), lambda m: snap, n_random=3, seed=0)
    c = sets["E1"]
    assert "A0" not in c.tickers and len(c) == 5 + 3
    assert set(np.array(c.tickers)[c.neighbour]) == {"A1", "A2", "A3", "A4", "A5"}
    assert list(c.tickers) == sorted(c.tickers)
    randoms = set(np.array(c.tickers)[~c.neighbour])
    assert randoms <= {"A6", "A7", "A8", "A9", "A10", "A11"} and len(randoms) == 3
    # deterministic, per event (not per position in the table), and moved by the seed
    again = candidate_sets(toy_events().iloc[::-1], lambda m: snap, n_random=3, seed=0)
    assert all(again[e].tickers == sets[e].tickers for e in sets)
    other_seeds = [candidate_sets(toy_events(), lambda m: snap, n_random=3, seed=s)["E1"].tickers for s in range(1, 8)]
    assert any(t != c.tickers for t in other_seeds)
    # an unlinked firm gets random others only; the named-variant mask drops the named counterpart
    assert not sets["E3"].neighbour.any() and len(sets["E3"]) == 3
    assert c.mask("named").sum() == len(c) - ("A9" in c.tickers)
    with pytest.raises(ValueError, match="unknown candidate variant"):
        c.mask("both")


def test_candidates_depend_only_on_the_graph_month_read() -> None:
    """Point in time: the set is a function of the lagged graph month alone (a later month's graph is never read)."""
    read: list[str] = []

    def reader(month: str) -> GraphSnapshot:
        read.append(month)
        return toy_snapshot(month)

    candidate_sets(toy_events(), reader, n_random=2)
    assert read == ["2015-01"]


def test_coverage_counts_planted_ripple_firms_and_shock_inside_the_set() -> None:
    snap = toy_snapshot()
    sets = candidate_sets(toy_events(), lambda m: snap, n_random=0)
    impacts = pd.DataFrame({
        "event_id": ["E1"] * 4 + ["E2"],
        "ticker": ["A0", "A1", "A5", "A8", "A6"],
        "shock": [0.05, 0.01, -0.03, 0.02, 0.01],
        "min_hop": [0, 1, 1, 2, 0],
    })
    cov = coverage(sets.values(), impacts).set_index("event_id")
    assert cov.loc["E1", "ripple_firms"] == 3 and cov.loc["E1", "covered_firms"] == 2
    assert cov.loc["E1", "firm_share"] == pytest.approx(2 / 3)
    assert cov.loc["E1", "shock_share"] == pytest.approx(0.04 / 0.06)
    assert np.isnan(cov.loc["E2", "firm_share"]) and cov.loc["E2", "ripple_firms"] == 0
