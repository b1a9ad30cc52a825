"""Instruction pairs: every answer true in the snapshot, negatives truly unlinked, deterministic, buffer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kgfin.data import load_market
from kgfin.graph import GraphConfig, GraphSnapshot, build_snapshot
from kgfin.instruct import (
    InstructConfig,
    RotatingBuffer,
    generate_pairs,
    training_pairs,
    write_pairs,
)
from kgfin.instruct.generate import RELATIONSHIP_PHRASES


@pytest.fixture(scope="module")
def snapshots(synth_dir: Path) -> dict[str, GraphSnapshot]:
    market = load_market(synth_dir)
    months = sorted(market.supply_links["month"].unique())
    return {m: build_snapshot(market, m, GraphConfig()) for m in months}


def _neighbours(snap: GraphSnapshot, rel: str, x: str, direction: str = "") -> dict[str, dict]:
    e = snap.edges[rel]
    if rel == "SUPPLIES":
        col, other = ("source", "target") if direction == "out" else ("target", "source")
        return {r[other]: r for r in e[e[col] == x].to_dict("records")}
    out = {r["target"]: r for r in e[e["source"] == x].to_dict("records")}
    out.update({r["source"]: r for r in e[e["target"] == x].to_dict("records")})
    return out


def _linked(snap: GraphSnapshot, x: str, y: str) -> bool:
    table = snap.edge_table()
    return bool(((table["source"] == x) & (table["target"] == y)).any() or ((table["source"] == y) & (table["target"] == x)).any())


def test_every_answer_is_true_in_the_snapshot(snapshots: dict[str, GraphSnapshot]) -> None:
    snap = snapshots[sorted(snapshots)[-1]]
    pairs = generate_pairs(snap, InstructConfig(seed=3))
    fams = {p.family for p in pairs}
    assert fams == {"retrieval", "judgment", "question"}
    assert {p.relation for p in pairs} >= {"SUPPLIES", "SHARES_DIRECTOR", "CO_HELD", "TECH_SIMILAR"}
    funds = snap.holdings.groupby("ticker")["fund_id"].apply(set).to_dict()
    shares = snap.cpc.pivot_table(index="ticker", columns="cpc_group", values="share", fill_value=0.0)
    cpc = {t: shares.loc[t].to_numpy() for t in shares.index}
    k = InstructConfig().list_top_k
    for p in pairs:
        x = p.subject
        assert p.month == snap.month and snap.month in p.instruction and f"({x})" in p.instruction
        if p.family == "retrieval":
            items = p.output.split(", ")
            if p.relation == "SUPPLIES":
                direction = "in" if ("supplied " + snap.companies.set_index("ticker").at[x, "name"]) in p.instruction \
                    or "suppliers of" in p.instruction else "out"
                assert items == sorted(_neighbours(snap, "SUPPLIES", x, direction))
            elif p.relation == "MULTI":
                kinds = {y: {t[1] for t in p.source if y in (t[0], t[2])} for y in items}
                assert all(len(v) > 1 for v in kinds.values())
            elif p.relation == "SHARES_DIRECTOR":
                assert items == sorted(_neighbours(snap, p.relation, x))
            else:  # top-k by weight
                nb = _neighbours(snap, p.relation, x)
                top = sorted(sorted(nb, key=lambda y: (-nb[y]["weight"], y))[:k])
                assert items == top
        elif p.family == "judgment":
            y = p.instruction.split("(")[2].split(")")[0]
            if p.output == "Yes":
                direction = "out" if p.relation == "SUPPLIES" else ""
                assert y in _neighbours(snap, p.relation, x, direction)
            else:  # truly unlinked by the relation asked about
                assert p.output == "No" and x != y
                if p.relation == "SUPPLIES":
                    assert y not in _neighbours(snap, "SUPPLIES", x, "out") and y not in _neighbours(snap, "SUPPLIES", x, "in")
                elif p.relation == "CO_HELD":
                    assert not (funds.get(x, set()) & funds.get(y, set()))
                else:
                    assert y not in _neighbours(snap, p.relation, x)
                if p.relation == "TECH_SIMILAR" and x in cpc and y in cpc:
                    assert np.corrcoef(cpc[x], cpc[y])[0, 1] < 0.5 * snap.config.tech_threshold
        else:
            y = p.instruction.split("(")[2].split(")")[0]
            if p.relation == "RELATIONSHIP":
                phrases = set(p.output.split(", "))
                assert phrases <= set(RELATIONSHIP_PHRASES.values()) and _linked(snap, x, y)
            elif p.relation == "SUPPLIES":
                value = _neighbours(snap, "SUPPLIES", x, "out")[y]["value_usd"]
                assert p.output == f"${value / 1e6:.1f} million"
            elif p.relation == "TECH_SIMILAR":
                assert p.output == f"{_neighbours(snap, p.relation, x)[y]['similarity']:.2f}"
            elif p.relation == "SHARES_DIRECTOR":
                assert int(p.output) == _neighbours(snap, p.relation, x)[y]["count"]
            elif p.relation == "CO_HELD":
                assert int(p.output) == _neighbours(snap, p.relation, x)[y]["funds"]
                assert int(p.output) == len(funds[x] & funds[y])


def test_balanced_negatives_and_no_duplicates(snapshots: dict[str, GraphSnapshot]) -> None:
    """As many "no" as "yes" pairs per relation, unless the month has fewer truly unlinked pairs."""
    from kgfin.instruct.generate import _Graph

    snap = snapshots[sorted(snapshots)[0]]
    pairs = generate_pairs(snap, InstructConfig(max_pairs_per_family=None))  # every pair, uncapped
    g = _Graph(snap)
    tickers = snap.tickers
    for rel in ("SUPPLIES", "SHARES_DIRECTOR", "CO_HELD", "TECH_SIMILAR"):
        yes = sum(p.family == "judgment" and p.relation == rel and p.output == "Yes" for p in pairs)
        no = sum(p.family == "judgment" and p.relation == rel and p.output == "No" for p in pairs)
        pool = sum(g.unlinked(rel, x, y) for i, x in enumerate(tickers) for y in tickers[i + 1:])
        assert yes > 0 and (no == yes or no >= 0.9 * pool), (rel, yes, no, pool)
    texts = [" ".join(p.instruction.lower().split()) for p in pairs]
    assert len(texts) == len(set(texts))


def test_deterministic_under_seed(snapshots: dict[str, GraphSnapshot], tmp_path: Path) -> None:
    snap = snapshots[sorted(snapshots)[2]]
    a = write_pairs(generate_pairs(snap, InstructConfig(seed=1)), tmp_path / "a.jsonl").read_bytes()
    b = write_pairs(generate_pairs(snap, InstructConfig(seed=1)), tmp_path / "b.jsonl").read_bytes()
    c = write_pairs(generate_pairs(snap, InstructConfig(seed=2)), tmp_path / "c.jsonl").read_bytes()
    assert a == b and a != c


def test_subgraph_and_caps(snapshots: dict[str, GraphSnapshot]) -> None:
    snap = snapshots[sorted(snapshots)[1]]
    cfg = InstructConfig(subgraph_nodes=15, max_pairs_per_family=20, seed=4)
    pairs = generate_pairs(snap, cfg)
    subjects = {p.subject for p in pairs}
    assert len(subjects) <= 15
    counts = {f: sum(p.family == f for p in pairs) for f in ("retrieval", "judgment", "question")}
    assert all(0 < n <= 20 for n in counts.values())
    relations = {p.relation for p in pairs if p.family == "judgment"}
    assert len(relations) >= 3  # the cap spreads over relations


def test_rotating_buffer_keeps_the_top_pairs() -> None:
    from kgfin.instruct import InstructionPair

    def pair(text: str, w: float, month: str) -> InstructionPair:
        return InstructionPair(text, "x", month, "retrieval", "SUPPLIES", "list", "A", [], w)

    buf = RotatingBuffer(2)
    buf.add([pair("a", 0.5, "2020-01"), pair("b", 0.9, "2020-01"), pair("c", 0.0, "2020-01")])
    buf.add([pair("d", 0.7, "2020-02"), pair("e", 0.1, "2020-02")])
    assert [p.instruction for p in buf.pairs] == ["b", "d"] and all(p.carried for p in buf.pairs)


def test_training_set_carries_earlier_months_point_in_time(snapshots: dict[str, GraphSnapshot]) -> None:
    months = sorted(snapshots)
    month = months[4]
    asked: list[str] = []

    def snapshot_of(m: str) -> GraphSnapshot | None:
        asked.append(m)
        return snapshots.get(m)

    cfg = InstructConfig(buffer_size=30, buffer_months=3, max_pairs_per_family=40)
    pairs = training_pairs(month, snapshot_of, cfg)
    assert max(asked) == month  # nothing after the month is read
    carried = [p for p in pairs if p.carried]
    assert len(carried) == 30 and all(p.month < month and p.month in p.instruction for p in carried)
    assert all(p.output != "No" for p in carried)
    earlier = [p for m in months[1:4] for p in generate_pairs(snapshots[m], cfg) if p.weight > 0]
    threshold = sorted((p.weight for p in earlier), reverse=True)[29]
    assert min(p.weight for p in carried) >= threshold - 1e-12
