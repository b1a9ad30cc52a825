"""Ripple-score tables (kgfin ripple scores): sums per month and day, point in time, metadata, the registry's oracle
equal to the fusion stand-in, knowledge adapters at or before each graph month, and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from text_stub import hashed_embed
from typer.testing import CliRunner

from kgfin.align.config import AlignConfig
from kgfin.align.events import AlignInputError
from kgfin.cli import app
from kgfin.data import load_market
from kgfin.data.calendar import assign_months, rebalance_times
from kgfin.data.loaders import MarketData
from kgfin.evaluate.scores import (
    RippleScoresConfig,
    _adapter_map,
    read_ripple_scores,
    ripple_scores,
)
from kgfin.fusion.ripple import oracle_ripple, ripple_input
from kgfin.graph.snapshot import build_snapshot
from kgfin.market.residuals import residuals

ALIGN = AlignConfig.model_validate({"impact": {"residuals": {"window": 60, "min_obs": 40}}})
MONTHS = ["2014-06", "2014-07", "2014-08"]


def _reader(market: MarketData):
    snaps: dict[str, object] = {}

    def read(m: str):
        if m not in snaps:
            snaps[m] = build_snapshot(market, m)
        return snaps[m]

    return read


def _scores(market: MarketData, synth_dir: Path, predictor: str, months=MONTHS, **kw):
    cfg = RippleScoresConfig(predictor=predictor, sentiment_months=4, predictors={"ridge_months": 3}, **kw)
    resid = residuals(market.returns, market.factors_daily, ALIGN.impact.residuals)
    return ripple_scores(market, _reader(market), months, cfg, ALIGN, data_dir=synth_dir, embed=hashed_embed, resid=resid)


@pytest.fixture(scope="module")
def market(synth_dir: Path) -> MarketData:
    return load_market(synth_dir)


def test_tables_sum_every_event_by_rebalance_month_and_priced_day(market: MarketData, synth_dir: Path,
                                                                   tmp_path: Path) -> None:
    res = _scores(market, synth_dir, "propagation_only")
    ev = res.events
    assert res.metadata["predictor"] == "propagation_only" and res.metadata["scope"] == "universe"
    assert res.metadata["events_scored"] == ev["event_id"].nunique() + res.metadata["counts"][
        "events with no non-zero score"]
    # month m holds the news published in [rebalance(m-1), rebalance(m)): the fusion features' windows
    days = pd.DatetimeIndex(market.returns["date"].unique())
    assert (ev["month"].to_numpy() == assign_months(ev["timestamp"], rebalance_times(days))).all()
    want = ev.groupby(["month", "ticker"])["score"].sum()
    got = res.monthly.set_index(["month", "ticker"])["ripple"]
    pd.testing.assert_series_equal(got, want.rename("ripple"), check_names=False)
    want_day = ev.groupby(["day", "ticker"])["score"].sum()
    got_day = res.daily.set_index(["date", "ticker"])["ripple"]
    np.testing.assert_allclose(got_day.to_numpy(), want_day.to_numpy())
    assert (res.monthly["events"] >= 1).all()
    # written and read back with the metadata inside the Parquet file; kgfin fuse --ripple takes the folder
    res.write(tmp_path / "scores")
    table, meta = read_ripple_scores(tmp_path / "scores")
    assert meta["predictor"] == "propagation_only" and meta["counts"] == res.metadata["counts"]
    pd.testing.assert_frame_equal(table, res.monthly)
    from kgfin.fusion.config import FusionConfig

    frame, label = ripple_input(str(tmp_path / "scores"), tmp_path, market, FusionConfig())
    assert label.startswith("propagation_only ripple scores")
    pd.testing.assert_frame_equal(frame, res.monthly[["month", "ticker", "ripple"]])


def test_a_month_score_uses_only_news_known_by_then(market: MarketData, synth_dir: Path) -> None:
    """Cut the news and returns after the rebalancing time of 2014-07: every score of 2014-06 and 2014-07 is
    unchanged (each is a sum over earlier news; the sentiment sign learns from the months before 2014-06)."""
    full = _scores(market, synth_dir, "propagation_only")
    cut_at = rebalance_times(pd.DatetimeIndex(market.returns["date"].unique()))["2014-07"]
    cut = MarketData(**{**market.__dict__})
    cut.news = market.news[market.news["timestamp"] < cut_at].reset_index(drop=True)
    cut.returns = market.returns[market.returns["date"] <= cut_at.normalize()].reset_index(drop=True)
    cut.factors_daily = market.factors_daily[market.factors_daily["date"] <= cut_at.normalize()]
    part = _scores(cut, synth_dir, "propagation_only", months=["2014-06", "2014-07"])
    keep = full.monthly["month"].isin(["2014-06", "2014-07"])
    pd.testing.assert_frame_equal(part.monthly.reset_index(drop=True),
                                  full.monthly[keep].reset_index(drop=True))
    # later news moves later months only
    assert set(full.monthly["month"]) == set(MONTHS)


def test_registry_oracle_equals_the_fusion_stand_in(market: MarketData, synth_dir: Path) -> None:
    res = _scores(market, synth_dir, "oracle")
    days = pd.DatetimeIndex(market.returns["date"].unique())
    fusion = oracle_ripple(synth_dir, days).set_index(["month", "ticker"])["ripple"]
    got = res.monthly.set_index(["month", "ticker"])["ripple"]
    np.testing.assert_allclose(got.to_numpy(), fusion.reindex(got.index).to_numpy(), rtol=1e-12)
    # a candidate-set predictor writes its candidates' scores only
    ridge = _scores(market, synth_dir, "ridge_rule", months=["2014-08"])
    assert ridge.metadata["scope"] == "candidates" and len(ridge.monthly)


def test_knowledge_adapters_at_or_before_each_graph_month_and_missing_ones_counted(
        market: MarketData, synth_dir: Path, tmp_path: Path) -> None:
    assert _adapter_map(["2014-05", "2014-06", "2014-09"], ["2014-06", "2014-08"], "latest") == {
        "2014-05": None, "2014-06": "2014-06", "2014-09": "2014-08"}
    assert _adapter_map(["2014-06", "2014-07"], ["2014-06"], "exact") == {"2014-06": "2014-06", "2014-07": None}
    with pytest.raises(AlignInputError, match="no knowledge adapter"):
        ripple_scores(market, _reader(market), MONTHS, RippleScoresConfig(predictor="knowledge"), ALIGN,
                      adapters_root=tmp_path / "none", embed=hashed_embed)
    with pytest.raises(AlignInputError, match="negative control"):
        _scores(market, synth_dir, "time_shuffled")


@pytest.mark.integration
def test_cli_writes_the_tables_and_fuse_reads_them(synth_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    store = str(tmp_path / "store")
    assert runner.invoke(app, ["graph", "build", str(synth_dir), "--store", store, "--month",
                               "2014-06..2014-08"]).exit_code == 0
    out = tmp_path / "scores"
    r = runner.invoke(app, ["ripple", "scores", "-m", "2014-07..2014-08", "--data", str(synth_dir), "--store", store,
                            "--predictor", "oracle", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "news items scored" in r.output
    table, meta = read_ripple_scores(out / "monthly.parquet")
    assert meta["predictor"] == "oracle" and set(table["month"]) <= {"2014-07", "2014-08"}
    daily, _ = read_ripple_scores(out / "daily.parquet")
    assert {"date", "ticker", "ripple", "events"} <= set(daily.columns)


def test_adapter_months_reads_the_inject_layout(tmp_path: Path) -> None:
    from kgfin.evaluate.scores import adapter_months
    from kgfin.inject.trainer import adapter_dir

    for m in ("2014-11", "2014-10"):
        adapter_dir(tmp_path, m).mkdir(parents=True)
        (adapter_dir(tmp_path, m) / "adapter_config.json").write_text("{}")
    (tmp_path / ".kg-2014-12.work").mkdir()  # a training work folder is not an adapter
    adapter_dir(tmp_path, "2015-01").mkdir()  # nor is a folder without its config
    assert adapter_months(tmp_path) == ["2014-10", "2014-11"]
