"""examples/quickstart.py end to end (tiny model), then the HTML report of its run folder in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from browser import render_in_chromium

from kgfin.report import build_report

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[1]
ARTIFACTS = ROOT / "runs" / "test-artifacts"


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("quickstart")
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py"), "--tiny", "--out", str(out)],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "alignment: 2 PPO steps" in run.stdout
    return out


def test_quickstart_tiny(quickstart_run: Path) -> None:
    tables = (quickstart_run / "ripple_eval" / "tables.md").read_text()
    assert "Table 1 analogue" in tables and "oracle" in tables
    assert tables.index("Ripple evaluation v2") < tables.index("Paper-analogue tables")
    summary = pd.read_csv(quickstart_run / "ripple_eval" / "v2_summary.csv")
    assert {"propagation_only", "random", "rule_oracle"} <= set(summary["method"])
    assert summary["CI low"].le(summary["mean rank IC"]).all() and summary["events"].gt(0).all()
    assert (quickstart_run / "adapters" / "kg-2014-11" / "adapter_config.json").exists()
    assert (quickstart_run / "ripple_eval" / "events.csv").exists()


def test_report_is_self_contained_and_has_every_section(quickstart_run: Path) -> None:
    path = build_report(quickstart_run, max_events=3)
    page = path.read_text()
    for section in ("summary", "alignment", "ripple", "fusion", "events", "event-1"):
        assert f'id="{section}"' in page
    assert "<script" not in page and not re.search(r"""(src|href)=["']https?:""", page)
    assert page.count("<svg") >= 3  # alignment curves, the v2 forest plot and at least one event graph
    assert "Table 1 analogue" in page and "No fusion run in this run" in page
    ripple = page[page.index('<section id="ripple">'):page.index('<section id="fusion">')]
    assert ripple.index('id="ripple-v2"') < ripple.index("<svg") < ripple.index('id="ripple-paper"')
    assert "mean rank IC" in ripple and "Per event: each method" in ripple


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (make browser)")
def test_report_loads_in_headless_chromium(quickstart_run: Path) -> None:
    path = build_report(quickstart_run, max_events=3)
    dom = render_in_chromium(path, ARTIFACTS / "report-screenshot.png", 2400)
    assert 'id="event-1"' in dom and "<svg" in dom and "Table 1 analogue" in dom and 'id="ripple-v2"' in dom
