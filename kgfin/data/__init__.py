"""Input data: table schemas, validated loaders, calendars, the synthetic market and (in
:mod:`kgfin.data.importers`) importers of public sources."""

from kgfin.data.loaders import (
    MarketData,
    load_board_seats,
    load_companies,
    load_factors_daily,
    load_factors_monthly,
    load_fund_holdings,
    load_market,
    load_news,
    load_patents,
    load_returns,
    load_stock_factors,
    load_supply_links,
    load_table,
    validate_dir,
)
from kgfin.data.schemas import TABLES, Column, TableSchema
from kgfin.data.validation import DataValidationError, Problem

__all__ = [
    "TABLES", "Column", "DataValidationError", "MarketData", "Problem", "TableSchema",
    "load_board_seats", "load_companies", "load_factors_daily", "load_factors_monthly",
    "load_fund_holdings", "load_market", "load_news", "load_patents", "load_returns",
    "load_stock_factors", "load_supply_links", "load_table", "validate_dir",
]
