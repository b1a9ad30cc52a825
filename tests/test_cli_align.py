"""kgfin align -> predict -> evaluate ripple end to end on a tiny random model and the embedded store."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from kgfin.cli import app

pytestmark = pytest.mark.integration
runner = CliRunner()
ROOT = Path(__file__).parents[1]
TINY = ["--set", "model=tiny-random-llama", "--set", "knowledge=false", "--set", "events.max_events_per_month=2",
        "--set", "ppo.batch_size=2", "--set", "ppo.mini_batch_size=2", "--set", "ppo.max_new_tokens=40",
        "--set", "impact.residuals.window=60", "--set", "impact.residuals.min_obs=40",
        "--set", "decoding.max_companies=1"]  # the default answer grammar, one company: short answers


def test_align_predict_evaluate(synth_dir: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    r = runner.invoke(app, ["graph", "build", str(synth_dir), "--store", store, "--month", "2014-06..2014-07"])
    assert r.exit_code == 0, r.output
    run = tmp_path / "align"
    r = runner.invoke(app, ["align", "-m", "2014-07", "--data", str(synth_dir), "--store", store, "--out", str(run),
                            "--config", str(ROOT / "kgfin" / "recipes" / "align.yaml"), *TINY])
    assert r.exit_code == 0, r.output
    assert "steps" in r.output and (run / "final" / "align-adapter").exists()
    assert len(pd.read_csv(run / "align_log.csv")) == 1

    news = pd.read_parquet(synth_dir / "news.parquet")
    news = news[news["timestamp"].dt.strftime("%Y-%m") == "2014-08"].head(2)
    news.to_csv(tmp_path / "news.csv", index=False)  # tickers stay ";"-separated text
    r = runner.invoke(app, ["predict", "--events", str(tmp_path / "news.csv"), "--data", str(synth_dir), "--store", store,
                            "--aligned", str(run / "final"), "--out", str(tmp_path / "pred.json"),
                            "--config", str(ROOT / "kgfin" / "recipes" / "align.yaml"), "--max-new-tokens", "40", *TINY])
    assert r.exit_code == 0, r.output
    records = json.loads((tmp_path / "pred.json").read_text())
    assert [x["event_id"] for x in records] == news["id"].tolist()
    assert all(x["graph_month"] == "2014-07" for x in records)
    assert all(json.loads(x["answer"])["impact_analysis"]["affected_companies"] for x in records)  # grammar: valid

    out = tmp_path / "eval"
    r = runner.invoke(app, ["evaluate", "ripple", "-m", "2014-08", "--data", str(synth_dir), "--store", store,
                            "--aligned", str(run / "final"), "--out", str(out),
                            "--config", str(ROOT / "kgfin" / "recipes" / "ripple_eval.yaml"),
                            "--config", str(ROOT / "kgfin" / "recipes" / "align.yaml"),
                            *[x.replace("model=", "align.model=") if x.startswith("model=") else
                              (f"align.{x}" if x != "--set" else x) for x in TINY],
                            "--set", "methods=[propagation_only,aligned,oracle]", "--set", "temperatures=[]",
                            "--set", "max_events_per_month=4", "--set", "max_new_tokens=40", "--set", "sentiment_months=6"])
    assert r.exit_code == 0, r.output
    assert (out / "tables.md").exists() and (out / "regression_capm.csv").exists() and (out / "truth.csv").exists()
    assert "Table 1 analogue" in r.output
    truth = pd.read_csv(out / "truth.csv").set_index("method")
    assert truth.loc["oracle", "corr_with_planted"] == pytest.approx(1.0)


def test_align_errors_name_the_fix(synth_dir: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    runner.invoke(app, ["graph", "build", str(synth_dir), "--store", store, "--month", "2014-07"])
    r = runner.invoke(app, ["align", "-m", "2014-07", "--data", str(synth_dir), "--store", store,
                            "--config", str(ROOT / "kgfin" / "recipes" / "align.yaml"), "--out", str(tmp_path / "a"),
                            "--set", "model=tiny-random-llama", "--set", "impact.residuals.window=60",
                            "--set", "impact.residuals.min_obs=40"])
    assert r.exit_code != 0 and "no month 2014-06" in str(r.exception)
