"""The GNN ripple baseline: shapes, edge types, inputs, a known rule recovered, point-in-time training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from gnn_toy import RULE, toy_graph, toy_market
from test_evaluate_candidates import toy_snapshot

from kgfin.errors import KgfinError
from kgfin.gnn import (
    EventEncoder,
    GnnConfig,
    edge_types,
    fit_gnn,
    gnn_ripple_scores,
    point_in_time,
    relation_graph,
    split_validation,
)
from kgfin.gnn.events import node_inputs, targets
from kgfin.gnn.layers import RelationalLayer, RelationConv
from kgfin.gnn.model import RippleGNN
from kgfin.graph.snapshot import GraphSnapshot


def _tensors(graph):
    return ({et: torch.as_tensor(e) for et, (e, _) in graph.edges.items()},
            {et: torch.as_tensor(w) for et, (_, w) in graph.edges.items()})


def test_relation_graph_has_both_supply_directions_and_symmetric_relations() -> None:
    g = relation_graph(toy_snapshot())
    idx = g.index
    e, w = g.edges["company", "supplies", "company"]
    assert (idx["A0"], idx["A1"]) in set(zip(*e.tolist(), strict=True))  # supplier -> customer
    assert w[list(zip(*e.tolist(), strict=True)).index((idx["A0"], idx["A1"]))] == pytest.approx(0.5)
    e, w = g.edges["company", "supplied_by", "company"]
    k = list(zip(*e.tolist(), strict=True)).index((idx["A1"], idx["A0"]))  # customer -> supplier: the sales share
    assert w[k] == pytest.approx(0.3)
    e, _ = g.edges["company", "tech_similar", "company"]
    assert {(idx["A0"], idx["A5"]), (idx["A5"], idx["A0"])} <= set(zip(*e.tolist(), strict=True))
    ablated = relation_graph(toy_snapshot(), ["SHARES_DIRECTOR", "CO_HELD", "TECH_SIMILAR"])
    assert set(ablated.edges) == set(edge_types(["SHARES_DIRECTOR", "CO_HELD", "TECH_SIMILAR"]))
    assert len(edge_types()) == 5
    with pytest.raises(ValueError, match="unknown relation"):
        GnnConfig(relations=["SUPPLY"])


def test_node_inputs_put_the_event_at_the_focal_and_named_firms_and_targets_leave_the_focal_firm_out() -> None:
    g = relation_graph(toy_snapshot())
    ev = pd.DataFrame({"event_id": ["E1", "E2"], "month": "2015-02", "graph_month": "2015-01",
                       "day": pd.to_datetime(["2015-02-02", "2015-02-03"]), "tickers": [["A0", "A9"], ["A6"]],
                       "event_type": ["x", "y"], "sign": [1.0, -3.0]})
    enc = EventEncoder.fit(ev)
    assert enc.types == ("x", "y") and enc.dim == 5 and enc.input_dim == 12
    e = enc.encode(ev)
    np.testing.assert_array_equal(e, [[1, 0, 1, 0, 1], [0, 1, 0, -1, -1]])
    x = node_inputs(ev, g, enc)  # (B, N, F)
    assert x.shape == (2, 12, 12)
    i0, i9, i6 = g.index["A0"], g.index["A9"], g.index["A6"]
    np.testing.assert_array_equal(x[0, i0, :5], e[0])  # focal block
    np.testing.assert_array_equal(x[0, i9, 5:10], e[0])  # named block
    assert x[0, i0, 10] == 1 and x[0, i9, 11] == 1 and x[1, i6, 10] == 1
    assert np.count_nonzero(x[0]) == np.count_nonzero(e[0]) * 2 + 2
    moves = pd.DataFrame(1.0, index=pd.to_datetime(["2015-02-02", "2015-02-03"]), columns=g.tickers[:-1])
    y = targets(ev, g, moves)
    assert y.shape == (2, 12) and np.isnan(y[0, i0]) and np.isnan(y[1, i6]) and np.isnan(y[0, -1])
    assert np.nansum(y) == 2 * 10
    unseen = ev.assign(event_type=["z", "z"])
    np.testing.assert_array_equal(enc.encode(unseen), [[0, 0, 0, 0, 1], [0, 0, 0, 0, -1]])


def test_layer_and_model_shapes_and_zero_in_zero_out() -> None:
    g = relation_graph(toy_snapshot())
    ei, ew = _tensors(g)
    et = edge_types()
    x = torch.randn(3, 12, 7)
    conv = RelationConv(7, 4)
    assert conv(x, *[d[et[0]] for d in (ei, ew)]).shape == (3, 12, 4)
    assert RelationalLayer(et, 7, 4)(x, ei, ew).shape == (3, 12, 4)
    model = RippleGNN(et, 7, hidden=5, layers=2)
    assert model(x, ei, ew).shape == (3, 12)
    assert torch.equal(model(torch.zeros(2, 12, 7), ei, ew), torch.zeros(2, 12))
    # a signal at A0 reaches its neighbours (one hop) but not A6/A7/A8 (unlinked to A0)
    one = torch.zeros(1, 12, 7)
    one[0, g.index["A0"], 0] = 1.0
    out = model(one, ei, ew)[0]
    assert all(out[g.index[t]] != 0 for t in ("A1", "A2", "A3", "A4", "A5"))
    assert all(out[g.index[t]] == 0 for t in ("A6", "A7", "A8"))
    no_edges = RippleGNN([], 7, hidden=5, layers=2)
    assert no_edges(one, {}, {})[0][g.index["A1"]] == 0  # without relations nothing leaves the focal firm


def test_the_fused_layer_equals_heteroconv_message_passing_values_and_gradients() -> None:
    g = relation_graph(toy_snapshot())
    ei, ew = _tensors(g)
    et = edge_types()
    dup = et[0]  # a parallel edge and a relation absent from the month
    ei[dup] = torch.cat([ei[dup], ei[dup][:, :1]], dim=1)
    ew[dup] = torch.cat([ew[dup], torch.tensor([0.3])])
    del ei[et[-1]], ew[et[-1]]
    torch.manual_seed(1)
    fused = RelationalLayer(et, 7, 4, activation="identity")
    ref = RelationalLayer(et, 7, 4, activation="identity", fused=False)
    ref.load_state_dict(fused.state_dict())
    x = torch.randn(3, 12, 7)
    a, b = fused(x, ei, ew), ref(x, ei, ew)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert fused(x[0], ei, ew).shape == (12, 4)  # no batch dimension
    a.square().sum().backward()
    b.square().sum().backward()
    for (name, p1), (_, p2) in zip(fused.named_parameters(), ref.named_parameters(), strict=True):
        torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_point_in_time_keeps_only_events_whose_window_ended_before_the_month() -> None:
    days = pd.to_datetime(["2015-01-05", "2015-02-26", "2015-02-27", "2015-03-02", "2014-01-10"])
    ev = pd.DataFrame({"event_id": list("abcde"), "month": ["2015-01", "2015-02", "2015-02", "2015-03", "2014-01"],
                       "graph_month": "2014-12", "day": days, "tickers": [["A"]] * 5, "event_type": "t",
                       "sign": 1.0})
    window_end = pd.Series(pd.to_datetime(["2015-01-06", "2015-02-27", "2015-03-02", "2015-03-03", "2014-01-13"]),
                           index=days)
    got = point_in_time(ev, window_end, "2015-03", months=12)
    assert list(got["event_id"]) == ["a", "b"]  # c's window ends in March; d is March's own; e is 14 months back
    assert list(point_in_time(ev, window_end, "2015-03", months=1)["event_id"]) == ["b"]
    train, val = split_validation(got)
    assert list(train["event_id"]) == ["a"] and list(val["event_id"]) == ["b"]
    with pytest.raises(KgfinError, match="two months"):
        split_validation(got.iloc[[0]])


def _ic(a: pd.Series, b: pd.Series) -> float:
    return float(a.rank().corr(b.rank()))


def test_the_model_recovers_a_known_relational_rule_on_a_toy_graph() -> None:
    """Ripple = sign x type-specific multiplier x strength over supplies / supplied_by / tech_similar, plus noise;
    trained on 200 events, the model's scores of unseen events match the rule (board and fund links carry none)."""
    months = [f"2015-{m:02d}" for m in range(1, 13)]
    events, snaps, moves, window_end, truth = toy_market(months)
    scored = events[events["month"] == "2015-12"]
    got = gnn_ripple_scores(scored, events, snaps.__getitem__, moves, window_end, GnnConfig(train_months=11))
    assert got.fits["2015-12"][0].train_events + got.fits["2015-12"][0].val_events == 11 * 20
    corr = [np.corrcoef(got.series(e), truth[e])[0, 1] for e in scored["event_id"]]
    assert np.mean(corr) > 0.9
    # the sign of every clear planted ripple (|ripple| > 0.2, noise sd 0.3 per event) is the rule's
    agree = [np.sign(got.series(e)[truth[e].abs() > 0.2]) == np.sign(truth[e][truth[e].abs() > 0.2])
             for e in scored["event_id"]]
    assert np.concatenate(agree).mean() > 0.95
    g = relation_graph(snaps["2015-11"])
    assert set(RULE) == set(scored["event_type"])
    assert len(g) == 30


