"""Ripple evaluation v2: the predictor registry, point in time, the planted rule by hand, the whole run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_evaluate_candidates import toy_snapshot
from text_stub import hashed_embed

from kgfin.align.config import AlignConfig
from kgfin.align.impact_reward import ScoredAnswer
from kgfin.align.predict import Prediction
from kgfin.data import load_market
from kgfin.errors import KgfinError
from kgfin.evaluate.predictors import (
    PREDICTORS,
    PredictionsPredictor,
    RippleContext,
    RuleOracle,
    build_predictor,
    prediction_scores,
)
from kgfin.evaluate.v2 import CONTROLS, RippleV2Config, run_ripple_v2
from kgfin.graph.candidates import candidate_sets
from kgfin.graph.snapshot import build_snapshot
from kgfin.llm.parse import Impacts
from kgfin.market.residuals import residuals, window_moves

ALIGN = AlignConfig.model_validate({"impact": {"residuals": {"window": 60, "min_obs": 40}}})


def test_registry_builds_by_name_and_refuses_unknown_names() -> None:
    assert {"random", "graph_distance", "propagation_only", "ridge_rule", "rule_oracle", "oracle",
            "graph_shuffled", "time_shuffled", "zero_shot", "icl", "rag", "knowledge", "aligned"} <= set(PREDICTORS)
    assert build_predictor("knowledge").name == "knowledge"
    with pytest.raises(KgfinError, match="did you mean ridge_rule"):
        build_predictor("ridge_rul")
    with pytest.raises(ValueError, match="unknown predictor"):
        RippleV2Config(predictors=["nope"])
    with pytest.raises(ValueError, match="extra"):
        RippleV2Config.model_validate({"horizn": 2})


def test_rule_oracle_applies_the_planted_rule_by_hand() -> None:
    """plant_outage at A0 (shock -0.04): customers x0.60 (A1, sqrt of its purchase share 0.5), technical peers x-0.35
    (A5, similarity 0.7), suppliers x0.20 (A2, sqrt of its sales share 0.6); no board or fund rule."""
    snap = toy_snapshot()
    events = pd.DataFrame({"event_id": ["E1"], "graph_month": ["2015-01"], "month": ["2015-02"],
                           "tickers": [["A0"]], "day": [pd.Timestamp("2015-02-02")], "event_type": ["plant_outage"]})
    cands = candidate_sets(events, lambda m: snap, n_random=2)
    planted = pd.DataFrame({"event_type": ["plant_outage"], "counterpart": [""], "focal_shock": [-0.04],
                            "kind": ["hard"]}, index=pd.Index(["E1"], name="event_id"))
    ctx = RippleContext(None, lambda m: snap, events, cands, ALIGN, pd.DataFrame(), pd.DataFrame(), pd.Series(),
                        impacts=pd.DataFrame(columns=["event_id", "ticker", "shock"]), planted=planted)
    got = dict(zip(cands["E1"].tickers, RuleOracle().predict(events, ctx)["E1"].scores, strict=True))
    assert got["A1"] == pytest.approx(0.60 * np.sqrt(0.5) * -0.04)
    assert got["A5"] == pytest.approx(-0.35 * 0.7 * -0.04)
    assert got["A2"] == pytest.approx(0.20 * np.sqrt(0.6) * -0.04)
    assert got["A3"] == got["A4"] == 0.0  # board and fund links carry nothing for an outage


def test_prediction_scores_read_z_on_the_candidates_refusals_zero_and_outside_names_reported() -> None:
    snap = toy_snapshot()
    events = pd.DataFrame({"event_id": ["E1", "E2"], "graph_month": ["2015-01"] * 2, "tickers": [["A0", "A9"], ["A0"]]})
    cands = candidate_sets(events, lambda m: snap, n_random=0)
    z = np.arange(12, dtype=float)
    ok = ScoredAnswer(Impacts(scores={"A0": 5, "A9": 1, "A8": -2}), z, z, 0.0, 0.0, 0.0)
    refused = ScoredAnswer(Impacts(refused=True, reason="unparsable"), z * 0, z * 0, 0.0, 0.0, -0.05)
    preds = [Prediction("E1", pd.Timestamp("2015-02-02"), "2015-01", "", ok),
             Prediction("E2", pd.Timestamp("2015-02-02"), "2015-01", "", refused)]
    got = prediction_scores(preds, snap.tickers, cands)
    assert got["E1"].scores.tolist() == [float(snap.index[t]) for t in ("A1", "A2", "A3", "A4", "A5")]
    assert not got["E1"].refused
    assert got["E1"].outside == ("A8",)  # A0 and A9 are named in the news: not "outside"
    assert got["E2"].refused and not got["E2"].scores.any()
    row = PredictionsPredictor("knowledge", preds, snap.tickers)
    ctx = RippleContext(None, lambda m: snap, events, cands, ALIGN, pd.DataFrame(), pd.DataFrame(), pd.Series())
    assert list(row.predict(events.iloc[:1], ctx)) == ["E1"]
    assert row.predict(events.iloc[:1], ctx)["E1"].scores.tolist() == got["E1"].scores.tolist()


@pytest.fixture(scope="module")
def small(synth_dir: Path):
    market = load_market(synth_dir)
    snaps: dict[str, object] = {}

    def read(m: str):
        if m not in snaps:
            snaps[m] = build_snapshot(market, m)
        return snaps[m]

    return market, read, residuals(market.returns, market.factors_daily, ALIGN.impact.residuals)


@pytest.mark.integration
def test_v2_scores_every_row_on_the_same_candidates_with_cis_and_counts(small, synth_dir: Path) -> None:
    market, read, resid = small
    cfg = RippleV2Config(n_resamples=200, predictor={"ridge_months": 3, "random_draws": 5})
    res = run_ripple_v2(market, read, ["2014-07", "2014-08"], cfg, ALIGN, data_dir=synth_dir, embed=hashed_embed,
                        sentiment_months=4, resid=resid, progress=False)
    frame = res.per_event
    assert set(frame["method"]) == set(cfg.predictors)
    # identical rows for every method: the same events, variants and candidate counts
    keys = frame.groupby("method").apply(lambda g: tuple(zip(g["event_id"], g["variant"], g["candidates"], strict=True)),
                                         include_groups=False)
    assert keys.nunique() == 1
    n = res.counts["events scored"]
    assert res.counts["news items"] == n + res.counts["dropped: outcome window past the data"]
    assert res.counts["dropped: outcome window past the data"] > 0  # late August news: window runs past the data
    s = res.summary.set_index("method")
    assert (s["events"] == n).all()
    assert (s["CI low"] <= s["mean rank IC"]).all() and (s["mean rank IC"] <= s["CI high"]).all()
    assert math.isnan(s.loc["propagation_only", "p vs propagation_only"])
    assert s.loc["oracle", "mean rank IC"] > s.loc["random", "mean rank IC"]
    assert s.loc["oracle", "corr planted"] == pytest.approx(1.0)
    assert set(res.paired["baseline"]) == {"propagation_only"}  # knowledge is not a row here
    assert set(res.power["method"]) == set(cfg.predictors) - {"propagation_only"}
    assert {"focal 0..+1", "named 0..+2"} <= set(res.by_variant.columns)
    assert res.coverage["candidates"].min() >= cfg.random_candidates
    assert "time_shuffled reuses the scores of" in res.notes[0]
    assert set(CONTROLS) <= set(s.index)
    md = res.to_markdown()
    assert "Ripple evaluation v2" in md and "Power" in md


@pytest.mark.integration
def test_ridge_rule_and_candidates_are_point_in_time(small) -> None:
    """Outcomes from the scored month's first day on do not move the ridge's scores; earlier ones do."""
    from kgfin.align.events import news_events

    market, read, resid = small
    events = news_events(market, ["2014-07"], ALIGN.events.model_copy(update={"max_events_per_month": None}))
    events["event_type"] = "all"
    cands = candidate_sets(events, read, 5)
    moves = window_moves(resid, 1)
    days = moves.index
    end = pd.Series(days[np.minimum(np.arange(len(days)) + 1, len(days) - 1)], index=days)

    def scores(mv: pd.DataFrame, rs: pd.DataFrame) -> dict[str, np.ndarray]:
        ctx = RippleContext(market, read, events, cands, ALIGN, rs, mv, end, embed=hashed_embed, sentiment_months=4,
                            n_random=5, settings=RippleV2Config().predictor.model_copy(update={"ridge_months": 3}))
        return {e: s.scores for e, s in build_predictor("ridge_rule").predict(events, ctx).items()}

    base = scores(moves, resid)
    later = moves.copy()
    start = pd.Timestamp("2014-07-01")
    later.loc[later.index >= start - pd.Timedelta(days=1)] = np.random.default_rng(0).normal(
        0, 1, later.loc[later.index >= start - pd.Timedelta(days=1)].shape)  # the window of June's last day ends in July
    resid_later = resid.assign(resid=np.where(resid["date"] >= start, 0.5, resid["resid"]))
    same = scores(later, resid_later)
    assert all(np.array_equal(base[e], same[e]) for e in base)
    earlier = moves.copy()
    earlier.loc[earlier.index < start - pd.Timedelta(days=10)] *= -1
    moved = scores(earlier, resid)
    assert any(not np.allclose(base[e], moved[e]) for e in base)


@pytest.mark.integration
def test_language_model_rows_plug_in_through_the_registry(small, synth_dir: Path) -> None:
    """The tiny model answers through predict_events and the one Decoder; its row sits on the same candidates."""
    from kgfin.evaluate.predictors import LanguageModelSetup
    from kgfin.llm import TINY_MODEL

    market, read, resid = small
    acfg = AlignConfig.model_validate({**ALIGN.model_dump(), "model": TINY_MODEL, "knowledge": False,
                                       "decoding": {"max_companies": 1}})  # the default grammar, one company
    cfg = RippleV2Config(predictors=["propagation_only", "zero_shot"], max_events_per_month=3, n_resamples=100)
    res = run_ripple_v2(market, read, ["2014-07"], cfg, acfg, data_dir=synth_dir, embed=hashed_embed, sentiment_months=4,
                        resid=resid, lm=LanguageModelSetup(max_new_tokens=40, batch_size=3, context_facts=5),
                        progress=False)
    frame = res.per_event
    lm, base = frame[frame["method"] == "zero_shot"], frame[frame["method"] == "propagation_only"]
    assert len(lm) == len(base) == 2 * 3
    assert lm["candidates"].tolist() == base["candidates"].tolist()
    row = res.summary.set_index("method").loc["zero_shot"]
    # under the grammar a random tiny model never refuses; every event is a ranking or an undefined IC
    assert row["events"] + row["IC undefined"] == 3 and row["refused"] == lm.loc[lm["variant"] == "focal", "refused"].sum()
    assert "p vs propagation_only" in res.summary.columns
    line = res.headline()["zero_shot"]
    assert line.startswith(f"IC {row['mean rank IC']:.4f} [") and f"(n={int(row['events'])})" in line
    assert line.endswith(f", {int(row['refused'])} refused") == bool(row["refused"])


@pytest.mark.integration
def test_answers_over_the_universe_read_on_the_candidates_equal_the_v2_scores(small, synth_dir: Path) -> None:
    """The paper tables' answers of propagation_only and oracle, read on the candidates, are their v2 rows."""
    from kgfin.align.impact_reward import build_impact_reward
    from kgfin.evaluate.predictors import AnsweringPredictor
    from kgfin.evaluate.v2 import prepare_v2

    market, read, resid = small
    from kgfin.align.events import news_events

    events = news_events(market, ["2014-07"], ALIGN.events.model_copy(update={"max_events_per_month": 5}))
    reward, events = build_impact_reward(events, market, read, ALIGN.impact, resid=resid)
    setup = prepare_v2(market, read, ["2014-07"], RippleV2Config(), ALIGN, events=events, data_dir=synth_dir,
                       embed=hashed_embed, sentiment_months=4, resid=resid, impact_reward=reward)
    for name in ("propagation_only", "oracle"):
        p = build_predictor(name)
        assert isinstance(p, AnsweringPredictor) and not p.generates
        answers = p.answers(setup.events, setup.ctx)
        assert list(answers) == [0.0] and len(answers[0.0]) == len(setup.events)
        via = prediction_scores(answers[0.0], reward.tickers, setup.ctx.candidates)
        direct = p.predict(setup.events, setup.ctx)
        for eid, s in direct.items():
            assert np.allclose(via[eid].scores, s.scores), (name, eid)


