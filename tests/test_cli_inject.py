"""The knowledge-injection commands end to end on a tiny random model: instruct -> inject -> evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kgfin.cli import app

pytestmark = pytest.mark.integration
runner = CliRunner()
RECIPE = str(Path(__file__).parents[1] / "kgfin" / "recipes" / "inject.yaml")
TINY = ["--set", "inject.model=tiny-random-llama", "--set", "inject.max_steps=2", "--set", "inject.batch_size=4",
        "--set", "inject.lora.r=4", "--set", "inject.save_steps=0"]


def test_instruct_inject_evaluate(synth_dir: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    r = runner.invoke(app, ["graph", "build", str(synth_dir), "--store", store, "--month", "2014-01..2014-03"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["instruct", "--month", "2014-03", "--store", store, "--out", str(tmp_path / "instr"),
                            "--config", RECIPE, "--set", "instruct.max_pairs_per_family=10",
                            "--set", "instruct.buffer_size=5", "--set", "instruct.buffer_months=2"])
    assert r.exit_code == 0, r.output
    pairs = [json.loads(x) for x in (tmp_path / "instr" / "pairs-2014-03.jsonl").read_text().splitlines()]
    assert len(pairs) == 35 and sum(p["carried"] for p in pairs) == 5
    assert (tmp_path / "instr" / "kgfin-run.json").exists()

    r = runner.invoke(app, ["inject", "--month", "2014-03", "--pairs", str(tmp_path / "instr" / "pairs-2014-03.jsonl"),
                            "--adapters", str(tmp_path / "adapters"), "--config", RECIPE, *TINY])
    assert r.exit_code == 0, r.output
    manifest = json.loads((tmp_path / "adapters" / "kg-2014-03" / "kgfin-run.json").read_text())
    assert manifest["adapter"]["steps"] == 2 and len(manifest["adapter"]["pairs_sha256"]) == 64

    r = runner.invoke(app, ["evaluate", "injection", "--month", "2014-03", "--store", store, "--switch-month", "2014-02",
                            "--out", str(tmp_path / "eval"), "--config", RECIPE, *TINY,
                            "--set", "memory_eval.subgraph_nodes=8", "--set", "memory_eval.max_pairs_per_family=5",
                            "--set", "memory_eval.max_new_tokens=6"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "eval" / "2014-03"
    assert (out / "accuracy.md").exists() and (out / "scores.csv").exists()
    assert "covered" in r.output and "held_out" in r.output and "switch_ms" in r.output


def test_helpful_errors(tmp_path: Path) -> None:
    r = runner.invoke(app, ["inject", "--month", "2014-03", "--pairs", str(tmp_path / "nope.jsonl")])
    assert r.exit_code != 0 and "kgfin instruct" in str(r.exception)
    r = runner.invoke(app, ["instruct", "--month", "2014-03", "--store", str(tmp_path / "empty"), "--config", RECIPE])
    assert r.exit_code != 0 and "kgfin graph build" in str(r.exception)
    r = runner.invoke(app, ["inject", "--month", "2014-03", "--set", "epoch=3", "--config", RECIPE])
    assert r.exit_code != 0 and "inject.epoch: unknown key (did you mean inject.epochs?)" in str(r.exception)
