"""Alignment events (point in time) and the impact reward (parse -> propagate -> cos + coverage)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from kgfin.align.config import AlignConfig, EventConfig, ImpactRewardConfig
from kgfin.align.events import AlignInputError, news_events
from kgfin.align.impact_reward import EventCandidates, ImpactReward, build_impact_reward
from kgfin.data import load_market
from kgfin.data.calendar import add_months
from kgfin.graph.snapshot import build_snapshot
from kgfin.llm.parse import Universe
from kgfin.llm.prompts import analyst_prompt
from kgfin.market.residuals import residuals, window_moves

UNIVERSE = Universe(("AAA", "BBB", "CCC"), ("Alpha Inc", "Beta Corp", "Gamma Ltd"))
# AAA supplies BBB (cooperation) and competes with CCC.
MU = sp.csr_matrix(np.array([[0.0, 0.5, -0.5], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))


def _answer(*items: tuple[str, float]) -> str:
    return json.dumps({"impact_analysis": {"affected_companies": [
        {"name": n, "impact_type": "direct", "impact_score": s} for n, s in items], "analysis": "x"}})


PAPER = {"reward": {"kind": "paper"}}


def _reward(eps: list[float], **cfg: object) -> ImpactReward:
    return ImpactReward(UNIVERSE, {"2020-12": MU}, {"e1": np.array(eps)}, {"e1": "2020-12"},
                        ImpactRewardConfig.model_validate({**PAPER, **cfg}))


def test_ripple_over_the_graph_earns_more_than_the_focal_company_alone() -> None:
    reward = _reward([-0.04, -0.02, 0.02])  # AAA falls, its customer falls, its competitor rises
    focal = reward.score(_answer(("AAA", -4)), "e1")
    assert focal.z.round(6).tolist() == [-0.04, -0.02, 0.02]  # propagation already spreads the focal shock
    assert focal.cos == pytest.approx(1.0)
    wrong_sign = reward.score(_answer(("AAA", 4)), "e1")
    assert wrong_sign.reward < 0 < focal.reward
    assert focal.reward == pytest.approx(1.0 + 0.1 * 1.0)  # |Z| covers |eps| everywhere


def test_coverage_term_rewards_magnitude() -> None:
    reward = _reward([-0.04, -0.02, 0.02])
    small, right = reward.score(_answer(("AAA", -1)), "e1"), reward.score(_answer(("AAA", -4)), "e1")
    assert small.cos == pytest.approx(right.cos)
    assert small.coverage == pytest.approx(0.25) and right.coverage == pytest.approx(1.0)
    assert small.reward < right.reward


def test_refusals_and_copied_examples_earn_the_refusal_reward() -> None:
    reward = _reward([-0.04, -0.02, 0.02], refusal_reward=-0.2)
    example = analyst_prompt("AAA cuts guidance", "body", "2021-01-05").split("format: ", 1)[1]
    scored = reward.score_batch(["I cannot say.", example, _answer(("Nobody Co", 5)), _answer(("AAA", -4))],
                                ["e1"] * 4)
    assert [s.reward for s in scored[:3]] == [-0.2, -0.2, -0.2]
    assert [s.refused for s in scored] == [True, True, True, False]
    assert scored[1].impacts.reason == "copied the prompt's example"
    assert scored[3].reward > -0.2


def test_batch_scope_pays_for_size_relative_to_the_other_news() -> None:
    # no graph edges; e1: AAA moves 5 %, e2: BBB moves 1 %
    eps = {"e1": np.array([0.05, 0.0, 0.0]), "e2": np.array([0.0, 0.01, 0.0])}
    months = {"e1": "2020-12", "e2": "2020-12"}
    answers = [_answer(("AAA", 10)), _answer(("AAA", 10)), _answer(("BBB", 2)), _answer(("BBB", 10))]
    ids = ["e1", "e1", "e2", "e2"]
    reward = ImpactReward(UNIVERSE, {"2020-12": sp.csr_matrix((3, 3))}, eps, months,
                          ImpactRewardConfig.model_validate(PAPER))
    by_item = reward.score_batch(answers, ids)
    item = [s.reward for s in by_item]
    assert item[2] == item[3] == pytest.approx(1.1)  # per item, 2 and 10 both point at BBB and cover its move
    by_batch = reward.score_batch(answers, ids, scope="batch")
    batch = [s.reward for s in by_batch]
    # stacked with e1's answer (AAA 10 = 0.1): BBB 2 = 0.02 keeps Z proportional to eps, BBB 10 does not
    assert batch[2] == pytest.approx(1.1)
    assert batch[3] == pytest.approx(0.006 / (np.sqrt(0.02) * np.sqrt(0.0026)) + 0.1)
    # e1's answers meet e2's mean answer, BBB 6 = 0.06
    assert batch[0] == batch[1] == pytest.approx(0.0056 / (np.sqrt(0.0136) * np.sqrt(0.0026)) + 0.1)
    assert [s.cos for s in by_batch] == [s.cos for s in by_item]  # the logged terms stay per item


def test_batch_scope_keeps_refusals_and_a_lone_item_as_per_item() -> None:
    answers = [_answer(("AAA", -4)), "I cannot say.", _answer(("BBB", 7))]
    reward = _reward([-0.04, -0.02, 0.02])
    item = [s.reward for s in reward.score_batch(answers, ["e1"] * 3)]
    batch = [s.reward for s in reward.score_batch(answers, ["e1"] * 3, scope="batch")]
    assert batch == pytest.approx(item)
    assert batch[1] == -0.05


def test_chat_style_completions_and_unknown_events() -> None:
    reward = _reward([-0.04, -0.02, 0.02])
    out = reward.score_batch([[{"role": "assistant", "content": _answer(("Alpha Inc", -4))}]], ["e1"])
    assert out[0].reward == pytest.approx(1.1)
    with pytest.raises(AlignInputError, match="no residual returns"):
        reward.score("{}", "nope")


def test_add_months_back() -> None:
    assert add_months("2015-01", -1) == "2014-12"
    assert add_months("2015-01", -13) == "2013-12"


def test_events_are_point_in_time_and_deterministic(synth_dir: Path) -> None:
    market = load_market(synth_dir)
    cfg = EventConfig(max_events_per_month=5, seed=3)
    ev = news_events(market, ["2014-07", "2014-08"], cfg)
    assert list(ev["month"].value_counts().sort_index()) == [5, 5]
    assert (ev["graph_month"] < ev["month"]).all()
    assert (ev["graph_month"] == ev["month"].map(lambda m: add_months(m, -1))).all()
    assert (ev["day"] >= ev["timestamp"].dt.normalize()).all()
    assert (pd.DatetimeIndex(ev["timestamp"]).to_period("M").astype(str) == ev["month"]).all()
    pd.testing.assert_frame_equal(ev, news_events(market, ["2014-07", "2014-08"], cfg))
    assert news_events(market, ["2014-07"], EventConfig(graph_lag_months=0))["graph_month"].eq("2014-07").all()
    with pytest.raises(AlignInputError, match="no news events"):
        news_events(market, ["1999-01"], cfg)


def test_reward_uses_event_day_residuals_and_the_lagged_graph(synth_dir: Path) -> None:
    market = load_market(synth_dir)
    ev = news_events(market, ["2014-02", "2014-08"], EventConfig(max_events_per_month=4))
    cfg = ImpactRewardConfig.model_validate({"residuals": {"window": 60, "min_obs": 40}})
    asked = []

    def read(month: str):
        asked.append(month)
        return build_snapshot(market, month)

    reward, kept = build_impact_reward(ev, market, read, cfg)
    assert sorted(set(asked)) == ["2014-01", "2014-07"]
    assert set(kept["month"]) == {"2014-08"}  # February has no fitted betas yet (40 days needed)
    row = kept.iloc[0]
    eps = reward.eps[row["event_id"]]
    assert eps.shape == (len(market.companies),) and np.isfinite(eps).all()
    focal = row["tickers"][0]
    scored = reward.score(_answer((focal, -5)), row["event_id"])
    assert scored.y[list(reward.tickers).index(focal)] == pytest.approx(-0.05)
    assert -1 <= scored.cos <= 1 and 0 <= scored.coverage <= 1


def _candidate_reward(kind: str, moves: list[float]) -> ImpactReward:
    """Candidates BBB (named by the news) and CCC of e1 (focal AAA), with the given window moves."""
    cands = {"e1": EventCandidates(np.array([1, 2]), np.array([False, True]), np.array(moves))}
    return ImpactReward(UNIVERSE, {"2020-12": MU}, {"e1": np.zeros(3)}, {"e1": "2020-12"},
                        ImpactRewardConfig.model_validate({"reward": {"kind": kind}}), candidates=cands)


def test_candidate_rewards_read_z_on_the_candidates_only() -> None:
    # AAA -4 propagates to BBB -0.02 and CCC +0.02 (MU: supplies BBB, competes with CCC)
    right = _candidate_reward("candidate_mse", [-0.02, 0.02]).score(_answer(("AAA", -4)), "e1")
    assert right.z.round(6).tolist() == [-0.04, -0.02, 0.02]
    assert right.mse == pytest.approx(1.0) and right.reward == pytest.approx(1.0)  # the focal firm is no candidate
    double = _candidate_reward("candidate_mse", [-0.02, 0.02]).score(_answer(("AAA", -8)), "e1")
    assert double.reward == pytest.approx(0.0)  # twice the size: error = ||e||^2
    sized = _candidate_reward("sized_ripple", [-0.02, 0.02]).score(_answer(("AAA", -4)), "e1")
    assert sized.ic == 0.0  # one ripple candidate (CCC): no ranking
    assert sized.reward == pytest.approx(0.5 * 1.0 + 0.5 * 0.0)


def test_saturated_answers_earn_less_than_sized_ones_under_candidate_rewards() -> None:
    for kind in ("candidate_mse", "sized_ripple"):
        reward = _candidate_reward(kind, [-0.02, 0.02])
        sized, saturated = reward.score(_answer(("AAA", -4)), "e1"), reward.score(_answer(("AAA", -10)), "e1")
        assert saturated.reward < sized.reward
    paper = _reward([-0.04, -0.02, 0.02])
    assert paper.score(_answer(("AAA", -10)), "e1").reward == pytest.approx(paper.score(_answer(("AAA", -4)),
                                                                                            "e1").reward)


def test_candidate_kinds_need_candidates_and_batch_scope_needs_paper() -> None:
    with pytest.raises(AlignInputError, match="needs every event's candidates"):
        ImpactReward(UNIVERSE, {"2020-12": MU}, {"e1": np.zeros(3)}, {"e1": "2020-12"}, ImpactRewardConfig())
    with pytest.raises(ValueError, match="reward_scope=batch"):
        AlignConfig.model_validate({"experimental": {"reward_scope": "batch"}})
    AlignConfig.model_validate({"experimental": {"reward_scope": "batch"}, "impact": PAPER})


def test_built_reward_has_candidates_with_window_moves(synth_dir: Path) -> None:
    market = load_market(synth_dir)
    ev = news_events(market, ["2014-08"], EventConfig(max_events_per_month=4))
    cfg = ImpactRewardConfig.model_validate({"residuals": {"window": 60, "min_obs": 40}, "horizon": 1})
    reward, kept = build_impact_reward(ev, market, lambda m: build_snapshot(market, m), cfg)
    resid = residuals(market.returns, market.factors_daily, cfg.residuals)
    moves = window_moves(resid, 1)
    for row in kept.itertuples(index=False):
        c = reward.candidates[str(row.event_id)]
        chosen = [reward.tickers[i] for i in c.index]
        assert row.tickers[0] not in chosen and len(chosen) >= 20
        expected = moves.loc[pd.Timestamp(row.day), chosen].to_numpy(dtype=float)
        np.testing.assert_allclose(c.moves, expected)
        assert c.ripple.tolist() == [t not in row.tickers for t in chosen]


def test_focal_score_unit_scales_the_news_company_only() -> None:
    """impact.focal_score_unit: the news' own company's points are read on their own scale, every other company's
    on score_unit; without it (or without the event's focal firm) one scale for all."""
    answer = _answer(("AAA", -4), ("CCC", 2))
    cfg = {"score_unit": 0.002, "reward": {"kind": "paper", "propagation": {"hops": 0}}}
    one = ImpactReward(UNIVERSE, {"2020-12": MU}, {"e1": np.ones(3)}, {"e1": "2020-12"},
                       ImpactRewardConfig.model_validate(cfg)).score(answer, "e1")
    assert one.y.round(6).tolist() == [-0.008, 0.0, 0.004]
    two = ImpactReward(UNIVERSE, {"2020-12": MU}, {"e1": np.ones(3)}, {"e1": "2020-12"},
                       ImpactRewardConfig.model_validate({**cfg, "focal_score_unit": 0.01}),
                       focal={"e1": "AAA"}).score(answer, "e1")
    assert two.y.round(6).tolist() == [-0.04, 0.0, 0.004]
    unit = ImpactRewardConfig(score_unit=0.002, focal_score_unit=0.01)
    assert (unit.unit_of(focal=True), unit.unit_of(focal=False)) == (0.01, 0.002)
    assert ImpactRewardConfig(score_unit=0.002).unit_of(focal=True) == 0.002
