"""`kgfin demo` end to end on the tiny profile: killed mid-way and resumed, re-runs skip finished stages,
a changed setting reruns exactly the stages it affects, and the report loads in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from browser import render_in_chromium

from kgfin.config import ConfigError
from kgfin.pipeline import STAGES, _stage_keys, load_profile

ROOT = Path(__file__).parents[1]
ARTIFACTS = ROOT / "runs" / "test-artifacts"
DEMO = [sys.executable, "-m", "kgfin.cli", "demo", "--profile", "tiny"]


def _stages(run: Path) -> dict[str, dict]:
    stages = json.loads((run / "pipeline.json").read_text())["stages"]
    assert [r["name"] for r in stages] == [s.name for s in STAGES]  # recorded in run order
    return {r["name"]: r for r in stages}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A tiny demo killed while it trains the knowledge adapters, then run again to the end."""
    run = tmp_path_factory.mktemp("demo") / "run"
    first = subprocess.Popen([*DEMO, "--run-dir", str(run)], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and first.poll() is None:
            if (run / "pipeline.json").exists() and _stages(run)["inject"]["status"] == "running":
                break
            time.sleep(0.2)
        assert first.poll() is None, "the demo ended before it reached the inject stage"
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    killed = _stages(run)
    assert [killed[s]["status"] for s in ("data", "graphs", "instruct", "inject")] == ["done"] * 3 + ["running"]
    second = subprocess.run([*DEMO, "--run-dir", str(run)], cwd=ROOT, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "COLUMNS": "200"})
    assert second.returncode == 0, second.stderr[-3000:]
    return run, second.stdout


pytestmark = pytest.mark.integration


