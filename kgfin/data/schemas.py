"""Schemas of kgfin's input tables.

One :class:`TableSchema` per table; ``docs/data-formats.md`` describes the same tables
for people. A data directory holds each table as ``<name>.parquet`` or ``<name>.csv``.

Column kinds:

* ``str``      non-empty text
* ``float``    finite number (``inf`` is always an error; NaN only where nullable)
* ``int``      integral number
* ``date``     ISO date ``YYYY-MM-DD``
* ``month``    ISO month ``YYYY-MM`` (kept as a string: it sorts and compares correctly)
* ``datetime`` ISO timestamp ``YYYY-MM-DD HH:MM[:SS]`` (naive, exchange-local time)
* ``tickers``  one or more tickers separated by ``;`` (read as a tuple of strings)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["TABLES", "Column", "RowCheck", "TableSchema", "schema_markdown"]

Kind = Literal["str", "float", "int", "date", "month", "datetime", "tickers"]


@dataclass(frozen=True)
class Column:
    """One column of a table."""

    name: str
    kind: Kind
    description: str
    nullable: bool = False
    required: bool = True  # False: the column may be absent from the file
    ticker: bool = False  # values must be tickers listed in companies
    min: float | None = None
    max: float | None = None
    plausible_max: float | None = None  # values above it are warnings (possible, but likely a units error)


@dataclass(frozen=True)
class RowCheck:
    """A rule between columns of the same row: rows where ``left op right`` fails are errors."""

    left: str
    op: Literal["<=", "!="]
    right: str
    message: str


@dataclass(frozen=True)
class TableSchema:
    """A table: its columns, its key and its row rules."""

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    row_checks: tuple[RowCheck, ...] = ()
    extra_columns: Literal["keep", "float"] = "keep"  # "float": other columns are numeric factors
    extra_description: str = ""
    unique_ignoring_case: tuple[str, ...] = ()  # columns whose values must not differ only by case

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def ticker_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.ticker or c.kind == "tickers"]


def _factor_columns(date_kind: Kind, date_desc: str) -> tuple[Column, ...]:
    return (
        Column("date", date_kind, date_desc),
        Column("mkt_rf", "float", "market excess return"),
        Column("smb", "float", "size factor (small minus big)"),
        Column("hml", "float", "value factor (high minus low book-to-market)"),
        Column("rmw", "float", "profitability factor (robust minus weak); needed for FF5", required=False),
        Column("cma", "float", "investment factor (conservative minus aggressive); needed for FF5", required=False),
        Column("rf", "float", "risk-free rate over the period"),
    )


COMPANIES = TableSchema(
    "companies", "The universe: one row per company.",
    (
        Column("ticker", "str", "unique identifier used in every other table"),
        Column("name", "str", "company name as it appears in news"),
        Column("sector", "str", "sector label"),
    ),
    key=("ticker",),
    unique_ignoring_case=("ticker",),
)

SUPPLY_LINKS = TableSchema(
    "supply_links", "Active supplier -> customer relationships, one row per link and month.",
    (
        Column("month", "month", "month in which the link is active"),
        Column("supplier", "str", "ticker of the supplier", ticker=True),
        Column("customer", "str", "ticker of the customer", ticker=True),
        Column("value_usd", "float", "value of the supplies in the month (USD)", min=0.0),
    ),
    key=("month", "supplier", "customer"),
    row_checks=(RowCheck("supplier", "!=", "customer", "a company cannot supply itself"),),
)

BOARD_SEATS = TableSchema(
    "board_seats", "Director seats with tenure; a director on two boards links the companies.",
    (
        Column("director_id", "str", "person identifier"),
        Column("ticker", "str", "company whose board the director sits on", ticker=True),
        Column("start", "date", "first day of the seat"),
        Column("end", "date", "last day of the seat; empty while still seated", nullable=True),
    ),
    key=("director_id", "ticker", "start"),
    row_checks=(RowCheck("start", "<=", "end", "end before start"),),
)

FUND_HOLDINGS = TableSchema(
    "fund_holdings", "Mutual-fund portfolios at each month end.",
    (
        Column("month", "month", "month of the holdings report"),
        Column("fund_id", "str", "fund identifier"),
        Column("ticker", "str", "held company", ticker=True),
        Column("weight", "float", "portfolio weight in [0, 1]", min=0.0, max=1.0),
    ),
    key=("month", "fund_id", "ticker"),
)

PATENTS = TableSchema(
    "patents", "Granted patents and their CPC groups (one row per patent and CPC group).",
    (
        Column("patent_id", "str", "patent identifier"),
        Column("ticker", "str", "assignee", ticker=True),
        Column("grant_date", "date", "grant date (the patent is public from this day)"),
        Column("cpc_group", "str", "CPC main group, e.g. H01L21"),
    ),
    key=("patent_id", "cpc_group"),
)

RETURNS = TableSchema(
    "returns", "Daily total returns.",
    (
        Column("date", "date", "trading day"),
        Column("ticker", "str", "company", ticker=True),
        Column("ret", "float", "simple return over the day (0.01 = 1 %)", min=-1.0, plausible_max=1.0),
    ),
    key=("date", "ticker"),
)

FACTORS_DAILY = TableSchema(
    "factors_daily", "Daily Fama-French factor returns (simple returns, 0.01 = 1 %).",
    _factor_columns("date", "trading day"), key=("date",),
)

FACTORS_MONTHLY = TableSchema(
    "factors_monthly", "Monthly Fama-French factor returns (simple returns, 0.01 = 1 %).",
    _factor_columns("month", "month (YYYY-MM)"), key=("date",),
)

NEWS = TableSchema(
    "news", "News items.",
    (
        Column("id", "str", "unique news identifier"),
        Column("timestamp", "datetime", "publication time, exchange-local, naive"),
        Column("tickers", "tickers", "companies named in the item, ';'-separated"),
        Column("headline", "str", "headline"),
        Column("body", "str", "body text"),
    ),
    key=("id",),
)

STOCK_FACTORS = TableSchema(
    "stock_factors", "Monthly stock characteristics (quantitative factors), known at the month end.",
    (
        Column("month", "month", "month at whose end the values are known"),
        Column("ticker", "str", "company", ticker=True),
    ),
    key=("month", "ticker"),
    extra_columns="float",
    extra_description="every other column is a numeric factor; NaN marks a missing value",
)

TABLES: dict[str, TableSchema] = {
    t.name: t
    for t in (
        COMPANIES, SUPPLY_LINKS, BOARD_SEATS, FUND_HOLDINGS, PATENTS, RETURNS,
        FACTORS_DAILY, FACTORS_MONTHLY, NEWS, STOCK_FACTORS,
    )
}


_KIND_TEXT = {
    "str": "text", "float": "number", "int": "integer", "date": "date `YYYY-MM-DD`", "month": "month `YYYY-MM`",
    "datetime": "timestamp `YYYY-MM-DD HH:MM:SS`", "tickers": "tickers `A;B`",
}


def schema_markdown() -> str:
    """The column tables of ``docs/data-formats.md``, generated from :data:`TABLES`."""
    out: list[str] = []
    for t in TABLES.values():
        out += [f"### `{t.name}`", "", f"{t.description} Key: ({', '.join(t.key)}).", "",
                "| column | type | required | description |", "|---|---|---|---|"]
        for c in t.columns:
            rng = ""
            if c.min is not None or c.max is not None:
                rng = f" in [{c.min if c.min is not None else '-inf'}, {c.max if c.max is not None else 'inf'}]"
            if c.plausible_max is not None:
                rng += f"; above {c.plausible_max:g} a warning"
            req = "may be empty" if c.nullable else ("yes" if c.required else "optional column")
            known = " (must be a ticker in `companies`)" if c.ticker or c.kind == "tickers" else ""
            out.append(f"| `{c.name}` | {_KIND_TEXT[c.kind]}{rng} | {req} | {c.description}{known} |")
        if t.extra_description:
            out.append(f"| *other columns* | number | - | {t.extra_description} |")
        out += [f"\nRule: `{r.left} {r.op} {r.right}` ({r.message})." for r in t.row_checks]
        out.append("")
    return "\n".join(out)
