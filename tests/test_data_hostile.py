"""Malformed data folders: time zones, misspelt files, implausible values, hostile identifiers, tickers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kgfin.data import DataValidationError, load_market, validate_dir
from kgfin.data.tables import read_table, write_table


@pytest.fixture()
def csv_dir(synth_dir: Path, tmp_path: Path) -> Path:
    """A CSV copy of the small synthetic market's graph tables, companies and returns and news."""
    out = tmp_path / "csv"
    out.mkdir()
    for name in ("companies", "supply_links", "fund_holdings", "returns", "news"):
        frame = read_table(synth_dir / f"{name}.parquet")
        for col in frame.columns:
            if pd.api.types.is_datetime64_any_dtype(frame[col]):
                fmt = "%Y-%m-%d %H:%M:%S" if col == "timestamp" else "%Y-%m-%d"
                frame[col] = frame[col].dt.strftime(fmt).fillna("")
        frame.to_csv(out / f"{name}.csv", index=False)
    return out


def _frame(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _errors(data_dir: Path) -> list[str]:
    return [str(p) for p in validate_dir(data_dir) if p.severity == "error"]


def _warnings(data_dir: Path) -> list[str]:
    return [str(p) for p in validate_dir(data_dir) if p.severity == "warning"]


@pytest.mark.parametrize("stamp", ["2014-01-08T09:27:00+05:00", "2014-01-08T09:27:00Z"])
def test_news_timestamps_with_a_time_zone_are_named(csv_dir: Path, stamp: str) -> None:
    news = _frame(csv_dir / "news.csv")
    news.loc[2, "timestamp"] = stamp
    news.to_csv(csv_dir / "news.csv", index=False)
    errors = _errors(csv_dir)
    assert any("news.csv row 3" in e and "'timestamp'" in e and "time zone" in e for e in errors), errors


def test_time_zoned_parquet_timestamps_are_named(csv_dir: Path) -> None:
    news = load_market(csv_dir, tables=["news"]).news
    news["timestamp"] = news["timestamp"].dt.tz_localize("UTC")
    (csv_dir / "news.csv").unlink()
    news.assign(tickers=news["tickers"].map(";".join)).to_parquet(csv_dir / "news.parquet")
    errors = _errors(csv_dir)
    assert any("news.parquet" in e and "'timestamp'" in e and "time zone" in e for e in errors), errors


def test_a_misspelt_table_file_is_reported(csv_dir: Path) -> None:
    (csv_dir / "returns.csv").rename(csv_dir / "return.csv")
    (csv_dir / "notes.csv").write_text("a,b\n1,2\n")
    problems = validate_dir(csv_dir)
    text = [(p.severity, str(p)) for p in problems]
    assert any(s == "error" and "return.csv" in t and "did you mean 'returns'" in t for s, t in text), text
    assert any(s == "warning" and "notes.csv" in t and "not a kgfin table" in t for s, t in text), text
    with pytest.raises(DataValidationError, match=r"returns: required table missing.*return\.csv"):
        load_market(csv_dir, tables=["returns"])


def test_implausible_returns_are_flagged_with_a_configurable_bound(csv_dir: Path) -> None:
    returns = _frame(csv_dir / "returns.csv")
    returns.loc[4, "ret"] = "1e308"
    returns.loc[6, "ret"] = "500"
    returns.loc[8, "ret"] = "0.8"
    returns.to_csv(csv_dir / "returns.csv", index=False)
    warnings = _warnings(csv_dir)
    hit = [w for w in warnings if "returns.csv rows 5, 7" in w and "'ret'" in w]
    assert hit and "implausible" in hit[0], warnings
    strict = [str(p) for p in validate_dir(csv_dir, max_return=0.5) if p.severity == "warning"]
    assert any("rows 5, 7, 9" in w for w in strict), strict
    load_market(csv_dir)  # a warning does not stop loading


def test_na_and_none_are_real_tickers(csv_dir: Path) -> None:
    companies = _frame(csv_dir / "companies.csv")
    old = companies.loc[0, "ticker"], companies.loc[1, "ticker"]
    companies.loc[0, "ticker"], companies.loc[1, "ticker"] = "NA", "None"
    companies.to_csv(csv_dir / "companies.csv", index=False)
    for name in ("supply_links", "fund_holdings", "returns"):
        frame = _frame(csv_dir / f"{name}.csv").replace({old[0]: "NA", old[1]: "None"})
        frame.to_csv(csv_dir / f"{name}.csv", index=False)
    news = _frame(csv_dir / "news.csv")
    news["tickers"] = news["tickers"].str.replace(old[0], "NA").str.replace(old[1], "None")
    news.to_csv(csv_dir / "news.csv", index=False)
    assert _errors(csv_dir) == []
    market = load_market(csv_dir)
    assert {"NA", "None"} <= set(market.tickers)
    assert (market.returns["ticker"] == "NA").any()
    out = csv_dir / "out"
    out.mkdir()
    write_table(market.returns, out, "returns", fmt="csv")
    assert (read_table(out / "returns.csv")["ticker"] == "NA").any()  # read back with no NA conversion


@pytest.mark.parametrize(("value", "message"), [
    ("X" * 10_000, "longer than"),
    ("AB\u200bC", "invisible or control character"),
    ("AB\tC", "invisible or control character"),
])
def test_hostile_identifiers_are_refused_up_front(csv_dir: Path, value: str, message: str) -> None:
    companies = _frame(csv_dir / "companies.csv")
    companies.loc[3, "ticker"] = value
    companies.to_csv(csv_dir / "companies.csv", index=False)
    errors = _errors(csv_dir)
    assert any("companies.csv row 4" in e and "'ticker'" in e and message in e for e in errors), errors


def test_tickers_differing_only_by_case_are_an_error(csv_dir: Path) -> None:
    companies = _frame(csv_dir / "companies.csv")
    companies.loc[5, "ticker"] = companies.loc[2, "ticker"].lower()
    companies.to_csv(csv_dir / "companies.csv", index=False)
    errors = _errors(csv_dir)
    assert any("companies.csv rows 3, 6" in e and "differ only by case" in e for e in errors), errors


def test_spaces_around_a_ticker_are_stripped_everywhere(csv_dir: Path) -> None:
    companies = _frame(csv_dir / "companies.csv")
    first = companies.loc[0, "ticker"]
    companies.loc[0, "ticker"] = f" {first} "
    companies.to_csv(csv_dir / "companies.csv", index=False)
    assert _errors(csv_dir) == []
    assert load_market(csv_dir).tickers[0] == first


@pytest.mark.parametrize("bad", ["int", "list"])
def test_a_ticker_column_of_the_wrong_type_is_flagged(synth_dir: Path, tmp_path: Path, bad: str) -> None:
    companies = read_table(synth_dir / "companies.parquet")
    values = (pa.array(range(len(companies))) if bad == "int"
              else pa.array([[t] for t in companies["ticker"]], type=pa.list_(pa.string())))
    table = pa.table({"ticker": values, "name": companies["name"], "sector": companies["sector"]})
    out = tmp_path / "d"
    out.mkdir()
    pq.write_table(table, out / "companies.parquet")
    errors = _errors(out)
    assert any("companies.parquet" in e and "'ticker'" in e and "expected text" in e for e in errors), errors


def test_cli_validate_prints_warnings_and_exits_zero_on_warnings_only(csv_dir: Path) -> None:
    from typer.testing import CliRunner

    from kgfin.cli import app

    returns = _frame(csv_dir / "returns.csv")
    returns.loc[4, "ret"] = "5"
    returns.to_csv(csv_dir / "returns.csv", index=False)
    runner = CliRunner()
    result = runner.invoke(app, ["data", "validate", str(csv_dir)])
    assert result.exit_code == 0, result.output
    assert "0 error(s), 1 warning(s)" in result.output and "row 5" in result.output
    assert "passes validation" in runner.invoke(app, ["data", "validate", str(csv_dir), "--max-return", "10"]).output
    (csv_dir / "returns.csv").rename(csv_dir / "return.csv")
    result = runner.invoke(app, ["data", "validate", str(csv_dir)])
    assert result.exit_code == 1 and "did you mean 'returns'" in result.output