def test_scores_do_not_move_when_later_outcomes_change_and_do_when_earlier_ones_do() -> None:
    months = [f"2015-{m:02d}" for m in range(1, 8)]
    events, snaps, moves, window_end, _ = toy_market(months, per_month=10, seed=1)
    scored = events[events["month"].isin(["2015-06", "2015-07"])]
    cfg = GnnConfig(train_months=4, max_epochs=15, hidden=8, min_train_events=10)

    def run(mv: pd.DataFrame) -> dict[str, np.ndarray]:
        return gnn_ripple_scores(scored, events, snaps.__getitem__, mv, window_end, cfg).scores

    base = run(moves)
    assert all(np.array_equal(base[e], v) for e, v in run(moves).items())  # seeded: the same scores again
    later = moves.copy()
    ends = window_end.reindex(later.index)
    later.loc[ends >= pd.Timestamp("2015-07-01")] = 9.0  # every outcome not yet known on July 1st
    same = run(later)
    june = scored.loc[scored["month"] == "2015-06", "event_id"]
    july = scored.loc[scored["month"] == "2015-07", "event_id"]
    assert all(np.array_equal(base[e], same[e]) for e in july)
    later.loc[ends >= pd.Timestamp("2015-06-01")] = 9.0
    assert all(np.array_equal(base[e], run(later)[e]) for e in june)
    earlier = moves.copy()
    earlier.loc[earlier.index < pd.Timestamp("2015-05-01")] *= -1
    moved = run(earlier)
    assert all(not np.allclose(base[e], moved[e]) for e in scored["event_id"])


