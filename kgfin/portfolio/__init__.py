"""Portfolios: benchmark allocators, daily long-short and allocator backtests, monthly
decile portfolios and performance metrics. Pure functions on DataFrames."""

from kgfin.portfolio.allocators import (
    ALLOCATORS,
    AllocatorConfig,
    allocate,
    equal_weight,
    inverse_volatility,
    markowitz,
    min_variance,
    project_simplex,
)
from kgfin.portfolio.backtest import LongShortConfig, allocator_backtest, long_short_backtest
from kgfin.portfolio.deciles import (
    DecileConfig,
    DecileResult,
    decile_portfolios,
    information_coefficient,
    mape,
)
from kgfin.portfolio.errors import PortfolioInputError
from kgfin.portfolio.metrics import (
    SharpeCI,
    SharpeConfig,
    annualized_return,
    annualized_volatility,
    max_drawdown,
    performance,
    performance_table,
    sharpe_ci,
    sharpe_ratio,
    win_rate,
)

__all__ = [
    "ALLOCATORS", "AllocatorConfig", "DecileConfig", "DecileResult", "LongShortConfig",
    "PortfolioInputError", "allocate", "allocator_backtest", "annualized_return",
    "annualized_volatility", "decile_portfolios", "equal_weight", "information_coefficient",
    "inverse_volatility", "long_short_backtest", "mape", "markowitz", "max_drawdown",
    "min_variance", "performance", "performance_table", "project_simplex", "SharpeCI", "SharpeConfig",
    "sharpe_ci", "sharpe_ratio", "win_rate",
]
