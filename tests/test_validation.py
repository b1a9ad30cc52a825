"""Validation: each kind of bad input is reported with file, row(s) and column, all at once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from kgfin.data import DataValidationError, load_market, load_returns, validate_dir
from kgfin.data.tables import read_table


@pytest.fixture()
def csv_dir(synth_dir: Path, tmp_path: Path) -> Path:
    """A CSV copy of the small synthetic market (so rows can be corrupted as text)."""
    out = tmp_path / "csv"
    out.mkdir()
    for path in synth_dir.glob("*.parquet"):
        frame = read_table(path)
        for col in frame.columns:
            if pd.api.types.is_datetime64_any_dtype(frame[col]):
                fmt = "%Y-%m-%d %H:%M:%S" if col == "timestamp" else "%Y-%m-%d"
                frame[col] = frame[col].dt.strftime(fmt).fillna("")
        frame.to_csv(out / f"{path.stem}.csv", index=False)
    return out


def _edit(path: Path, row: int, column: str, value: str) -> None:
    """Set data row ``row`` (1-based) of a CSV file's ``column`` to ``value``."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[row - 1, column] = value
    frame.to_csv(path, index=False)


def test_generated_market_is_valid(synth_dir: Path, csv_dir: Path) -> None:
    assert validate_dir(synth_dir) == []
    assert validate_dir(csv_dir) == []
    parquet, csv = load_market(synth_dir), load_market(csv_dir)
    pd.testing.assert_frame_equal(parquet.returns, csv.returns, check_dtype=False)
    assert list(parquet.news["tickers"].iloc[:5]) == list(csv.news["tickers"].iloc[:5])


PLANTED = [
    # (file, row, column, bad value, expected message fragment, reported column)
    ("returns.csv", 5, "ret", "inf", "non-finite value", "ret"),
    ("returns.csv", 7, "ret", "abc", "wrong type: expected a number", "ret"),
    ("returns.csv", 9, "ticker", "ZZZZ9", "unknown ticker", "ticker"),
    ("fund_holdings.csv", 3, "weight", "1.5", "value outside [0.0, 1.0]", "weight"),
    ("fund_holdings.csv", 4, "fund_id", "", "missing value in key column", "fund_id"),
    ("board_seats.csv", 2, "end", "1990-01-01", "end before start", "start,end"),
    ("supply_links.csv", 6, "month", "2014-13", "expected a month YYYY-MM", "month"),
    ("patents.csv", 3, "grant_date", "03/04/2014", "expected YYYY-MM-DD", "grant_date"),
    ("news.csv", 2, "tickers", "AAA;;", "malformed ticker list", "tickers"),
]


@pytest.mark.parametrize(("file", "row", "column", "value", "message", "reported"), PLANTED)
def test_each_planted_error_names_file_row_and_column(
    csv_dir: Path, file: str, row: int, column: str, value: str, message: str, reported: str
) -> None:
    _edit(csv_dir / file, row, column, value)
    problems = validate_dir(csv_dir)
    hits = [p for p in problems if p.file.endswith(file) and message in p.message]
    assert hits, [str(p) for p in problems]
    assert hits[0].column == reported
    assert row in hits[0].rows
    text = str(hits[0])
    assert file in text and f"row {row}" in text and f"line {row + 1}" in text and reported in text


def test_all_problems_reported_at_once(csv_dir: Path) -> None:
    for file, row, column, value, _, _ in PLANTED:
        _edit(csv_dir / file, row, column, value)
    problems = validate_dir(csv_dir)
    found = {(p.file.rsplit("/", 1)[-1], m) for p in problems for (_, _, _, _, m, _) in PLANTED if m in p.message}
    assert {(f, m) for f, _, _, _, m, _ in PLANTED} <= found


def test_duplicate_keys_and_missing_columns(csv_dir: Path) -> None:
    returns = pd.read_csv(csv_dir / "returns.csv", dtype=str)
    pd.concat([returns, returns.iloc[[10]]]).to_csv(csv_dir / "returns.csv", index=False)
    pd.read_csv(csv_dir / "companies.csv").drop(columns="sector").to_csv(csv_dir / "companies.csv", index=False)
    problems = [str(p) for p in validate_dir(csv_dir)]
    n = len(returns)
    assert any("duplicate key (date, ticker)" in p and "rows 11" in p and str(n + 1) in p for p in problems), problems
    assert any("companies.csv" in p and "'sector'" in p and "missing column" in p for p in problems), problems


def test_loader_raises_with_every_problem(csv_dir: Path) -> None:
    _edit(csv_dir / "returns.csv", 1, "ret", "nan")
    _edit(csv_dir / "returns.csv", 2, "ret", "-inf")
    with pytest.raises(DataValidationError) as info:
        load_returns(csv_dir / "returns.csv")
    messages = [p.message for p in info.value.problems]
    assert "missing value (NaN or empty)" in messages and "non-finite value (inf)" in messages
    assert "2 problems" in str(info.value)


def test_missing_companies_and_ambiguous_files(synth_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "required table missing" in str(validate_dir(empty)[0])
    both = tmp_path / "both"
    shutil.copytree(synth_dir, both)
    read_table(both / "companies.parquet").to_csv(both / "companies.csv", index=False)
    assert "both .parquet and .csv" in str(validate_dir(both)[0])


def test_data_formats_doc_matches_the_schemas() -> None:
    from kgfin.data.schemas import schema_markdown

    doc = (Path(__file__).parents[1] / "docs" / "data-formats.md").read_text()
    assert schema_markdown() in doc, "docs/data-formats.md is out of date: paste kgfin.data.schemas.schema_markdown()"
