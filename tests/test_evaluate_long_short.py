"""Long-short on ripple scores: signals from candidate scores, the whole evaluation window, periods counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kgfin.evaluate.long_short import evaluation_days, long_short_on_scores, score_signals
from kgfin.evaluate.predictors import EventScores
from kgfin.graph.candidates import CandidateSet
from kgfin.portfolio import LongShortConfig, SharpeConfig

DAYS = pd.bdate_range("2015-02-02", "2015-02-06")


def _cand(eid: str, tickers: tuple[str, ...]) -> CandidateSet:
    return CandidateSet(eid, "A", "2015-01", tickers, np.ones(len(tickers), dtype=bool), frozenset({"A"}))


def _returns() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame([{"date": d, "ticker": t, "ret": float(rng.normal(0, 0.01))}
                         for d in DAYS for t in ("A", "B", "C", "D")])


def test_signals_drop_zero_scores_average_draws_and_sum_events_of_a_day() -> None:
    events = pd.DataFrame({"event_id": ["E1", "E2"], "day": [DAYS[0], DAYS[0]]})
    cands = {"E1": _cand("E1", ("B", "C", "D")), "E2": _cand("E2", ("B", "C"))}
    rows = {"E1": EventScores(np.array([[1.0, 0.0, -1.0], [3.0, 0.0, -3.0]])),  # two draws: mean (2, 0, -2)
            "E2": EventScores(np.array([0.5, 0.0]))}
    got = score_signals(rows, events, cands).set_index("ticker")["score"]
    assert got.to_dict() == {"B": 2.5, "D": -2.0}  # C: no view in either event


def test_long_short_spans_the_window_with_flat_days_at_zero() -> None:
    returns = _returns()
    events = pd.DataFrame({"event_id": ["E1"], "day": [DAYS[0]]})
    cands = {"E1": _cand("E1", ("B", "C", "D"))}
    rows = {"ranks": {"E1": EventScores(np.array([1.0, 0.0, -1.0]))},
            "silent": {"E1": EventScores(np.zeros(3))}}
    daily, table, notes = long_short_on_scores(rows, events, cands, returns, ["2015-02"],
                                               LongShortConfig(quantile=0.5, lag=1), SharpeConfig(min_periods=60))
    r = returns.set_index(["date", "ticker"])["ret"]
    expected = r[(DAYS[1], "B")] - r[(DAYS[1], "D")]  # long B, short D on the day after the event
    assert list(daily.index) == list(DAYS) == list(evaluation_days(returns, ["2015-02"]))
    assert daily["ranks"].tolist() == pytest.approx([0.0, expected, 0.0, 0.0, 0.0])
    assert (daily["silent"] == 0).all() and any("silent" in n for n in notes)
    t = table.set_index("strategy")
    assert t.loc["ranks", "periods"] == 5 and t.loc["ranks", "days held"] == 1
    assert t.loc["ranks", "mean"] == pytest.approx(expected / 5)
    assert np.isnan(t.loc["ranks", "sharpe"]) and t.loc["ranks", "shown"].startswith("5 < 60")
