"""eval/v2_combine.py: rows of several v2 runs on the same events in one table, and runs that do not line up refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SCRIPT = Path(__file__).resolve().parents[1] / "eval" / "v2_combine.py"


def _run_dir(path: Path, rows: dict[str, np.ndarray], events: list[str]) -> Path:
    recs = []
    for method, ic in rows.items():
        for eid, v in zip(events, ic, strict=True):
            for variant in ("focal", "named"):
                recs.append({"method": method, "event_id": eid, "month": "2016-07", "event_type": "t", "kind": "",
                             "variant": variant, "candidates": 40, "missing_outcome": 0, "refused": False,
                             "constant": False, "outside": 0, "ic_h1": v, "ic_h2": v, "precision@10": 0.1,
                             "recall@10": 0.2, "ndcg@10": 0.3, "sign_acc": 0.5, "sign_acc_planted": np.nan,
                             "corr_planted": np.nan})
    path.mkdir(parents=True)
    pd.DataFrame(recs).to_csv(path / "v2_per_event.csv", index=False)
    return path


def _combine(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_rows_of_two_runs_are_compared_on_the_same_events(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    events = [f"E{i}" for i in range(60)]
    base = rng.normal(0, 0.1, 60)
    a = _run_dir(tmp_path / "a", {"propagation_only": base, "knowledge": rng.normal(0, 0.1, 60)}, events)
    b = _run_dir(tmp_path / "b", {"propagation_only": base, "aligned": base + 0.2 + rng.normal(0, 0.01, 60)}, events)
    out = tmp_path / "out"
    r = _combine(str(a), str(b), "--out", str(out), "--set", "v2.n_resamples=200")
    assert r.returncode == 0, r.stderr
    summary = pd.read_csv(out / "v2_summary.csv").set_index("method")
    assert list(summary.index) == ["propagation_only", "knowledge", "aligned"]
    assert summary.loc["aligned", "events"] == 60
    paired = pd.read_csv(out / "v2_paired.csv").set_index(["method", "baseline"])
    assert abs(paired.loc[("aligned", "propagation_only"), "mean difference"] - 0.2) < 0.01
    assert paired.loc[("aligned", "propagation_only"), "p Wilcoxon"] < 1e-6


def test_runs_that_do_not_line_up_are_refused(tmp_path: Path) -> None:
    events = [f"E{i}" for i in range(10)]
    a = _run_dir(tmp_path / "a", {"propagation_only": np.zeros(10) + 0.1}, events)
    b = _run_dir(tmp_path / "b", {"propagation_only": np.zeros(10) + 0.2}, events)
    r = _combine(str(a), str(b))
    assert r.returncode != 0 and "differs between" in r.stderr and "propagation_only=NEW" in r.stderr
    assert _combine(str(a), f"{b}:propagation_only=other").returncode == 0
    c = _run_dir(tmp_path / "c", {"propagation_only": np.zeros(9) + 0.1}, events[:9])
    r = _combine(str(a), str(c))
    assert r.returncode != 0 and "scored other events" in r.stderr
    assert "no row named" in _combine(f"{a}:nothing=x").stderr