@pytest.mark.integration
def test_propagation_rows_keep_their_own_spread_when_answers_are_read_out_directly(small, synth_dir: Path) -> None:
    """A recipe reading language-model answers out without spread (align.impact.reward.propagation.hops 0) leaves
    propagation_only as it is (ripple_eval.v2.predictor.propagation), while an answer's Z is then its own scores."""
    from kgfin.evaluate.v2 import prepare_v2

    market, read, resid = small
    direct = AlignConfig.model_validate({"impact": {"residuals": {"window": 60, "min_obs": 40},
                                                    "reward": {"propagation": {"hops": 0}}}})
    rows = {}
    for name, cfg in (("spread", ALIGN), ("direct", direct)):
        setup = prepare_v2(market, read, ["2014-07"], RippleV2Config(max_events_per_month=5), cfg,
                           data_dir=synth_dir, embed=hashed_embed, sentiment_months=4, resid=resid)
        rows[name] = build_predictor("propagation_only").predict(setup.events, setup.ctx)
        reward = setup.ctx.reward()
        first = setup.events.iloc[0]
        y = np.zeros(len(reward.tickers))
        y[list(reward.tickers).index(first["tickers"][0])] = 0.02  # the news' company, which has neighbours
        z = reward.score_vectors(str(first["event_id"]), Impacts(scores={}), y).z
        assert np.allclose(z, y) == (name == "direct")
    assert rows["spread"].keys() == rows["direct"].keys()
    assert all(np.array_equal(rows["spread"][e].scores, rows["direct"][e].scores) for e in rows["spread"])
    assert any(np.abs(s.scores).sum() > 0 for s in rows["direct"].values())