def test_an_ensemble_scores_the_mean_of_its_seeds_models() -> None:
    months = [f"2015-{m:02d}" for m in range(1, 6)]
    events, snaps, moves, window_end, _ = toy_market(months, per_month=10, seed=2)
    scored = events[events["month"] == "2015-05"]
    cfg = GnnConfig(train_months=3, max_epochs=12, min_epochs=2, hidden=8, min_train_events=10, seed=3)
    one = [gnn_ripple_scores(scored, events, snaps.__getitem__, moves, window_end, cfg.model_copy(update={"seed": s}))
           for s in (3, 4)]
    both = gnn_ripple_scores(scored, events, snaps.__getitem__, moves, window_end, cfg.model_copy(update={"ensemble": 2}))
    assert [f.train_events for f in both.fits["2015-05"]] == [one[0].fits["2015-05"][0].train_events] * 2
    assert not np.allclose(one[0].scores[scored["event_id"].iloc[0]], one[1].scores[scored["event_id"].iloc[0]])
    for e in scored["event_id"]:
        np.testing.assert_allclose(both.scores[e], (one[0].scores[e] + one[1].scores[e]) / 2, rtol=1e-6, atol=1e-9)


def test_training_events_whose_graph_month_is_not_stored_are_left_out(caplog: pytest.LogCaptureFixture) -> None:
    months = [f"2015-{m:02d}" for m in range(1, 6)]
    events, snaps, moves, window_end, _ = toy_market(months, per_month=10, seed=2)
    scored = events[events["month"] == "2015-05"]

    def read(month: str) -> GraphSnapshot:
        if month == "2014-12":  # the graph month of January's news: not in the store
            raise KgfinError(f"month {month} is not in the store")
        return snaps[month]

    cfg = GnnConfig(train_months=4, max_epochs=3, min_epochs=1, hidden=4, min_train_events=10)
    with caplog.at_level("WARNING", logger="kgfin.gnn.ripple"):
        got = gnn_ripple_scores(scored, events, read, moves, window_end, cfg)
    fit = got.fits["2015-05"][0]
    assert fit.train_events + fit.val_events == 30  # February..April; January's 10 left out
    assert "10 training events left out" in caplog.text and "2014-12" in caplog.text
    assert set(got.scores) == set(scored["event_id"])


def test_fit_refuses_too_few_events() -> None:
    events, snaps, moves, _, _ = toy_market(["2015-01", "2015-02"], per_month=5)
    train, val = split_validation(events)
    with pytest.raises(KgfinError, match="at least 20 training events"):
        fit_gnn(train, val, lambda m: relation_graph(snaps[m]), moves, GnnConfig())
    assert toy_graph("2015-01").stats().companies == 30
