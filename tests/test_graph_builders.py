"""Relation builders: hand-computed examples, TECH_SIMILAR against numpy, and point-in-time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kgfin.config import ConfigError, load_config
from kgfin.data import load_market
from kgfin.data.calendar import month_bounds
from kgfin.errors import KgfinError
from kgfin.graph import (
    GraphConfig,
    build_snapshot,
    co_held,
    cpc_portfolio,
    director_seats,
    shares_director,
    supplies,
    tech_similar,
)

M = "2020-03"


def pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(frame["source"], frame["target"], strict=True))


def test_month_bounds_and_bad_month() -> None:
    assert month_bounds("2020-02") == (pd.Timestamp("2020-02-01"), pd.Timestamp("2020-02-29"))
    with pytest.raises(KgfinError, match="YYYY-MM"):
        month_bounds("2020-13")


def test_supplies_hand_example() -> None:
    links = pd.DataFrame({
        "month": [M, M, M, "2020-04"],
        "supplier": ["A", "C", "A", "B"],
        "customer": ["B", "B", "C", "A"],
        "value_usd": [100.0, 300.0, 50.0, 999.0],
    })
    e = supplies(links, M)
    assert pairs(e) == [("A", "B"), ("A", "C"), ("C", "B")]
    # weight = share of the customer's purchases; reverse_weight = share of the supplier's sales
    np.testing.assert_allclose(e["weight"], [100 / 400, 50 / 50, 300 / 400])
    np.testing.assert_allclose(e["reverse_weight"], [100 / 150, 50 / 150, 300 / 300])
    np.testing.assert_allclose(e["value_usd"], [100, 50, 300])


def test_shares_director_hand_example() -> None:
    nat = pd.NaT
    seats = pd.DataFrame({
        "director_id": ["D1", "D1", "D2", "D2", "D3", "D3", "D4", "D4", "D5", "D5"],
        "ticker": ["A", "B", "A", "C", "B", "C", "B", "C", "B", "C"],
        "start": pd.to_datetime(["2019-01-01", "2020-03-15", "2010-01-01", "2020-04-01", "2015-01-01",
                                 "2015-01-01", "2018-01-01", "2018-01-01", "2018-01-01", "2018-01-01"]),
        "end": pd.to_datetime([nat, "2020-03-20", nat, nat, "2020-02-29", nat, nat, "2024-01-01", nat, nat]),
    })
    # D1 links A-B (short seat inside March); D2's seat at C starts in April (not known in March);
    # D3 left B in February; D4 and D5 sit on both B and C.
    e = shares_director(seats, M)
    assert pairs(e) == [("A", "B"), ("B", "C")]
    assert e["count"].tolist() == [1, 2]
    assert e["weight"].tolist() == [0.5, 1.0]  # min(1, count / director_saturation=2)
    on = director_seats(seats, M)
    assert ("D2", "C") not in set(zip(on["director_id"], on["ticker"], strict=True))
    assert ("D3", "B") not in set(zip(on["director_id"], on["ticker"], strict=True))
    assert len(on) == 8


def test_co_held_hand_example() -> None:
    h = pd.DataFrame({
        "month": [M] * 5 + ["2020-04"],
        "fund_id": ["F1", "F1", "F1", "F2", "F2", "F3"],
        "ticker": ["A", "B", "C", "A", "B", "C"],
        "weight": [0.5, 0.3, 0.2, 0.6, 0.4, 1.0],
    })
    e = co_held(h, M, GraphConfig(co_held_top_k=None))
    assert pairs(e) == [("A", "B"), ("A", "C"), ("B", "C")]
    assert e["funds"].tolist() == [2, 1, 1]
    np.testing.assert_allclose(e["overlap"], [0.3 + 0.4, 0.2, 0.2])
    np.testing.assert_allclose(e["weight"], [1.0, 0.2 / 0.7, 0.2 / 0.7])
    # top-1 per firm: A->B, B->A, C's tie between A and B is broken by ticker -> A
    assert pairs(co_held(h, M, GraphConfig(co_held_top_k=1))) == [("A", "B"), ("A", "C")]
    assert pairs(co_held(h, M, GraphConfig(co_held_top_k=None, co_held_min_funds=2))) == [("A", "B")]


def test_co_held_ties_in_exact_arithmetic_fall_to_ticker() -> None:
    """X's overlap with B is 0.1 + 0.2 and with A 0.3: equal in exact arithmetic, so A (ticker) wins.

    In floating point 0.1 + 0.2 > 0.3, which used to hand X's top-1 place to B.
    """
    h = pd.DataFrame({
        "month": M,
        "fund_id": ["F1", "F1", "F2", "F2", "F3", "F3", "F4", "F4", "F5", "F5"],
        "ticker": ["X", "B", "X", "B", "X", "A", "A", "P", "B", "P"],
        "weight": [0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.9, 0.9, 0.9, 0.9],
    })
    e = co_held(h, M, GraphConfig(co_held_top_k=1))
    assert pairs(e) == [("A", "P"), ("A", "X"), ("B", "P")]
    full = co_held(h, M, GraphConfig(co_held_top_k=None)).set_index(["source", "target"])["overlap"]
    assert full[("B", "X")] == full[("A", "X")] == 0.3  # stored rounded, so equal overlaps are equal


def _random_patents(rng: np.random.Generator, firms: int, per_firm: int, month: str) -> pd.DataFrame:
    groups = [f"G{g:02d}" for g in range(15)]
    _, last = month_bounds(month)
    rows = []
    pid = 0
    for f in range(firms):
        profile = rng.dirichlet(np.full(len(groups), 0.3))
        for _ in range(per_firm):
            day = last - pd.Timedelta(days=int(rng.integers(0, 1700)))
            for g in rng.choice(len(groups), size=int(rng.integers(1, 3)), replace=False, p=profile):
                rows.append((f"P{pid}", f"T{f:02d}", day, groups[g]))
            pid += 1
    return pd.DataFrame(rows, columns=["patent_id", "ticker", "grant_date", "cpc_group"])


def _numpy_correlations(p: pd.DataFrame, month: str, cfg: GraphConfig) -> pd.Series:
    """The reference: share vectors per eligible firm, then np.corrcoef."""
    assert month == "2020-03" and cfg.tech_window_months == 60
    w = p[(p["grant_date"] >= "2015-04-01") & (p["grant_date"] <= "2020-03-31")]  # the 60 months Apr 2015..Mar 2020
    n_pat = w.groupby("ticker")["patent_id"].nunique()
    w = w[w["ticker"].isin(n_pat.index[n_pat >= cfg.tech_min_patents])]
    counts = pd.crosstab(w["ticker"], w["cpc_group"])  # eligible firms x groups present among them
    shares = counts.to_numpy(float) / counts.to_numpy(float).sum(axis=1, keepdims=True)
    corr = np.corrcoef(shares)
    i, j = np.triu_indices(len(counts), k=1)
    firms = counts.index.to_numpy()
    return pd.Series(corr[i, j], index=pd.MultiIndex.from_arrays([firms[i], firms[j]]))


@pytest.mark.parametrize("dense", [True, False])
def test_tech_similar_equals_numpy_correlation(dense: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not dense:  # the path for many CPC groups (sparse products)
        monkeypatch.setattr("kgfin.graph.builders.DENSE_LIMIT", 0)
    rng = np.random.default_rng(3)
    p = _random_patents(rng, firms=12, per_firm=8, month=M)
    p.loc[p["ticker"] == "T11", "grant_date"] = pd.Timestamp("2010-01-05")  # outside the window
    cfg = GraphConfig(tech_threshold=-1.0, tech_top_k=None, tech_min_patents=3)
    got = tech_similar(p, M, cfg).set_index(["source", "target"])["similarity"]
    want = _numpy_correlations(p, M, cfg)
    assert len(want) == 11 * 10 // 2 and "T11" not in got.index.get_level_values(0)
    assert got.index.tolist() == want.index.tolist()
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(tech_similar(p, M, cfg)["weight"], np.maximum(got.to_numpy(), 0), atol=1e-12)

    # threshold and top-k select from the same correlations
    cfg2 = GraphConfig(tech_threshold=0.2, tech_top_k=2, tech_min_patents=3)
    kept = set(pairs(tech_similar(p, M, cfg2)))
    cand = want[want >= 0.2]
    directed = pd.concat([cand, cand.swaplevel()]).sort_index()
    best = set()
    for firm, row in directed.groupby(level=0):
        top = sorted(((-v, other) for (_, other), v in row.items()))[:2]
        best |= {tuple(sorted((firm, other))) for _, other in top}
    assert kept == best


@pytest.mark.parametrize("dense", [True, False])
def test_tech_similar_ties_in_exact_arithmetic_fall_to_ticker(dense: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A (1, 1, 3 patents in G, H, I) and B (3, 3, 9) have the same share vector, so X correlates equally with both
    (0.5 exactly) and X's top-1 partner is A by the ticker rule.

    In floating point corr(X, B) came out larger in the last digits, which used to hand X's place to B.
    """
    if not dense:
        monkeypatch.setattr("kgfin.graph.builders.DENSE_LIMIT", 0)
    counts = {"A": {"G": 1, "H": 1, "I": 3}, "B": {"G": 3, "H": 3, "I": 9}, "X": {"H": 1, "I": 1}}
    rows = [(f"P{t}{g}{k}", t, pd.Timestamp("2019-06-01"), g)
            for t, groups in counts.items() for g, n in groups.items() for k in range(n)]
    p = pd.DataFrame(rows, columns=["patent_id", "ticker", "grant_date", "cpc_group"])
    e = tech_similar(p, M, GraphConfig(tech_threshold=None, tech_top_k=1, tech_min_patents=1))
    assert pairs(e) == [("A", "B"), ("A", "X")]
    full = tech_similar(p, M, GraphConfig(tech_threshold=0.5, tech_top_k=None, tech_min_patents=1))
    sim = full.set_index(["source", "target"])["similarity"]
    assert sim[("A", "B")] == 1.0 and sim[("A", "X")] == sim[("B", "X")] == 0.5  # rounded: equal values are equal,
    # and a correlation of exactly the threshold passes it


