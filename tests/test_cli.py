"""The kgfin command line: version, synth + validate, error reporting and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from kgfin import __version__
from kgfin.cli import app, main

runner = CliRunner()


def _run_main(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["kgfin", *args])
    with pytest.raises(SystemExit) as info:
        main()
    return int(info.value.code or 0)


def test_version_and_help() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "data" in result.output and "demo" in result.output


def test_help_does_not_import_heavy_libraries() -> None:
    code = "import sys; from kgfin.cli import app; print(sorted({'torch','pandas','transformers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_synth_then_validate(tmp_path: Path) -> None:
    out = tmp_path / "m"
    result = runner.invoke(app, ["data", "synth", "--out", str(out), "--companies", "25", "--months", "3",
                                 "--seed", "2", "--set", "events.rate=0.5"])
    assert result.exit_code == 0, result.output
    assert "returns" in result.output and (out / "truth" / "impacts.parquet").exists()
    result = runner.invoke(app, ["data", "validate", str(out)])
    assert result.exit_code == 0 and "passes validation" in result.output


def test_validate_reports_every_problem_and_exits_nonzero(tmp_path: Path) -> None:
    out = tmp_path / "m"
    assert runner.invoke(app, ["data", "synth", "--out", str(out), "--companies", "25", "--months", "3",
                               "--format", "csv"]).exit_code == 0
    returns = pd.read_csv(out / "returns.csv", dtype=str)
    returns.loc[3, "ret"] = "inf"
    returns.to_csv(out / "returns.csv", index=False)
    holdings = pd.read_csv(out / "fund_holdings.csv", dtype=str)
    holdings.loc[0, "weight"] = "-0.2"
    holdings.to_csv(out / "fund_holdings.csv", index=False)
    result = runner.invoke(app, ["data", "validate", str(out)])
    assert result.exit_code == 1
    assert "returns.csv row 4 (line 5), column 'ret': non-finite value" in result.output
    assert "fund_holdings.csv row 1 (line 2), column 'weight': value outside" in result.output


def test_expected_errors_are_one_line_with_exit_code_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert _run_main(["data", "synth", "--out", str(tmp_path / "x"), "--set", "events.bogus=1"], monkeypatch) == 2
    assert "events.bogus: unknown key" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    assert _run_main(["data", "synth", "--out", str(tmp_path / "full")], monkeypatch) == 2
    assert "--force" in capsys.readouterr().err
