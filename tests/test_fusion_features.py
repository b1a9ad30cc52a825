"""The fusion panel: standardised factors, the news window, ripple input, the target, point in time."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kgfin.data import load_market
from kgfin.data.calendar import add_months
from kgfin.fusion.features import FusionInputError, build_panel, load_ripple, rebalance_times
from kgfin.fusion.ripple import assign_months, oracle_ripple, propagation_ripple
from kgfin.market.returns import monthly_returns


@pytest.fixture(scope="module")
def market(synth_dir: Path):
    return load_market(synth_dir)


def test_factors_are_standardised_per_month_with_missing_flags(market) -> None:
    panel = build_panel(market)
    names = [c for c in market.stock_factors.columns if c not in ("month", "ticker")]
    assert panel.factor_names == names + [f"{n}__missing" for n in names]
    assert panel.x_f.shape == (len(panel), 2 * len(names)) and panel.x_f.dtype == np.float32
    sf = market.stock_factors.assign(month=market.stock_factors["month"].astype(str))
    merged = panel.keys.merge(sf, on=["month", "ticker"], how="left")
    for j, name in enumerate(names):
        miss = merged[name].isna().to_numpy()
        np.testing.assert_array_equal(panel.x_f[:, len(names) + j], miss.astype(np.float32))
        assert (panel.x_f[miss, j] == 0).all()
        for m in panel.months:
            rows = (panel.keys["month"] == m).to_numpy() & ~miss
            if rows.sum() > 2:
                z = panel.x_f[rows, j]
                assert abs(z.mean()) < 0.15 and np.abs(z).max() <= 3.0 + 1e-6


def test_target_is_next_month_return_demeaned_or_raw(market) -> None:
    panel = build_panel(market)
    realised = monthly_returns(market.returns).set_index(["month", "ticker"])["ret"]
    expected = realised.loc[list(zip(panel.keys["target_month"], panel.keys["ticker"], strict=True))].to_numpy()
    np.testing.assert_allclose(panel.ret, expected)
    assert (panel.keys["target_month"] == [add_months(m, 1) for m in panel.keys["month"]]).all()
    per_month = pd.Series(panel.y).groupby(panel.keys["target_month"].to_numpy()).mean()
    np.testing.assert_allclose(per_month, 0.0, atol=1e-6)
    raw = build_panel(market, target="raw")
    np.testing.assert_allclose(raw.y, panel.ret.astype(np.float32))


def test_news_window_holds_the_week_before_the_close(market) -> None:
    panel = build_panel(market)
    cutoffs = rebalance_times(pd.DatetimeIndex(market.returns["date"].unique()))
    by_id = market.news.set_index("id")
    assert panel.has_news.any() and not panel.has_news.all()
    for i in np.flatnonzero(panel.has_news)[:50]:
        month, ticker = panel.keys.loc[i, ["month", "ticker"]]
        for j in panel.news_lists(np.array([i]))[0]:
            item = by_id.loc[panel.news_ids[j]]
            assert item["headline"] == panel.texts[j]
            assert ticker in item["tickers"]
            assert cutoffs[month] - pd.Timedelta(days=7) <= item["timestamp"] < cutoffs[month]
    wide = build_panel(market, news_window_days=30)
    assert wide.has_news.sum() > panel.has_news.sum()


def test_news_at_or_after_the_rebalancing_time_is_left_out(market) -> None:
    cutoffs = rebalance_times(pd.DatetimeIndex(market.returns["date"].unique()))
    month = sorted(market.stock_factors["month"].astype(str).unique())[2]
    ticker = market.tickers[0]
    extra = pd.DataFrame({"id": ["X1", "X2"], "timestamp": [cutoffs[month], cutoffs[month] - pd.Timedelta(minutes=1)],
                          "tickers": [(ticker,), (ticker,)], "headline": ["at the close", "just before"],
                          "body": ["b", "b"]})
    panel = build_panel(replace(market, news=pd.concat([market.news, extra], ignore_index=True)))
    row = int(np.flatnonzero((panel.keys["month"] == month) & (panel.keys["ticker"] == ticker))[0])
    texts = [panel.texts[j] for j in panel.news_lists(np.array([row]))[0]]
    assert "just before" in texts and "at the close" not in texts
    assert "at the close" not in panel.texts


def test_features_of_a_month_use_nothing_after_its_rebalancing_time(market) -> None:
    months = sorted(market.stock_factors["month"].astype(str).unique())
    m = months[3]
    cutoffs = rebalance_times(pd.DatetimeIndex(market.returns["date"].unique()))
    full = build_panel(market)
    later = market.news["timestamp"] >= cutoffs[m]
    news = market.news.copy()
    news.loc[later, "headline"] = "rewritten " + news.loc[later, "headline"]
    sf = market.stock_factors.copy()
    after = sf["month"].astype(str) > m
    noise = np.random.default_rng(0).normal(size=(int(after.sum()), len(sf.columns) - 2))
    sf.loc[after, sf.columns[2:]] = sf.loc[after, sf.columns[2:]].to_numpy() + noise
    returns = market.returns.copy()
    returns.loc[returns["date"] > cutoffs[add_months(m, 1)], "ret"] *= -1  # beyond the target month of m
    changed = build_panel(replace(market, news=news, stock_factors=sf, returns=returns))
    keep = (full.keys["month"] <= m).to_numpy()
    np.testing.assert_array_equal(full.x_f[keep], changed.x_f[keep])
    np.testing.assert_array_equal(full.y[keep], changed.y[keep])
    for i in np.flatnonzero(keep):
        a = [full.texts[j] for j in full.news_lists(np.array([i]))[0]]
        b = [changed.texts[j] for j in changed.news_lists(np.array([i]))[0]]
        assert a == b
    assert not np.array_equal(full.x_f[~keep], changed.x_f[~keep])


def test_pooled_news_is_the_mean_of_item_vectors(market) -> None:
    panel = build_panel(market)
    vecs = np.random.default_rng(0).normal(size=(len(panel.texts), 5)).astype(np.float32)
    pooled = panel.pooled_news(vecs)
    for i in range(len(panel)):
        items = panel.news_lists(np.array([i]))[0]
        expected = vecs[items].mean(0) if len(items) else np.zeros(5)
        np.testing.assert_allclose(pooled[i], expected, rtol=1e-5, atol=1e-6)


def test_ripple_scores_attach_with_zero_and_flag_where_missing(market) -> None:
    panel0 = build_panel(market)
    table = panel0.keys[["month", "ticker"]].iloc[::3].assign(ripple=0.25)
    panel = build_panel(market, ripple=table)
    assert panel.has_ripple.sum() == len(table)
    assert (panel.ripple[panel.has_ripple] == 0.25).all() and (panel.ripple[~panel.has_ripple] == 0).all()


@pytest.mark.parametrize(("frame", "message"), [
    (pd.DataFrame({"month": ["2020-01"], "ticker": ["A"]}), "missing column"),
    (pd.DataFrame({"month": ["2020-1"], "ticker": ["A"], "ripple": [0.1]}), "row 1, column 'month'"),
    (pd.DataFrame({"month": ["2020-01", "2020-01"], "ticker": ["A", "B"], "ripple": [0.1, np.inf]}),
     "row 2, column 'ripple'"),
    (pd.DataFrame({"month": ["2020-01", "2020-01"], "ticker": ["A", "A"], "ripple": [0.1, 0.2]}), "row 2: second row"),
])
def test_bad_ripple_tables_raise_clear_errors(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(FusionInputError, match=message):
        load_ripple(frame)


def test_ripple_files_load_from_csv_and_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame({"month": ["2020-01", "2020-02"], "ticker": ["A", "B"], "ripple": [0.1, -0.2]})
    frame.to_csv(tmp_path / "r.csv", index=False)
    frame.to_parquet(tmp_path / "r.parquet")
    for name in ("r.csv", "r.parquet"):
        pd.testing.assert_frame_equal(load_ripple(tmp_path / name), frame)
    with pytest.raises(FusionInputError, match="not found"):
        load_ripple(tmp_path / "missing.csv")


def test_events_belong_to_the_month_whose_window_holds_them() -> None:
    cut = pd.Series(pd.to_datetime(["2020-01-31 16:00", "2020-02-28 16:00"]), index=["2020-01", "2020-02"])
    ts = pd.Series(pd.to_datetime(["2020-01-15 00:00", "2020-01-31 16:00", "2020-02-28 15:59", "2020-03-01 00:00"]))
    assert assign_months(ts, cut).tolist() == ["2020-01", "2020-02", "2020-02", None]


def test_oracle_and_propagation_ripple_sources(market, synth_dir: Path) -> None:
    days = pd.DatetimeIndex(market.returns["date"].unique())
    oracle = oracle_ripple(synth_dir, days)
    impacts = pd.read_parquet(synth_dir / "truth" / "impacts.parquet")
    assert np.isclose(oracle["ripple"].sum(), impacts["shock"].sum(), atol=0.5)  # all but events after the last close
    assert set(oracle.columns) == {"month", "ticker", "ripple"} and not oracle.duplicated(["month", "ticker"]).any()
    prop = propagation_ripple(market)
    assert len(prop) > 0 and np.isfinite(prop["ripple"]).all()
    load_ripple(oracle)
    load_ripple(prop)