def test_tech_window_boundaries_and_min_patents() -> None:
    def patent(pid: str, ticker: str, day: str, group: str) -> tuple:
        return (pid, ticker, pd.Timestamp(day), group)
    rows = [patent(f"A{i}", "A", "2020-03-31", g) for i, g in enumerate(["X", "X", "Y"])]
    rows += [patent(f"B{i}", "B", "2015-04-01", g) for i, g in enumerate(["X", "X", "Y"])]  # first day in window
    rows += [patent("B9", "B", "2015-03-31", "Z")]  # last day of M-60: outside
    rows += [patent("B8", "B", "2020-04-01", "Z")]  # after M: outside
    rows += [patent(f"C{i}", "C", "2019-01-01", "Y") for i in range(2)]  # too few patents
    p = pd.DataFrame(rows, columns=["patent_id", "ticker", "grant_date", "cpc_group"])
    cfg = GraphConfig(tech_min_patents=3, tech_threshold=0.0, tech_top_k=None)
    port = cpc_portfolio(p, M, cfg)
    assert set(port.loc[port["ticker"] == "B", "cpc_group"]) == {"X", "Y"}
    np.testing.assert_allclose(port.loc[port["ticker"] == "A", "share"], [2 / 3, 1 / 3])
    e = tech_similar(p, M, cfg)
    assert pairs(e) == [("A", "B")]
    assert e["similarity"].iloc[0] == pytest.approx(1.0)


