"""`kgfin fuse` end to end on the small synthetic market (short training), and its errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from kgfin.cli import app, main

runner = CliRunner()
FAST = ["--set", "train.epochs=2", "--set", "model.hidden=8", "--set", "model.proj_dim=8",
        "--set", "train.grad_var_batches=4"]


@pytest.mark.integration
def test_fuse_end_to_end_with_oracle_ripple(synth_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGFIN_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "fuse"
    recipe = Path(__file__).resolve().parents[1] / "kgfin" / "recipes" / "fusion.yaml"
    args = ["fuse", "--data", str(synth_dir), "--config", str(recipe), "--out", str(out), "--ripple", "oracle",
            "--models", "factors_alone,news_alone,mixture_conventional,mixture_decoupled", *FAST]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "test months" in result.output and "headlines/s" in result.output
    assert "mixture_decoupled" in (out / "results.md").read_text()
    table = pd.read_csv(out / "results.csv")
    labels = list(zip(table["model"], table["ripple"] != "none", strict=True))
    assert labels == [("factors_alone", False), ("news_alone", False), ("news_alone", True),
                      ("mixture_conventional", False), ("mixture_conventional", True), ("mixture_decoupled", False),
                      ("mixture_decoupled", True), ("planted_alpha (truth, ceiling)", False)]
    assert table["ripple"].str.contains("oracle").sum() == 3
    assert table[["ls_sharpe", "ic_mean", "lo_annual_return"]].notna().all().all()
    for name in ("results.md", "curves.csv", "grad_variance.csv", "deciles.csv", "cumulative.csv",
                 "predictions.parquet", "component_curves.png", "grad_variance.png", "cumulative.png"):
        assert (out / name).exists(), name
    preds = pd.read_parquet(out / "predictions.parquet")
    assert set(preds["split"]) == {"train", "valid", "test"} and preds["variant"].nunique() == 7
    manifest = json.loads((out / "kgfin-run.json").read_text())
    assert manifest["config"]["train"]["epochs"] == 2 and manifest["ripple_source"].startswith("oracle")
    assert str(tmp_path) not in (out / "kgfin-run.json").read_text()
    # embeddings are cached: a second run embeds nothing
    result = runner.invoke(app, [*args[:-len(FAST)], *FAST, "--models", "news_alone", "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert "(all cached)" in result.output


def test_fuse_reports_bad_input_in_one_line(synth_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "ripple.csv"
    pd.DataFrame({"month": ["2014-01"], "ticker": ["X"]}).to_csv(bad, index=False)
    for extra, message in ((["--ripple", str(bad)], "missing column(s) ['ripple']"),
                           (["--models", "bogus"], "unknown model"),
                           (["--set", "train.bogus=1"], "train.bogus: unknown key")):
        monkeypatch.setattr(sys, "argv", ["kgfin", "fuse", "--data", str(synth_dir), "--out", str(tmp_path / "o"), *extra])
        with pytest.raises(SystemExit) as info:
            main()
        assert info.value.code == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
