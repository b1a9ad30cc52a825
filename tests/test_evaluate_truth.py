"""The synthetic-truth metrics of the ripple evaluation, on hand-made answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kgfin.align.impact_reward import ScoredAnswer
from kgfin.align.predict import Prediction
from kgfin.evaluate.ripple import truth_metrics
from kgfin.llm.parse import Impacts

TICKERS = ["AAA", "BBB", "CCC", "DDD"]


def _pred(event_id: str, z: list[float], reward: float = 0.0, refused: bool = False) -> Prediction:
    impacts = Impacts(refused=True) if refused else Impacts(scores={"AAA": 1.0})
    arr = np.asarray(z, dtype=float)
    return Prediction(event_id, pd.Timestamp("2020-01-02"), "2019-12", "",
                      ScoredAnswer(impacts, arr, arr, 0.0, 0.0, reward))


TRUTH = pd.DataFrame({"event_id": ["e1", "e1", "e2"], "ticker": ["AAA", "CCC", "BBB"],
                      "shock": [-0.04, 0.01, 0.02]})
FOCAL = {"e1": "AAA", "e2": "BBB"}


def test_recall_correlation_and_focal_sign_by_hand() -> None:
    preds = [_pred("e1", [-0.05, 0.03, 0.0, 0.0], reward=0.2),  # top-2 by |Z|: AAA, BBB -> recall 1/2
             _pred("e2", [0.0, -0.01, 0.0, 0.0], reward=-0.1)]  # BBB found, wrong sign
    got = truth_metrics(preds, TRUTH, TICKERS, FOCAL, recall_k=2)
    assert got["events"] == 2
    assert got["recall@2"] == pytest.approx((0.5 + 1.0) / 2)
    want_corr = np.mean([np.corrcoef([-0.05, 0.03, 0, 0], [-0.04, 0, 0.01, 0])[0, 1],
                         np.corrcoef([0, -0.01, 0, 0], [0, 0.02, 0, 0])[0, 1]])
    assert got["corr_with_planted"] == pytest.approx(want_corr)
    assert got["focal_sign_right"] == pytest.approx(0.5)
    assert got["mean_reward"] == pytest.approx(0.05)
    assert got["refusal_rate"] == 0.0


def test_zero_z_counts_as_wrong_sign_and_unmatched_events_are_skipped() -> None:
    preds = [_pred("e1", [0.0, 0.0, 0.0, 0.0], refused=True), _pred("zz", [1.0, 0.0, 0.0, 0.0])]
    got = truth_metrics(preds, TRUTH, TICKERS, FOCAL, recall_k=10)
    assert got["events"] == 1  # "zz" has no truth rows
    assert got["recall@10"] == 0.0 and got["corr_with_planted"] == 0.0
    assert got["focal_sign_right"] == 0.0
    assert got["refusal_rate"] == pytest.approx(0.5)
