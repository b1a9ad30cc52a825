"""Loaders: read a table from CSV or Parquet and return a validated pandas DataFrame.

Each loader raises :class:`~kgfin.data.validation.DataValidationError` listing every
error in the file (warnings are logged). :func:`validate_dir` checks a whole data directory
(cross-table rules included) and returns all problems, errors and warnings, without
raising; :func:`load_market` loads a directory into a :class:`MarketData`.

A ``.csv`` / ``.parquet`` file in the directory whose name is not a table is reported: an
error when it looks like a misspelt table name (``return.csv``), a warning otherwise.
Daily returns above ``max_return`` (default :data:`DEFAULT_MAX_RETURN`, +100 % in a day)
are warnings: possible, but more often a units error (percent for fractions).
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from kgfin.data.schemas import TABLES, TableSchema
from kgfin.data.validation import DataValidationError, Problem, errors_only, validate_frame

log = logging.getLogger(__name__)

__all__ = [
    "MarketData", "find_table", "load_board_seats", "load_companies", "load_factors_daily",
    "load_factors_monthly", "load_fund_holdings", "load_market", "load_news", "load_patents",
    "load_returns", "load_stock_factors", "load_supply_links", "load_table", "validate_dir",
]

SUFFIXES = (".parquet", ".csv")
DEFAULT_MAX_RETURN = 1.0  # daily simple returns above this are warned about (+100 % in a day)


def find_table(data_dir: str | Path, name: str) -> Path | None:
    """The file holding table ``name`` in ``data_dir`` (Parquet or CSV), or None.

    Raises if both a Parquet and a CSV file are present (which one is meant is unclear).
    """
    data_dir = Path(data_dir)
    found = [data_dir / f"{name}{suffix}" for suffix in SUFFIXES if (data_dir / f"{name}{suffix}").exists()]
    if len(found) > 1:
        raise DataValidationError(
            [Problem(str(found[0].parent / name), None, "both .parquet and .csv present; keep one")]
        )
    return found[0] if found else None


def _read_raw(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pandas(date_as_object=False)
    if path.suffix == ".csv":
        # Everything as text: types are checked by validation, which can then name the row.
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    raise ValueError(f"{path}: unsupported file type (use .parquet or .csv)")


def _read_and_validate(
    path: str | Path, schema: TableSchema, universe: set[str] | None, max_return: float = DEFAULT_MAX_RETURN,
) -> tuple[pd.DataFrame, list[Problem]]:
    path = Path(path)
    try:
        raw = _read_raw(path)
    except FileNotFoundError:
        return pd.DataFrame(), [Problem(str(path), None, "file not found")]
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        return pd.DataFrame(), [Problem(str(path), None, f"cannot be read: {exc}")]
    plausible = {"ret": max_return} if schema.name == "returns" else None
    return validate_frame(raw, schema, str(path), universe=universe, csv=path.suffix == ".csv", plausible=plausible)


def _raise_or_warn(problems: list[Problem]) -> None:
    """Raise on errors; log warnings."""
    errors = errors_only(problems)
    if errors:
        raise DataValidationError(errors)
    for p in problems:
        log.warning("%s", p)


def load_table(path: str | Path, table: str, universe: set[str] | None = None,
               max_return: float = DEFAULT_MAX_RETURN) -> pd.DataFrame:
    """Read and validate ``path`` as table ``table`` (a name in :data:`TABLES`)."""
    frame, problems = _read_and_validate(path, TABLES[table], universe, max_return)
    _raise_or_warn(problems)
    return frame


def load_companies(path: str | Path) -> pd.DataFrame:
    """Companies: ticker, name, sector."""
    return load_table(path, "companies")


def load_supply_links(path: str | Path, universe: set[str] | None = None) -> pd.DataFrame:
    """Supply links: month, supplier, customer, value_usd."""
    return load_table(path, "supply_links", universe)


def load_board_seats(path: str | Path, universe: set[str] | None = None) -> pd.DataFrame:
    """Board seats: director_id, ticker, start, end (end empty while seated)."""
    return load_table(path, "board_seats", universe)


def load_fund_holdings(path: str | Path, universe: set[str] | None = None) -> pd.DataFrame:
    """Fund holdings: month, fund_id, ticker, weight."""
    return load_table(path, "fund_holdings", universe)


def load_patents(path: str | Path, universe: set[str] | None = None) -> pd.DataFrame:
    """Patents: patent_id, ticker, grant_date, cpc_group."""
    return load_table(path, "patents", universe)


def load_returns(path: str | Path, universe: set[str] | None = None) -> pd.DataFrame:
    """Daily returns: date, ticker, ret."""
    return load_table(path, "returns", universe)


def load_factors_daily(path: str | Path) -> pd.DataFrame:
    """Daily factors: date, mkt_rf, smb, hml, [rmw, cma,] rf."""
    return load_table(path, "factors_daily")


def load_factors_monthly(path: str | Path) -> pd.DataFrame:
    """Monthly factors: date (YYYY-MM), mkt_rf, smb, hml, [rmw, cma,] rf."""
    return load_table(path, "factors_monthly")


def load_news(path: str | Path, universe: set[str] | None = None) -> pd.DataFrame:
    """News: id, timestamp, tickers (tuple), headline, body."""
    return load_table(path, "news", universe)


def load_stock_factors(path: str | Path, universe: set[str] | None = None) -> pd.DataFrame:
    """Stock factors: month, ticker, then one numeric column per factor."""
    return load_table(path, "stock_factors", universe)


@dataclass
class MarketData:
    """All tables of a data directory; tables absent from the directory are None."""

    companies: pd.DataFrame
    supply_links: pd.DataFrame | None = None
    board_seats: pd.DataFrame | None = None
    fund_holdings: pd.DataFrame | None = None
    patents: pd.DataFrame | None = None
    returns: pd.DataFrame | None = None
    factors_daily: pd.DataFrame | None = None
    factors_monthly: pd.DataFrame | None = None
    news: pd.DataFrame | None = None
    stock_factors: pd.DataFrame | None = None

    @property
    def tickers(self) -> list[str]:
        return self.companies["ticker"].tolist()

    def present(self) -> list[str]:
        """Names of the tables that were loaded."""
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]


def _misnamed(data_dir: Path) -> dict[str, str]:
    """File name -> the table it most resembles ('' if none), for table-like files named as no table."""
    out: dict[str, str] = {}
    for path in sorted(p for p in data_dir.iterdir() if p.suffix in SUFFIXES and p.is_file()):
        if path.stem not in TABLES:
            close = difflib.get_close_matches(path.stem.lower(), list(TABLES), n=1, cutoff=0.75)
            out[path.name] = close[0] if close else ""
    return out


def _scan(data_dir: Path, tables: list[str] | None,
          max_return: float = DEFAULT_MAX_RETURN) -> tuple[dict[str, pd.DataFrame], list[Problem]]:
    problems: list[Problem] = []
    frames: dict[str, pd.DataFrame] = {}
    if not data_dir.is_dir():
        return frames, [Problem(str(data_dir), None, "not a directory")]
    misnamed = _misnamed(data_dir)
    if tables is None:
        for name, like in misnamed.items():
            if like:
                problems.append(Problem(str(data_dir / name), None,
                                        f"not a kgfin table: did you mean '{like}'? (rename it to {like}{Path(name).suffix})"))
            else:
                problems.append(Problem(str(data_dir / name), None, "not a kgfin table (ignored)", severity="warning"))
    try:
        companies_path = find_table(data_dir, "companies")
    except DataValidationError as exc:
        return frames, exc.problems
    if companies_path is None:
        return frames, [Problem(str(data_dir / "companies"), None, "required table missing (companies.parquet or companies.csv)")]
    companies, probs = _read_and_validate(companies_path, TABLES["companies"], None, max_return)
    problems += probs
    frames["companies"] = companies
    universe = set(companies["ticker"].dropna()) if "ticker" in companies else set()
    for name, schema in TABLES.items():
        if name == "companies" or (tables is not None and name not in tables):
            continue
        try:
            path = find_table(data_dir, name)
        except DataValidationError as exc:
            problems += exc.problems
            continue
        if path is None:
            if tables is not None:
                like = [f for f, t in misnamed.items() if t == name]
                hint = f"; found {', '.join(like)}: a misspelling?" if like else ""
                problems.append(Problem(str(data_dir / name), None,
                                        f"required table missing ({name}.parquet or {name}.csv){hint}"))
            continue
        frame, probs = _read_and_validate(path, schema, universe, max_return)
        problems += probs
        frames[name] = frame
    return frames, problems


def validate_dir(data_dir: str | Path, tables: list[str] | None = None,
                 max_return: float = DEFAULT_MAX_RETURN) -> list[Problem]:
    """Validate every table in ``data_dir`` (or just ``tables``); return all problems (errors and warnings)."""
    return _scan(Path(data_dir), tables, max_return)[1]


def load_market(data_dir: str | Path, tables: list[str] | None = None,
                max_return: float = DEFAULT_MAX_RETURN) -> MarketData:
    """Load and validate a data directory. ``tables`` limits (and requires) the tables read.

    Raises :class:`DataValidationError` listing every error; warnings are logged.
    """
    frames, problems = _scan(Path(data_dir), tables, max_return)
    _raise_or_warn(problems)
    return MarketData(**frames)