def test_killed_run_resumes_and_finishes(demo_run: tuple[Path, str]) -> None:
    run, out = demo_run
    stages = _stages(run)
    assert all(stages[s.name]["status"] == "done" for s in STAGES)
    for name in ("data", "graphs", "instruct"):
        assert f"{[s.name for s in STAGES].index(name) + 1}/{len(STAGES)}" in out
    assert out.count("done in an earlier run, skipped") == 3  # data, graphs and instruct were not redone
    lines = [line for line in out.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("report: ") and lines[-1].endswith("report.html")  # the report path comes last
    assert "ripple evaluation" in out and "peak MB" in out  # the summary table
    for path in ("adapters/kg-2014-10/adapter_config.json", "align/final", "ripple_eval/tables.md",
                 "ripple_eval/v2_summary.csv", "fusion/results.csv", "report.html"):
        assert (run / path).exists(), path
    # the ripple stage reports the v2 headline of every method: mean rank IC [CI] (n events)
    ripple = stages["ripple_eval"]["summary"]
    for method in load_profile("tiny").ripple_eval.methods:
        assert re.fullmatch(r"IC -?\d\.\d{4} \[-?\d\.\d{4}, -?\d\.\d{4}\] \(n=\d+\)(, \d+ refused)?", ripple[method]), ripple
    # the fusion stage read the aligned model's ripple-score table, and the report names it
    from kgfin.evaluate.scores import read_ripple_scores

    table, meta = read_ripple_scores(run / "ripple_scores")
    assert meta["predictor"] == "aligned" and meta["adapter"] == "final" and meta["events_scored"] > 0
    used_adapters = {a for a in meta["knowledge_adapters"].values() if a}  # None: no adapter at or before it
    assert used_adapters == {"2014-10", "2014-11"} and meta["knowledge_adapters"]["2015-01"] == "2014-11"
    assert meta["in_sample_months"] == ["2014-11"]  # scored on the month it was aligned on: recorded
    assert len(table) > 0 and (table["ripple"] != 0).any()  # the aligned model's answers scored stock-months
    used = pd.read_parquet(run / "fusion" / "ripple_input.parquet")
    pd.testing.assert_frame_equal(used.reset_index(drop=True), table[["month", "ticker", "ripple"]])
    fusion_run = json.loads((run / "fusion" / "kgfin-run.json").read_text())
    assert fusion_run["ripple_metadata"]["predictor"] == "aligned" and "aligned" in fusion_run["ripple_source"]
    results = pd.read_csv(run / "fusion" / "results.csv")
    assert results.loc[results["ripple"] != "none", "ripple"].str.startswith("aligned ripple scores").all()
    page = (run / "report.html").read_text()
    assert "aligned ripple scores" in page
    assert "Factor research: " in page and "rank IC by horizon" in page  # the best model's signal, IC decay chart
    assert page.index('id="ripple-v2"') < page.index('id="ripple-paper"') < page.index("Table 1 analogue")
    manifest = json.loads((run / "pipeline.json").read_text())
    assert manifest["profile"] == "tiny" and manifest["versions"]["torch"] and len(manifest["config_hash"]) == 16
    assert all(stages[s.name]["peak_rss_mb"] > 0 and stages[s.name]["seconds"] >= 0 for s in STAGES)


def test_rerun_skips_everything_and_a_changed_setting_reruns_only_what_it_affects(
        demo_run: tuple[Path, str]) -> None:
    run, _ = demo_run
    before = _stages(run)
    again = subprocess.run([*DEMO, "--run-dir", str(run), "--set", "report_events=1"], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("done in an earlier run, skipped") == len(STAGES) - 1
    after = _stages(run)
    assert after["report"]["key"] != before["report"]["key"]
    assert {s: after[s]["key"] for s in after if s != "report"} == {s: before[s]["key"] for s in before if s != "report"}


def test_stage_keys_follow_the_config_sections_and_dependencies() -> None:
    cfg = load_profile("tiny")
    base = _stage_keys(cfg)
    fusion = _stage_keys(cfg.model_copy(update={"fusion": cfg.fusion.model_copy(update={"models": ["finin"]})}))
    assert {s for s in base if base[s] != fusion[s]} == {"fusion", "report"}
    months = _stage_keys(cfg.model_copy(update={"eval_months": ["2014-11"], "align_months": ["2014-10"]}))
    assert {s for s in base if base[s] != months[s]} == {"instruct", "inject", "align", "ripple_eval",
                                                          "ripple_scores", "fusion", "report"}
    # a new evaluation month needs a new adapter, but the alignment on the other months stays valid
    later = _stage_keys(cfg.model_copy(update={"eval_months": ["2015-01"]}))
    assert {s for s in base if base[s] != later[s]} == {"instruct", "inject", "ripple_eval", "ripple_scores",
                                                         "fusion", "report"}
    synth = _stage_keys(cfg.model_copy(update={"synth": cfg.synth.model_copy(update={"companies": 31})}))
    assert all(base[s] != synth[s] for s in base)


def test_profiles_load_and_bad_settings_are_clear_errors() -> None:
    for profile in ("default", "full", "tiny"):
        cfg = load_profile(profile)
        assert cfg.profile == profile and cfg.adapter_months()
    assert load_profile("default").adapter_months() == ["2015-01", "2015-02", "2015-03"]
    with pytest.raises(ConfigError, match="unknown profile"):
        load_profile("huge")
    with pytest.raises(ConfigError, match="held out"):
        load_profile("tiny", overrides=["eval_months=[2014-11]"])


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (make browser)")
def test_demo_report_loads_in_headless_chromium(demo_run: tuple[Path, str]) -> None:
    dom = render_in_chromium(demo_run[0] / "report.html", ARTIFACTS / "demo-report-screenshot.png", 3000)
    tables = ["Table 1 analogue", "Table 3 analogue", "Table 4 analogue"]
    if (demo_run[0] / "ripple_eval" / "drop_relation.csv").exists():  # only when a language model answered
        tables.append("Table 11 analogue")
    for key in ('id="event-1"', 'id="ripple-v2"', "mean rank IC", *tables, 'id="fusion"', "<svg"):
        assert key in dom, key
    assert "No fusion run in this run" not in dom


def test_the_run_seed_reaches_every_stage() -> None:
    cfg = load_profile("tiny", overrides=["seed=3"])
    seeds = {cfg.synth.seed, cfg.instruct.seed, cfg.inject.seed, cfg.align.seed, cfg.align.ppo.seed,
             cfg.align.events.seed, cfg.ripple_eval.seed, cfg.fusion.seed}
    assert seeds == {3}