def test_config_validation_and_overrides(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tech_threshold or tech_top_k"):
        load_config(GraphConfig, overrides=["tech_threshold=null", "tech_top_k=null"])
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(GraphConfig, overrides=["tech_treshold=0.3"])
    cfg = load_config(GraphConfig, overrides=["mu.tech_similar.sign=1", "co_held_top_k=5"])
    assert cfg.mu.tech_similar.sign == 1 and cfg.co_held_top_k == 5


def test_missing_column_is_a_clear_error() -> None:
    with pytest.raises(KgfinError, match="supply_links: missing column"):
        supplies(pd.DataFrame({"month": [M], "supplier": ["A"]}), M)


def _shift_future(market_dir: Path, month: str) -> object:
    """A copy of the market where everything after ``month`` is changed or removed."""
    m = load_market(market_dir)
    _, last = month_bounds(month)
    sl = m.supply_links
    later = sl["month"] > month
    sl.loc[later, "value_usd"] *= 7.0
    m.supply_links = sl.drop(sl.index[later][::2])
    fh = m.fund_holdings
    fh.loc[fh["month"] > month, "weight"] = 0.5
    bs = m.board_seats.copy()
    new = bs["start"] > last
    bs.loc[new, "ticker"] = bs["ticker"].iloc[0]  # seats that start later point elsewhere
    ends_later = bs["end"] > last
    bs.loc[ends_later, "end"] = bs.loc[ends_later, "end"] + pd.Timedelta(days=400)
    extra = bs.iloc[:5].assign(start=last + pd.Timedelta(days=1), end=pd.NaT, director_id="DNEW")
    m.board_seats = pd.concat([bs, extra], ignore_index=True)
    pt = m.patents
    m.patents = pt[pt["grant_date"] <= last]
    return m


def test_no_builder_reads_after_month(synth_dir: Path) -> None:
    market = load_market(synth_dir)
    months = sorted(market.supply_links["month"].unique())
    month = months[3]
    before = build_snapshot(market, month)
    changed = _shift_future(synth_dir, month)
    after = build_snapshot(changed, month)  # type: ignore[arg-type]
    assert before.differences(after, rtol=0) == []
    # and the change is real: a later month does move
    assert build_snapshot(market, months[4]).differences(build_snapshot(changed, months[4])) != []  # type: ignore[arg-type]


def test_build_snapshot_unknown_month(synth_dir: Path) -> None:
    with pytest.raises(KgfinError, match="the data covers"):
        build_snapshot(load_market(synth_dir), "1990-01")
