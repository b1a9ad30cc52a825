"""Alignment events (point in time) and the impact reward (parse -> propagate -> cos + coverage)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from kgfin.align.config import EventConfig, ImpactRewardConfig
from kgfin.align.events import AlignInputError, month_minus, news_events
from kgfin.align.impact_reward import ImpactReward, build_impact_reward
from kgfin.data import load_market
from kgfin.graph.snapshot import build_snapshot
from kgfin.llm.parse import Universe
from kgfin.llm.prompts import analyst_prompt

UNIVERSE = Universe(("AAA", "BBB", "CCC"), ("Alpha Inc", "Beta Corp", "Gamma Ltd"))
# AAA supplies BBB (cooperation) and competes with CCC.
MU = sp.csr_matrix(np.array([[0.0, 0.5, -0.5], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))


def _answer(*items: tuple[str, float]) -> str:
    return json.dumps({"impact_analysis": {"affected_companies": [
        {"name": n, "impact_type": "direct", "impact_score": s} for n, s in items], "analysis": "x"}})


def _reward(eps: list[float], **cfg: object) -> ImpactReward:
    return ImpactReward(UNIVERSE, {"2020-12": MU}, {"e1": np.array(eps)}, {"e1": "2020-12"},
                        ImpactRewardConfig.model_validate(cfg))


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
    out = reward(prompts=["p"] * 4, completions=["I cannot say.", example, _answer(("Nobody Co", 5)),
                                                _answer(("AAA", -4))], event_id=["e1"] * 4)
    assert out[:3] == [-0.2, -0.2, -0.2]
    assert [s.refused for s in reward.last] == [True, True, True, False]
    assert reward.last[1].impacts.reason == "copied the prompt's example"
    assert out[3] > -0.2


def test_chat_style_completions_and_unknown_events() -> None:
    reward = _reward([-0.04, -0.02, 0.02])
    out = reward(completions=[[{"role": "assistant", "content": _answer(("Alpha Inc", -4))}]], event_id=["e1"])
    assert out[0] == pytest.approx(1.1)
    with pytest.raises(AlignInputError, match="no residual returns"):
        reward.score("{}", "nope")


def test_month_minus() -> None:
    assert month_minus("2015-01", 1) == "2014-12"
    assert month_minus("2015-01", 13) == "2013-12"


def test_events_are_point_in_time_and_deterministic(synth_dir: Path) -> None:
    market = load_market(synth_dir)
    cfg = EventConfig(max_events_per_month=5, seed=3)
    ev = news_events(market, ["2014-07", "2014-08"], cfg)
    assert list(ev["month"].value_counts().sort_index()) == [5, 5]
    assert (ev["graph_month"] < ev["month"]).all()
    assert (ev["graph_month"] == ev["month"].map(lambda m: month_minus(m, 1))).all()
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
