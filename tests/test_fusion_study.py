"""The fusion power study: walk-forward windows without look-ahead, the per-signal metrics, the paired tables, and
one tiny end-to-end grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kgfin.fusion.study import (
    StudyConfig,
    evaluate_signal,
    headline_table,
    paired_months,
    ripple_signal,
    run_study,
    walk_forward,
)


def _months(n: int) -> list[str]:
    return [str(p) for p in pd.period_range("2010-01", periods=n, freq="M")]


def test_walk_forward_blocks_are_disjoint_and_train_before_they_predict() -> None:
    months = _months(119)
    cfg = StudyConfig(test_months=60, retrain_every=30, valid_months=6)
    blocks = walk_forward(months, cfg)
    assert [len(b["test"]) for b in blocks] == [30, 30]
    assert [m for b in blocks for m in b["test"]] == months[-60:]
    for b in blocks:
        assert max(b["train"]) < min(b["valid"]) and max(b["valid"]) < min(b["test"])
        assert len(b["valid"]) == 6 and b["train"][0] == months[0]  # expanding
    assert len(blocks[1]["train"]) == len(blocks[0]["train"]) + 30
    rolling = walk_forward(months, cfg.model_copy(update={"window": "rolling", "train_months": 24}))
    assert all(len(b["train"]) + len(b["valid"]) == 24 for b in rolling)
    with pytest.raises(ValueError, match="cannot hold"):
        walk_forward(months[:60], cfg)


def _realised(n_months: int = 60, n_stocks: int = 50, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame([{"target_month": m, "ticker": f"T{i:02d}", "ret": rng.normal(0, 0.05)}
                         for m in _months(n_months) for i in range(n_stocks)])


def test_a_perfect_signal_scores_ic_one_monotone_deciles_and_costs_lower_its_sharpe() -> None:
    realised = _realised()
    perfect = realised.rename(columns={"ret": "pred"})
    metrics, monthly = evaluate_signal(perfect, realised, StudyConfig())
    assert metrics["months"] == 60 and len(monthly) == 60
    assert metrics["rank IC"] == pytest.approx(1.0) and metrics["IC"] == pytest.approx(1.0)
    assert metrics["decile monotonicity"] == pytest.approx(1.0)
    assert metrics["LS Sharpe"] > metrics["LS Sharpe net 15bp"] > metrics["LS Sharpe net 25bp"]
    low, high = metrics["LS Sharpe CI"]
    assert low < metrics["LS Sharpe"] < high
    # under 60 periods no Sharpe is shown
    short, _ = evaluate_signal(perfect[perfect["target_month"] < "2012-01"], realised, StudyConfig())
    assert np.isnan(short["LS Sharpe"]) and short["months"] == 24


def test_paired_months_averages_seeds_then_differences_months() -> None:
    rows = []
    for seed in (0, 1):
        for k, m in enumerate(_months(4)):
            rows.append({"model": "a", "source": "x", "seed": seed, "target_month": m, "rank_ic": 0.1 + 0.01 * k})
            rows.append({"model": "a", "source": "none", "seed": seed, "target_month": m, "rank_ic": 0.05 + 0.01 * k
                         + (0.02 if seed else 0.0)})
    got = paired_months(pd.DataFrame(rows), ("a", "x"), ("a", "none"), lags=0)
    assert got["months"] == 4 and got["mean difference"] == pytest.approx(0.04)
    assert np.isnan(got["NW t"])  # a constant difference has no standard error
    assert got["seeds a > b"] == "2 of 2"


@pytest.mark.integration
def test_tiny_grid_end_to_end(synth_dir) -> None:
    from kgfin.data import load_market
    from kgfin.fusion import FusionConfig, build_panel

    market = load_market(synth_dir)
    panel = build_panel(market)
    x_n = np.random.default_rng(0).normal(size=(len(panel), 8)).astype(np.float32)
    fusion = FusionConfig.model_validate({"models": ["factors_alone", "mixture_decoupled"],
                                          "train": {"epochs": 1, "batch_size": 64, "grad_var_batches": 2}})
    ripple = {"none": None, "flat": panel.keys[["month", "ticker"]].assign(ripple=1.0)}
    cfg = StudyConfig(seeds=[0, 1], test_months=2, retrain_every=1, valid_months=1, sharpe={"min_periods": 2},
                      quantiles=4, sources_for={"mixture_decoupled": ["none", "flat"]})
    res = run_study(panel, x_n, ripple, fusion, cfg, progress=False)
    assert set(zip(res.runs["model"], res.runs["source"], strict=True)) == {
        ("factors_alone", "none"), ("mixture_decoupled", "none"), ("mixture_decoupled", "flat")}
    assert len(res.runs) == 6 and (res.runs["months"] == 2).all()
    assert set(res.grad_var["block"]) == {0}  # gradient variance in the first window only
    test = {m for b in res.blocks for m in b["test"]}
    assert set(res.predictions["month"]) == test  # out of sample only
    assert len(headline_table(res.runs)) == 3


def test_ripple_signal_scores_each_table_on_its_rows_or_on_a_common_support() -> None:
    from kgfin.fusion.features import Panel

    months, tickers = _months(3), [f"T{i}" for i in range(6)]
    keys = pd.DataFrame([{"month": m, "target_month": "x", "ticker": t} for m in months for t in tickers])
    y = np.tile(np.arange(6, dtype=np.float32), 3)
    panel = Panel(keys=keys, x_f=np.zeros((18, 1), np.float32), factor_names=["f"], texts=[], news_ids=[],
                  news_offsets=np.zeros(19, np.int64), news_index=np.zeros(0, np.int64), y=y, ret=y.astype(float))
    good = keys[["month", "ticker"]].assign(ripple=y)  # ranks the target perfectly
    bad = keys[["month", "ticker"]].assign(ripple=-y)
    few = good[good["ticker"].isin(["T0", "T1", "T2"])]
    got = ripple_signal({"good": good, "bad": bad, "few": few}, panel, months[:2], lags=0).set_index("source")
    assert got.loc["good", "mean rank IC"] == pytest.approx(1.0) and got.loc["bad", "mean rank IC"] == pytest.approx(-1)
    assert got.loc["good", "stock-months"] == 12 and got.loc["few", "stock-months"] == 6
    common = ripple_signal({"good": good, "few": few}, panel, months, "few", lags=0).set_index("source")
    assert (common["stock-months"] == 9).all() and (common["months"] == 3).all()