@pytest.mark.integration
def test_gnn_row_scores_every_candidate_point_in_time(small, synth_dir: Path) -> None:
    """The registered gnn predictor scores each event's candidates; July outcomes do not move July's scores."""
    from kgfin.align.events import news_events

    market, read, resid = small
    events = news_events(market, ["2014-07"], ALIGN.events.model_copy(update={"max_events_per_month": None}))
    events["event_type"] = "all"
    cands = candidate_sets(events, read, 5)
    moves = window_moves(resid, 1)
    days = moves.index
    end = pd.Series(days[np.minimum(np.arange(len(days)) + 1, len(days) - 1)], index=days)
    settings = RippleV2Config(predictor={"gnn": {"train_months": 3, "max_epochs": 10, "hidden": 8,
                                                 "min_train_events": 10}}).predictor

    def scores(mv: pd.DataFrame) -> dict[str, np.ndarray]:
        ctx = RippleContext(market, read, events, cands, ALIGN, resid, mv, end, embed=hashed_embed, sentiment_months=4,
                            n_random=5, settings=settings)
        return {e: s.scores for e, s in build_predictor("gnn").predict(events, ctx).items()}

    base = scores(moves)
    assert set(base) == set(cands) and all(base[e].shape == (len(cands[e]),) for e in base)
    assert any(np.abs(s).sum() > 0 for s in base.values())
    later = moves.copy()
    known = end.reindex(later.index) < pd.Timestamp("2014-07-01")
    later.loc[~known] = 1.0
    assert all(np.array_equal(base[e], s) for e, s in scores(later).items())
